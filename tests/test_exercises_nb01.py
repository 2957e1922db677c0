"""Notebook 01's exercises: each check accepts the right answer and rejects typical wrong ones, specifically."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from maskedu.annotations import DEFAULT_CLASS_MAP, Dataset, FaceBox, ImageRecord, LoadReport
from maskedu.exercises import nb01

RAW = {"with_mask": "face_with_mask", "without_mask": "face_no_mask", None: "hat"}


def _record(name, faces):
    return ImageRecord(Path(name), [FaceBox(5, 5, 5 + w, 5 + h, label, RAW[label]) for w, h, label in faces], None, 400, 400)


@pytest.fixture
def ds():
    """Nine mapped faces and a hat, chosen so that every typical mistake in q3 gives a different number."""
    dataset = Dataset(
        Path("."),
        "kaggle",
        [
            _record("a.jpg", [(20, 70, "with_mask"), (70, 40, "with_mask"), (10, 10, None)]),
            _record("b.jpg", [(55, 48, "with_mask"), (55, 20, "with_mask")]),
            _record("c.jpg", [(60, 45, "with_mask"), (55, 50, "with_mask"), (60, 30, "without_mask")]),
            _record("d.jpg", [(48, 60, "without_mask"), (90, 48, "without_mask")]),
        ],
        dict(DEFAULT_CLASS_MAP),
        LoadReport(),
    )
    nb01.use(dataset)
    yield dataset
    nb01._state["dataset"] = None


def _wrong(question, answer, *fragments):
    result = question.check(answer, display=False)
    assert not result.correct, f"{answer!r} was accepted"
    for fragment in fragments:
        assert fragment in result.message, result.message
    return result.message


# --------------------------------------------------------------------------- q1


def test_q1_accepts_the_counts(ds):
    assert nb01.q1.check({"with_mask": 6, "without_mask": 3}, display=False).correct
    assert nb01.q1.check(ds.class_counts(), display=False).correct


def test_q1_rejects_typical_mistakes(ds):
    _wrong(nb01.q1, {"with_mask": 3, "without_mask": 6}, "swapped", "you have 3 for 'with_mask'")
    _wrong(nb01.q1, {"face_with_mask": 6, "face_no_mask": 3}, "dataset's own class names", "box.label")
    _wrong(nb01.q1, dict(ds.raw_class_counts()), "dataset's own class names")
    _wrong(nb01.q1, {"with_mask": 6, "without_mask": 3, None: 1}, "label is None")
    _wrong(nb01.q1, {"with_mask": 3, "without_mask": 2}, "numbers of images", "not of faces")
    _wrong(nb01.q1, [6, 3], "Give a dict")
    _wrong(nb01.q1, [3, 6], "wrong class order")
    _wrong(nb01.q1, {"with_mask": 7, "without_mask": 3}, "with_mask: yours (7) is too high")
    _wrong(nb01.q1, {"with_mask": 6}, "no count for ['without_mask']")
    _wrong(nb01.q1, 9, "Give a dict", "int 9")


def test_checks_ask_for_the_dataset_first():
    nb01._state["dataset"] = None
    _wrong(nb01.q1, {"with_mask": 1, "without_mask": 1}, "nb01.use(ds)")
    with pytest.raises(TypeError, match="Dataset you loaded"):
        nb01.use("data/")


# --------------------------------------------------------------------------- q2


def test_q2_accepts_reading_by_position():
    def box_from_csv_row(row):
        name, x1, y1, x2, y2, classname = row
        return int(x1), int(y1), int(x2), int(y2)

    assert nb01.q2.check(box_from_csv_row, display=False).correct
    assert nb01.q2.check(lambda row: [float(v) for v in row[1:5]], display=False).correct


def test_q2_rejects_the_headers_order_and_other_mistakes():
    def by_header(row):
        name, x1, x2, y1, y2, classname = row
        return int(x1), int(y1), int(x2), int(y2)

    msg = _wrong(nb01.q2, by_header, "header's order", "x1, y1, x2, y2")
    assert "your function returned (69, 294, 126, 392)" in msg  # the student's own box, quoted
    _wrong(nb01.q2, lambda row: tuple(row[1:5]), "Convert each value with int", "('69', '126', '294', '392')")
    _wrong(nb01.q2, lambda row: (int(row[2]), int(row[1]), int(row[4]), int(row[3])), "x and y are swapped")
    _wrong(nb01.q2, lambda row: (int(row[1]), int(row[2]), int(row[3]) - int(row[1]), int(row[4]) - int(row[2])), "width, height")
    _wrong(nb01.q2, lambda row: [int(v) for v in row[0:4]], "raised ValueError")
    _wrong(nb01.q2, lambda row: (1, 2, 3), "Return four numbers")
    _wrong(nb01.q2, (69, 126, 294, 392), "Pass your function itself")
    _wrong(nb01.q2, lambda row: (0, 0, 10, 10), "returned (0, 0, 10, 10)", "not the face's (x1, y1, x2, y2) = (69, 126, 294, 392)")


def test_q2_tries_hidden_rows_beyond_the_first():
    """A function that only knows the example row fails on the rows it was not shown."""
    def memorised(row):
        return (69, 126, 294, 392)

    msg = _wrong(nb01.q2, memorised, "returned (69, 126, 294, 392)")
    assert "1801.jpg" in msg

    def zero_breaks_it(row):  # treats 0 as missing
        return tuple(int(v) or None for v in row[1:5])

    _wrong(nb01.q2, zero_breaks_it, "0001.jpg")


# --------------------------------------------------------------------------- q3


def test_q3_accepts_the_fraction(ds):
    expected = float(np.mean(ds.face_sizes() < nb01.SMALL_FACE_PX))
    assert math.isclose(expected, 8 / 9)
    assert nb01.q3.check(expected, display=False).correct
    assert nb01.q3.check(np.float32(expected), display=False).correct


def test_q3_rejects_typical_mistakes(ds):
    sizes = ds.face_sizes()
    w = np.array([b.width for _, b in ds.iter_faces()])
    h = np.array([b.height for _, b in ds.iter_faces()])
    _wrong(nb01.q3, 100 * 8 / 9, "percentage", "Your answer, 88.8889")
    _wrong(nb01.q3, 8, "number of small faces")
    _wrong(nb01.q3, float(np.mean(sizes <= 50)), "strictly smaller")
    _wrong(nb01.q3, 1 / 9, "at least 50 px")
    _wrong(nb01.q3, float(np.mean(np.maximum(w, h) < 50)), "longer side")
    _wrong(nb01.q3, float(np.mean(w * h < 2500)), "area")
    _wrong(nb01.q3, float(np.mean(w < 50)), "width only")
    _wrong(nb01.q3, float(np.mean(h < 50)), "height only")
    _wrong(nb01.q3, 9 / 10, "label is None")
    _wrong(nb01.q3, 0.5, "your fraction 0.5000 is too low")
    _wrong(nb01.q3, "0.88", "should be a number")


def test_hints_and_solutions_print(capsys):
    for q in (nb01.q1, nb01.q2, nb01.q3):
        q.hint()
        q.solution()
    out = capsys.readouterr().out
    assert out.count("Hint:") == 3 and out.count("Solution:") == 3 and "box_from_csv_row" in out
