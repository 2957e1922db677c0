"""Exercises for notebook 07 (the attacker's access, white-box against black-box, defenses).

::

    from maskedu.exercises import nb07, ____
    nb07.q1.check(my_fgsm)       # one FGSM step from the gradient, on uint8 pixels
    nb07.q2.check("c")           # which defense does the adaptive search in extreme colours undo? (a letter)
    nb07.q3.check(my_wilson)     # the 95% Wilson interval of a success rate

Each question has ``.hint()`` and ``.solution()``.

>>> import numpy as np
>>> ok = lambda image, gradient, eps: np.clip(image.astype(int) + eps * np.sign(gradient), 0, 255).astype(np.uint8)
>>> q1.check(ok, display=False).correct
True
>>> print(q1.check(lambda image, gradient, eps: image + eps * np.sign(gradient).astype(np.uint8), display=False).message)
... # doctest: +ELLIPSIS
For a 4x5 image with eps = 4, ...
"""

from __future__ import annotations

import math

import numpy as np

from ..claims import wilson_interval
from ..defend import BitDepth, fgsm
from ._core import Incorrect, Question, call, choice, refuse_library

__all__ = ["q1", "q2", "q3", "Q2_CHOICES"]


# --------------------------------------------------------------------------- q1: FGSM from the gradient


def _fgsm(image: np.ndarray, gradient: np.ndarray, eps: int) -> np.ndarray:
    return np.clip(image.astype(np.int64) + eps * np.sign(gradient).astype(np.int64), 0, 255).astype(np.uint8)


def _q1_cases() -> list[tuple[np.ndarray, np.ndarray, int]]:
    """(uint8 image, float gradient, eps levels): edges near 0 and 255 (clipping, uint8 wrap-around), zero gradients."""
    rng = np.random.default_rng(7)
    cases = []
    img = rng.integers(0, 256, (4, 5, 3)).astype(np.uint8)
    img[0, 0] = (254, 1, 128)
    img[1, 1] = (0, 255, 3)
    grad = rng.normal(size=img.shape)
    grad[0, 0] = (1.0, -1.0, 0.0)
    grad[1, 1] = (-2.0, 3.0, -0.5)
    cases.append((img, grad, 4))
    cases.append((img, grad * 1e-6, 1))  # tiny gradients: only their sign counts
    for eps in (8, 2):
        im = rng.integers(0, 256, (6, 3, 3)).astype(np.uint8)
        g = rng.normal(size=im.shape)
        g[rng.random(im.shape) < 0.2] = 0.0
        cases.append((im, g, eps))
    return cases


