"""Every attack declares the access it needs and runs through an Oracle: refused below its level, wrapped in one
when handed a plain model, its queries counted the same way (one image sent = one query), on the real tiny Keras
model of test_defend (trained for a few seconds on a task it can learn)."""

from __future__ import annotations

import numpy as np
import pytest

from maskedu.attack import Scorer, one_pixel_attack, sparse_attack
from maskedu.common import ParameterError
from maskedu.defend import cluster_attack, fgsm, gradient_pixel_attack, pgd, threat_cards
from maskedu.oracle import (
    ACCESS_LEVELS,
    ATTACK_ACCESS,
    AccessError,
    Classifier,
    Oracle,
    QueryBudgetError,
    attack_access,
    label_only_attack,
    needs_access,
    oracle_for,
)

from test_attack import Counting, fragile_logits, grey
from test_defend import trained_tiny

@pytest.fixture(scope="module")
def tiny():
    """A real tiny model and faces it gets right (trained once per test run, shared with test_defend)."""
    return trained_tiny()


BLACK_BOX = {
    "label_only_attack": lambda o, x, y: label_only_attack(o, x, y, pixels=20, budget=300, batch=20, seed=0),
    "one_pixel_attack": lambda o, x, y: one_pixel_attack(o, x, y, popsize=10, maxiter=1, seed=0),
    "sparse_attack": lambda o, x, y: sparse_attack(o, x, y, pixels=3, budget=200, batch=20, scan=False, seed=0),
    "cluster_attack": lambda o, x, y: cluster_attack(o, x, y, pixels=8, block=2, budget=200, batch=20, scan=False, seed=0),
}
WHITE_BOX = {
    "fgsm": lambda o, x, y: fgsm(o, x, y, epsilon=2 / 255),
    "pgd": lambda o, x, y: pgd(o, x, y, epsilon=2 / 255, steps=2),
    "gradient_pixel_attack": lambda o, x, y: gradient_pixel_attack(o, x, y, pixels=2),
}
EXPECTED = {"label_only_attack": "label", "one_pixel_attack": "probabilities", "sparse_attack": "probabilities",
            "cluster_attack": "probabilities", "photo_attack": "probabilities", "fgsm": "gradients", "pgd": "gradients",
            "gradient_pixel_attack": "gradients"}


def _attack(name):
    """The attack function of that name, from the module it lives in."""
    import maskedu.attack
    import maskedu.defend
    import maskedu.oracle

    for module in (maskedu.attack, maskedu.defend, maskedu.oracle):
        if hasattr(module, name):
            return getattr(module, name)
    raise AssertionError(f"no attack {name} in maskedu")


def test_every_attack_declares_its_access_level():
    table = attack_access()
    assert table == EXPECTED, "an attack of maskedu is missing from ATTACK_ACCESS or declares another level"
    assert list(table.values()) == sorted(table.values(), key=ACCESS_LEVELS.index)  # least revealing first
    fns = {name: _attack(name) for name in EXPECTED}
    for name, fn in fns.items():
        assert fn.ACCESS == EXPECTED[name] == ATTACK_ACCESS[name]
        assert ACCESS_LEVELS.index(fn.USES) >= ACCESS_LEVELS.index(fn.ACCESS)
    cards = str(threat_cards())  # notebook 07's cards list the attacks as they declare themselves
    for line, level in zip(cards.splitlines(), ACCESS_LEVELS):
        for name, lv in EXPECTED.items():
            assert (f"{name}" in line.split("attacks:")[1].split(";")[0]) == (lv == level or (
                level == "logits" and fns[name].USES == "logits")), (name, line)


def test_needs_access_checks_its_arguments():
    with pytest.raises(ParameterError, match="level='weights' is not one of"):
        needs_access("weights")
    with pytest.raises(ParameterError, match="below the level"):
        needs_access("logits", uses="label")
    with pytest.raises(TypeError, match="declares no access level"):
        oracle_for(lambda p: p, fragile_logits)


@pytest.mark.parametrize("name", sorted({**BLACK_BOX, **WHITE_BOX}))
def test_an_oracle_below_the_attacks_level_is_refused_at_once(tiny, name):
    model, x, y = tiny
    attack = {**BLACK_BOX, **WHITE_BOX}[name]
    need = ACCESS_LEVELS.index(EXPECTED[name])
    for level in ACCESS_LEVELS[:need]:
        oracle = Oracle(model, level)
        face = x[:2] if name in WHITE_BOX else x[0]
        label = y[:2] if name in WHITE_BOX else int(y[0])
        with pytest.raises(AccessError, match=f"{name} needs '{EXPECTED[name]}' access, but this oracle gives '{level}'"):
            attack(oracle, face, label)
        assert oracle.queries == 0, "refused before any image was sent"
    ok = Oracle(model, EXPECTED[name])  # its own level is enough
    attack(ok, x[:2] if name in WHITE_BOX else x[0], y[:2] if name in WHITE_BOX else int(y[0]))
    assert ok.queries > 0


