"""Exercises for notebook 05 (the attack study).

::

    from maskedu.exercises import nb05
    nb05.q1.check(margin_from_probability)     # the two-class margin from p
    nb05.q2.check(success_rate)                # a study's success rate for one setting
    nb05.q3.check("c")                         # what explains the paper's 1.77% (a letter)

Each question has ``.hint()`` and ``.solution()``.
"""

from __future__ import annotations

import math

import numpy as np

from ._core import Incorrect, Question

__all__ = ["q1", "q2", "q3", "Q3_CHOICES"]


# --------------------------------------------------------------------------- q1: margin from probability


def _check_q1(fn) -> str:
    if not callable(fn):
        raise Incorrect(f"Pass your function itself (margin_from_probability), not {type(fn).__name__}.")
    ps = np.array([0.5, 0.9, 0.99, 0.2, 0.999999])
    expected = np.log(ps) - np.log1p(-ps)
    try:
        got = np.array([float(fn(float(p))) for p in ps])
    except Exception as exc:
        raise Incorrect(f"Your function failed on p=0.9: {type(exc).__name__}: {exc}") from None
    if np.allclose(got, expected, rtol=1e-6, atol=1e-9):
        return ("Right: with two classes the margin is log(p / (1 - p)), a strictly increasing function of p. "
                "DE only compares fitness values, so both fitnesses rank candidates alike, until p rounds to 1.0.")
    if np.allclose(got, -expected, rtol=1e-6):
        raise Incorrect("Your sign is flipped: the margin is the true logit minus the other, positive while the "
                        "model is right (p > 0.5).")
    if np.allclose(got, expected / math.log(10), rtol=1e-6):
        raise Incorrect("You used log10; logits are natural logarithms (np.log).")
    if np.allclose(got, 2 * ps - 1, rtol=1e-6):
        raise Incorrect("p - (1 - p) is the probability gap, not the logit gap. Logits live before the softmax: take logs.")
    raise Incorrect(f"For p = 0.9 the margin should be {expected[1]:.4f}, yours gives {got[1]:.4f}. "
                    "Softmax of two logits z1, z0 gives p = 1 / (1 + exp(-(z1 - z0))): solve for z1 - z0.")


q1 = Question(
    "q1", _check_q1,
    prompt="With two classes, write margin_from_probability(p): the logit of the true class minus the other logit, "
           "from the true-class probability p.",
    hint="p = 1 / (1 + exp(-m)) for the margin m. Solve for m.",
    solution="def margin_from_probability(p):\n    return np.log(p) - np.log(1 - p)   # log(p / (1 - p))",
)


# --------------------------------------------------------------------------- q2: success rate from the records


def _records():
    rows = []
    rng = np.random.default_rng(0)
    for px in (1, 3):
        for fit in ("probability", "margin"):
            for i in range(8):
                rows.append(dict(index=i, pixels=px, fitness=fit, success=bool(rng.random() < 0.2 * px)))
    return rows


def _check_q2(fn) -> None:
    if not callable(fn):
        raise Incorrect(f"Pass your function itself (success_rate), not {type(fn).__name__}.")
    rows = _records()
    for px, fit in [(1, "margin"), (3, "probability"), (3, "margin")]:
        mine = [r for r in rows if r["pixels"] == px and r["fitness"] == fit]
        expected = sum(r["success"] for r in mine) / len(mine)
        try:
            got = fn(rows, px, fit)
        except Exception as exc:
            raise Incorrect(f"Your function failed: {type(exc).__name__}: {exc}") from None
        if isinstance(got, bool) or not isinstance(got, (int, float, np.integer, np.floating)):
            raise Incorrect(f"Return one number (a fraction between 0 and 1), got {type(got).__name__}.")
        got = float(got)
        if math.isclose(got, expected, abs_tol=1e-9):
            continue
        if math.isclose(got, 100 * expected, abs_tol=1e-6) and expected > 0:
            raise Incorrect("Return a fraction (0.25), not a percentage (25).")
        if math.isclose(got, sum(r["success"] for r in mine), abs_tol=1e-9):
            raise Incorrect("That is the number of successes: divide by the number of attacks with this setting.")
        everyone = [r for r in rows if r["pixels"] == px]
        if math.isclose(got, sum(r["success"] for r in everyone) / len(everyone), abs_tol=1e-9):
            raise Incorrect("You mixed both fitness functions: keep only the records with this fitness.")
        raise Incorrect(f"For pixels={px}, fitness={fit!r} the rate is {expected:.3f}; yours is {got:.3f}.")


q2 = Question(
    "q2", _check_q2,
    prompt="Write success_rate(records, pixels, fitness): the fraction of the study's attacks with these settings "
           "that flipped the label (records are study.records: dicts with 'pixels', 'fitness', 'success').",
    hint="Keep the records whose 'pixels' and 'fitness' match, then average their 'success' (True counts as 1).",
    solution=(
        "def success_rate(records, pixels, fitness):\n"
        "    mine = [r['success'] for r in records if r['pixels'] == pixels and r['fitness'] == fitness]\n"
        "    return sum(mine) / len(mine)"
    ),
)


# --------------------------------------------------------------------------- q3: the paper's explanation

Q3_CHOICES = {
    "a": "The network really has no continuous confidence: its output only takes a few values.",
    "b": "One-pixel attacks cannot work on 50 x 50 faces.",
    "c": "Most faces are so confidently classified that float32 rounds the probability to exactly 1.0, so the "
         "probability fitness ties; and one pixel moves the logits too little to flip a confident face.",
    "d": "The paper's budget was too small; ten times more generations would give most faces.",
}


def _check_q3(answer) -> None:
    if not isinstance(answer, str) or answer.strip().lower()[:1] not in Q3_CHOICES:
        raise Incorrect(f"Answer with one letter: {', '.join(Q3_CHOICES)}.")
    letter = answer.strip().lower()[:1]
    feedback = {
        "a": "The logits are continuous (look at the margins): it is the float32 probability that rounds to 1.0.",
        "b": "More pixels do flip faces (see the pixel curve), and one pixel flips some less confident faces.",
        "d": "Look at the budget rows: the larger budget helps little at 1 pixel; the best drop stays small.",
    }
    if letter != "c":
        raise Incorrect(feedback[letter])


q3 = Question(
    "q3", _check_q3,
    prompt="The paper reports 1.77% success and blames the model's lack of 'continuous confidence'. What does the "
           "study show? " + " ".join(f"({k}) {v}" for k, v in Q3_CHOICES.items()),
    hint="Compare the histogram of true-class probabilities with the margin rows and the largest drop per face.",
    solution="answer = 'c'",
)