def _check_q1(fn) -> str:
    if not callable(fn):
        raise Incorrect(f"You passed {type(fn).__name__} {fn!r}. Pass your function itself (my_fgsm, without brackets).")
    refuse_library(fn, [fgsm], "FGSM (maskedu.defend.fgsm)")
    for image, grad, eps in _q1_cases():
        before = image.copy()
        said = f"For a {image.shape[0]}x{image.shape[1]} image with eps = {eps}"
        out = call(fn, image, grad.copy(), eps, describe=f"{said[0].lower()}{said[1:]}")
        if not np.array_equal(image, before):
            raise Incorrect(f"{said}, your function changed the original image: build a new one.")
        out = np.asarray(out)
        if out.shape != image.shape:
            raise Incorrect(f"{said}, your function returned shape {out.shape}; keep the image's shape {image.shape}.")
        want = _fgsm(image, grad, eps)
        if out.dtype != np.uint8:
            if np.allclose(out, want):
                raise Incorrect(f"{said}, the values are right but the dtype is {out.dtype}: an adversarial image is a "
                                "real image, uint8. End with .astype(np.uint8) after clipping.")
            if np.allclose(out, image.astype(float) + eps * np.sign(grad)):
                raise Incorrect(f"{said}, some pixels left 0..255 (e.g. 254 + {eps}): clip to 0..255 with np.clip, "
                                "then turn the result into uint8.")
            raise Incorrect(f"{said}, your function returned {out.dtype} pixels that are not the FGSM step: "
                            "image + eps * sign(gradient), clipped to 0..255, as uint8.")
        if np.array_equal(out, want):
            continue
        wrapped = (image.astype(np.int64) + eps * np.sign(grad).astype(np.int64)) % 256
        if np.array_equal(out, wrapped.astype(np.uint8)):
            raise Incorrect(f"{said}, pixels near the edges wrapped around (254 + {eps} became {(254 + eps) % 256}): uint8 "
                            "arithmetic wraps. Compute in a wider type, image.astype(int), then clip to 0..255.")
        if np.array_equal(out, _fgsm(image, -grad, eps)):
            raise Incorrect(f"{said}, your step went down the gradient: that lowers the loss and makes the model more "
                            "sure. The attack climbs the loss: + eps * sign(gradient).")
        if np.allclose(out.astype(float), np.clip(image + eps * grad, 0, 255), atol=1):
            raise Incorrect(f"{said}, your step follows the gradient's size, not its sign: FGSM moves every channel by "
                            "exactly eps in the direction of the gradient's sign (np.sign).")
        diff = np.abs(out.astype(int) - image.astype(int))
        if diff.max() > eps:
            raise Incorrect(f"{said}, a pixel moved by {diff.max()} levels, more than eps = {eps}.")
        y, x, c = np.argwhere(out != want)[0]
        raise Incorrect(f"{said}, image[{y}, {x}, {c}] = {image[y, x, c]} with gradient {grad[y, x, c]:.3g} became "
                        f"{out[y, x, c]}, not {want[y, x, c]}.")
    return ("Right: one step of exactly eps along the sign of the gradient, clipped to 0..255, as uint8. Every pixel "
            "moves, and by the most the budget allows: that is why FGSM needs only one gradient.")


q1 = Question(
    "q1", _check_q1,
    prompt="Write my_fgsm(image, gradient, eps): the FGSM image, a uint8 copy of `image` with every channel moved by "
           "`eps` levels in the direction of the sign of `gradient` (the loss's gradient), clipped to 0..255.",
    hint="np.sign gives -1, 0 or +1 per channel. uint8 arithmetic wraps around (250 + 10 = 4): compute with "
         "image.astype(int), clip with np.clip(..., 0, 255), and only then .astype(np.uint8).",
    solution=(
        "def my_fgsm(image, gradient, eps):\n"
        "    step = eps * np.sign(gradient)                      # -eps, 0 or +eps per channel\n"
        "    return np.clip(image.astype(int) + step, 0, 255).astype(np.uint8)\n"
        "\n"
        "nb07.q1.check(my_fgsm)"
    ),
    answer="my_fgsm",
)


# --------------------------------------------------------------------------- q2: which defense breaks


Q2_CHOICES = {
    "a": "The median filter: a search that knows it is there puts its pixels anywhere it likes.",
    "b": "JPEG re-encoding: extreme colours survive compression.",
    "c": "Bit-depth squeezing: it rounds each channel to a few levels, but 0 and 255 are among those levels, so "
         "pixels in extreme colours pass through it unchanged.",
    "d": "Adversarial training: it only trained against small changes, so the 20 pixels go straight through.",
}


def _check_q2(answer) -> str:
    letter = choice(answer, Q2_CHOICES)
    squeezed = BitDepth(lambda b: np.tile([[0.5, 0.5]], (len(b), 1)), bits=3).transform(
        np.array([[[[0, 255, 255], [30, 140, 200]]]], np.uint8))[0, 0]
    chose = f"You chose ({letter}): \"{Q2_CHOICES[letter]}\""
    feedback = {
        "a": "A median filter replaces each pixel by the middle value of its 3x3 neighbourhood: a lone pixel is outvoted "
             "wherever it is. What breaks it is clustering pixels into squares, not the choice of colours.",
        "b": "JPEG does not keep exact colours: it smooths blocks of 8x8 pixels, so a lone extreme pixel is blurred "
             "into its neighbours. Extreme colours do not pass it unchanged.",
        "d": "Adversarial training changes the model, not the input: no choice of colours passes through it, and how "
             "well it resists sparse pixels is measured, not guaranteed.",
    }
    if letter in feedback:
        raise Incorrect(f"{chose} {feedback[letter]}")
    return (f"Right. Squeezed to 3 bits, the pixel (0, 255, 255) stays {squeezed[0].tolist()} while (30, 140, 200) "
            f"becomes {squeezed[1].tolist()}: the sparse search already uses extreme colours, so against squeezing "
            "the adaptive attack does what it did against the plain model. Compare with the table above.")


