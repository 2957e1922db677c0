"""Exercises for notebook 06 (the adversarial mask pattern).

* ``q1``: write the Metropolis acceptance probability, ``accept_probability(delta, temperature)``.
* ``q2``: predict what a very fast cooling schedule does (a letter), then run it.

>>> import math
>>> q1.check(lambda d, t: 1.0 if d >= 0 else math.exp(d / t), display=False).correct
True
>>> q1.check(lambda d, t: math.exp(-d / t), display=False).correct
False
>>> q2.check("(B)", display=False).correct, q2.check("banana", display=False).correct
(True, False)
"""

from __future__ import annotations

import math

import numpy as np

from ..anneal import acceptance_probability as _library_acceptance
from ._core import Incorrect, Question, call, choice, refuse_library

__all__ = ["q1", "q2", "FAST_COOLING_CHOICES"]

# (delta, temperature, expected) with delta = candidate fitness - current fitness; we maximise
_CASES = [
    (0.5, 1.0, 1.0),
    (2.0, 0.1, 1.0),
    (0.0, 1.0, 1.0),
    (-1.0, 1.0, math.exp(-1.0)),
    (-1.0, 2.0, math.exp(-0.5)),
    (-0.2, 0.1, math.exp(-2.0)),
    (-3.0, 10.0, math.exp(-0.3)),
    (-0.05, 0.5, math.exp(-0.1)),
]


def _cases() -> list[tuple[float, float, float]]:
    """The fixed cases above and a few drawn ones (a tiny loss, a big one, cold and hot)."""
    rng = np.random.default_rng(6)
    drawn = [(-float(np.round(rng.uniform(0.01, 3.0), 3)), float(np.round(rng.uniform(0.05, 5.0), 3))) for _ in range(4)]
    drawn += [(float(np.round(rng.uniform(0.01, 3.0), 3)), float(np.round(rng.uniform(0.05, 5.0), 3))) for _ in range(2)]
    return _CASES + [(d, t, 1.0 if d >= 0 else math.exp(d / t)) for d, t in drawn]


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


def _check_q1(func):
    if not callable(func):
        raise Incorrect(f"You passed {type(func).__name__} {func!r}. Pass the function itself, e.g. "
                        "nb06.q1.check(accept_probability), not its result.")
    refuse_library(func, [_library_acceptance], "acceptance_probability (maskedu.anneal)")
    got = []
    for delta, temperature, expected in _cases():
        out = call(func, delta, temperature, describe=f"for accept_probability({delta}, {temperature})")
        try:
            value = float(out)
        except (TypeError, ValueError):
            raise Incorrect(f"accept_probability({delta}, {temperature}) returned {out!r}; return one number.") from None
        got.append((delta, temperature, expected, value))
    for delta, temperature, expected, value in got:
        if not math.isfinite(value):
            raise Incorrect(f"accept_probability({delta}, {temperature}) returned {value}; a probability is a finite number.")
        if value < 0:
            raise Incorrect(f"accept_probability({delta}, {temperature}) = {value:.4g} is negative; a probability lies in [0, 1].")
    improvements = [g for g in got if g[0] >= 0]
    worse = [g for g in got if g[0] < 0]
    for delta, temperature, expected, value in improvements:
        if _close(value, 1.0):
            continue
        if _close(value, math.exp(delta / temperature)) and delta > 0:
            raise Incorrect(f"For a better candidate (delta={delta}) you return exp(delta / T) = {value:.3g}, above 1. "
                            "A better (or equally good) move is always taken: return 1.0 when delta >= 0.")
        if not _close(value, 1.0):
            raise Incorrect(f"accept_probability({delta}, {temperature}) = {value:.4g}, but a move that is at least as good "
                            "(delta >= 0) is always accepted: the probability is 1.")
    for delta, temperature, expected, value in worse:
        if _close(value, expected):
            continue
        if _close(value, 1.0):
            raise Incorrect(f"accept_probability({delta}, {temperature}) = 1: you accept every worse move, which is a "
                            "random walk. Use exp(delta / T).")
        if _close(value, math.exp(-delta / temperature)):
            raise Incorrect(f"accept_probability({delta}, {temperature}) = {value:.4g}: the sign is flipped. We maximise, so a "
                            "worse move has delta < 0 and its probability exp(delta / T) is below 1.")
        if _close(value, math.exp(delta * temperature)):
            raise Incorrect(f"accept_probability({delta}, {temperature}) = {value:.4g}: the temperature is in the numerator. "
                            "Divide by T, so that a hotter search (bigger T) accepts worse moves more readily.")
        if value > 1:
            raise Incorrect(f"accept_probability({delta}, {temperature}) = {value:.4g} is above 1; a probability lies in [0, 1].")
        if _close(value, 0.0):
            raise Incorrect(f"accept_probability({delta}, {temperature}) = 0: you reject every worse move. That is hill "
                            "climbing, not annealing: accept it with probability exp(delta / T).")
        if not _close(value, expected):
            raise Incorrect(f"accept_probability({delta}, {temperature}) should be exp({delta} / {temperature}) = {expected:.4g}, "
                            f"you return {value:.4g}.")
    return "Correct: improvements always, worse moves with probability exp(delta / T), the Metropolis rule."


q1 = Question(
    "q1",
    _check_q1,
    prompt="Write accept_probability(delta, temperature): the probability of moving to a candidate whose fitness "
           "is `delta` higher than the current one (we maximise).",
    hint="Two cases. delta >= 0: the move is at least as good, always take it. delta < 0: math.exp(delta / temperature), "
         "which is between 0 and 1 and grows with the temperature.",
    solution="import math\n\ndef accept_probability(delta, temperature):\n    if delta >= 0:\n        return 1.0\n"
             "    return math.exp(delta / temperature)\n\nnb06.q1.check(accept_probability)",
    answer="accept_probability",
)


FAST_COOLING_CHOICES = {
    "a": "It explores more widely, because it reaches every temperature sooner.",
    "b": "It becomes hill climbing almost at once: it accepts almost no worse move, and gets stuck on the first peak it climbs.",
    "c": "It becomes a random walk that accepts every move.",
    "d": "Nothing changes: the schedule does not matter, only the number of iterations.",
}


def _check_q2(answer):
    letter = choice(answer, FAST_COOLING_CHOICES)
    chose = f"You chose ({letter}): \"{FAST_COOLING_CHOICES[letter]}\""
    feedback = {
        "a": "the temperature is what lets the search accept worse moves, so reaching the low temperatures sooner "
             "means exploring *less*. Run the cell below and look at the acceptance of worse moves.",
        "c": "that is what a search that stays very *hot* does (T large: exp(delta / T) near 1). Fast cooling is "
             "the opposite.",
        "d": "the schedule decides how many worse moves are accepted, and when; run the comparison below to see "
             "the difference.",
    }
    if letter in feedback:
        raise Incorrect(f"{chose} No: {feedback[letter]}")
    return ("Correct: with T near 0 after a few steps, exp(delta / T) is essentially 0 for any loss, so the search only "
            "climbs (greedy) and keeps the first local optimum it reaches.")


q2 = Question(
    "q2",
    _check_q2,
    prompt="The temperature falls by a factor of e every iteration (exponential decay 1.0). What does the search do?\n"
           + "\n".join(f"  ({k}) {v}" for k, v in FAST_COOLING_CHOICES.items()),
    hint="Compute the temperature after 10 iterations, then exp(-0.1 / T) for a small loss of 0.1.",
    solution="answer = 'b'  # greedy hill climbing, stuck in the first local optimum\nnb06.q2.check(answer)",
)
