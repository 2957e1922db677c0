"""The claim checks of notebooks 04-06 (maskedu.claims: check_saturation, check_better,
check_margin_fitness, check_rate, sign_test): each gives "holds" on data that support its statement,
"contradicted" on data that contradict it, "too little data to tell" on too few items, and raises in
strict mode when contradicted."""

from types import SimpleNamespace

import numpy as np
import pytest

from maskedu import claims
from maskedu.claims import CONTRADICTED, HOLDS, STRICT_ENV, TOO_LITTLE, ClaimContradicted


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)


def _probs(n_at_one, n_below, label=1):
    """Two-class float32 probabilities: n_at_one faces at exactly p(label) = 1.0, n_below at 0.99."""
    at_one = np.tile(np.array([0.0, 1.0], np.float32), (n_at_one, 1))
    below = np.tile(np.array([0.01, 0.99], np.float32), (n_below, 1))
    p = np.concatenate([at_one, below])
    return (p if label == 1 else p[:, ::-1]), np.full(len(p), label)


# --------------------------------------------------------------------------- sign test


def test_sign_test_values():
    assert claims.sign_test(5, 0) == pytest.approx(1 / 32)
    assert claims.sign_test(0, 5) == pytest.approx(1.0)
    assert claims.sign_test(0, 0) == 1.0
    # 7 of 10: P(X >= 7) for Binomial(10, 1/2) = (120 + 45 + 10 + 1) / 1024
    assert claims.sign_test(7, 3) == pytest.approx(176 / 1024)


# --------------------------------------------------------------------------- saturation


def test_saturation_holds_when_most_faces_are_at_one():
    p, y = _probs(28, 2)
    c = claims.check_saturation(p, y, model="m", display=False)
    assert c.verdict == HOLDS
    assert c.figures["at exactly 1.0"] == 28 and c.figures["faces"] == 30


def test_saturation_contradicted_when_no_face_is_at_one():
    p, y = _probs(0, 30)
    c = claims.check_saturation(p, y, display=False)
    assert c.verdict == CONTRADICTED
    assert c.figures["at exactly 1.0"] == 0
    # the opposite statement ("few faces") holds on the same data
    assert claims.check_saturation(p, y, saturated=False, display=False).verdict == HOLDS


def test_saturation_reads_the_true_class_column():
    p, y = _probs(20, 0, label=0)       # p(class 0) = 1.0 on every face
    assert claims.check_saturation(p, y, display=False).verdict == HOLDS
    assert claims.check_saturation(p, 1 - y, display=False).verdict == CONTRADICTED


def test_saturation_too_little_data():
    p, y = _probs(3, 0)                  # 3 of 3 at 1.0, but 3 faces
    assert claims.check_saturation(p, y, display=False).verdict == TOO_LITTLE
    p, y = _probs(16, 14)                # 53% of 30: the interval straddles one half
    assert claims.check_saturation(p, y, display=False).verdict == TOO_LITTLE


