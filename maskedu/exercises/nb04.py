"""Exercises for notebook 04 (the one-pixel attack explorer).

::

    from maskedu.exercises import nb04, ____
    nb04.q1.check(my_perturb)            # your perturbation of one image by one candidate
    nb04.q2.check(float32_probability)   # the probability a float32 softmax gives for a logit margin
    nb04.q3.check(my_queries)            # how many candidates the paper's budget scores

Each question has ``.hint()`` and ``.solution()``.

>>> import numpy as np
>>> q2.check(lambda m: np.float32(1) / (np.float32(1) + np.exp(-np.float32(m))), display=False).correct
True
>>> print(q2.check(lambda m: 1 / (1 + np.exp(-m)), display=False).message)  # doctest: +ELLIPSIS
For the margin 20.0 your function returned 0.9999999979388463 (a float64), but in float32...
"""

from __future__ import annotations

import math

import numpy as np

from ..attack import decode_candidates, perturb
from ._core import Incorrect, Question, call, need_function, number_answers, refuse_library

__all__ = ["q1", "q2", "q3"]


# --------------------------------------------------------------------------- q1: perturb one candidate

_SWAP = ("x is the column and y the row, so the pixel is image[y, x], not image[x, y] "
         "(numpy indexes [row, column]).")


def _expected(image: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    out = image.copy()
    for x, y, r, g, b in candidate.reshape(-1, 5):
        out[y, x] = (r, g, b)
    return out


def _q1_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, candidate): non-square images (x and y cannot be swapped silently), 1 to 3 pixels, corners."""
    rng = np.random.default_rng(4)
    cases = []
    image = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    cases.append((image, np.array([7, 2, 255, 0, 10])))  # one pixel
    cases.append((image, np.array([4, 1, 9, 9, 9])))  # image[x, y] is inside the image too
    cases.append((image, np.array([0, 0, 1, 2, 3, 8, 5, 4, 5, 6, 3, 3, 200, 100, 0])))  # three pixels, two corners
    tall = rng.integers(0, 256, (11, 4, 3), dtype=np.uint8)
    cases.append((tall, np.array([3, 10, 0, 0, 0, 0, 9, 255, 255, 255])))  # last column, last row
    for _ in range(3):
        h, w = (int(v) for v in rng.integers(5, 30, 2))
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        k = int(rng.integers(1, 4))
        spots = rng.choice(h * w, size=k, replace=False)
        cand = np.concatenate([[s % w, s // w, *rng.integers(0, 256, 3)] for s in spots]).astype(np.int64)
        cases.append((img, cand))
    return cases


def _pixels(cand: np.ndarray) -> list[tuple[int, ...]]:
    return [tuple(int(v) for v in p) for p in cand.reshape(-1, 5)]


def _check_q1(fn) -> str:
    need_function(fn, "my_perturb")
    refuse_library(fn, [perturb, decode_candidates], "perturb (maskedu.attack.perturb)")
    for image, cand in _q1_cases():
        before = image.copy()
        said = f"For a {image.shape[0]}x{image.shape[1]} image and the candidate {cand.tolist()}"
        try:
            out = call(fn, image, cand.copy(), describe=f"{said[0].lower()}{said[1:]}")
        except Incorrect as exc:
            raise Incorrect(f"{exc} {_SWAP}" if "IndexError" in str(exc) else str(exc)) from None
        if not np.array_equal(image, before):
            raise Incorrect(f"{said}, your function changed the original image. Work on a copy: out = image.copy().")
        if out is None:
            raise Incorrect(f"{said}, your function returned None: return the changed copy of the image.")
        out = np.asarray(out)
        if out.shape != image.shape:
            raise Incorrect(f"{said}, your function returned shape {out.shape}; it must keep the shape {image.shape}.")
        if out.dtype != np.uint8:
            raise Incorrect(f"{said}, your function returned {out.dtype} pixels; keep uint8 (image.copy() keeps the dtype).")
        expected = _expected(image, cand)
        if np.array_equal(out, expected):
            continue
        changed = [tuple(p) for p in np.argwhere((out != image).any(axis=2)).tolist()]
        want = [(y, x) for x, y, *_ in _pixels(cand)]
        if not changed:
            raise Incorrect(f"{said}, your function changed no pixel: write each colour (r, g, b) into the copy at [y, x].")
        if sorted(changed) == sorted({(x, y) for y, x in want}) and sorted(changed) != sorted(set(want)):
            raise Incorrect(f"{said}, your function changed the pixels [row, column] = {changed}, not {want}: {_SWAP}")
        if set(changed) <= set(want) and len(changed) < len(want):
            raise Incorrect(f"{said}, {len(want)} pixels should change ({want}); yours changed {len(changed)}: {changed}. "
                            "Handle every group of 5 numbers: candidate.reshape(-1, 5).")
        if sorted(changed) == sorted(want):
            y, x = next((y, x) for y, x in want if not np.array_equal(out[y, x], expected[y, x]))
            raise Incorrect(f"{said}, the right pixels changed, but image[{y}, {x}] became {out[y, x].tolist()}, not "
                            f"{expected[y, x].tolist()}: r, g, b are the last three numbers of each pixel, in that order.")
        raise Incorrect(f"{said}, the pixels {want} (as [row, column]) should change; yours changed {changed[:6]}.")
    return "Right: every pixel of every candidate lands at image[y, x], on a copy, in uint8."


q1 = Question(
    "q1", _check_q1,
    prompt="Write my_perturb(image, candidate): a copy of the image with the pixels of one candidate "
           "(x, y, r, g, b, x, y, r, g, b, ...) written in.",
    hint="Copy the image, then loop over candidate.reshape(-1, 5); remember that a numpy image is indexed [row, column] = [y, x].",
    solution=(
        "def my_perturb(image, candidate):\n"
        "    out = image.copy()\n"
        "    for x, y, r, g, b in np.asarray(candidate).reshape(-1, 5).astype(int):\n"
        "        out[y, x] = (r, g, b)\n"
        "    return out\n"
        "\n# maskedu.attack.perturb does the same for a whole population at once, without the loop:\n"
        "# out[np.arange(S)[:, None], y, x] = rgb\n"
        "nb04.q1.check(my_perturb)"
    ),
    answer="my_perturb",
)


# --------------------------------------------------------------------------- q2: a float32 probability

# margins (true logit minus the other): negative, small, large; none near the float32 edge (about 16.6),
# where the exact rounding depends on how the sum is written.
_Q2_MARGINS = [0.0, 2.0, -3.0, 0.5, 8.0, 12.0, 20.0, 25.0, 40.0, -20.0]


def _p32(margin: float) -> np.float32:
    m = np.float32(margin)
    return np.float32(1) / (np.float32(1) + np.exp(-m))


def _check_q2(fn) -> str:
    need_function(fn, "float32_probability")
    refuse_library(fn, [], "softmax")
    for m, got, out in number_answers(fn, _Q2_MARGINS, lambda m: f"for the margin {m}"):
        want = float(_p32(m))
        kind = getattr(out, "dtype", type(out).__name__)
        said = f"For the margin {m} your function returned {got!r} (a {kind})"
        if want == 1.0 and got != 1.0 and math.isclose(got, 1 / (1 + math.exp(-m)), rel_tol=1e-12):
            raise Incorrect(f"{said}, but in float32, as the model computes, 1 + exp(-{m:g}) rounds to exactly 1, so the "
                            "probability is exactly 1.0. Compute in float32: np.float32(...).")
        if math.isclose(got, 1 - want, rel_tol=1e-5, abs_tol=1e-12) and not math.isclose(want, 0.5):
            raise Incorrect(f"{said}: that is the other class's probability, 1 - p. The margin is the true logit "
                            f"minus the other, so p = 1 / (1 + exp(-margin)) = {want:.6g}.")
        if not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12) or (want == 1.0) != (got == 1.0):
            raise Incorrect(f"{said}; the softmax of the logits ({m:g}, 0) in float32 gives {want!r}. "
                            "p = 1 / (1 + exp(-margin)), each step in np.float32.")
    return ("Right. In float32 the probability is exactly 1.0 once the margin passes about 17: every such "
            "candidate ties and the probability fitness cannot rank them, while the margin still can.")


q2 = Question(
    "q2", _check_q2,
    prompt="Write float32_probability(margin): the true-class probability a two-class softmax gives, computed in "
           "float32 as the model does, when the true logit exceeds the other by `margin`.",
    hint="Softmax of the two logits (m, 0): p = exp(m) / (exp(m) + exp(0)) = 1 / (1 + exp(-m)). Turn the margin "
         "into np.float32 first, so that every step is float32.",
    solution=(
        "def float32_probability(margin):\n"
        "    m = np.float32(margin)\n"
        "    return np.float32(1) / (np.float32(1) + np.exp(-m))   # softmax of (m, 0), in float32\n"
        "\n"
        "for m in (5, 10, 15, 17, 20):\n"
        "    p = float32_probability(m)\n"
        "    print(m, p, p == 1.0)        # from a margin of about 17 on: exactly 1.0, a tie\n"
        "nb04.q2.check(float32_probability)"
    ),
    answer="float32_probability",
)


# --------------------------------------------------------------------------- q3: the paper's budget


def _check_q3(answer) -> None:
    if isinstance(answer, bool) or not isinstance(answer, (int, np.integer, float, np.floating)):
        raise Incorrect(f"You gave {type(answer).__name__} {answer!r}: give a whole number of candidates.")
    if answer == 30_400:
        return
    said = f"Your {answer:,}"
    if answer == 30_000:
        raise Incorrect(f"{said} = 75 generations x 400 leaves out the starting population, which is scored too.")
    if answer == 400 * 76 + 75:
        raise Incorrect(f"{said} is close: the paper's code also queries the best candidate once per generation to "
                        "test for success, but the question asks for the candidates DE scores.")
    if answer in (80 * 75, 80 * 76):
        raise Incorrect(f"{said} takes popsize=80 as the population, but scipy's popsize is a multiplier of the "
                        "number of parameters (5 per pixel): popsize=80 means 80 x 5 = 400 candidates per generation.")
    if answer in (400 * 74, 400 * 74 + 400 - 1):
        raise Incorrect(f"{said} is off by a generation: count the starting population plus 75 generations.")
    raise Incorrect(f"{said} is not it: the starting population plus 75 generations, 400 candidates each.")


q3 = Question(
    "q3", _check_q3,
    prompt="How many candidates does the paper's budget score at most (population 400, 75 generations)?",
    hint="DE scores the whole starting population, then one trial population per generation.",
    solution="n_candidates = 400 + 75 * 400   # 30,400\nnb04.q3.check(n_candidates)",
    answer="n_candidates",
)
