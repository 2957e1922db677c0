"""Exercises of notebooks 04 and 05 accept the right answers and explain typical wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

from maskedu.exercises import nb04, nb05


def _msg(q, answer):
    res = q.check(answer, display=False)
    return res.correct, res.message


def test_nb04_q1_accepts_the_solution():
    assert nb04.q1.check(nb04.reference_perturb_one, display=False).correct

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
    return nb04.reference_perturb_one(image, candidate).astype(np.float32)


@pytest.mark.parametrize(
    "fn, words",
    [
        (_swapped, "image[y, x], not image[x, y]"),
        (_in_place, "changed the original image"),
        (_first_pixel_only, "three pixels should change"),
        (_bgr, "Right pixel, wrong colour"),
        (_floats, "keep uint8"),
        (lambda image, c: None, "returned None"),
        ("not a function", "Pass your function itself"),
    ],
)
def test_nb04_q1_rejects_typical_mistakes(fn, words):
    ok, msg = _msg(nb04.q1, fn)
    assert not ok and words in msg


def test_nb04_q2_and_q3():
    assert nb04.q2.check("b", display=False).correct
    assert nb04.q2.check(" B) ties ", display=False).correct
    ok, msg = _msg(nb04.q2, "a")
    assert not ok and "flat curve" in msg
    ok, msg = _msg(nb04.q2, "z")
    assert not ok and "one letter" in msg
    assert nb04.q3.check(30_400, display=False).correct
    ok, msg = _msg(nb04.q3, 30_000)
    assert not ok and "starting population" in msg
    ok, msg = _msg(nb04.q3, 6000)
    assert not ok and "multiplier" in msg


def test_nb05_q1():
    assert nb05.q1.check(lambda p: np.log(p / (1 - p)), display=False).correct
    for fn, words in [(lambda p: np.log((1 - p) / p), "sign is flipped"), (lambda p: np.log10(p / (1 - p)), "log10"),
                      (lambda p: 2 * p - 1, "probability gap"), (lambda p: p, "should be 2.1972")]:
        ok, msg = _msg(nb05.q1, fn)
        assert not ok and words in msg, msg


def test_nb05_q2():
    def right(records, pixels, fitness):
        mine = [r["success"] for r in records if r["pixels"] == pixels and r["fitness"] == fitness]
        return sum(mine) / len(mine)

    assert nb05.q2.check(right, display=False).correct
    wrong = [
        (lambda rec, px, f: 100 * right(rec, px, f), "not a percentage"),
        (lambda rec, px, f: sum(r["success"] for r in rec if r["pixels"] == px and r["fitness"] == f), "number of successes"),
        (lambda rec, px, f: np.mean([r["success"] for r in rec if r["pixels"] == px]), "mixed both fitness"),
        (lambda rec, px, f: "high", "Return one number"),
    ]
    for fn, words in wrong:
        ok, msg = _msg(nb05.q2, fn)
        assert not ok and words in msg, msg


def test_nb05_q3():
    assert nb05.q3.check("c", display=False).correct
    ok, msg = _msg(nb05.q3, "a")
    assert not ok and "logits are continuous" in msg