def test_the_refusal_names_the_attacks_that_fit_the_oracle(tiny):
    model, x, y = tiny
    with pytest.raises(AccessError, match=r"use an attack for 'label' access \(label_only_attack\)"):
        sparse_attack(Oracle(model, "label"), x[0], int(y[0]), pixels=2, budget=50)


@pytest.mark.parametrize("name", sorted(BLACK_BOX))
def test_a_black_box_attack_reports_its_oracles_count(tiny, name):
    model, x, y = tiny
    oracle = Oracle(model, "logits", budget=5_000)
    res = BLACK_BOX[name](oracle, x[1], int(y[1]))
    assert res.queries == oracle.queries > 0


class _CountingModel:
    """The model's probabilities and logits (a plain prediction function), counting every image it is sent."""

    def __init__(self, model):
        self.classifier, self.sent = Classifier(model), 0

    def both(self, batch):
        self.sent += len(batch)
        return self.classifier.both(batch)

    def __call__(self, batch):
        return self.both(batch)[0]


@pytest.mark.parametrize("name", sorted(BLACK_BOX))
def test_handed_a_plain_model_an_attack_makes_its_own_oracle(tiny, name):
    """The same pixels and queries as when given Oracle(model, attack.USES) explicitly; only the images sent count."""
    model, x, y = tiny
    fn = {"label_only_attack": label_only_attack, "one_pixel_attack": one_pixel_attack,
          "sparse_attack": sparse_attack, "cluster_attack": cluster_attack}[name]
    counted = _CountingModel(model)
    plain = BLACK_BOX[name](counted, x[2], int(y[2]))
    explicit = BLACK_BOX[name](Oracle(model, fn.USES), x[2], int(y[2]))
    assert plain.queries == explicit.queries == counted.sent > 0
    np.testing.assert_array_equal(plain.pixels, explicit.pixels)
    np.testing.assert_array_equal(plain.adversarial, explicit.adversarial)


def test_a_scorer_handed_in_is_unwrapped_and_answers_from_a_cache_are_free():
    counted = Counting(fragile_logits)
    res = one_pixel_attack(Scorer(counted), grey(), 0, popsize=60, maxiter=6, colors="extreme", early_stop=False, seed=0)
    assert res.queries == len(counted.sent)
    assert res.evaluations > res.queries, "DE repeats whole-pixel candidates: those come from the cache, free"


@pytest.mark.parametrize("name", sorted(WHITE_BOX))
def test_white_box_attacks_count_gradient_queries(tiny, name):
    """One query per image whose gradient is taken, and one per image whose label is read."""
    model, x, y = tiny
    faces, labels = x[:3], y[:3]
    oracle = Oracle(model, "gradients")
    res = WHITE_BOX[name](oracle, faces, labels)
    assert res.queries == oracle.queries
    assert res.queries >= 2 * len(faces)  # a gradient of each face, and its label after the attack
    if name == "fgsm":
        assert res.queries == 2 * len(faces)  # the label before comes with the gradient's logits
    # a budget that covers the label reads but not the gradients is refused: the gradients are counted
    with pytest.raises(QueryBudgetError):
        WHITE_BOX[name](Oracle(model, "gradients", budget=res.queries - 1), faces, labels)
    again = Oracle(model, "gradients", budget=res.queries)
    WHITE_BOX[name](again, faces, labels)
    assert again.queries == res.queries  # the same count, within exactly that budget


def test_a_prediction_function_keeps_its_engine():
    import keras

    from maskedu.model import build_resnet, make_predict_fn

    model = build_resnet((8, 8, 3), widths=(4,), blocks=(1,))
    fn = make_predict_fn(model)
    oracle = Oracle(fn, "gradients")
    assert oracle.model._predict is fn and oracle.model.model is model
    grad = oracle.gradient(np.zeros((1, 8, 8, 3), np.uint8), [0])[1]
    assert grad.shape == (1, 8, 8, 3)
    inp = keras.Input((8, 8, 3))
    bare = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inp)))  # no "logits"
    with pytest.raises(AccessError, match="no gradients"):
        Oracle(bare, "gradients").gradient(np.zeros((1, 8, 8, 3), np.uint8), [0])
    assert Oracle(bare, "probabilities")(np.zeros((2, 8, 8, 3), np.uint8)).shape == (2, 2)
