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


def test_q1_accepts_a_correct_function():
    assert check(nb02.q1, right_iou)
    assert check(nb02.q1, lambda a, b: np.float64(right_iou(a, b)))


@pytest.mark.parametrize("answer, words", [
    (1200 / 5400, "Your number 0.222222 is the IoU of nb02.Q1_BOXES"),
    (1200 / 6600, "Your number 0.181818 is not the IoU"),
    ("a lot", "You passed str 'a lot'"),
    ((0.2, 0.3), "You passed tuple (0.2, 0.3)"),
])
def test_q1_wants_a_function_and_says_what_it_got(answer, words):
    result = check(nb02.q1, answer)
    assert not result and words in result.message, result.message


def _with_boxes(formula):
    def my_iou(a, b):
        inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
        area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
        return formula(inter, area_a, area_b)
    return my_iou


@pytest.mark.parametrize("fn, words", [
    (_with_boxes(lambda i, a, b: i), "that is the intersection's area"),
    (_with_boxes(lambda i, a, b: i / (a + b)), "sum of the two areas"),
    (_with_boxes(lambda i, a, b: i / a), "first box only"),
    (_with_boxes(lambda i, a, b: i / (a + b - i) * 100), "not a percentage"),
    (_with_boxes(lambda i, a, b: 1 - i / (a + b - i)), "1 - IoU"),
])
def test_q1_wrong_functions_quote_their_own_value_on_the_first_failing_case(fn, words):
    result = check(nb02.q1, fn)
    inter, union = 1200, 5400
    got = fn(*nb02.Q1_BOXES)
    assert not result and words in result.message, result.message
    assert result.message.startswith(f"For the boxes (10, 20, 60, 80) and (30, 40, 90, 100) your my_iou returned {got:.6g}")
    assert f"the overlap is {inter} of {union} pixels" in result.message


def test_q1_rejects_wrong_functions_on_hidden_edge_cases():
    def no_clip(a, b):  # a negative overlap for boxes apart
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

    def only_the_example(a, b):
        return 1200 / 5400

    result = check(nb02.q1, no_clip)
    assert not result and "(0, 0, 10, 10) and (20, 20, 30, 30)" in result.message and "max(0" in result.message
    result = check(nb02.q1, plus_one)
    assert not result and "+1 convention" in result.message
    result = check(nb02.q1, crashes)
    assert not result and "ZeroDivisionError: oops" in result.message and "for the boxes" in result.message
    result = check(nb02.q1, only_the_example)
    assert not result and "(0, 0, 10, 10) and (0, 0, 10, 10) your my_iou returned 0.222222" in result.message
    result = check(nb02.q1, lambda a, b: "0.2")
    assert not result and "returned '0.2'" in result.message


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
    assert not over and "At 0.55 false alarms hit 6.0%" in over.message and "over the" in over.message
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
