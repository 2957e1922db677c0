"""Exercises for notebook 02 (cropping faces with MTCNN).

* ``q1``: compute the IoU of two boxes, either as a number for the boxes in :data:`Q1_BOXES` or as
  a function ``my_iou(a, b)`` that is then tried on several pairs.
* ``q2``: read a plotted trade-off and choose the detector threshold that finds the most masked faces
  while keeping false alarms within a budget. The notebook registers the curve it plotted with
  :func:`use_tradeoff` first.

>>> q1.check(2 / 9, display=False).correct
True
>>> q1.check(1200 / 6600, display=False).message.startswith("You divided by the sum")
True
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ._core import Incorrect, Question

__all__ = ["Q1_BOXES", "q1", "q2", "use_tradeoff", "best_threshold", "FP_BUDGET"]

#: The two boxes of question 1, ``(x1, y1, x2, y2)`` with x2/y2 exclusive (as everywhere in maskedu).
Q1_BOXES = ((10, 20, 60, 80), (30, 40, 90, 100))

#: Question 2's budget: at most this share of face-free pictures may get a detection.
FP_BUDGET = 0.02


def _true_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    inter = max(0, min(ax2, bx2) - max(ax1, bx1)) * max(0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def _diagnose_number(value: float, a, b) -> None:
    """Raise Incorrect with what the number most likely came from."""
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    inter = max(0, min(ax2, bx2) - max(ax1, bx1)) * max(0, min(ay2, by2) - max(ay1, by1))
    area_a, area_b = (ax2 - ax1) * (ay2 - ay1), (bx2 - bx1) * (by2 - by1)
    inter_incl = max(0, min(ax2, bx2) - max(ax1, bx1) + 1) * max(0, min(ay2, by2) - max(ay1, by1) + 1)
    union_incl = (ax2 - ax1 + 1) * (ay2 - ay1 + 1) + (bx2 - bx1 + 1) * (by2 - by1 + 1) - inter_incl
    truth = _true_iou(a, b)
    known = [
        (inter, "That is the intersection's area in pixels; divide it by the union's area."),
        (inter / (area_a + area_b), "You divided by the sum of the two areas: the overlap is counted twice there. "
                                    "Union = area A + area B - intersection."),
        (inter / area_a, "You divided by the area of the first box only; IoU divides by the union of both."),
        (inter / area_b, "You divided by the area of the second box only; IoU divides by the union of both."),
        (inter_incl / union_incl, "You counted x2 and y2 as inside the box (the +1 convention). In maskedu x2 and y2 "
                                  "are exclusive: width = x2 - x1."),
        (100 * truth, "Give IoU as a fraction between 0 and 1, not a percentage."),
        (1 - truth, "That is 1 - IoU (a distance), not the IoU."),
    ]
    for candidate, message in known:
        if math.isclose(value, candidate, rel_tol=1e-6, abs_tol=1e-9):
            raise Incorrect(message)
    if not 0 <= value <= 1:
        raise Incorrect(f"IoU is always between 0 and 1; you gave {value}.")
    raise Incorrect(f"Not quite: {value:.4f}. Find the overlap's width and height (clipped at 0), then "
                    "intersection / (area A + area B - intersection).")


_Q1_CASES = [
    ((10, 20, 60, 80), (30, 40, 90, 100)),
    ((0, 0, 10, 10), (0, 0, 10, 10)),  # identical
    ((0, 0, 10, 10), (20, 20, 30, 30)),  # apart
    ((0, 0, 10, 10), (10, 0, 20, 10)),  # touching edges: no overlap
    ((0, 0, 100, 100), (25, 25, 75, 75)),  # one inside the other
    ((5, 0, 15, 10), (0, 0, 10, 10)),  # order of arguments swapped
]


def _check_q1(answer: Any) -> str:
    if callable(answer):
        for a, b in _Q1_CASES:
            try:
                got = float(answer(a, b))
            except Exception as exc:  # noqa: BLE001 - show the student what their function raised
                raise Incorrect(f"Your function raised {type(exc).__name__}: {exc} for boxes {a} and {b}.") from None
            want = _true_iou(a, b)
            if not math.isclose(got, want, abs_tol=1e-6):
                if want == 0 and got < 0:
                    raise Incorrect(f"For boxes {a} and {b} that do not overlap you returned {got:.3f}: clip the "
                                    "overlap's width and height at 0 with max(0, ...).")
                try:
                    _diagnose_number(got, a, b)
                except Incorrect as why:
                    raise Incorrect(f"For boxes {a} and {b}: {why}") from None
        return "Your function gets every case right, including boxes that only touch and boxes inside others."
    if isinstance(answer, (tuple, list, np.ndarray)):
        raise Incorrect("Give one number (the IoU of the two boxes in Q1_BOXES) or a function my_iou(a, b).")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise Incorrect(f"Give the IoU as a number between 0 and 1, got {answer!r}.") from None
    a, b = Q1_BOXES
    if math.isclose(value, _true_iou(a, b), abs_tol=5e-4):
        return "Right: intersection 30 x 40 = 1200 pixels; union 3000 + 3600 - 1200 = 5400; IoU = 0.222."
    _diagnose_number(value, a, b)
    return ""  # pragma: no cover - _diagnose_number always raises


q1 = Question(
    "q1",
    _check_q1,
    prompt="Compute the IoU of the boxes Q1_BOXES = (10, 20, 60, 80) and (30, 40, 90, 100) (x1, y1, x2, y2; x2/y2 exclusive).",
    hint="The overlap runs from the larger x1 to the smaller x2 (and likewise in y); its width is never below 0. "
         "Union = area A + area B - intersection.",
    solution=(
        "def my_iou(a, b):\n"
        "    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))\n"
        "    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))\n"
        "    inter = w * h\n"
        "    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter\n"
        "    return inter / union\n"
        "\n"
        "answer = my_iou(*Q1_BOXES)   # 1200 / 5400 = 0.222"
    ),
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
        "answer = curve.thresholds[ok & (found == best)].max()  # ties: the highest (safest) threshold\n"
        "# the same as nb02.best_threshold(curve.thresholds, found, curve.false_positive_rate)"
    ),
)
