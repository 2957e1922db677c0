"""Notebook 06 exercises: the checks accept the right answers and explain the typical wrong ones."""

from __future__ import annotations

import math

from maskedu.exercises import nb06


def _msg(answer, q=nb06.q1):
    result = q.check(answer, display=False)
    return result.correct, result.message


def test_q1_accepts_the_metropolis_rule():
    def mine(delta, temperature):
        return 1.0 if delta >= 0 else math.exp(delta / temperature)

    assert _msg(mine)[0]
    assert _msg(lambda d, t: min(1.0, math.exp(d / t)))[0]


def test_q1_explains_typical_mistakes():
    ok, msg = _msg(lambda d, t: math.exp(-d / t) if d < 0 else 1.0)
    assert not ok and "sign" in msg and "accept_probability(-1.0, 1.0) = 2.718" in msg
    ok, msg = _msg(lambda d, t: math.exp(d * t) if d < 0 else 1.0)
    assert not ok and "numerator" in msg
    ok, msg = _msg(lambda d, t: math.exp(d / t))
    assert not ok and "always taken" in msg and "(delta=0.5)" in msg
    ok, msg = _msg(lambda d, t: 1.0 if d >= 0 else 0.0)
    assert not ok and "hill" in msg
    ok, msg = _msg(lambda d, t: 1.0)
    assert not ok and "random walk" in msg
    ok, msg = _msg(lambda d, t: 1.0 if d > 0 else math.exp(d / t) / 2)
    assert not ok and "accept_probability(0.0, 1.0) = 0.5" in msg
    ok, msg = _msg(0.37)
    assert not ok and "float 0.37" in msg and "function itself" in msg
    ok, msg = _msg(lambda d: d)
    assert not ok and "raised TypeError" in msg


def test_q1_hidden_cases_go_beyond_the_fixed_ones():
    fixed = {(d, t) for d, t, _ in nb06._CASES}

    def memorised(delta, temperature):
        if (delta, temperature) in fixed:
            return 1.0 if delta >= 0 else math.exp(delta / temperature)
        return 0.5

    ok, msg = _msg(memorised)
    assert not ok and "0.5" in msg


def test_q2_multiple_choice():
    assert _msg("b", nb06.q2)[0]
    assert _msg(" (B) ", nb06.q2)[0]
    assert _msg(nb06.FAST_COOLING_CHOICES["b"].upper(), nb06.q2)[0]
    for wrong, word in (("a", "less"), ("c", "hot"), ("d", "schedule")):
        ok, msg = _msg(wrong, nb06.q2)
        assert not ok and word in msg and f"You chose ({wrong})" in msg
    ok, msg = _msg("e", nb06.q2)
    assert not ok and "one letter" in msg
    ok, msg = _msg("banana", nb06.q2)
    assert not ok and "'banana' is not one of the choices" in msg
    assert not nb06.q2.check(display=False).correct
