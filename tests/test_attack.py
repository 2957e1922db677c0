"""The one-pixel attack: exact perturbation, real scipy DE, a real tiny Keras model, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from maskedu.attack import (
    PAPER,
    PRESETS,
    QUICK,
    AttackResult,
    Scorer,
    attack_many,
    decode_candidates,
    one_pixel_attack,
    perturb,
)

H = W = 8
HOT_X, HOT_Y = 5, 2


def grey(h=H, w=W, value=100):
    return np.full((h, w, 3), value, np.uint8)


def fragile_logits(batch: np.ndarray) -> np.ndarray:
    """Two-class logits: class 0 unless the pixels around (x=5, y=2) turn red (R high, G low)."""
    b = batch.astype(np.float64)
    yy, xx = np.mgrid[0 : b.shape[1], 0 : b.shape[2]]
    weight = np.exp(-((xx - HOT_X) ** 2 + (yy - HOT_Y) ** 2) / 2.0)
    s = ((b[..., 0] - b[..., 1]) * weight).sum(axis=(1, 2)) / 255.0
    return np.stack([np.full_like(s, 0.8), s], axis=1)


def constant_probs(batch: np.ndarray) -> np.ndarray:
    return np.tile(np.array([[0.9, 0.1]], np.float32), (len(batch), 1))


class Counting:
    """A predict function that records every image it is sent."""

    def __init__(self, fn):
        self.fn = fn
        self.sent: list[bytes] = []

    def __call__(self, batch):
        self.sent.extend(img.tobytes() for img in batch)
        return self.fn(batch)


# --------------------------------------------------------------------------- perturbation


def test_perturb_one_pixel_changes_exactly_that_pixel():
    img = grey()
    out = perturb(img, [3, 6, 255, 0, 17])
    assert out.shape == img.shape and out.dtype == np.uint8
    assert out[6, 3].tolist() == [255, 0, 17]  # row y=6, column x=3
    changed = np.argwhere((out != img).any(axis=2))
    assert changed.tolist() == [[6, 3]]
    assert (img == 100).all(), "the input image must not be modified"


def test_perturb_k_pixels_population_matches_a_loop():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    k, s = 4, 30
    cand = np.concatenate(
        [rng.integers(0, W, (s, k, 1)), rng.integers(0, H, (s, k, 1)), rng.integers(0, 256, (s, k, 3))], axis=2
    )
    out = perturb(img, cand.reshape(s, 5 * k))
    assert out.shape == (s, H, W, 3)
    for i in range(s):
        expected = img.copy()
        for x, y, r, g, b in cand[i]:
            expected[y, x] = (r, g, b)
        assert np.array_equal(out[i], expected)
        changed = {tuple(p) for p in np.argwhere((out[i] != img).any(axis=2)).tolist()}
        assert changed <= {(y, x) for x, y, *_ in cand[i].tolist()}
    assert np.array_equal(perturb(img, cand), out), "(S, k, 5) and (S, 5k) are the same population"


def test_perturb_batch_of_images_and_clipping():
    imgs = np.stack([grey(value=v) for v in (0, 50)])
    out = perturb(imgs, [[-3, 100, 300, 12.4, 127.5], [2.5, 0, -9, 0, 0]])
    assert out[0, H - 1, 0].tolist() == [255, 12, 128]  # x clipped to 0, y to H-1, colours clipped/rounded
    assert out[1, 0, 3].tolist() == [0, 0, 0]  # 2.5 rounds half up to 3
    assert (out[0][np.arange(H) != H - 1] == 0).all()


def test_decode_extreme_colours():
    d = decode_candidates([[1, 1, 127.4, 127.5, 250]], H, W, colors="extreme")
    assert d.tolist() == [[[1, 1, 0, 255, 255]]]


@pytest.mark.parametrize(
    "image, cand, err, words",
    [
        (np.zeros((8, 8, 3), np.float32), [0, 0, 1, 1, 1], TypeError, "uint8"),
        (np.zeros((8, 8), np.uint8), [0, 0, 1, 1, 1], ValueError, "(height, width, 3)"),
        (np.zeros((8, 8, 3), np.uint8), [0, 0, 1, 1], ValueError, "multiple of 5"),
        (np.zeros((8, 8, 3), np.uint8), [0, np.nan, 1, 1, 1], ValueError, "NaN"),
    ],
)
def test_perturb_bad_input(image, cand, err, words):
    with pytest.raises(err, match=words.replace("(", r"\(").replace(")", r"\)")):
        perturb(image, cand)


# --------------------------------------------------------------------------- the attack on real Keras models


def _tiny_keras(kind: str):
    import keras
    from keras import layers

    inp = keras.Input((H, W, 3), dtype="uint8")
    x = layers.Rescaling(1 / 255.0)(inp)
    x = layers.Flatten()(x)
    logits = layers.Dense(2, name="logits")(x)
    out = layers.Activation("softmax", name="probs")(logits)
    model = keras.Model(inp, out)
    kernel = np.zeros((H * W * 3, 2), np.float32)
    bias = np.array([0.8, 0.0], np.float32)
    if kind == "fragile":
        yy, xx = np.mgrid[0:H, 0:W]
        weight = np.exp(-((xx - HOT_X) ** 2 + (yy - HOT_Y) ** 2) / 2.0)
        k = np.zeros((H, W, 3), np.float32)
        k[..., 0], k[..., 1] = weight, -weight
        kernel[:, 1] = k.reshape(-1)
    model.get_layer("logits").set_weights([kernel, bias])
    return model


@pytest.fixture(scope="module")
def fragile_model():
    return _tiny_keras("fragile")


@pytest.fixture(scope="module")
def constant_model():
    return _tiny_keras("constant")


def test_attack_succeeds_on_a_fragile_keras_model(fragile_model):
    img = grey()
    res = one_pixel_attack(fragile_model, img, 0, popsize=30, maxiter=30, seed=0)
    assert isinstance(res, AttackResult)
    assert res.success and res.stop_reason == "success"
    assert res.predicted_before == 0 and res.predicted_after == 1
    (x, y, r, g, b), = res.pixels.tolist()
    assert abs(x - HOT_X) <= 1 and abs(y - HOT_Y) <= 1 and r > g
    changed = np.argwhere((res.adversarial != img).any(axis=2)).tolist()
    assert changed == [[y, x]]
    again = np.asarray(fragile_model.predict(res.adversarial[None], verbose=0))[0]
    np.testing.assert_allclose(res.final_probs, again, atol=1e-5)
    assert res.final_confidence < 0.5 < res.prior_confidence
    assert res.queries <= res.evaluations + 1


def test_attack_fails_cleanly_on_a_constant_model(constant_model):
    res = one_pixel_attack(constant_model, grey(), 0, popsize=10, maxiter=6, seed=0)
    assert not res.success and res.stop_reason == "budget"
    assert res.generations == 6 and len(res.history) == 7
    assert res.final_confidence == pytest.approx(res.prior_confidence)
    assert res.confidence_drop == pytest.approx(0.0, abs=1e-6)
    assert res.adversarial.shape == (H, W, 3) and res.pixels.shape == (1, 5)


def test_history_has_one_entry_per_generation():
    res = one_pixel_attack(constant_probs, grey(), 0, pixels=2, popsize=12, maxiter=9, seed=3)
    assert [s.generation for s in res.history] == list(range(10))
    assert res.evaluations == 12 * 10
    assert all(s.population_min <= s.population_median <= s.population_max for s in res.history)
    curve = res.curve()
    assert curve["best_confidence"].shape == (10,)


def test_best_confidence_never_rises():
    res = one_pixel_attack(fragile_logits, grey(16, 16), 0, popsize=10, maxiter=12, seed=1, fitness="probability",
                           early_stop=False)
    best = [s.best_confidence for s in res.history]
    assert all(b2 <= b1 + 1e-12 for b1, b2 in zip(best, best[1:]))


@pytest.mark.parametrize("stop_at", [0, 3])
def test_on_generation_returning_true_stops(stop_at):
    seen = []

    def watch(state):
        seen.append(state.generation)
        return state.generation >= stop_at

    res = one_pixel_attack(constant_probs, grey(), 0, popsize=10, maxiter=50, seed=0, on_generation=watch)
    assert res.stop_reason == "stopped" and not res.success
    assert seen == list(range(stop_at + 1))
    assert res.generations == stop_at and len(res.history) == stop_at + 1
    assert res.evaluations == 10 * (stop_at + 1)


def test_reproducible_for_a_seed():
    kw = dict(popsize=15, maxiter=10, seed=42, early_stop=False)
    a = one_pixel_attack(fragile_logits, grey(), 0, **kw)
    b = one_pixel_attack(fragile_logits, grey(), 0, **kw)
    assert np.array_equal(a.pixels, b.pixels) and a.queries == b.queries
    assert [s.best_fitness for s in a.history] == [s.best_fitness for s in b.history]
    c = one_pixel_attack(fragile_logits, grey(), 0, **{**kw, "seed": 7})
    assert [s.best_fitness for s in a.history] != [s.best_fitness for s in c.history]


def test_identical_candidates_are_not_requeried():
    counting = Counting(constant_probs)
    img = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3) + 1  # every pixel differs from 0 and 255
    res = one_pixel_attack(counting, img, 0, popsize=20, maxiter=10, seed=0, colors="extreme")
    # 4 positions x 8 colours = 32 different one-pixel images at most, yet DE scores 220 candidates
    assert res.evaluations == 220
    assert len(counting.sent) == res.queries <= 1 + 32
    assert len(set(counting.sent)) == len(counting.sent), "an image was sent to the model twice"


def test_pixel_order_does_not_cost_a_new_query():
    counting = Counting(constant_probs)
    img = grey(3, 3)
    pop = np.array([[0, 0, 255, 0, 0, 1, 1, 0, 255, 0], [1, 1, 0, 255, 0, 0, 0, 255, 0, 0]] * 3, float)
    res = one_pixel_attack(counting, img, 0, pixels=2, init=pop, maxiter=0, seed=0)
    assert res.evaluations == 6 and res.queries == 2  # the original + one image


def test_same_image_from_different_candidates_is_one_query():
    counting = Counting(constant_probs)
    img = grey(3, 3)
    pop = np.array([
        [0, 0, 100, 100, 100, 1, 1, 100, 100, 100],  # both pixels already grey: the original image
        [2, 2, 9, 9, 9, 2, 2, 255, 0, 0],            # (2,2) written twice: the later (red) wins
        [2, 2, 255, 0, 0, 1, 1, 100, 100, 100],      # the same red pixel, plus a no-op
        [2, 2, 1, 1, 1, 2, 2, 255, 0, 0],
        [0, 1, 0, 0, 0, 0, 1, 0, 0, 0],              # one black pixel, twice
    ], float)
    res = one_pixel_attack(counting, img, 0, pixels=2, init=pop, maxiter=0, seed=0)
    assert res.evaluations == 5 and res.queries == 3  # the original, the red (2,2), the black (0,1)
    assert len(set(counting.sent)) == 3


def test_probabilities_and_logits_give_the_same_attack():
    kw = dict(popsize=15, maxiter=8, seed=1, fitness="probability", early_stop=False)
    a = one_pixel_attack(fragile_logits, grey(), 0, **kw)

    def probs(batch):
        z = fragile_logits(batch)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    b = one_pixel_attack(probs, grey(), 0, **kw)
    np.testing.assert_allclose(a.prior_probs, b.prior_probs, rtol=1e-9)
    assert np.array_equal(a.pixels, b.pixels)
    assert Scorer(probs).kind is None  # decided on the first call
    s = Scorer(probs)
    s(grey()[None])
    assert s.kind == "probabilities"


def test_margin_and_probability_run_the_same_search_with_two_classes():
    kw = dict(popsize=15, maxiter=8, seed=5, early_stop=False)
    a = one_pixel_attack(fragile_logits, grey(), 0, fitness="probability", **kw)
    b = one_pixel_attack(fragile_logits, grey(), 0, fitness="margin", **kw)
    assert np.array_equal(a.pixels, b.pixels)
    assert [s.best_confidence for s in a.history] == pytest.approx([s.best_confidence for s in b.history])


def test_saturated_probabilities_tie_but_the_margin_does_not():
    def saturated(batch):  # a confident float32 model: logit gap 40 (p rounds to exactly 1.0)
        return fragile_logits(batch) * np.array([50.0, 12.0])

    def probs32(batch):
        z = saturated(batch).astype(np.float32)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p = one_pixel_attack(probs32, grey(), 0, popsize=20, maxiter=0, seed=0, fitness="probability")
    assert p.history[0].population_min == 1.0, "every candidate ties at exactly 1.0"
    m = one_pixel_attack(saturated, grey(), 0, popsize=20, maxiter=0, seed=0, fitness="margin")
    assert m.history[0].population_max == 1.0 and np.isfinite(m.history[0].best_fitness)
    assert m.history[0].best_fitness < 40.0  # yet the margins differ: there is something to climb


def test_targeted_attack_with_three_classes():
    def three(batch):
        z = fragile_logits(batch)
        return np.concatenate([z, np.full((len(z), 1), 0.5)], axis=1)

    res = one_pixel_attack(three, grey(), 0, target=1, popsize=30, maxiter=20, seed=0, class_names=["a", "b", "c"])
    assert res.success and res.predicted_after == 1 and res.target == 1
    assert "b" in res.summary()


def test_already_misclassified_returns_at_once():
    calls = Counting(fragile_logits)
    res = one_pixel_attack(calls, grey(), 1, popsize=10, maxiter=5)
    assert not res.success and res.stop_reason == "already misclassified" and res.queries == 1


@pytest.mark.parametrize(
    "kwargs, err, words",
    [
        (dict(pixels=0), ValueError, "pixels must be at least 1"),
        (dict(popsize=4), ValueError, "popsize must be at least 5"),
        (dict(pixels=1.5), TypeError, "pixels must be a whole number"),
        (dict(fitness="prob"), ValueError, "fitness='prob' is not one of"),
        (dict(mutation=(1.0, 0.5)), ValueError, "low <= high"),
        (dict(mutation=2.5), ValueError, "mutation must be at most 2"),
        (dict(recombination=1.5), ValueError, "recombination must be at most 1"),
        (dict(maxiter=-1), ValueError, "maxiter must be at least 0"),
        (dict(init=np.zeros((3, 5))), ValueError, "population >= 5"),
        (dict(target=0), ValueError, "is the true label itself"),
        (dict(seed=-1), ValueError, "seed must be at least 0"),
    ],
)
def test_bad_parameters_are_explained(kwargs, err, words):
    with pytest.raises(err, match=words.replace("(", r"\(").replace(")", r"\)")):
        one_pixel_attack(fragile_logits, grey(), 0, **{"popsize": 10, "maxiter": 2, **kwargs})


@pytest.mark.parametrize(
    "image, label, err, words",
    [
        (np.zeros((8, 8, 3), np.float64), 0, TypeError, "uint8"),
        (np.zeros((2, 8, 8, 3), np.uint8), 0, ValueError, "looks like a batch"),
        (grey(), 2, ValueError, "out of range: the model has 2 classes"),
        (grey(), "cat", ValueError, "not a class name"),
    ],
)
def test_bad_image_or_label(image, label, err, words):
    with pytest.raises(err, match=words):
        one_pixel_attack(fragile_logits, image, label, popsize=10, maxiter=1)


def test_bad_predict_output():
    with pytest.raises(ValueError, match="one row of class scores per image"):
        one_pixel_attack(lambda b: np.zeros(len(b)), grey(), 0, popsize=10, maxiter=1)


def test_presets_are_complete_and_paper_is_the_paper():
    assert PAPER["popsize"] == 400 and PAPER["maxiter"] == 75 and PAPER["recombination"] == 1.0
    assert PAPER["fitness"] == "probability" and PAPER["pixels"] == 1
    for preset in PRESETS.values():
        res = one_pixel_attack(constant_probs, grey(), 0, **{**preset, "popsize": 10, "maxiter": 1}, seed=0)
        assert res.generations == 1
    res = one_pixel_attack(fragile_logits, grey(), 0, **QUICK, seed=0)
    assert res.success


def test_attack_many_table():
    imgs = np.stack([grey(value=v) for v in (90, 100, 110)])
    imgs[2, HOT_Y, HOT_X] = (255, 0, 0)  # already classified as class 1
    study = attack_many(fragile_logits, imgs, [0, 0, 0], pixels=(1, 2), fitness=("probability", "margin"),
                        budgets=[(10, 5)], verbose=False)
    assert [s["index"] for s in study.skipped] == [2]
    rows = study.table()
    assert len(rows) == 4 and all(r["attacks"] == 2 for r in rows)
    for r in rows:
        same = [rec for rec in study.records if (rec["pixels"], rec["fitness"]) == (r["pixels"], r["fitness"])]
        assert r["successes"] == sum(rec["success"] for rec in same)
        assert r["success_rate"] == r["successes"] / 2 and r["budget"] == 60
    assert len(study.records) == 8 and len(study.results) == 8
    assert study.rate(1, "margin") == rows[1]["success_rate"]
    assert "pixels" in str(study) and "<table>" in study._repr_html_()
    with pytest.raises(ValueError, match="one label per image"):
        attack_many(fragile_logits, imgs, [0, 0], verbose=False)


def test_study_helpers_and_plots():
    import matplotlib

    matplotlib.use("Agg")
    from maskedu.attack import AttackStudy, plot_confidence_histogram, plot_drops, plot_gallery, plot_study, saturation

    imgs = np.stack([grey(value=v) for v in (90, 100)])
    a = attack_many(fragile_logits, imgs, [0, 0], pixels=(1,), fitness=("margin",), budgets=[(10, 3)], verbose=False)
    b = attack_many(fragile_logits, imgs, [0, 0], pixels=(2,), fitness=("margin",), budgets=[(10, 3)], verbose=False)
    both = AttackStudy.combine(a, b)
    assert len(both.records) == 4 and {r["pixels"] for r in both.table()} == {1, 2}
    drops = both.largest_drops()
    assert set(drops) == {0, 1} and all(d >= 0 for d in drops.values())
    sat = saturation(np.array([[1.0, 0.0], [0.3, 0.7], [0.99995, 5e-5]], np.float32), [0, 0, 0])
    assert (sat["exactly_one"], sat["above_0_9999"], sat["correct"]) == (1, 2, 2)
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from maskedu.attack import plot_attack, plot_fitness_curves, plot_history

    open_before = plt.get_fignums()
    res = both.results[0]
    figs = [plot_study(both), plot_drops(both), plot_gallery(both.results), plot_gallery([], only_success=True),
            plot_confidence_histogram(np.array([[0.9, 0.1], [1.0, 0.0]]), [0, 0]), plot_history(res), plot_attack(res),
            plot_fitness_curves({"m": {"margin": res}}, {"m": fragile_logits})]
    for fig in figs:  # a bare Figure each: a notebook shows it once, as the cell's value, never again from pyplot
        assert type(fig) is Figure and fig.axes
    assert plt.get_fignums() == open_before
    _, ax = plt.subplots()
    assert plot_history(res, ax=ax) is ax.figure and plot_study(both, ax=ax) is ax.figure  # or into your own axes
    plt.close(ax.figure)


def test_sparse_attack_flips_the_fragile_model_within_budget():
    from maskedu.attack import SPARSE, sparse_attack

    img = grey(16, 16)
    res = sparse_attack(fragile_logits, img, 0, pixels=3, budget=2000, batch=20, seed=0)
    assert res.success and res.stop_reason == "success" and res.queries <= 2000
    changed = np.argwhere((res.adversarial != img).any(axis=2)).tolist()
    assert 1 <= len(changed) <= 3
    assert res.history[0].generation == 0 and [s.generation for s in res.history] == list(range(len(res.history)))
    again = sparse_attack(fragile_logits, img, 0, pixels=3, budget=2000, batch=20, seed=0)
    assert np.array_equal(res.pixels, again.pixels) and res.queries == again.queries
    assert set(SPARSE) >= {"pixels", "budget", "batch", "colors"}


def test_sparse_attack_respects_the_budget_and_stop():
    from maskedu.attack import sparse_attack

    counting = Counting(constant_probs)
    res = sparse_attack(counting, grey(), 0, pixels=4, budget=500, batch=25, seed=1)
    assert not res.success and res.stop_reason == "budget"
    assert res.queries == len(counting.sent) <= 500
    assert len(set(counting.sent)) == len(counting.sent)
    stopped = sparse_attack(constant_probs, grey(), 0, pixels=4, budget=5000, batch=25, seed=1,
                            on_generation=lambda s: s.generation >= 2)
    assert stopped.stop_reason == "stopped" and stopped.generations == 2
    with pytest.raises(ValueError, match="pixels must be at most 64"):
        sparse_attack(constant_probs, grey(), 0, pixels=65)
    with pytest.raises(ValueError, match="colors="):
        sparse_attack(constant_probs, grey(), 0, colors="neon")


def test_sparse_attack_stops_when_nothing_new_is_left_to_propose():
    """On a 2 x 2 face every proposal soon repeats one already asked (answered free from the cache): the
    search must stop as "exhausted" instead of drawing cached proposals for ever under a budget it never spends."""
    from maskedu.attack import sparse_attack
    from maskedu.attack.sparse import STALE_STEPS

    counting = Counting(constant_probs)
    res = sparse_attack(counting, grey(2, 2), 0, pixels=4, budget=1_000_000, batch=25, seed=0)
    assert not res.success and res.stop_reason == "exhausted"
    assert res.queries == len(counting.sent) == len(set(counting.sent)) < 9 ** 4  # each image asked once
    tail = [s.queries for s in res.history[-STALE_STEPS - 2:]]  # the last step that sent something, then the rest
    assert len(tail) == STALE_STEPS + 2 and tail[0] < tail[1] and len(set(tail[1:])) == 1


def test_attack_many_with_the_sparse_method():
    imgs = np.stack([grey(value=v) for v in (90, 100)])
    study = attack_many(fragile_logits, imgs, [0, 0], pixels=(2,), fitness=("margin",), budgets=[(20, 9)],
                        method="sparse", batch=10, verbose=False)
    (row,) = study.table()
    assert row["method"] == "sparse" and row["budget"] == 200 and row["attacks"] == 2
    assert all(r.queries <= 200 for r in study.results)


def test_a_keras_model_without_a_logits_layer_works():
    import keras
    from keras import layers

    inp = keras.Input((H, W, 3), dtype="uint8")
    x = layers.Flatten()(layers.Rescaling(1 / 255.0)(inp))
    model = keras.Model(inp, layers.Dense(2, activation="softmax", name="head")(x))
    # fixed weights, not a random draw: a confident model, so one pixel cannot flip it in the first population
    # (a random head sits near 0.5/0.5, where the initial population alone may already succeed)
    kernel = np.random.default_rng(0).normal(0.0, 1e-3, (H * W * 3, 2)).astype(np.float32)
    model.get_layer("head").set_weights([kernel, np.array([4.0, -4.0], np.float32)])
    scorer = Scorer(model)
    probs, logits = scorer(np.stack([grey(), grey(value=3)]))
    assert probs.shape == (2, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.exp(logits), probs, rtol=1e-4)  # log-probabilities stand in for logits
    res = one_pixel_attack(model, grey(), int(probs[0].argmax()), popsize=10, maxiter=1, seed=0)
    assert res.generations == 1 and len(res.history) == 2


def test_study_table_gives_wilson_intervals_and_margins():
    from maskedu.claims import wilson_interval

    imgs = np.stack([grey(value=v) for v in (90, 100, 110)])
    study = attack_many(fragile_logits, imgs, [0, 0, 0], pixels=(1,), fitness=("margin",), budgets=[(10, 5)],
                        verbose=False)
    (row,) = study.table()
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_interval(row["successes"], row["attacks"]))
    assert row["ci_low"] <= row["success_rate"] <= row["ci_high"]
    text = str(study)
    assert f"[{row['ci_low']:.1%}, {row['ci_high']:.1%}]" in text and "nan" not in text.lower()
    assert "95% interval" in study._repr_html_()
    for r in study.records:   # logit margins of the fragile model, before and after
        z0 = fragile_logits(imgs[r["index"]][None])[0]
        assert r["prior_margin"] == pytest.approx(z0[0] - z0[1])
        za = fragile_logits(study.results[study.records.index(r)].adversarial[None])[0]
        assert r["final_margin"] == pytest.approx(za[0] - za[1])
        assert (r["final_margin"] < 0) == r["success"]


def test_plot_study_series_differ_in_colour_style_and_marker():
    import matplotlib

    matplotlib.use("Agg")
    from maskedu.attack import OKABE_ITO, plot_study

    imgs = np.stack([grey(value=v) for v in (90, 100)])
    study = attack_many(fragile_logits, imgs, [0, 0], pixels=(1, 2), fitness=("probability", "margin"),
                        budgets=[(10, 2), (12, 2)], verbose=False)
    fig = plot_study(study)
    series = [c for c in fig.axes[0].containers if not c.get_label().startswith("_")]
    lines = [c.lines[0] for c in series]      # each series' data line, drawn with its error bars
    assert len(lines) == 4 and all(len(c.lines[1]) == 2 for c in series)   # caps: the interval's two ends
    assert len({ln.get_color() for ln in lines}) == 4 and all(ln.get_color() in OKABE_ITO for ln in lines)
    assert len({str(ln.get_linestyle()) for ln in lines}) == 4
    assert len({ln.get_marker() for ln in lines}) == 4
    assert fig.axes[0].get_legend() is not None


def test_best_candidate_curve_and_fitness_curve_plot():
    import matplotlib

    matplotlib.use("Agg")
    from maskedu.attack import best_candidate_curve, plot_fitness_curves

    res = {f: one_pixel_attack(fragile_logits, grey(), 0, pixels=1, popsize=10, maxiter=4, fitness=f, seed=0,
                               early_stop=False) for f in ("probability", "margin")}
    curve = best_candidate_curve(res["margin"], fragile_logits)
    assert len(curve["generation"]) == len(res["margin"].history)
    # the margin of the best candidate is the fitness the margin attack recorded
    assert curve["margin"] == pytest.approx([s.best_fitness for s in res["margin"].history])
    assert curve["probability"] == pytest.approx([s.best_confidence for s in res["margin"].history])
    fig = plot_fitness_curves({"a": res, "b": res}, {"a": fragile_logits, "b": fragile_logits})
    assert len(fig.axes) == 4
    assert {ln.get_label() for ln in fig.axes[0].get_lines()} >= {"probability fitness", "margin fitness"}


def test_study_progress_in_a_notebook_ends_with_the_final_count(monkeypatch):
    import maskedu.attack as A
    import maskedu.common as C

    shown = []

    class Handle:
        def update(self, obj, raw=False):
            shown.append(obj["text/plain"])

    monkeypatch.setattr(C, "in_notebook", lambda: True)
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False, display_id=None: (shown.append(obj["text/plain"]), Handle())[1])
    bar = A._StudyProgress(3, True)
    for k in (0, 1, 1):
        bar.update(k)
    bar.close()
    assert shown[0].startswith("attacks: 0 of 3")
    assert shown[-1].startswith("attacks: 3 of 3 done, 1 succeeded") and "to go" not in shown[-1]
    silent = A._StudyProgress(3, False)
    silent.update(0)
    silent.close()


def test_scorer_sends_large_batches_in_chunks_with_the_same_scores():
    sizes = []

    def predict(batch):
        sizes.append(len(batch))
        return fragile_logits(batch)

    scorer = Scorer(predict)
    batch = np.stack([grey(value=v) for v in range(250)])
    probs, logits = scorer(batch)
    assert sizes == [Scorer.chunk, Scorer.chunk, 250 - 2 * Scorer.chunk]
    assert scorer.images == 250 and scorer.calls == 3
    assert np.allclose(logits, fragile_logits(batch))
    # an attack scores the same candidates whatever the chunk size
    a = one_pixel_attack(fragile_logits, grey(), 0, pixels=1, popsize=30, maxiter=3, seed=1)
    small = Scorer(fragile_logits)
    small.chunk = 7
    b = one_pixel_attack(small, grey(), 0, pixels=1, popsize=30, maxiter=3, seed=1)
    assert np.array_equal(a.pixels, b.pixels) and a.queries == b.queries and a.final_confidence == b.final_confidence


def test_attack_many_old_progress_name_still_works_with_a_warning():
    imgs = np.stack([grey(), grey(value=90)])
    with pytest.warns(DeprecationWarning, match="verbose"):
        old = attack_many(fragile_logits, imgs, [0, 0], pixels=(1,), fitness=("margin",), budgets=[(10, 2)],
                          show_progress=False)
    new = attack_many(fragile_logits, imgs, [0, 0], pixels=(1,), fitness=("margin",), budgets=[(10, 2)], verbose=False)
    assert [r["queries"] for r in old.records] == [r["queries"] for r in new.records]


def _margin_of(probs, label):
    z = np.log(np.asarray(probs))  # log-probabilities differ from the logits by a constant per image
    return float(z[label] - np.delete(z, label).max())


def test_one_core_under_both_attacks():
    """Both attacks build their result through AttackRun: the same fitness, history and result fields."""
    from maskedu.attack import AttackRun, sparse_attack

    run = AttackRun(fragile_logits, grey(), 0, fitness="margin", settings={})
    cands = np.array([[[HOT_X, HOT_Y, 255, 0, 0]], [[0, 0, 0, 0, 0]], [[HOT_X, HOT_Y, 255, 0, 0]]])
    probs, logits = run.score(cands)
    fit, ok = run.fitness_of(probs, logits)
    assert run.evaluations == 3 and run.queries == 1 + 2  # the clean image, then two distinct candidates
    assert np.allclose(fit, logits[:, 0] - logits[:, 1]) and ok.tolist() == [True, False, True]
    run.keep_success(fit, ok, cands, probs)
    assert run.success_pixels.tolist() == [[HOT_X, HOT_Y, 255, 0, 0]]
    de = one_pixel_attack(fragile_logits, grey(), 0, popsize=20, maxiter=5, seed=0)
    sp = sparse_attack(fragile_logits, grey(), 0, pixels=2, budget=300, batch=10, seed=0)
    for res in (de, sp):
        assert res.history and res.generations == res.history[-1].generation
        assert res.history[-1].queries <= res.queries <= res.evaluations + 1
        assert res.history[-1].best_fitness == pytest.approx(_margin_of(res.final_probs, res.label), abs=1e-6)


@pytest.mark.slow
def test_attacks_refuse_faces_the_model_trained_on(tmp_path):
    """The leak guard: a real tiny model trained on real sample crops carries its split, and every attack
    entry point refuses a face from its training or validation part, however the model is wrapped."""
    from maskedu import model as M
    from maskedu.annotations import load_annotations
    from maskedu.attack import sparse_attack
    from maskedu.crop import crop_faces
    from maskedu.sample import make_sample_dataset

    crops = crop_faces(load_annotations(make_sample_dataset(tmp_path / "sample", n_images=12, seed=0)),
                       source="annotations", verbose=False)
    trained = M.train(M.build_resnet(widths=(8,), blocks=(1,), stem_filters=8), crops, epochs=1, verbose=False,
                      live_plot=False)
    model, split = trained.model, trained.split
    seen_face, seen_label = crops.images[split.train[0]], int(crops.labels[split.train[0]])
    val_face = crops.images[split.validation[0]]
    held = M.held_out(crops, model)
    for predict in (model, M.make_predict_fn(model), Scorer(M.make_predict_fn(model))):
        with pytest.raises(M.SeenFaceError, match="1 in its training part"):
            one_pixel_attack(predict, seen_face, seen_label, popsize=10, maxiter=1, seed=0)
        with pytest.raises(M.SeenFaceError, match="1 in its validation part"):
            sparse_attack(predict, val_face, 0, budget=50, seed=0)
    mixed = np.stack([held.images[0], seen_face])
    with pytest.raises(M.SeenFaceError, match=r"1 of the 2 faces given .*faces #1\b"):
        attack_many(model, mixed, [int(held.labels[0]), seen_label], budgets=[(10, 1)], verbose=False)
    # held-out faces are attacked as before, and a plain function (no split to check) is never refused
    res = one_pixel_attack(model, held.images[0], int(held.labels[0]), popsize=10, maxiter=1, seed=0)
    assert res.queries > 0
    study = attack_many(M.make_predict_fn(model), held.images[:2], held.labels[:2], budgets=[(10, 1)], verbose=False,
                        only_correct=False)
    assert len(study.records) == 2 * 2  # two faces x two fitnesses
    fn = M.make_predict_fn(model)
    predicted = int(fn(seen_face[None])[0].argmax())
    plain = one_pixel_attack(lambda b: fn(b), seen_face, predicted, popsize=10, maxiter=0, seed=0)
    assert plain.stop_reason in ("budget", "success") and plain.evaluations == 10
