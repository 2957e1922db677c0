"""Exercises of notebook 07: blanks and stubs are "not attempted", the solutions pass, typical wrong answers get
specific feedback, and maskedu's own functions are refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from maskedu.claims import wilson_interval
from maskedu.defend import fgsm
from maskedu.exercises import ____, nb07


def _check(q, answer):
    res = q.check(answer, display=False)
    return res.correct, res.attempted, res.message


@pytest.mark.parametrize("q", [nb07.q1, nb07.q2, nb07.q3])
def test_blank_and_stub_are_not_attempted(q):
    def stub(*args):
        raise NotImplementedError

    for answer in (____, stub):
        correct, attempted, message = _check(q, answer)
        if q is nb07.q2 and answer is stub:
            assert not correct  # a function is not a letter
            continue
        assert not correct and not attempted and "not attempted" in message


@pytest.mark.parametrize("q", [nb07.q1, nb07.q2, nb07.q3])
def test_the_solution_passes(q, capsys):
    ns = {"np": np, "nb07": nb07}
    exec(q.solution_text, ns)
    correct, attempted, message = _check(q, eval(q.answer, ns))
    assert correct and attempted, message


def test_q1_explains_typical_wrong_fgsm():
    def wraps(image, gradient, eps):
        return image + (eps * np.sign(gradient)).astype(np.int64).astype(np.uint8)

    def downhill(image, gradient, eps):
        return np.clip(image.astype(int) - eps * np.sign(gradient), 0, 255).astype(np.uint8)

    def unclipped_float(image, gradient, eps):
        return image.astype(float) + eps * np.sign(gradient)

    def library(image, gradient, eps):
        return fgsm(None, image[None], [0], epsilon=eps / 255).adversarial[0]

    assert "wrapped around" in _check(nb07.q1, wraps)[2]
    assert "went down the gradient" in _check(nb07.q1, downhill)[2]
    assert "clip to 0..255" in _check(nb07.q1, unclipped_float)[2]
    assert "maskedu's own" in _check(nb07.q1, library)[2]


def test_q2_takes_letters_and_explains_the_wrong_ones():
    assert _check(nb07.q2, "(C)")[0]
    for wrong in "abd":
        correct, attempted, message = _check(nb07.q2, wrong)
        assert not correct and attempted and message.startswith(f"You chose ({wrong})")
    assert "not one of the choices" in _check(nb07.q2, "squeeze")[2]


def test_q3_explains_wald_and_refuses_the_library():
    def wald(k, n):
        p = k / n
        h = 1.96 * math.sqrt(p * (1 - p) / n)
        return p - h, p + h

    assert "Wald interval" in _check(nb07.q3, wald)[2]
    assert "maskedu's own" in _check(nb07.q3, lambda k, n: wilson_interval(k, n))[2]
    assert "low is above high" in _check(nb07.q3, lambda k, n: (0.9, 0.1))[2]