def test_saturation_raises_in_strict_mode_when_contradicted(monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    p, y = _probs(0, 30)
    with pytest.raises(ClaimContradicted):
        claims.check_saturation(p, y, display=False)
    assert claims.check_saturation(p, y, saturated=False, display=False).verdict == HOLDS


def test_saturation_shape_mismatch_is_explained():
    p, _ = _probs(3, 3)
    with pytest.raises(ValueError, match="one label per face"):
        claims.check_saturation(p, [1, 1], display=False)


# --------------------------------------------------------------------------- check_better


def test_better_holds_contradicted_and_too_little():
    rng = np.random.default_rng(0)
    b = rng.normal(size=20)
    assert claims.check_better("a beats b", b + 1.0, b, display=False).verdict == HOLDS
    assert claims.check_better("a beats b", b - 1.0, b, display=False).verdict == CONTRADICTED
    assert claims.check_better("a beats b", b, b, display=False).verdict == CONTRADICTED   # no difference at all
    assert claims.check_better("a beats b", b[:4] + 1.0, b[:4], display=False).verdict == TOO_LITTLE


def test_better_leading_without_significance_is_too_little():
    a = np.array([1.0] * 6 + [0.0] * 4 + [5.0] * 10)
    b = np.array([0.0] * 6 + [1.0] * 4 + [5.0] * 10)   # 6 wins, 4 losses, 10 ties: p = 0.377
    c = claims.check_better("a beats b", a, b, display=False)
    assert c.verdict == TOO_LITTLE
    assert c.figures["A better"] == 6 and c.figures["B better"] == 4 and c.figures["same"] == 10


def test_better_lower_is_better_and_expect_false():
    a, b = np.zeros(12), np.ones(12)
    assert claims.check_better("a lower", a, b, higher_is_better=False, display=False).verdict == HOLDS
    assert claims.check_better("a no lower", a, b, higher_is_better=False, expect=False, display=False).verdict == CONTRADICTED
    assert claims.check_better("a no better", b, b, expect=False, display=False).verdict == HOLDS


def test_better_tolerance_counts_tiny_differences_as_ties():
    b = np.zeros(12)
    c = claims.check_better("a beats b", b + 1e-9, b, tolerance=1e-6, display=False)
    assert c.figures["same"] == 12 and c.verdict == CONTRADICTED


def test_better_raises_in_strict_mode(monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(ClaimContradicted):
        claims.check_better("a beats b", np.zeros(12), np.ones(12), display=False)


def test_better_rejects_unpaired_or_nan():
    with pytest.raises(ValueError, match="paired"):
        claims.check_better("x", [1, 2], [1], display=False)
    with pytest.raises(ValueError, match="NaN"):
        claims.check_better("x", [1, float("nan")], [1, 2], display=False)


# --------------------------------------------------------------------------- margin vs probability fitness


def _study(margin_final, probability_final, extra=None):
    recs = []
    for i, (m, p) in enumerate(zip(margin_final, probability_final)):
        recs.append(dict(index=i, pixels=1, fitness="margin", final_margin=m))
        recs.append(dict(index=i, pixels=1, fitness="probability", final_margin=p))
    return SimpleNamespace(records=recs + list(extra or []))


def test_margin_fitness_holds_when_it_ends_lower():
    c = claims.check_margin_fitness(_study([5.0] * 15, [20.0] * 15), model="m", display=False)
    assert c.verdict == HOLDS
    assert c.figures["margin better"] == 15 and c.figures["faces"] == 15


def test_margin_fitness_contradicted_when_identical_or_worse():
    same = claims.check_margin_fitness(_study([5.0] * 15, [5.0] * 15), display=False)
    assert same.verdict == CONTRADICTED and same.figures["same"] == 15
    worse = claims.check_margin_fitness(_study([9.0] * 15, [5.0] * 15), display=False)
    assert worse.verdict == CONTRADICTED
    # the opposite statement holds on identical searches
    assert claims.check_margin_fitness(_study([5.0] * 15, [5.0] * 15), better=False, display=False).verdict == HOLDS


def test_margin_fitness_pairs_faces_and_settings():
    # face 99 was attacked with the margin fitness only, and pixels=3 records must not mix in
    extra = [dict(index=99, pixels=1, fitness="margin", final_margin=-50.0),
             dict(index=0, pixels=3, fitness="probability", final_margin=-50.0)]
    c = claims.check_margin_fitness(_study([5.0] * 12, [20.0] * 12, extra), pixels=1, display=False)
    assert c.figures["faces"] == 12 and c.figures["margin better"] == 12


def test_margin_fitness_too_little_data_and_strict(monkeypatch):
    assert claims.check_margin_fitness(_study([1.0] * 3, [9.0] * 3), display=False).verdict == TOO_LITTLE
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(ClaimContradicted):
        claims.check_margin_fitness(_study([5.0] * 15, [5.0] * 15), display=False)


def test_margin_fitness_on_a_real_study():
    """attack_many records the final logit margins check_margin_fitness pairs."""
    from maskedu.attack import attack_many

    w = np.zeros((50 * 50 * 3, 2))
    w[:, 1] = 1e-3                                   # a linear 'model': logits = x @ w

    def predict(batch):
        z = np.asarray(batch, np.float64).reshape(len(batch), -1) @ w
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    imgs = np.full((3, 50, 50, 3), 200, np.uint8)
    study = attack_many(predict, imgs, [1, 1, 1], pixels=(1,), fitness=("probability", "margin"),
                        budgets=[(10, 1)], verbose=False)
    recs = study.records
    assert all(np.isfinite(r["final_margin"]) and np.isfinite(r["prior_margin"]) for r in recs)
    assert all(r["final_margin"] <= r["prior_margin"] + 1e-9 for r in recs)
    c = claims.check_margin_fitness(study, display=False)
    assert c.verdict == TOO_LITTLE and c.figures["faces"] == 3


# --------------------------------------------------------------------------- rates


def test_rate_below_holds_contradicted_too_little():
    assert claims.check_rate("rare", 0, 40, below=0.10, display=False).verdict == HOLDS
    assert claims.check_rate("rare", 30, 40, below=0.10, display=False).verdict == CONTRADICTED
    assert claims.check_rate("rare", 0, 20, below=0.10, display=False).verdict == TOO_LITTLE  # interval reaches 16%
    assert claims.check_rate("rare", 0, 5, below=0.90, display=False).verdict == TOO_LITTLE   # under min_n


def test_rate_above_against_the_paper_says_how_many_attacks_it_would_take():
    c = claims.check_rate("beats the paper", 20, 40, above=0.0177, source=claims.PAPER_SOURCE, display=False)
    assert c.verdict == HOLDS
    c = claims.check_rate("beats the paper", 0, 30, above=0.0177, source=claims.PAPER_SOURCE, display=False)
    assert c.verdict == TOO_LITTLE                    # 0 of 30: the interval still holds 1.77%
    assert c.figures["attacks to tell apart"] == 214
    assert "Hu, Wei & Bai 2021" in c.detail
    c = claims.check_rate("beats the paper", 0, 300, above=0.0177, display=False)
    assert c.verdict == CONTRADICTED


def test_rate_needs_one_threshold_and_strict_raises(monkeypatch):
    with pytest.raises(ValueError, match="exactly one"):
        claims.check_rate("x", 1, 10, display=False)
    with pytest.raises(ValueError, match="exactly one"):
        claims.check_rate("x", 1, 10, above=0.1, below=0.2, display=False)
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(ClaimContradicted):
        claims.check_rate("rare", 30, 40, below=0.10, display=False)


def test_interval_figures_read_as_percentages():
    p, y = _probs(0, 47)
    c = claims.check_saturation(p, y, display=False)
    assert c.figures["95% interval"] == "0.0% to 7.6%"      # not a float like 6.9e-18
    assert c.figures["share"] == "0.0%"
    import re

    assert not re.search(r"\de-\d", str(c))                 # no scientific notation anywhere in the line
