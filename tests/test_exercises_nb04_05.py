"""Exercises of notebooks 04 and 05 accept the right answers and explain typical wrong ones, quoting them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from maskedu.exercises import nb04, nb05


def _msg(q, answer):
    res = q.check(answer, display=False)
    return res.correct, res.message


def right_perturb(image, candidate):
    out = image.copy()
    for x, y, r, g, b in np.asarray(candidate).reshape(-1, 5).astype(int):
        out[y, x] = (r, g, b)
    return out


def test_nb04_q1_accepts_a_loop_and_a_vectorised_answer():
    assert nb04.q1.check(right_perturb, display=False).correct

    def vectorised(image, candidate):
        out = image.copy()
        c = np.asarray(candidate).reshape(-1, 5).astype(int)
        out[c[:, 1], c[:, 0]] = c[:, 2:]
        return out

    assert nb04.q1.check(vectorised, display=False).correct


def _swapped(image, candidate):
    out = image.copy()
    for x, y, r, g, b in np.asarray(candidate).reshape(-1, 5).astype(int):
        out[x, y] = (r, g, b)
    return out


def _in_place(image, candidate):
    x, y, r, g, b = np.asarray(candidate)[:5].astype(int)
    image[y, x] = (r, g, b)
    return image


def _first_pixel_only(image, candidate):
    out = image.copy()
    x, y, r, g, b = np.asarray(candidate)[:5].astype(int)
    out[y, x] = (r, g, b)
    return out


def _bgr(image, candidate):
    out = image.copy()
    for x, y, r, g, b in np.asarray(candidate).reshape(-1, 5).astype(int):
        out[y, x] = (b, g, r)
    return out


def _floats(image, candidate):
    return right_perturb(image, candidate).astype(np.float32)


def _square_only(image, candidate):  # right on the first image, wrong where the shape differs
    out = image.copy()
    for x, y, r, g, b in np.asarray(candidate).reshape(-1, 5).astype(int):
        out[min(y, 5), min(x, 8)] = (r, g, b)
    return out


@pytest.mark.parametrize(
    "fn, words",
    [
        (_swapped, "image[y, x], not image[x, y]"),
        (_in_place, "changed the original image"),
        (_first_pixel_only, "3 pixels should change ([(0, 0), (5, 8), (3, 3)]); yours changed 1: [(0, 0)]"),
        (_bgr, "image[2, 7] became [10, 0, 255], not [255, 0, 10]"),
        (_floats, "returned float32 pixels"),
        (_square_only, "11x4 image"),
        (lambda image, c: None, "returned None"),
        ("not a function", "Pass your function itself"),
    ],
)
def test_nb04_q1_rejects_typical_mistakes(fn, words):
    ok, msg = _msg(nb04.q1, fn)
    assert not ok and words in msg, msg


def p32(m):
    m = np.float32(m)
    return np.float32(1) / (np.float32(1) + np.exp(-m))


def test_nb04_q2_accepts_float32_arithmetic():
    assert nb04.q2.check(p32, display=False).correct
    assert nb04.q2.check(lambda m: np.exp(np.float32(m)) / (np.exp(np.float32(m)) + np.float32(1)), display=False).correct
    assert nb04.q2.check(lambda m: np.float32(1 / (1 + math.exp(-m))), display=False).correct  # float64, then rounded


@pytest.mark.parametrize("fn, words", [
    (lambda m: 1 / (1 + math.exp(-m)), "For the margin 20.0 your function returned 0.9999999979388463 (a float)"),
    (lambda m: p32(-m), "For the margin 2.0 your function returned 0.11920"),
    (lambda m: p32(m / 2), "softmax of the logits (2, 0) in float32 gives 0.8807"),
    (lambda m: "high", "returned 'high'"),
    (42, "Pass your function itself"),
])
def test_nb04_q2_explains_wrong_functions_with_their_value(fn, words):
    ok, msg = _msg(nb04.q2, fn)
    assert not ok and words in msg, msg


def test_nb04_q2_other_class():
    ok, msg = _msg(nb04.q2, lambda m: p32(-m))
    assert not ok and "the other class's probability" in msg


def test_nb04_q3():
    assert nb04.q3.check(30_400, display=False).correct
    ok, msg = _msg(nb04.q3, 30_000)
    assert not ok and "Your 30,000" in msg and "starting population" in msg
    ok, msg = _msg(nb04.q3, 6000)
    assert not ok and "Your 6,000" in msg and "multiplier" in msg
    ok, msg = _msg(nb04.q3, "30400")
    assert not ok and "str '30400'" in msg


def test_nb05_q1():
    assert nb05.q1.check(lambda p: np.log(p / (1 - p)), display=False).correct
    for fn, words in [(lambda p: np.log((1 - p) / p), "returned -2.19722; the margin is log(0.9 / 0.1) = 2.19722: your sign is flipped"),
                      (lambda p: np.log10(p / (1 - p)), "log10"),
                      (lambda p: 2 * p - 1, "probability gap"),
                      (lambda p: np.log(p), "log(p) is the true logit only up to a constant"),
                      (lambda p: p, "For p = 0.9 your function returned 0.9; the margin is log(0.9 / 0.1) = 2.19722")]:
        ok, msg = _msg(nb05.q1, fn)
        assert not ok and words in msg, msg


def test_nb05_q1_hidden_cases_catch_a_function_right_only_for_large_p():
    ok, msg = _msg(nb05.q1, lambda p: abs(math.log(p / (1 - p))))
    assert not ok and "For p = 0.2 your function returned 1.38629" in msg


def _right_rate(records, pixels, fitness):
    mine = [r["success"] for r in records if r["pixels"] == pixels and r["fitness"] == fitness]
    return sum(mine) / len(mine)


def test_nb05_q2():
    assert nb05.q2.check(_right_rate, display=False).correct
    wrong = [
        (lambda rec, px, f: 100 * _right_rate(rec, px, f), "not a percentage"),
        (lambda rec, px, f: sum(r["success"] for r in rec if r["pixels"] == px and r["fitness"] == f), "number of successes"),
        (lambda rec, px, f: np.mean([r["success"] for r in rec if r["pixels"] == px]), "mixed both fitness"),
        (lambda rec, px, f: np.mean([r["success"] for r in rec if r["fitness"] == f]), "mixed the pixel counts"),
        (lambda rec, px, f: np.mean([r["success"] for r in rec]), "rate over every record"),
        (lambda rec, px, f: "high", "returned 'high' (str)"),
    ]
    for fn, words in wrong:
        ok, msg = _msg(nb05.q2, fn)
        assert not ok and words in msg and "For pixels=1, fitness='margin' your function returned" in msg, msg


def test_nb05_q2_hidden_cases_include_all_and_none():
    def never_zero(records, pixels, fitness):
        rate = _right_rate(records, pixels, fitness)
        return rate if 0 < rate < 1 else 0.5

    ok, msg = _msg(nb05.q2, never_zero)
    assert not ok and "returned 0.5" in msg


def test_nb05_q3_is_about_label_smoothing_not_about_this_run():
    assert nb05.q3.check("b", display=False).correct
    assert "0.95" in nb05.Q3_CHOICES["b"] and nb05.LABEL_SMOOTHING == 0.1
    ok, msg = _msg(nb05.q3, "d")
    assert not ok and "You chose (d)" in msg and "0.95, not 0.9" in msg
    ok, msg = _msg(nb05.q3, "a")
    assert not ok and "lowest at p = 0.95" in msg
    # the smoothed target really is 0.95 and the loss is lowest there
    target = 1 - nb05.LABEL_SMOOTHING + nb05.LABEL_SMOOTHING / 2
    p = np.linspace(0.5, 0.9999, 20001)
    loss = -target * np.log(p) - (1 - target) * np.log(1 - p)
    assert math.isclose(p[np.argmin(loss)], 0.95, abs_tol=1e-3)


@pytest.mark.parametrize("question, name, first", [
    (nb04.q2, "float32_probability", "For the margin 0.0"),
    (nb05.q1, "margin_from_probability", "For p = 0.9"),
])
def test_single_number_questions_refuse_a_value_and_a_non_number(question, name, first):
    ok, msg = _msg(question, 0.5)
    assert not ok and msg == f"You passed float 0.5. Pass your function itself ({name}, without brackets)."
    ok, msg = _msg(question, lambda x: [x, x])
    assert not ok and msg.startswith(f"{first} your function returned [") and msg.endswith("; return one number.")
    ok, msg = _msg(question, lambda x: None)
    assert not ok and msg == f"{first} your function returned None; return one number."


def test_function_questions_refuse_a_value():
    for question, name in ((nb04.q1, "my_perturb"), (nb05.q2, "success_rate")):
        ok, msg = _msg(question, 3)
        assert not ok and msg == f"You passed int 3. Pass your function itself ({name}, without brackets)."
