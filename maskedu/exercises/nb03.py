"""Exercises for notebook 03 (training the ResNet).

* ``q1``: add a residual block. Build a model with exactly one more residual block than
  ``build_resnet()`` (by its ``blocks=`` argument, or by hand with :func:`maskedu.model.residual_block` or
  your own layers) that still takes 50x50x3 pixels and still ends in two class probabilities. The check
  runs the model on real pixels and follows every ``Add`` layer back through the graph: a residual block
  adds the block's input (or its 1x1 projection) to the output of its own convolutions.
* ``q2``: read precision and recall off a confusion matrix: for the class ``"with_mask"`` in
  :data:`Q2_CONFUSION`, give ``(precision, recall)``.

>>> q2.check((52 / 55, 52 / 60), display=False).correct
True
>>> q2.check((52 / 60, 52 / 55), display=False).message.startswith("Your (0.867, 0.945) are swapped")
True
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ._core import Incorrect, Question

__all__ = ["Q2_CONFUSION", "Q2_CLASSES", "q1", "q2"]

#: Question 2's confusion matrix: rows are the TRUE class, columns the PREDICTED class,
#: both in the order of :data:`Q2_CLASSES`.
Q2_CONFUSION = np.array([[52, 8], [3, 57]])
Q2_CLASSES = ("with_mask", "without_mask")


def _conv_types():
    import keras

    return (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D)


def _upstream(tensor) -> list:
    """Every layer that ``tensor`` depends on (its own producer included), in the graph it belongs to."""
    seen: dict[int, Any] = {}
    todo = [tensor]
    while todo:
        t = todo.pop()
        history = getattr(t, "_keras_history", None)
        if history is None:
            continue
        op = history.operation
        if id(op) in seen:
            continue
        seen[id(op)] = op
        nodes = getattr(op, "_inbound_nodes", [])
        if history.node_index < len(nodes):
            todo.extend(nodes[history.node_index].input_tensors)
    return list(seen.values())


def _adds(model) -> list[tuple[Any, list]]:
    """(Add layer, its input tensors) for every Add call, in nested models too."""
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Add):
            for node in layer._inbound_nodes:
                found.append((layer, list(node.input_tensors)))
        elif isinstance(layer, keras.Model):
            found.extend(_adds(layer))
    return found


def _residual_problem(layer, inputs) -> str | None:
    """Why this Add is not a residual connection, or None when it is one."""
    convs = _conv_types()
    if len(inputs) != 2:
        return f"the Add layer '{layer.name}' sums {len(inputs)} tensors; a residual block sums two, the shortcut and the branch."
    a, b = inputs
    if a is b:
        return (f"the Add layer '{layer.name}' adds a tensor to itself (it doubles it): a residual block adds the "
                "block's input to the output of its convolutions.")
    up_a, up_b = _upstream(a), _upstream(b)
    ids_a, ids_b = {id(x) for x in up_a}, {id(x) for x in up_b}
    conv_a = [x for x in up_a if isinstance(x, convs) and id(x) not in ids_b]
    conv_b = [x for x in up_b if isinstance(x, convs) and id(x) not in ids_a]
    branch, shortcut = (conv_a, conv_b) if len(conv_a) >= len(conv_b) else (conv_b, conv_a)
    if not branch:
        return (f"the Add layer '{layer.name}' sums two tensors with no convolution between them and the block's "
                "input: a residual block adds the input to the output of its own convolutions.")
    if len(shortcut) > 1 or len(shortcut) >= len(branch):
        return (f"both inputs of the Add layer '{layer.name}' go through their own convolutions "
                f"({len(conv_a)} and {len(conv_b)}): a residual block adds the block's input itself (or its 1x1 "
                "projection) to the output of the block's convolutions.")
    return None


def _check_q1(model: Any) -> str:
    import keras

    from ..model import build_resnet

    if not isinstance(model, keras.Model):
        raise Incorrect(f"You passed a {type(model).__name__}. Pass the Keras model you built (a keras.Model). "
                        "If you wrote a block function, build a model with it first.")
    if tuple(model.input_shape[1:]) != (50, 50, 3):
        raise Incorrect(f"Your model's input shape is {model.input_shape}: it must still take 50x50x3 face crops.")
    if tuple(model.output_shape) != (None, 2):
        raise Incorrect(f"Your model's output shape is {model.output_shape}: it must still end in two class "
                        "probabilities, (None, 2). Keep Dense(2, name='logits') and the softmax at the end.")
    pixels = np.random.default_rng(3).integers(0, 256, (2, 50, 50, 3)).astype("float32")
    try:
        with warnings.catch_warnings():  # Keras warns when a one-input model gets a bare array instead of a list
            warnings.simplefilter("ignore")
            out = np.asarray(model(pixels, training=False)).astype(float)
    except Exception as exc:  # the student's model
        raise Incorrect(f"Your model failed on a batch of two 50x50x3 faces: {type(exc).__name__}: {exc}") from None
    if out.shape != (2, 2):
        raise Incorrect(f"On a batch of two faces your model returned shape {out.shape}, not (2, 2).")
    if not np.all(np.isfinite(out)) or np.any(out < 0) or not np.allclose(out.sum(axis=1), 1.0, atol=1e-3):
        raise Incorrect(f"On two faces your model returned {np.round(out, 4).tolist()}: not two probabilities that "
                        "sum to 1 per face. End with Dense(2) and a softmax.")
    base = build_resnet()
    want = sum(_residual_problem(l, i) is None for l, i in _adds(base))
    problems = [p for p in (_residual_problem(l, i) for l, i in _adds(model)) if p]
    if problems:
        raise Incorrect(f"In your model {problems[0]}")
    mine = len(_adds(model))
    if mine == want:
        raise Incorrect(f"Your model has {mine} residual blocks, as many as build_resnet(). A residual block ends in "
                        "an Add layer that sums the shortcut and the convolution branch: add one more.")
    if mine < want:
        raise Incorrect(f"Your model has {mine} residual blocks (Add layers), fewer than build_resnet()'s {want}.")
    if mine > want + 1:
        raise Incorrect(f"Your model has {mine} residual blocks, {mine - want} more than build_resnet()'s {want}; "
                        "the exercise asks for exactly one more.")
    return (f"Right: {mine} residual blocks, one more than the default {want}, each adding its input to the output "
            f"of its own convolutions; {model.count_params():,} parameters (build_resnet(): {base.count_params():,}), and the "
            "same input and output (checked on two faces).")


def _check_q2(answer: Any) -> None:
    try:
        precision, recall = (float(v) for v in answer)
    except (TypeError, ValueError):
        raise Incorrect(f"You gave {answer!r}. Give two numbers as a tuple: (precision, recall), each a fraction "
                        "between 0 and 1.") from None
    m = Q2_CONFUSION.astype(float)
    p_true, r_true = m[0, 0] / m[:, 0].sum(), m[0, 0] / m[0, :].sum()
    close = lambda a, b: math.isclose(a, b, abs_tol=0.005)  # noqa: E731
    if close(precision, p_true) and close(recall, r_true):
        return
    yours = f"({precision:.3g}, {recall:.3g})"
    if precision > 1.0 or recall > 1.0:
        raise Incorrect(f"Your {yours} is not two fractions: give fractions between 0 and 1, not percentages.")
    if close(precision, r_true) and close(recall, p_true):
        raise Incorrect(f"Your {yours} are swapped: precision divides by everything PREDICTED with_mask (a column), "
                        "recall by everything that TRULY is with_mask (a row). Rows are the true class here.")
    p_other, r_other = m[1, 1] / m[:, 1].sum(), m[1, 1] / m[1, :].sum()
    if close(precision, p_other) or close(recall, r_other):
        raise Incorrect(f"Your {yours} are numbers for 'without_mask'; the question asks about 'with_mask' (row "
                        "and column 0).")
    acc = np.trace(m) / m.sum()
    if close(precision, acc) or close(recall, acc):
        raise Incorrect(f"In your {yours}, {acc:.3f} is the accuracy (diagonal over everything); precision and "
                        "recall look at one class only.")
    if not close(precision, p_true):
        raise Incorrect(f"Your precision, {precision:.3f}, is not it. Of all faces the model CALLED with_mask (column 0), "
                        "which share really wore one?")
    raise Incorrect(f"Your recall, {recall:.3f}, is not it. Of all faces that REALLY wore a mask (row 0), which share did "
                    "the model find?")


q1 = Question(
    "q1",
    _check_q1,
    prompt="Build a model with exactly one more residual block than build_resnet(), same input and output.",
    hint="build_resnet's `blocks=` argument says how many residual blocks each stage has (default (1, 2, 2)). "
         "Each block ends in an Add layer: count them with "
         "sum(isinstance(l, keras.layers.Add) for l in model.layers).",
    solution="from maskedu.model import build_resnet\n"
             "my_model = build_resnet(blocks=(1, 2, 3))   # one more block in the last stage\n"
             "# by hand: x = residual_block(x, 128, name='extra') before the pooling does the same\n"
             "nb03.q1.check(my_model)",
    answer="my_model",
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
    answer="(precision, recall)",
)
