"""The oracle, the white-box attacks, the defenses and their adaptive evaluation, on a real tiny Keras model
trained for a few seconds on a task it can learn (a red square in the middle means class 1)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from maskedu.attack import one_pixel_attack, sparse_attack
from maskedu.common import ParameterError
from maskedu.defend import (
    BitDepth,
    JpegDefense,
    MedianFilter,
    median3x3,
    adversarial_finetune,
    cluster_attack,
    epsilon_levels,
    evaluate_defenses,
    fgsm,
    gradient_pixel_attack,
    pgd,
    saliency,
    squeeze_flags,
)
from maskedu.oracle import AccessError, Classifier, Oracle, QueryBudgetError, label_only_attack

S = 16


def _faces(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(60, 200, (n, S, S, 3)).astype(np.uint8)
    y = rng.integers(0, 2, n)
    x[y == 1, 5:11, 5:11, 0] = 230
    x[y == 1, 5:11, 5:11, 1] = 30
    return x, y


@pytest.fixture(scope="module")
def tiny():
    return trained_tiny()


@functools.lru_cache(maxsize=1)
def trained_tiny():
    """The tiny model and 8 faces it gets right, trained once per test run (test_oracle uses it too)."""
    import keras

    from maskedu.model import build_resnet

    keras.utils.set_random_seed(0)
    x, y = _faces(256, 0)
    model = build_resnet((S, S, 3), widths=(8,), blocks=(1,), dropout=0.0, seed=0)
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    tx, ty = _faces(24, 1)
    right = Classifier(model).both(tx)[0].argmax(axis=1) == ty
    assert right.mean() >= 0.9, "the tiny model did not learn its task: the tests below would mean nothing"
    return model, tx[right][:8], ty[right][:8]


def _loss(model, x, y):
    return Classifier(model).gradient(x, y, loss="ce")[0]


# --------------------------------------------------------------------------- the oracle


def test_oracle_refuses_what_its_level_hides(tiny):
    model, x, y = tiny
    label = Oracle(model, "label")
    assert label.labels(x).tolist() == y.tolist()
    for ask in (lambda: label(x), lambda: label.logits(x), lambda: label.gradient(x, y)):
        with pytest.raises(AccessError, match="'label' access"):
            ask()
    probs = Oracle(model, "probabilities")
    assert probs(x).shape == (len(x), 2) and not hasattr(probs, "both")  # the Scorer then sees no logits
    with pytest.raises(AccessError, match="hides the logits"):
        probs.logits(x)
    with pytest.raises(AccessError, match="hides the gradients"):
        Oracle(model, "logits").gradient(x, y)
    p, z = Oracle(model, "logits").both(x)
    np.testing.assert_allclose(p, Classifier(model).both(x)[0], rtol=1e-5)
    assert Oracle(model, "gradients").gradient(x, y)[1].shape == x.shape
    with pytest.raises(ParameterError):
        Oracle(model, "weights")


def test_oracle_counts_images_and_refuses_the_query_past_its_budget(tiny):
    model, x, _ = tiny
    oracle = Oracle(model, "probabilities", budget=5)
    oracle(x[:3])
    assert (oracle.queries, oracle.calls, oracle.remaining) == (3, 1, 2)
    with pytest.raises(QueryBudgetError, match="budget of 5 queries \\(3 used, 2 left\\)"):
        oracle(x[:3])
    assert oracle.queries == 3, "a refused batch must not be counted (nothing was sent)"
    oracle.labels(x[:2])
    with pytest.raises(QueryBudgetError):
        oracle.labels(x[:1])


def test_the_existing_attacks_run_through_the_oracle_and_report_its_count(tiny):
    model, x, y = tiny
    oracle = Oracle(model, "probabilities")
    res = one_pixel_attack(oracle, x[0], int(y[0]), popsize=20, maxiter=2, seed=0)
    assert res.queries == oracle.queries > 0
    oracle2 = Oracle(model, "logits", budget=400)
    res2 = sparse_attack(oracle2, x[1], int(y[1]), pixels=3, budget=300, batch=20, scan=False, seed=0)
    assert res2.queries == oracle2.queries <= 300
    with pytest.raises(AccessError):
        one_pixel_attack(Oracle(model, "label"), x[0], int(y[0]), popsize=20, maxiter=1)


def test_label_only_attack_sees_labels_only_and_succeeds_with_enough_pixels(tiny):
    model, x, y = tiny
    oracle = Oracle(model, "label", budget=3000)
    res = label_only_attack(oracle, x[0], int(y[0]), pixels=S * S, budget=3000, seed=0)
    assert res.success and res.queries == oracle.queries
    assert Classifier(model).both(res.adversarial[None])[0].argmax() != y[0]
    assert len(res.pixels) == int((res.adversarial != x[0]).any(axis=2).sum())
    few = label_only_attack(Oracle(model, "label"), x[0], int(y[0]), pixels=1, budget=400, seed=0)
    assert not few.success and np.array_equal(few.adversarial, x[0])


# --------------------------------------------------------------------------- white-box attacks


def test_epsilon_is_whole_pixel_levels():
    assert epsilon_levels(4 / 255) == 4
    with pytest.raises(ParameterError, match="whole number of pixel levels"):
        epsilon_levels(0.01)


@pytest.mark.parametrize("eps", [2, 8])
def test_fgsm_and_pgd_raise_the_loss_and_respect_epsilon_exactly(tiny, eps):
    model, x, y = tiny
    f = fgsm(model, x, y, epsilon=eps / 255)
    p = pgd(model, x, y, epsilon=eps / 255, steps=5, loss="ce")
    for res in (f, p):
        assert res.adversarial.dtype == np.uint8
        diff = np.abs(res.adversarial.astype(int) - x.astype(int))
        assert diff.max() <= eps
    assert (_loss(model, f.adversarial, y) > _loss(model, x, y)).all()
    assert (_loss(model, p.adversarial, y) > _loss(model, x, y)).all()
    # FGSM moves every channel by exactly eps (here no pixel is within eps of 0 or 255)
    inside = (x >= eps) & (x <= 255 - eps)
    moved = np.abs(f.adversarial.astype(int) - x.astype(int))[inside]
    assert set(np.unique(moved).tolist()) <= {0, eps} and (moved == eps).mean() > 0.9


def test_gradient_pixel_attack_changes_at_most_its_pixels(tiny):
    model, x, y = tiny
    res = gradient_pixel_attack(model, x, y, pixels=6)
    assert (res.changed_pixels <= 6).all()
    changed = res.adversarial[(res.adversarial != x).any(axis=3)]
    assert np.isin(changed, [0, 255]).all()
    assert res.queries <= len(x) * 8


def test_saliency_is_a_map_of_the_face(tiny):
    model, x, y = tiny
    s = saliency(model, x[0], int(y[0]))
    assert s.shape == (S, S) and s.max() == 1.0 and s.min() >= 0


# --------------------------------------------------------------------------- defenses


@pytest.mark.parametrize("make", [MedianFilter, JpegDefense, BitDepth])
def test_each_defense_keeps_the_prediction_interface(tiny, make):
    model, x, y = tiny
    d = make(model)
    probs, logits = d.both(x)
    assert probs.shape == logits.shape == (len(x), 2)
    np.testing.assert_allclose(d(x).sum(axis=1), 1.0, rtol=1e-5)
    t = d.transform(x)
    assert t.dtype == np.uint8 and t.shape == x.shape
    np.testing.assert_allclose(probs, Classifier(model).both(t)[0], rtol=1e-5)
    # the attacks take it where they take a model
    assert one_pixel_attack(d, x[0], int(y[0]), popsize=10, maxiter=1, seed=0).queries > 0
    assert pgd(d, x, y, epsilon=2 / 255, steps=1).adversarial.shape == x.shape


def test_median_filter_outvotes_one_pixel_but_not_a_square():
    img = np.full((1, 9, 9, 3), 100, np.uint8)
    one = img.copy()
    one[0, 4, 4] = 255
    square = img.copy()
    square[0, 3:6, 3:6] = 255
    med = MedianFilter(lambda b: np.tile([[0.5, 0.5]], (len(b), 1)))
    assert np.array_equal(med.transform(one), img)
    assert med.transform(square)[0, 4, 4].tolist() == [255, 255, 255]
    assert np.array_equal(BitDepth(med.model).transform(np.array([[[[0, 255, 255]]]], np.uint8)), [[[[0, 255, 255]]]])


@pytest.mark.parametrize("shape", [(3, 50, 50, 3), (2, 7, 5, 3), (1, 1, 4, 3), (2, 3, 3, 1), (1, 2, 2, 3)])
def test_median3x3_matches_scipy(shape):
    from scipy.ndimage import median_filter

    x = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    x[0, :, :1] = 255  # runs of equal values, at an edge too
    got = median3x3(x)
    assert got.dtype == np.uint8 and got.flags.c_contiguous
    assert np.array_equal(got, median_filter(x, size=(1, 3, 3, 1), mode="reflect"))
    if shape[-1] != 3:  # the defense takes colour faces only
        return
    model = lambda b: np.tile([[0.5, 0.5]], (len(b), 1))  # noqa: E731
    assert np.array_equal(MedianFilter(model).transform(x), got)  # the defense uses it; other sizes use scipy
    assert np.array_equal(MedianFilter(model, size=5).transform(x), median_filter(x, size=(1, 5, 5, 1), mode="reflect"))


def test_squeeze_detector_reports_flags(tiny):
    model, x, y = tiny
    flags = squeeze_flags(model, x)
    assert flags.shape == (len(x),) and flags.dtype == bool


@pytest.mark.parametrize("make", [MedianFilter, JpegDefense, BitDepth])
def test_unbounded_adaptive_pgd_flips_every_face(tiny, make):
    model, x, y = tiny
    d = make(model)
    right = d.both(x)[0].argmax(axis=1) == y
    res = pgd(d, x[right], y[right], epsilon=1.0, steps=20, step_size=32)
    assert res.success.all(), f"{make.__name__}: {res.success.sum()} of {len(res.success)}"


@pytest.mark.slow
def test_adaptive_is_at_least_as_strong_as_transfer_and_clean_accuracy_is_measured(tiny):
    model, x, y = tiny
    defenses = {"median": MedianFilter(model), "squeeze": BitDepth(model, bits=2)}
    rep = evaluate_defenses(model, x[:4], y[:4], defenses, attacks=("pgd",), epsilon=24 / 255, pgd_steps=10)
    assert set(rep.clean) == {"none", "median", "squeeze"} and all(n == 4 for _, n in rep.clean.values())
    doc = rep.to_json()
    assert set(doc["adaptive_success"]) == {"none", "median", "squeeze"}
    for d in defenses:
        s_adapt, n = rep.rate(d, "pgd", True)
        s_transfer, _ = rep.rate(d, "pgd", False)
        assert s_adapt >= s_transfer
    assert sum(rep.rate(d, "pgd", True)[0] for d in defenses) > 0, "the adaptive attack flipped nothing at all"


@pytest.mark.slow
def test_cluster_attack_places_squares(tiny):
    model, x, y = tiny
    res = cluster_attack(Oracle(MedianFilter(model)), x[0], int(y[0]), pixels=8, block=2, budget=300, batch=20, seed=0)
    assert len(res.pixels) in (0, 8)
    assert int((res.adversarial != x[0]).any(axis=2).sum()) <= 8


@pytest.mark.slow
def test_adversarial_finetune_leaves_the_original_alone(tiny):
    model, x, y = tiny
    before = [w.copy() for w in model.get_weights()]
    res = adversarial_finetune(model, x, y, epsilon=4 / 255, epochs=1, batch_size=4)
    assert res.model is not model and res.seconds > 0 and len(res.losses) == 1
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert any(not np.array_equal(a, b) for a, b in zip(before, res.model.get_weights()))


def test_tflite_engine_queries_lite_and_reports_keras_verdicts(tiny):
    from maskedu.defend import _on_engine
    from maskedu.model import TFLitePredictFn

    model, x, y = tiny
    med = MedianFilter(model)
    lite = _on_engine(med, "tflite")
    assert isinstance(lite.model._predict, TFLitePredictFn) and not isinstance(med.model._predict, TFLitePredictFn)
    assert lite.size == med.size and lite.model.model is model  # the same defense, the same Keras weights
    kw = dict(attacks=("sparse_20", "label_only"), sparse_budget=400, label_budget=400)
    reps = {e: evaluate_defenses(model, x[:3], y[:3], {"median": med}, engine=e, **kw) for e in ("keras", "tflite")}
    keras_run, lite_run = reps["keras"], reps["tflite"]
    assert lite_run.to_json()["engine"] == "tflite" and lite_run.disagreements == 0
    # answers equal to about 1e-6: the same searches, the same verdicts and queries
    strip = [{k: r[k] for k in ("defense", "attack", "adaptive", "face", "success", "queries")} for r in keras_run.records]
    assert strip == [{k: r[k] for k in strip[0]} for r in lite_run.records]
    assert all(r["attack_success"] == r["success"] for r in lite_run.records if "attack_success" in r)
    with pytest.raises(ParameterError, match="engine"):
        evaluate_defenses(model, x[:1], y[:1], {}, engine="onnx", attacks=("pgd",))
