"""Exercises for notebook 05 (the attack study).

::

    from maskedu.exercises import nb05, ____
    nb05.q1.check(margin_from_probability)     # the two-class margin from p
    nb05.q2.check(success_rate)                # a study's success rate for one setting
    nb05.q3.check("b")                         # what label smoothing does to the probabilities (a letter)

Each question has ``.hint()`` and ``.solution()``.

>>> q3.check("banana", display=False).message  # doctest: +ELLIPSIS
"'banana' is not one of the choices. Answer with one letter, 'a', 'b', 'c' or 'd' ..."
"""

from __future__ import annotations

import math

import numpy as np

from ._core import Incorrect, Question, call, choice, need_function, number_answers, refuse_library

__all__ = ["q1", "q2", "q3", "Q3_CHOICES", "LABEL_SMOOTHING"]


# --------------------------------------------------------------------------- q1: margin from probability

_Q1_PS = [0.9, 0.5, 0.99, 0.2, 0.999999, 0.01, 0.75]


def _check_q1(fn) -> str:
    need_function(fn, "margin_from_probability")
    refuse_library(fn, [], "margin computation")
    for p, got, _ in number_answers(fn, _Q1_PS, lambda p: f"for p = {p}"):
        want = math.log(p) - math.log1p(-p)
        if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
            continue
        said = f"For p = {p} your function returned {got:.6g}; the margin is log({p} / {1 - p:.6g}) = {want:.6g}"
        if math.isclose(got, -want, rel_tol=1e-6, abs_tol=1e-9):
            raise Incorrect(f"{said}: your sign is flipped. The margin is the true logit minus the other, positive "
                            "while the model is right (p > 0.5).")
        if math.isclose(got, want / math.log(10), rel_tol=1e-6, abs_tol=1e-9):
            raise Incorrect(f"{said}: you used log10; logits are natural logarithms (np.log).")
        if math.isclose(got, 2 * p - 1, rel_tol=1e-6, abs_tol=1e-9):
            raise Incorrect(f"{said}: p - (1 - p) is the probability gap, not the logit gap. Logits live before the "
                            "softmax: take logs.")
        if math.isclose(got, math.log(p), rel_tol=1e-6, abs_tol=1e-9):
            raise Incorrect(f"{said}: log(p) is the true logit only up to a constant; subtract the other logit, "
                            "log(1 - p) up to the same constant.")
        raise Incorrect(f"{said}. Softmax of two logits z1, z0 gives p = 1 / (1 + exp(-(z1 - z0))): solve for z1 - z0.")
    return ("Right: with two classes the margin is log(p / (1 - p)), a strictly increasing function of p. "
            "DE only compares fitness values, so both fitnesses rank candidates alike, until p rounds to 1.0.")


q1 = Question(
    "q1", _check_q1,
    prompt="With two classes, write margin_from_probability(p): the logit of the true class minus the other logit, "
           "from the true-class probability p.",
    hint="p = 1 / (1 + exp(-m)) for the margin m. Solve for m.",
    solution=("def margin_from_probability(p):\n    return np.log(p) - np.log(1 - p)   # log(p / (1 - p))\n\n"
              "nb05.q1.check(margin_from_probability)"),
    answer="margin_from_probability",
)


# --------------------------------------------------------------------------- q2: success rate from the records


def _records(seed: int) -> list[dict]:
    """A made-up study: 1 and 3 pixels, both fitnesses; (3, "margin") always succeeds, (1, "probability") never."""
    rows = []
    rng = np.random.default_rng(seed)
    for px in (1, 3):
        for fit in ("probability", "margin"):
            n = int(rng.integers(5, 12))
            for i in range(n):
                if (px, fit) == (3, "margin"):
                    ok = True
                elif (px, fit) == (1, "probability"):
                    ok = False
                else:
                    ok = bool(rng.random() < 0.2 * px)
                rows.append(dict(index=i, pixels=px, fitness=fit, success=np.bool_(ok), queries=int(rng.integers(50, 900))))
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


