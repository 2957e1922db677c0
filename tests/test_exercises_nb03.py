"""Notebook 03's exercises accept the right answers and give specific feedback on typical wrong ones.

q1 is checked by behaviour: the model runs on two real 50x50x3 inputs, and every Add layer is followed back
through the graph, so an Add that is not a residual connection (a tensor added to itself, two convolution
branches side by side) is refused however many Add layers there are."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")

from maskedu.exercises import nb03  # noqa: E402
from maskedu.model import build_resnet, residual_block  # noqa: E402


def _head(base, x, softmax=True):
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(2, name="logits")(x)
    if softmax:
        x = keras.layers.Activation("softmax", name="probs")(x)
    return keras.Model(base.inputs, x)


@pytest.mark.slow
def test_q1_accepts_one_more_block_by_argument_or_by_hand():
    assert nb03.q1.check(build_resnet(blocks=(1, 2, 3)), display=False).correct
    assert nb03.q1.check(build_resnet(blocks=(2, 2, 2), widths=(16, 32, 64)), display=False).correct
    # by hand: the default network with an extra block before the pooling
    base = build_resnet()
    assert nb03.q1.check(_head(base, residual_block(base.get_layer("stage3_block2_out").output, 128, name="extra")),
                         display=False).correct
    # by hand with plain layers: two convolutions and an identity shortcut
    base = build_resnet()
    x = base.get_layer("stage3_block2_out").output
    y = keras.layers.Conv2D(128, 3, padding="same", activation="relu")(x)
    y = keras.layers.Conv2D(128, 3, padding="same")(y)
    assert nb03.q1.check(_head(base, keras.layers.Add()([x, y])), display=False).correct


@pytest.mark.slow
def test_q1_refuses_bogus_blocks():
    base = build_resnet()
    x = base.get_layer("stage3_block2_out").output
    result = nb03.q1.check(_head(base, keras.layers.Add(name="doubled")([x, x])), display=False)
    assert not result and "Add layer 'doubled' adds a tensor to itself" in result.message

    base = build_resnet()
    x = base.get_layer("stage3_block2_out").output
    side = keras.layers.Add(name="side")([keras.layers.Conv2D(128, 3, padding="same")(x),
                                          keras.layers.Conv2D(128, 3, padding="same")(x)])
    result = nb03.q1.check(_head(base, side), display=False)
    assert not result and "both inputs of the Add layer 'side' go through their own convolutions (1 and 1)" in result.message

    base = build_resnet()
    x = base.get_layer("stage3_block2_out").output
    plain = keras.layers.Add(name="noconv")([x, keras.layers.Activation("relu")(x)])
    result = nb03.q1.check(_head(base, plain), display=False)
    assert not result and "'noconv' sums two tensors with no convolution" in result.message


def test_q1_runs_the_model_on_real_pixels():
    base = build_resnet()
    x = residual_block(base.get_layer("stage3_block2_out").output, 128, name="extra")
    result = nb03.q1.check(_head(base, x, softmax=False), display=False)
    assert not result and "On two faces your model returned [[" in result.message and "sum to 1" in result.message


@pytest.mark.parametrize("answer, start", [
    (lambda: build_resnet(), "Your model has 5 residual blocks, as many"),
    (lambda: build_resnet(blocks=(3, 3, 3)), "Your model has 9 residual blocks, 4 more than build_resnet()'s 5"),
    (lambda: build_resnet(blocks=(1, 1, 1)), "Your model has 3 residual blocks (Add layers), fewer"),
    (lambda: build_resnet(n_classes=3, blocks=(1, 2, 3)), "Your model's output shape is (None, 3)"),
    (lambda: build_resnet(input_shape=(64, 64, 3), blocks=(1, 2, 3)), "Your model's input shape is (None, 64, 64, 3)"),
    (lambda: "a string", "You passed a str"),
])
@pytest.mark.slow
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
        (r, p): "Your (0.867, 0.945) are swapped",
        (100 * p, 100 * r): "Your (94.5, 86.7) is not two fractions",
        (m[1, 1] / m[:, 1].sum(), m[1, 1] / m[1, :].sum()): "Your (0.877, 0.95) are numbers for 'without_mask'",
        (m.trace() / m.sum(), r): "In your (0.908, 0.867), 0.908 is the accuracy",
        (0.5, r): "Your precision, 0.500, is not it",
        (p, 0.5): "Your recall, 0.500, is not it",
        ("a", "b"): "You gave ('a', 'b')",
    }
    for answer, start in cases.items():
        result = nb03.q2.check(answer, display=False)
        assert not result.correct and result.message.startswith(start), (answer, result.message)
    assert not nb03.q2.check(0.9, display=False).correct
