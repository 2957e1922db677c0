"""Notebook 03's exercises accept the right answers and give specific feedback on typical wrong ones."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")

from maskedu.exercises import nb03  # noqa: E402
from maskedu.model import build_resnet, residual_block  # noqa: E402


def test_q1_accepts_one_more_block_by_argument_or_by_hand():
    assert nb03.q1.check(build_resnet(blocks=(1, 2, 3)), display=False).correct
    assert nb03.q1.check(build_resnet(blocks=(2, 2, 2), widths=(16, 32, 64)), display=False).correct
    # by hand: the default network with an extra block before the pooling
    base = build_resnet()
    x = residual_block(base.get_layer("stage3_block2_out").output, 128, name="extra")
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(2, name="logits")(x)
    out = keras.layers.Activation("softmax", name="probs")(x)
    assert nb03.q1.check(keras.Model(base.inputs, out), display=False).correct


@pytest.mark.parametrize("answer, start", [
    (lambda: build_resnet(), "Your model has 5 residual blocks, as many"),
    (lambda: build_resnet(blocks=(3, 3, 3)), "Your model has 4 extra"),
    (lambda: build_resnet(blocks=(1, 1, 1)), "Your model has 3 residual blocks (Add layers), fewer"),
    (lambda: build_resnet(n_classes=3, blocks=(1, 2, 3)), "The model must still end in two"),
    (lambda: build_resnet(input_shape=(64, 64, 3), blocks=(1, 2, 3)), "The model must still take"),
    (lambda: "a string", "Pass the Keras model"),
])
def test_q1_rejects_typical_mistakes(answer, start):
    model = answer()
    result = nb03.q1.check(model, display=False)
    assert not result.correct
    assert result.message.startswith(start), result.message


def test_q2_right_answer_and_specific_feedback():
    m = nb03.Q2_CONFUSION
    p, r = m[0, 0] / m[:, 0].sum(), m[0, 0] / m[0, :].sum()
    assert nb03.q2.check((p, r), display=False).correct
    assert nb03.q2.check([round(p, 3), round(r, 3)], display=False).correct
    cases = {
        (r, p): "Swapped",
        (100 * p, 100 * r): "Give fractions",
        (m[1, 1] / m[:, 1].sum(), m[1, 1] / m[1, :].sum()): "Those are the numbers for 'without_mask'",
        (m.trace() / m.sum(), r): "0.908 is the accuracy",
        (0.5, r): "Precision is not",
        (p, 0.5): "Recall is not",
        ("a", "b"): "Give two numbers",
    }
    for answer, start in cases.items():
        result = nb03.q2.check(answer, display=False)
        assert not result.correct and result.message.startswith(start), (answer, result.message)
    assert not nb03.q2.check(0.9, display=False).correct