q2 = Question(
    "q2", _check_q2,
    prompt="The 20-pixel search sets every channel of its pixels to 0 or 255. Run against the defended model itself, "
           "which defense does it undo entirely? " + " ".join(f"({k}) {v}" for k, v in Q2_CHOICES.items()),
    hint="Squeeze the colour (0, 255, 255) to 3 bits: round(v / 255 * 7) / 7 * 255 per channel. What comes out?",
    solution="answer = 'c'   # 0 and 255 are levels of every bit depth: round(255 / 255 * 7) / 7 * 255 = 255\n"
             "nb07.q2.check(answer)",
)


# --------------------------------------------------------------------------- q3: the Wilson interval

_Q3_CASES = [(17, 30), (0, 30), (30, 30), (1, 8), (45, 50), (250, 1000), (3, 4)]


def _check_q3(fn) -> str:
    if not callable(fn):
        raise Incorrect(f"You passed {type(fn).__name__} {fn!r}. Pass your function itself (my_wilson, without brackets).")
    refuse_library(fn, [wilson_interval], "Wilson interval (maskedu.claims.wilson_interval)")
    for k, n in _Q3_CASES:
        out = call(fn, k, n, describe=f"for {k} successes of {n}")
        try:
            lo, hi = (float(v) for v in out)
        except (TypeError, ValueError):
            raise Incorrect(f"For {k} of {n} your function returned {out!r}; return two numbers, (low, high).") from None
        want = wilson_interval(k, n)
        said = f"For {k} successes of {n} your function returned ({lo:.4f}, {hi:.4f})"
        if lo > hi:
            raise Incorrect(f"{said}: low is above high. Return (low, high).")
        if math.isclose(lo, want[0], abs_tol=1e-4) and math.isclose(hi, want[1], abs_tol=1e-4):
            continue
        p = k / n
        half = 1.96 * math.sqrt(p * (1 - p) / n)
        if math.isclose(lo, p - half, abs_tol=1e-3) or math.isclose(lo, max(0.0, p - half), abs_tol=1e-3):
            raise Incorrect(f"{said}: that is the Wald interval, p ± 1.96 sqrt(p(1 - p)/n), which collapses to a point "
                            f"at 0 or {n} successes. The Wilson interval is centred at (p + z²/2n) / (1 + z²/n).")
        z90 = 1.6449
        c = (p + z90 * z90 / (2 * n)) / (1 + z90 * z90 / n)
        if math.isclose((lo + hi) / 2, c, abs_tol=2e-3) and hi - lo < want[1] - want[0]:
            raise Incorrect(f"{said}: too narrow, as with z = 1.645 (a 90% interval). A 95% interval uses z = 1.96.")
        raise Incorrect(f"{said}; the 95% Wilson interval is ({want[0]:.4f}, {want[1]:.4f}).")
    return ("Right. With 0 successes of 30 the interval still reaches about 11%: no success on 30 faces does not mean "
            "the attack never works.")


q3 = Question(
    "q3", _check_q3,
    prompt="Write my_wilson(successes, n): the 95% Wilson score interval (low, high) of the rate successes / n.",
    hint="With p = successes / n and z = 1.96: centre = (p + z²/(2n)) / (1 + z²/n) and half-width = "
         "z / (1 + z²/n) * sqrt(p(1 - p)/n + z²/(4n²)).",
    solution=(
        "def my_wilson(successes, n, z=1.96):\n"
        "    p = successes / n\n"
        "    denom = 1 + z * z / n\n"
        "    centre = (p + z * z / (2 * n)) / denom\n"
        "    half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))\n"
        "    return max(0.0, centre - half), min(1.0, centre + half)\n"
        "\n"
        "nb07.q3.check(my_wilson)"
    ),
    answer="my_wilson",
)
