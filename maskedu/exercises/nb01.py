"""Exercises for notebook 01 (get the data).

::

    from maskedu.exercises import nb01
    nb01.use(ds)                 # the dataset the checks compare with (the one you loaded)
    nb01.q1.check(my_counts)     # faces per class
    nb01.q2.check(box_from_csv_row)
    nb01.q3.check(my_fraction)

Each question has ``.hint()`` and ``.solution()``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..annotations import KAGGLE_CLASS_NAMES, Dataset
from ._core import Incorrect, Question, call, refuse_library

__all__ = ["use", "q1", "q2", "q3", "SMALL_FACE_PX"]

#: q3's threshold: faces whose shorter side is below this are enlarged when cropped to the model's 50x50 input.
SMALL_FACE_PX = 50

_state: dict[str, Dataset | None] = {"dataset": None}


def use(dataset: Dataset) -> Dataset:
    """Tell the checks which dataset your answers are about (the one you loaded above); returns it."""
    if not isinstance(dataset, Dataset):
        raise TypeError(f"nb01.use() needs the Dataset you loaded (e.g. ds = maskedu.get_dataset()), got {type(dataset).__name__}.")
    _state["dataset"] = dataset
    return dataset


def _dataset() -> Dataset:
    ds = _state["dataset"]
    if ds is None:
        raise Incorrect("First tell the checks which dataset you used: run nb01.use(ds) (ds is your loaded dataset).")
    return ds


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        if isinstance(value, np.ndarray) and value.size == 1:
            return float(value)
        raise Incorrect(f"{what} should be a number, got {type(value).__name__} {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise Incorrect(f"{what} should be a finite number, got {value}.")
    return value


# --------------------------------------------------------------------------- q1: faces per class


def _check_q1(answer) -> None:
    ds = _dataset()
    if not ds.annotated:
        raise Incorrect("This exercise is about an annotated dataset (Kaggle or VOC layout); your dataset is class folders.")
    names = ds.class_names  # the paper's two classes, or three with MASKEDU_CLASSES=3
    expected = {c: ds.class_counts().get(c, 0) for c in names}
    if isinstance(answer, (list, tuple, np.ndarray)):
        values = list(np.asarray(answer).ravel())
        hint = ""
        if len(values) == len(names) == 2 and [int(v) for v in values] == [expected[c] for c in reversed(names)]:
            hint = " (and your two numbers are in the wrong class order)"
        raise Incorrect(
            f"You gave a {type(answer).__name__} {answer!r}. Give a dict from class to count, e.g. "
            f"{{'with_mask': 10, 'without_mask': 7}}, so that the order of the classes cannot be mixed up{hint}."
        )
    if not isinstance(answer, Mapping):
        raise Incorrect(f"You gave {type(answer).__name__} {answer!r}. Give a dict from class to count, e.g. "
                        "{'with_mask': 10, 'without_mask': 7}.")
    keys = set(answer)
    raw = {k for k in keys if k in KAGGLE_CLASS_NAMES or k in ds.raw_class_counts()} - set(names)
    if raw:
        raise Incorrect(
            f"You counted the dataset's own class names ({', '.join(sorted(map(str, raw))[:4])}{', ...' if len(raw) > 4 else ''}). "
            "Count the paper's two classes instead: use box.label (mapped through the class map), not box.raw_label, "
            "and skip boxes whose label is None."
        )
    if None in keys:
        raise Incorrect(f"Your dict counts {answer[None]!r} faces under the key None. Leave out the faces whose label is "
                        "None: they belong to classes the class map does not use.")
    extra = keys - set(names)
    if extra:
        raise Incorrect(f"Your dict has the keys {sorted(map(str, extra))}, which are not classes: the classes are {names}.")
    missing = [c for c in names if c not in keys and expected[c] > 0]
    if missing:
        raise Incorrect(f"Your dict has no count for {missing}.")
    got = {c: int(_number(answer.get(c, 0), f"the count for {c!r}")) for c in names}
    if got == expected:
        return
    a, b = names[:2]
    if got[a] == expected[b] and got[b] == expected[a]:
        raise Incorrect(f"Your counts {got} are swapped: you have {got[a]} for {a!r}, which is the number of {b!r} "
                        "faces. Check which class you add to.")
    per_image = {c: sum(1 for r in ds if any(x.label == c for x in r.boxes)) for c in names}
    if got == per_image:
        raise Incorrect(f"Your counts {got} are the numbers of images holding such a face, not of faces: an image "
                        "can hold several faces. Count every box.")
    wrong = [c for c in names if got[c] != expected[c]]
    detail = "; ".join(f"{c}: yours ({got[c]}) is too {'high' if got[c] > expected[c] else 'low'}" for c in wrong)
    raise Incorrect(f"Not quite: {detail}. Count every box of every image by box.label.")


q1 = Question(
    "q1",
    _check_q1,
    prompt="Count the faces of each class (with_mask, without_mask) by looping over the dataset's images and boxes. Answer with a dict.",
    hint="Loop `for record in ds.images:` then `for box in record.boxes:`; add 1 to counts[box.label] when box.label is not None.",
    solution=(
        "counts = {'with_mask': 0, 'without_mask': 0}\n"
        "for record in ds.images:\n"
        "    for box in record.boxes:\n"
        "        if box.label is not None:\n"
        "            counts[box.label] += 1\n"
        "# the library's shortcut gives the same: dict(ds.class_counts())\n"
        "nb01.q1.check(counts)"
    ),
    answer="counts",
)


# --------------------------------------------------------------------------- q2: the column quirk

# (name, x1, y1, x2, y2, class): rows as they appear in train.csv (values in x1, y1, x2, y2 order). The check
# tries these and a few generated ones; every row has x1 < y1 < x2 < y2 or similar orders that tell the
# typical mix-ups apart.
_Q2_FIXED = [
    ("2756.png", 69, 126, 294, 392, "face_with_mask"),
    ("1801.jpg", 451, 186, 895, 697, "face_no_mask"),
    ("0001.jpg", 0, 7, 31, 40, "face_with_mask"),  # a box at the left edge (x1 = 0)
]


def _q2_rows() -> list[tuple]:
    rng = np.random.default_rng(2024)
    rows = list(_Q2_FIXED)
    for i in range(5):
        x1, y1 = (int(v) for v in rng.integers(0, 600, 2))
        w, h = (int(v) for v in rng.integers(12, 300, 2))
        rows.append((f"{3000 + i}.jpg", x1, y1, x1 + w, y1 + h, "face_no_mask" if i % 2 else "face_with_mask"))
    return [r for r in rows if len({r[1], r[2], r[3], r[4]}) == 4]


def _check_q2(answer) -> None:
    if not callable(answer):
        raise Incorrect(
            f"You passed {type(answer).__name__} {answer!r}. Pass your function itself, e.g. "
            "nb01.q2.check(box_from_csv_row), not its result: the check calls it on several rows."
        )
    refuse_library(answer, [], "CSV reader")
    for name, x1, y1, x2, y2, cls in _q2_rows():
        row = [name, str(x1), str(y1), str(x2), str(y2), cls]
        out = call(answer, list(row), describe=f"on the row {row}")
        if isinstance(out, (str, bytes)) or not hasattr(out, "__len__") or len(out) != 4:
            raise Incorrect(f"Return four numbers (x1, y1, x2, y2); for the row {row} your function returned {out!r}.")
        if any(isinstance(v, (str, bytes)) for v in out):
            raise Incorrect(f"For the row {row} your function returned {tuple(out)!r}: text, as the CSV gives it. "
                            "Convert each value with int(...).")
        try:
            got = tuple(float(v) for v in out)
        except (TypeError, ValueError):
            raise Incorrect(f"Return four numbers (x1, y1, x2, y2); for the row {row} your function returned {out!r}.") from None
        if got == (x1, y1, x2, y2):
            continue
        mine = tuple(int(v) if float(v).is_integer() else v for v in got)
        said = f"For the row {row} your function returned {mine}"
        if got == (x1, x2, y1, y2):
            raise Incorrect(
                f"{said}: you used the header's order. The header says name,x1,x2,y1,y2 but the values are "
                f"x1, y1, x2, y2 (the JSON BoundingBox shows it), so this box is {(x1, y1, x2, y2)}."
            )
        if got == (y1, x1, y2, x2):
            raise Incorrect(f"{said}: x and y are swapped. A box is (x1, y1, x2, y2), x being the column "
                            f"(horizontal), so it is {(x1, y1, x2, y2)}.")
        if got == (x1, y1, x2 - x1, y2 - y1):
            raise Incorrect(f"{said}: that is (x, y, width, height). Return the two corners, {(x1, y1, x2, y2)}.")
        raise Incorrect(f"{said}, not the face's (x1, y1, x2, y2) = {(x1, y1, x2, y2)}. Read the four numbers by position.")


q2 = Question(
    "q2",
    _check_q2,
    prompt="Write box_from_csv_row(row) that takes one train.csv row (a list of 6 strings) and returns the box as (x1, y1, x2, y2) integers.",
    hint="Look at the quirk cell above: compare the row with the JSON BoundingBox. Which positions hold x2 and y1?",
    solution=(
        "def box_from_csv_row(row):\n"
        "    # the header says name,x1,x2,y1,y2,classname, but the values are x1, y1, x2, y2\n"
        "    name, x1, y1, x2, y2, classname = row\n"
        "    return int(x1), int(y1), int(x2), int(y2)\n"
        "\n"
        "nb01.q2.check(box_from_csv_row)"
    ),
    answer="box_from_csv_row",
)


# --------------------------------------------------------------------------- q3: small faces


def _q3_alternatives(ds: Dataset, n: int) -> list[tuple[float, str]]:
    faces = [b for _, b in ds.iter_faces() if b is not None]
    every = [b for _, b in ds.iter_faces(mapped_only=False) if b is not None]
    w = np.array([b.width for b in faces], dtype=float)
    h = np.array([b.height for b in faces], dtype=float)
    short = np.minimum(w, h)
    every_short = np.array([min(b.width, b.height) for b in every], dtype=float)
    expected = float(np.mean(short < n))
    return [
        (expected * 100, "That looks like a percentage: give a fraction between 0 and 1."),
        (float(np.sum(short < n)), "That is the number of small faces; divide it by the number of faces."),
        (float(np.mean(short <= n)), f"Count faces strictly smaller than {n} px: use <, not <=."),
        (1.0 - expected, f"That is the fraction of faces at least {n} px; the question asks for the ones smaller."),
        (float(np.mean(np.maximum(w, h) < n)), "You used the longer side; a face's size here is its shorter side, min(width, height)."),
        (float(np.mean(w * h < n * n)), f"You compared the area with {n}x{n}; compare the shorter side, min(width, height), with {n}."),
        (float(np.mean(w < n)), "You used the width only; a face's size here is its shorter side, min(width, height)."),
        (float(np.mean(h < n)), "You used the height only; a face's size here is its shorter side, min(width, height)."),
        (float(np.mean(every_short < n)) if len(every) else math.nan,
         "You included boxes whose label is None (hats, glasses, mask types...); count only the mapped faces."),
    ]


def _check_q3(answer) -> None:
    ds = _dataset()
    if not ds.annotated:
        raise Incorrect("This exercise is about an annotated dataset (Kaggle or VOC layout); your dataset is class folders.")
    value = _number(answer, "Your answer")
    sizes = ds.face_sizes()
    if sizes.size == 0:
        raise Incorrect("Your dataset has no mapped faces to measure; print(ds.report) to see why.")
    expected = float(np.mean(sizes < SMALL_FACE_PX))
    if math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-9):
        return
    yours = f"Your answer, {value:.6g}"
    for alternative, message in _q3_alternatives(ds, SMALL_FACE_PX):
        if math.isfinite(alternative) and not math.isclose(alternative, expected, abs_tol=1e-9) and math.isclose(value, alternative, rel_tol=1e-6, abs_tol=1e-9):
            raise Incorrect(f"{yours}: {message[0].lower()}{message[1:]}")
    if not 0 <= value <= 1:
        raise Incorrect(f"{yours}, is not a fraction: a fraction lies between 0 and 1.")
    raise Incorrect(f"Not quite: your fraction {value:.4f} is too {'high' if value > expected else 'low'} for the "
                    f"{sizes.size} mapped faces. Use ds.face_sizes() or min(box.width, box.height) per face.")


q3 = Question(
    "q3",
    _check_q3,
    prompt=f"What fraction of the faces (mapped classes only) is smaller than {SMALL_FACE_PX} px, measured by the shorter side of the box?",
    hint="ds.face_sizes() gives the shorter side of every mapped face as a NumPy array; compare it with 50 and take the mean.",
    solution=(
        "sizes = ds.face_sizes()          # min(width, height) of every mapped face\n"
        "fraction = float(np.mean(sizes < nb01.SMALL_FACE_PX))\n"
        "nb01.q3.check(fraction)"
    ),
    answer="fraction",
)