def _check_q2(fn) -> str:
    need_function(fn, "success_rate")
    refuse_library(fn, [], "rate (study.rate)")
    for seed in (0, 1):
        rows = _records(seed)
        for px, fit in [(1, "margin"), (3, "probability"), (3, "margin"), (1, "probability")]:
            mine = [r for r in rows if r["pixels"] == px and r["fitness"] == fit]
            expected = sum(bool(r["success"]) for r in mine) / len(mine)
            setting = f"pixels={px}, fitness={fit!r}"
            got = call(fn, [dict(r) for r in rows], px, fit, describe=f"for {setting}")
            if isinstance(got, bool) or not isinstance(got, (int, float, np.integer, np.floating)):
                raise Incorrect(f"For {setting} your function returned {got!r} ({type(got).__name__}): return one "
                                "number, a fraction between 0 and 1.")
            got = float(got)
            if math.isclose(got, expected, abs_tol=1e-9):
                continue
            n_ok = sum(bool(r["success"]) for r in mine)
            said = (f"For {setting} your function returned {got:.6g}; {n_ok} of the {len(mine)} attacks with "
                    f"this setting succeeded, a rate of {expected:.6g}")
            if math.isclose(got, 100 * expected, abs_tol=1e-6) and expected > 0:
                raise Incorrect(f"{said}: return a fraction, not a percentage.")
            if math.isclose(got, n_ok, abs_tol=1e-9):
                raise Incorrect(f"{said}: you returned the number of successes; divide by the number of attacks with "
                                "this setting.")
            everyone = [r for r in rows if r["pixels"] == px]
            if math.isclose(got, sum(bool(r["success"]) for r in everyone) / len(everyone), abs_tol=1e-9):
                raise Incorrect(f"{said}: you mixed both fitness functions; keep only the records with this fitness.")
            same_fit = [r for r in rows if r["fitness"] == fit]
            if math.isclose(got, sum(bool(r["success"]) for r in same_fit) / len(same_fit), abs_tol=1e-9):
                raise Incorrect(f"{said}: you mixed the pixel counts; keep only the records with this number of pixels.")
            if math.isclose(got, sum(bool(r["success"]) for r in rows) / len(rows), abs_tol=1e-9):
                raise Incorrect(f"{said}: that is the rate over every record; keep only those with this setting.")
            raise Incorrect(f"{said}.")
    return "Right: the share of the attacks with that setting whose label flipped."


q2 = Question(
    "q2", _check_q2,
    prompt="Write success_rate(records, pixels, fitness): the fraction of the study's attacks with these settings "
           "that flipped the label (records are study.records: dicts with 'pixels', 'fitness', 'success').",
    hint="Keep the records whose 'pixels' and 'fitness' match, then average their 'success' (True counts as 1).",
    solution=(
        "def success_rate(records, pixels, fitness):\n"
        "    mine = [r['success'] for r in records if r['pixels'] == pixels and r['fitness'] == fitness]\n"
        "    return sum(mine) / len(mine)\n"
        "\n"
        "nb05.q2.check(success_rate)"
    ),
    answer="success_rate",
)


# --------------------------------------------------------------------------- q3: label smoothing

#: The default model's label smoothing (``maskedu.model.train``): the question is about this value.
LABEL_SMOOTHING = 0.1

Q3_CHOICES = {
    "a": "Nothing: the targets only change the loss, not the probabilities the trained model gives.",
    "b": "The cross-entropy against the target 0.95 is lowest at p = 0.95 (a margin of log(0.95 / 0.05), about 2.9), "
         "so training pulls the true-class probability towards 0.95, not 1.0; float32 only rounds p to exactly 1.0 "
         "beyond a margin of about 17.",
    "c": "It makes float32 unable to round any probability to exactly 1.0, whatever the logits.",
    "d": "The target of the true class becomes 0.9, so the model can never be more than 90% sure.",
}


def _check_q3(answer) -> str:
    letter = choice(answer, Q3_CHOICES)
    chose = f"You chose ({letter}): \"{Q3_CHOICES[letter]}\""
    feedback = {
        "a": "The loss decides where training moves the logits. Against the target (0.95, 0.05) the loss "
             "-0.95 log p - 0.05 log(1 - p) is lowest at p = 0.95, so the trained probabilities are pulled there "
             "instead of towards 1.0.",
        "c": "float32 rounding depends only on the margin the model produces: a face whose margin exceeds about 17 "
             "still gets exactly 1.0. Smoothing makes training stop short of such margins; it does not change the "
             "arithmetic.",
        "d": f"With two classes Keras spreads the smoothing over both: the true class's target is "
             f"1 - {LABEL_SMOOTHING} + {LABEL_SMOOTHING} / 2 = 0.95, not 0.9; and a target is not a cap: a face can "
             "still score above it.",
    }
    if letter in feedback:
        raise Incorrect(f"{chose} {feedback[letter]}")
    return ("Right: with smoothing the loss has its minimum at 0.95, a margin near 2.9, far from the 17 or so where "
            "float32 rounds p to 1.0. Plain cross-entropy (the paper's way, target 1.0) has no such minimum: its "
            "loss keeps falling as p nears 1, so training keeps pushing the margins up.")


q3 = Question(
    "q3", _check_q3,
    prompt=f"The default model is trained with label smoothing {LABEL_SMOOTHING}: with two classes a face's target is "
           "(0.95, 0.05) instead of (1, 0). What does that do? "
           + " ".join(f"({k}) {v}" for k, v in Q3_CHOICES.items()),
    hint="Write the loss for one face with the target (0.95, 0.05): L(p) = -0.95 log p - 0.05 log(1 - p). "
         "Where is it lowest? Then compare with the margin float32 needs to round p to 1.0 (notebook 04's q2).",
    solution="answer = 'b'   # dL/dp = -0.95 / p + 0.05 / (1 - p) = 0 at p = 0.95\nnb05.q3.check(answer)",
)
