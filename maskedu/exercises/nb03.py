"""Exercises for notebook 03 (training the ResNet).

* ``q1``: add a residual block. Build a model with exactly one more residual block than
  ``build_resnet()`` (by its ``blocks=`` argument, or by hand with :func:`maskedu.model.residual_block` or
  your own layers) that still takes 50x50x3 pixels and still ends in two class probabilities.
* ``q2``: read precision and recall off a confusion matrix: for the class ``"with_mask"`` in
  :data:`Q2_CONFUSION`, give ``(precision, recall)``.

>>> q2.check((52 / 55, 52 / 60), display=False).correct
True
>>> q2.check((52 / 60, 52 / 55), display=False).message.startswith("Swapped")
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._core import Incorrect, Question

__all__ = ["Q2_CONFUSION", "Q2_CLASSES", "q1", "q2"]

#: Question 2's confusion matrix: rows are the TRUE class, columns the PREDICTED class,
#: both in the order of :data:`Q2_CLASSES`.
Q2_CONFUSION = np.array([[52, 8], [3, 57]])
Q2_CLASSES = ("with_mask", "without_mask")


def _count_adds(model) -> int:
    import keras

    count = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Add):
            count += 1
        elif isinstance(layer, keras.Model):
            count += _count_adds(layer)
    return count


def _check_q1(model: Any) -> str:
    import keras

    from ..model import build_resnet

    if not isinstance(model, keras.Model):
        raise Incorrect(f"Pass the Keras model you built (a keras.Model), not a {type(model).__name__}. "
                        "If you wrote a block function, build a model with it first.")
    if tuple(model.input_shape[1:]) != (50, 50, 3):
        raise Incorrect(f"The model must still take 50x50x3 face crops; its input shape is {model.input_shape}.")
    if tuple(model.output_shape) != (None, 2):
        raise Incorrect(f"The model must still end in two class probabilities (None, 2); its output shape is "
                        f"{model.output_shape}. Keep Dense(2, name='logits') and the softmax at the end.")
    base = _count_adds(build_resnet())
    mine = _count_adds(model)
    if mine == base:
        raise Incorrect(f"Your model has {mine} residual blocks, as many as build_resnet(). A residual block ends in "
                        "an Add layer that sums the shortcut and the convolution branch: add one more.")
    if mine < base:
        raise Incorrect(f"Your model has {mine} residual blocks (Add layers), fewer than build_resnet()'s {base}.")
    if mine > base + 1:
        raise Incorrect(f"Your model has {mine - base} extra residual blocks; the exercise asks for exactly one.")
    return f"Right: {mine} residual blocks, one more than the default {base}, and the same input and output."


def _check_q2(answer: Any) -> None:
    try:
        precision, recall = (float(v) for v in answer)
    except (TypeError, ValueError):
        raise Incorrect("Give two numbers as a tuple: (precision, recall), each a fraction between 0 and 1.") from None
    m = Q2_CONFUSION.astype(float)
    p_true, r_true = m[0, 0] / m[:, 0].sum(), m[0, 0] / m[0, :].sum()
    close = lambda a, b: math.isclose(a, b, abs_tol=0.005)  # noqa: E731
    if close(precision, p_true) and close(recall, r_true):
        return
    if precision > 1.0 or recall > 1.0:
        raise Incorrect("Give fractions between 0 and 1, not percentages.")
    if close(precision, r_true) and close(recall, p_true):
        raise Incorrect("Swapped: precision divides by everything PREDICTED with_mask (a column), recall by "
                        "everything that TRULY is with_mask (a row). Rows are the true class here.")
    p_other, r_other = m[1, 1] / m[:, 1].sum(), m[1, 1] / m[1, :].sum()
    if close(precision, p_other) or close(recall, r_other):
        raise Incorrect("Those are the numbers for 'without_mask'; the question asks about 'with_mask' (row and "
                        "column 0).")
    acc = np.trace(m) / m.sum()
    if close(precision, acc) or close(recall, acc):
        raise Incorrect(f"{acc:.3f} is the accuracy (diagonal over everything); precision and recall look at one "
                        "class only.")
    if not close(precision, p_true):
        raise Incorrect(f"Precision is not {precision:.3f}. Of all faces the model CALLED with_mask (column 0), "
                        "which share really wore one?")
    raise Incorrect(f"Recall is not {recall:.3f}. Of all faces that REALLY wore a mask (row 0), which share did "
                    "the model find?")


q1 = Question(
    "q1",
    _check_q1,
    prompt="Build a model with exactly one more residual block than build_resnet(), same input and output.",
    hint="build_resnet's `blocks=` argument says how many residual blocks each stage has (default (1, 2, 2)). "
         "Each block ends in an Add layer: count them with "
         "sum(isinstance(l, keras.layers.Add) for l in model.layers).",
    solution="model = build_resnet(blocks=(1, 2, 3))   # one more block in the last stage\n"
             "nb03.q1.check(model)",
)

q2 = Question(
    "q2",
    _check_q2,
    prompt="For 'with_mask' in nb03.Q2_CONFUSION (rows: true class), give (precision, recall).",
    hint="Precision: correct with_mask predictions / all with_mask predictions (column 0). "
         "Recall: correct with_mask predictions / all faces truly with a mask (row 0).",
    solution="m = nb03.Q2_CONFUSION\n"
             "precision = m[0, 0] / m[:, 0].sum()   # 52 / 55 = 0.945\n"
             "recall = m[0, 0] / m[0, :].sum()      # 52 / 60 = 0.867\n"
             "nb03.q2.check((precision, recall))",
)
