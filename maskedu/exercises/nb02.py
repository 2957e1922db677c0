"""Exercises for notebook 02 (cropping faces with MTCNN).

* ``q1``: write ``my_iou(a, b)``, the intersection over union of two boxes; the check tries it on several
  pairs it does not show (boxes apart, touching, nested, identical, in either order).
* ``q2``: read a plotted trade-off and choose the detector threshold that finds the most masked faces
  while keeping false alarms within a budget. The notebook registers the curve it plotted with
  :func:`use_tradeoff` first.

>>> def my_iou(a, b):
...     w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
...     h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
...     return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h)
>>> q1.check(my_iou, display=False).correct
True
>>> print(q1.check(lambda a, b: 0.5, display=False).message)  # doctest: +ELLIPSIS
For the boxes (10, 20, 60, 80) and (30, 40, 90, 100) your my_iou returned 0.5; the overlap is 1200 of 5400 pixels ...
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..imaging import iou as _library_iou
from ..imaging import iou_matrix as _library_iou_matrix
from ._core import Incorrect, Question, call, refuse_library

__all__ = ["Q1_BOXES", "q1", "q2", "use_tradeoff", "best_threshold", "FP_BUDGET"]

#: The two boxes of question 1's example, ``(x1, y1, x2, y2)`` with x2/y2 exclusive (as everywhere in maskedu).
Q1_BOXES = ((10, 20, 60, 80), (30, 40, 90, 100))

#: Question 2's budget: at most this share of face-free pictures may get a detection.
FP_BUDGET = 0.02


def _parts(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """(intersection, area of a, area of b) in pixels."""
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    inter = max(0, min(ax2, bx2) - max(ax1, bx1)) * max(0, min(ay2, by2) - max(ay1, by1))
    return inter, (ax2 - ax1) * (ay2 - ay1), (bx2 - bx1) * (by2 - by1)


def _true_iou(a: Sequence[float], b: Sequence[float]) -> float:
    inter, area_a, area_b = _parts(a, b)
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def _diagnosis(value: float, a, b) -> str:
    """What a wrong IoU most likely came from."""
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    inter, area_a, area_b = _parts(a, b)
    raw_w, raw_h = min(ax2, bx2) - max(ax1, bx1), min(ay2, by2) - max(ay1, by1)
    inter_incl = max(0, raw_w + 1) * max(0, raw_h + 1)
    union_incl = (ax2 - ax1 + 1) * (ay2 - ay1 + 1) + (bx2 - bx1 + 1) * (by2 - by1 + 1) - inter_incl
    truth = _true_iou(a, b)
    known = [
        (inter, "that is the intersection's area in pixels; divide it by the union's area."),
        (inter / (area_a + area_b), "you divided by the sum of the two areas, where the overlap is counted twice. "
                                    "Union = area A + area B - intersection."),
        (inter / area_a, "you divided by the area of the first box only; IoU divides by the union of both."),
        (inter / area_b, "you divided by the area of the second box only; IoU divides by the union of both."),
        (inter_incl / union_incl, "you counted x2 and y2 as inside the box (the +1 convention). In maskedu x2 and y2 "
                                  "are exclusive: width = x2 - x1."),
        (100 * truth, "give IoU as a fraction between 0 and 1, not a percentage."),
        (1 - truth, "that is 1 - IoU (a distance), not the IoU."),
    ]
    if raw_w * raw_h > 0 and (raw_w < 0 or raw_h < 0):
        unclipped = raw_w * raw_h
        known.insert(0, (unclipped / (area_a + area_b - unclipped),
                         "the boxes do not overlap, but both the overlap's width and height came out negative and "
                         "their product positive: clip each at 0 with max(0, ...)."))
    if raw_w * raw_h < 0:
        unclipped = raw_w * raw_h
        known.insert(0, (unclipped / (area_a + area_b - unclipped),
                         "the boxes do not overlap, so the overlap's width or height is negative: clip each at 0 "
                         "with max(0, ...)."))
    for candidate, message in known:
        if math.isclose(value, candidate, rel_tol=1e-6, abs_tol=1e-9):
            return message
    if value < 0:
        return "IoU is never negative: clip the overlap's width and height at 0 with max(0, ...)."
    if value > 1:
        return "IoU is never above 1."
    return ("find the overlap's width and height (the larger x1 to the smaller x2, clipped at 0), then "
            "intersection / (area A + area B - intersection).")


def _case_text(value: float, a, b) -> str:
    inter, area_a, area_b = _parts(a, b)
    union = area_a + area_b - inter
    truth = _true_iou(a, b)
    return (f"For the boxes {tuple(a)} and {tuple(b)} your my_iou returned {value:.6g}; the overlap is {inter} of "
            f"{union} pixels ({area_a} + {area_b} - {inter}), so the IoU is {truth:.6g}: {_diagnosis(value, a, b)}")


_Q1_FIXED = [
    ((10, 20, 60, 80), (30, 40, 90, 100)),  # the example: 1200 of 5400
    ((0, 0, 10, 10), (0, 0, 10, 10)),  # identical
    ((0, 0, 10, 10), (20, 20, 30, 30)),  # apart in x and y
    ((0, 0, 10, 10), (30, 2, 40, 8)),  # apart in x only: the overlap's height alone is positive
    ((0, 0, 10, 10), (10, 0, 20, 10)),  # touching edges: no overlap
    ((0, 0, 100, 100), (25, 25, 75, 75)),  # one inside the other
    ((5, 0, 15, 10), (0, 0, 10, 10)),  # the right box first
    ((0, 0, 4, 30), (0, 10, 40, 14)),  # a cross: thin boxes
]


def _q1_cases() -> list[tuple[tuple, tuple]]:
    rng = np.random.default_rng(7)
    cases = list(_Q1_FIXED)
    while len(cases) < len(_Q1_FIXED) + 6:
        x1, y1 = (int(v) for v in rng.integers(0, 60, 2))
        w, h = (int(v) for v in rng.integers(1, 50, 2))
        dx, dy = (int(v) for v in rng.integers(-30, 30, 2))
        w2, h2 = (int(v) for v in rng.integers(1, 50, 2))
        cases.append(((x1, y1, x1 + w, y1 + h), (x1 + dx, y1 + dy, x1 + dx + w2, y1 + dy + h2)))
    return cases


def _check_q1(answer: Any) -> str:
    if not callable(answer):
        if isinstance(answer, (int, float, np.integer, np.floating)) and not isinstance(answer, bool):
            a, b = Q1_BOXES
            verdict = ("is the IoU of nb02.Q1_BOXES" if math.isclose(float(answer), _true_iou(a, b), abs_tol=5e-4)
                       else f"is not the IoU of nb02.Q1_BOXES ({_diagnosis(float(answer), a, b)})")
            raise Incorrect(f"Your number {float(answer):.6g} {verdict}. The exercise asks for a function: write "
                            "my_iou(a, b) and pass it, nb02.q1.check(my_iou); the check tries it on several pairs.")
        raise Incorrect(f"You passed {type(answer).__name__} {answer!r}. Pass your function itself, "
                        "nb02.q1.check(my_iou), without brackets.")
    refuse_library(answer, [_library_iou, _library_iou_matrix], "iou (maskedu.imaging.iou)")
    for a, b in _q1_cases():
        out = call(answer, a, b, describe=f"for the boxes {a} and {b}")
        try:
            if isinstance(out, (str, bytes)):
                raise TypeError
            got = float(out)
        except (TypeError, ValueError):
            raise Incorrect(f"For the boxes {a} and {b} your my_iou returned {out!r}; return one number.") from None
        if not math.isclose(got, _true_iou(a, b), rel_tol=1e-6, abs_tol=1e-9):
            raise Incorrect(_case_text(got, a, b))
    return "Your function gets every case right, including boxes that only touch, boxes apart and boxes inside others."


q1 = Question(
    "q1",
    _check_q1,
    prompt="Write my_iou(a, b): the IoU of two boxes (x1, y1, x2, y2; x2/y2 exclusive). Try it on nb02.Q1_BOXES.",
    hint="The overlap runs from the larger x1 to the smaller x2 (and likewise in y); its width is never below 0. "
         "Union = area A + area B - intersection. For nb02.Q1_BOXES: 1200 / 5400.",
    solution=(
        "def my_iou(a, b):\n"
        "    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))   # the overlap's width, 0 when apart\n"
        "    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))\n"
        "    inter = w * h\n"
        "    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter\n"
        "    return inter / union\n"
        "\n"
        "print(my_iou(*nb02.Q1_BOXES))   # 1200 / 5400 = 0.222\n"
        "nb02.q1.check(my_iou)"
    ),
    answer="my_iou",
)


# --------------------------------------------------------------------------- q2: a threshold from a trade-off

_curve: dict[str, np.ndarray] | None = None


def use_tradeoff(thresholds: Sequence[float], found_rate: Sequence[float], false_positive_rate: Sequence[float]) -> None:
    """Register the trade-off the notebook plotted, so ``q2`` checks answers against it.

    ``found_rate`` is the share of masked faces found at each threshold, ``false_positive_rate`` the
    share of face-free pictures with a detection.
    """
    t = np.asarray(thresholds, dtype=float).reshape(-1)
    f = np.asarray(found_rate, dtype=float).reshape(-1)
    p = np.asarray(false_positive_rate, dtype=float).reshape(-1)
    if not (len(t) == len(f) == len(p)) or len(t) == 0:
        raise ValueError(f"thresholds, found_rate and false_positive_rate need the same non-zero length, got {len(t)}, {len(f)}, {len(p)}.")
    global _curve
    _curve = {"t": t, "found": f, "fp": p}


def best_threshold(thresholds, found_rate, false_positive_rate, budget: float = FP_BUDGET) -> float:
    """The threshold with the highest found rate among those whose false-positive rate is within ``budget``
    (the highest such threshold when several tie: the safest choice)."""
    t, f, p = (np.asarray(v, dtype=float) for v in (thresholds, found_rate, false_positive_rate))
    ok = p <= budget + 1e-12
    if not ok.any():
        return float(t.max())
    best = f[ok].max()
    return float(t[ok & (f >= best - 1e-12)].max())


def _check_q2(answer: Any) -> str:
    if _curve is None:
        raise Incorrect("Run the cell that plots the trade-off first: it registers the curve with nb02.use_tradeoff(...).")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise Incorrect(f"Give one threshold (a number between 0 and 1), got {answer!r}.") from None
    t, f, p = _curve["t"], _curve["found"], _curve["fp"]
    if not t.min() - 1e-9 <= value <= t.max() + 1e-9:
        raise Incorrect(f"Choose one of the plotted thresholds, between {t.min():.2f} and {t.max():.2f}.")
    i = int(np.argmin(np.abs(t - value)))
    if abs(t[i] - value) > 1e-6:
        raise Incorrect(f"{value} is not one of the plotted thresholds; the nearest is {t[i]:.2f}.")
    best = best_threshold(t, f, p)
    j = int(np.argmin(np.abs(t - best)))
    if p[i] > FP_BUDGET + 1e-12:
        raise Incorrect(f"At {value:.2f} false alarms hit {100 * p[i]:.1f}% of the face-free pictures, over the "
                        f"{100 * FP_BUDGET:.0f}% budget. Move the threshold up.")
    if f[i] < f[j] - 1e-12:
        raise Incorrect(f"Within budget, but at {value:.2f} only {100 * f[i]:.1f}% of masked faces are found; "
                        f"a lower threshold finds more and still keeps false alarms within {100 * FP_BUDGET:.0f}%.")
    return (f"Yes: {100 * f[i]:.1f}% of masked faces found, {100 * p[i]:.1f}% false alarms. Going lower buys few "
            "faces and costs false alarms that would end up as 'faces' in the training data.")


q2 = Question(
    "q2",
    _check_q2,
    prompt=f"From the plotted trade-off, choose the threshold that finds the most masked faces while at most "
           f"{100 * FP_BUDGET:.0f}% of the face-free pictures get a detection.",
    hint="First rule out every threshold whose false-alarm rate is above the budget; among the rest, take the one "
         "with the highest found rate (if several tie, the highest threshold is the safest).",
    solution=(
        "ok = curve.false_positive_rate <= nb02.FP_BUDGET      # within the false-alarm budget\n"
        "found = curve.found_rate[\"with_mask\"]\n"
        "best = found[ok].max()                                # the most masked faces among those\n"
        "my_threshold = curve.thresholds[ok & (found == best)].max()  # ties: the highest (safest) threshold\n"
        "# the same as nb02.best_threshold(curve.thresholds, found, curve.false_positive_rate)\n"
        "nb02.q2.check(my_threshold)"
    ),
    answer="my_threshold",
)
