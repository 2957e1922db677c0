"""Notebook 02's exercise checks accept the right answers and reject the typical wrong ones, specifically."""

from __future__ import annotations

import numpy as np
import pytest

from maskedu.exercises import nb02


def right_iou(a, b):
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def check(q, answer):
    return q.check(answer, display=False)


def test_q1_accepts_the_number_and_a_correct_function():
    assert check(nb02.q1, 1200 / 5400)
    assert check(nb02.q1, 0.2222)  # rounded to 4 places is fine
    assert check(nb02.q1, right_iou(*nb02.Q1_BOXES))
    assert check(nb02.q1, right_iou)


@pytest.mark.parametrize("answer, words", [
    (1200, "intersection's area"),
    (1200 / 6600, "sum of the two areas"),
    (1200 / 3000, "first box only"),
    (1200 / 3600, "second box only"),
    (1271 / 5561, "+1 convention"),
    (22.22222222222222, "fraction between 0 and 1"),
    (1 - 1200 / 5400, "1 - IoU"),
    (0.5, "Not quite"),
    ("a lot", "number"),
    ((0.2, 0.3), "one number"),
])
def test_q1_rejects_typical_wrong_numbers_with_specific_feedback(answer, words):
    result = check(nb02.q1, answer)
    assert not result and words in result.message


def test_q1_rejects_wrong_functions_with_the_failing_case():
    def no_clip(a, b):  # negative overlap for boxes apart
        w = min(a[2], b[2]) - max(a[0], b[0])
        h = min(a[3], b[3]) - max(a[1], b[1])
        inter = w * h
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    def plus_one(a, b):
        w = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
        h = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
        inter = w * h
        return inter / ((a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter)

    def crashes(a, b):
        raise ZeroDivisionError("oops")

    result = check(nb02.q1, no_clip)
    assert not result and ("max(0" in result.message or "For boxes" in result.message)
    result = check(nb02.q1, plus_one)
    assert not result and "For boxes" in result.message
    result = check(nb02.q1, crashes)
    assert not result and "ZeroDivisionError" in result.message
    result = check(nb02.q1, lambda a, b: right_iou(a, b) * 100)
    assert not result and "fraction" in result.message


def test_q2_needs_the_curve_first(monkeypatch):
    monkeypatch.setattr(nb02, "_curve", None)
    result = check(nb02.q2, 0.7)
    assert not result and "plots the trade-off" in result.message


def test_q2_checks_against_the_registered_curve(monkeypatch):
    monkeypatch.setattr(nb02, "_curve", None)
    t = np.round(np.arange(0.5, 0.96, 0.05), 2)
    found = np.linspace(0.95, 0.6, len(t))  # lower threshold: more masked faces found ...
    fp = np.array([0.10, 0.06, 0.03, 0.02, 0.02, 0.01, 0.0, 0.0, 0.0, 0.0])  # ... and more false alarms
    nb02.use_tradeoff(t, found, fp)
    best = nb02.best_threshold(t, found, fp)
    assert best == pytest.approx(0.65)
    assert check(nb02.q2, best)
    over = check(nb02.q2, 0.55)
    assert not over and "over the" in over.message
    timid = check(nb02.q2, 0.9)
    assert not timid and "lower threshold finds more" in timid.message
    assert "between" in check(nb02.q2, 0.2).message
    assert "not one of the plotted" in check(nb02.q2, 0.62).message
    assert "number" in check(nb02.q2, "high").message


def test_best_threshold_prefers_the_safer_of_equal_choices():
    t = [0.5, 0.6, 0.7, 0.8]
    assert nb02.best_threshold(t, [0.9, 0.9, 0.9, 0.8], [0.01, 0.0, 0.0, 0.0]) == 0.7
    assert nb02.best_threshold(t, [0.9, 0.9, 0.9, 0.8], [0.5, 0.5, 0.5, 0.5]) == 0.8  # nothing fits: the strictest
    with pytest.raises(ValueError, match="same non-zero length"):
        nb02.use_tradeoff([0.5], [0.9, 0.8], [0.0])


def test_hints_and_solutions_print(capsys):
    for q in (nb02.q1, nb02.q2):
        q.hint()
        q.solution()
    out = capsys.readouterr().out
    assert out.count("Hint:") == 2 and out.count("Solution:") == 2
