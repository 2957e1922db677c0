"""Exercises for notebook 04 (the one-pixel attack explorer).

::

    from maskedu.exercises import nb04
    nb04.q1.check(my_perturb)        # your perturbation of one image by one candidate
    nb04.q2.check("b")               # why the probability fitness stalls (a letter)
    nb04.q3.check(my_queries)        # how many candidates the paper's budget scores

Each question has ``.hint()`` and ``.solution()``.
"""

from __future__ import annotations

import numpy as np

from ..attack import perturb
from ._core import Incorrect, Question

__all__ = ["q1", "q2", "q3", "Q2_CHOICES", "reference_perturb_one"]


def reference_perturb_one(image: np.ndarray, candidate) -> np.ndarray:
    """The solution of q1: a copy of ``image`` with each (x, y, r, g, b) of ``candidate`` written in."""
    out = image.copy()
    cand = np.asarray(candidate).reshape(-1, 5).astype(int)
    for x, y, r, g, b in cand:
        out[y, x] = (r, g, b)
    return out


# --------------------------------------------------------------------------- q1: perturb one candidate

_SWAP = ("x is the column and y the row, so the pixel is image[y, x], not image[x, y] "
         "(numpy indexes [row, column]).")


def _call(fn, image, candidate):
    try:
        return fn(image, candidate)
    except IndexError as exc:
        raise Incorrect(f"Your function indexed outside the image ({exc}). {_SWAP}") from None
    except Exception as exc:
        raise Incorrect(f"Your function failed on candidate {candidate.tolist()}: {type(exc).__name__}: {exc}") from None


def _check_q1(fn) -> None:
    if not callable(fn):
        raise Incorrect(f"Pass your function itself (my_perturb, without brackets), not {type(fn).__name__}.")
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (6, 9, 3), dtype=np.uint8)  # not square: x and y cannot be swapped silently
    before = image.copy()
    one = np.array([7, 2, 255, 0, 10])
    out = _call(fn, image, one)
    if not np.array_equal(image, before):
        raise Incorrect("Your function changed the original image. Work on a copy: out = image.copy().")
    if out is None:
        raise Incorrect("Your function returned None: return the changed copy of the image.")
    out = np.asarray(out)
    if out.shape != image.shape:
        raise Incorrect(f"For an image of shape {image.shape} your function returned shape {out.shape}; it must keep the shape.")
    if out.dtype != np.uint8:
        raise Incorrect(f"Your function returned {out.dtype} pixels; keep uint8 (image.copy() keeps the dtype).")
    expected = perturb(image, one)
    if not np.array_equal(out, expected):
        changed = np.argwhere((out != image).any(axis=2)).tolist()
        if not changed:
            raise Incorrect("Your function changed no pixel: write the colour (r, g, b) into the copy at [y, x].")
        if changed == [[2, 7]]:
            raise Incorrect(f"Right pixel, wrong colour: it should become (255, 0, 10), yours is {out[2, 7].tolist()} "
                            "(r, g, b are the last three numbers of the candidate, in that order).")
        raise Incorrect(f"Candidate (7, 2, 255, 0, 10) should change only pixel image[2, 7]; yours changed {changed[:5]}.")
    swap = np.array([4, 1, 9, 9, 9])  # a place where image[x, y] is also inside the image
    out_swap = np.asarray(_call(fn, image, swap))
    if np.argwhere((out_swap != image).any(axis=2)).tolist() == [[4, 1]]:
        raise Incorrect(_SWAP)
    three = np.array([0, 0, 1, 2, 3, 8, 5, 4, 5, 6, 3, 3, 200, 100, 0])
    out3 = np.asarray(_call(fn, image, three))
    if not np.array_equal(out3, perturb(image, three)):
        n_changed = int((out3 != image).any(axis=2).sum())
        raise Incorrect(f"With a 3-pixel candidate (15 numbers) three pixels should change; yours changed {n_changed}. "
                        "Handle every group of 5 numbers: candidate.reshape(-1, 5).")


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
        "# out[np.arange(S)[:, None], y, x] = rgb"
    ),
)


# --------------------------------------------------------------------------- q2: why the probability fitness stalls

Q2_CHOICES = {
    "a": "DE needs more generations: the curve would fall with a larger budget.",
    "b": "The model's float32 probability is exactly 1.0 for (almost) every candidate, so they all tie and DE "
         "cannot tell a better candidate from a worse one.",
    "c": "The mutation factor is too small for DE to move.",
    "d": "The network has no gradient with respect to its input pixels.",
}


def _check_q2(answer) -> str:
    if not isinstance(answer, str) or answer.strip().lower()[:1] not in Q2_CHOICES:
        raise Incorrect(f"Answer with one letter: {', '.join(Q2_CHOICES)}.")
    letter = answer.strip().lower()[:1]
    feedback = {
        "a": "More generations do not help a flat curve: if every candidate scores exactly 1.0 the selection has "
             "nothing to compare, whatever the budget. Look at the population band: it is a line at 1.0.",
        "c": "Mutation moves the candidates fine (the population keeps changing); what it cannot do is make the "
             "scores differ. Look at the band: every candidate scores the same.",
        "d": "DE never uses gradients; it only compares fitness values. And the network's logits do change with "
             "the pixels: the margin fitness sees that.",
    }
    if letter != "b":
        raise Incorrect(feedback[letter])
    return ("Right: float32 rounds p to exactly 1.0 when the logit gap exceeds about 17, every candidate ties, and "
            "the search is blind. The logits still differ, which is why the margin fitness can climb.")


q2 = Question(
    "q2", _check_q2,
    prompt="Why does the best-candidate curve of the probability fitness stay flat at 1.0 for a confident face? "
           + " ".join(f"({k}) {v}" for k, v in Q2_CHOICES.items()),
    hint="Look at the population band as well as the best curve: how many different values does the population have?",
    solution="answer = 'b'  # the probabilities round to exactly 1.0: all candidates tie",
)


# --------------------------------------------------------------------------- q3: the paper's budget


def _check_q3(answer) -> None:
    if isinstance(answer, bool) or not isinstance(answer, (int, np.integer, float, np.floating)):
        raise Incorrect(f"Give a whole number of candidates, got {type(answer).__name__}.")
    if answer == 30_400:
        return
    if answer == 30_000:
        raise Incorrect("75 generations x 400 = 30,000 leaves out the starting population, which is scored too.")
    if answer == 400 * 76 + 75:
        raise Incorrect("Close: the paper's code also queries the best candidate once per generation to test for "
                        "success, but the question asks for the candidates DE scores.")
    if answer == 80 * 75 or answer == 80 * 76:
        raise Incorrect("scipy's popsize is a multiplier of the number of parameters (5 per pixel): popsize=80 means "
                        "80 x 5 = 400 candidates per generation.")
    raise Incorrect(f"{answer} is not it: the starting population plus 75 generations, 400 candidates each.")


q3 = Question(
    "q3", _check_q3,
    prompt="How many candidates does the paper's budget score at most (population 400, 75 generations)?",
    hint="DE scores the whole starting population, then one trial population per generation.",
    solution="answer = 400 + 75 * 400   # 30,400",
)
