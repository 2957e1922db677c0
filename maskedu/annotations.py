"""The dataset loaders: read a folder from disk into a :class:`~maskedu.dataset.Dataset` (notebook 01).

* :func:`load_annotations`: the Kaggle "Face Mask Detection Dataset" (per-image JSON files and
  ``train.csv``, with its column quirk: :func:`csv_column_quirk` shows it on one row);
* :func:`load_voc`: PASCAL VOC (``images/`` + ``annotations/*.xml``);
* :func:`load_class_folders`: ``with_mask/`` and ``without_mask/`` folders of face images;
* :func:`load_dataset`: recognises the layout of a folder (:func:`detect_layout`) and calls the loader.

The rules every loader follows:

* boxes are checked by :func:`check_box`: clipped to the image when they run past its edge (counted),
  dropped with a reason when empty, inverted or entirely outside;
* an annotation whose image is missing, a malformed file, an unknown folder: reported, with a reason,
  in ``dataset.report`` (nothing is dropped silently);
* image sizes come from the file header (PIL opens lazily), so loading 6,000 images takes seconds.

The records and constants live in :mod:`maskedu.dataset`; they are importable from here too.

>>> check_box((-4, 10, 50, 60), 40, 80).box        # run past the left and right edges: clipped
(0, 10, 40, 60)
"""

from __future__ import annotations

import csv
import difflib
import itertools
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .common import MaskeduError, check_choice, progress
from .dataset import (
    CLASS_NAMES,
    CLASS_NAMES_3,
    DEFAULT_CLASS_MAP,
    FOLDER_CLASS_MAP,
    KAGGLE_CLASS_NAMES,
    KAGGLE_CSV,
    KAGGLE_CSV_HEADER,
    KAGGLE_CSV_VALUES,
    KAGGLE_REFERENCE,
    KAGGLE_SUBDIR,
    VOC_CLASS_MAP,
    Dataset,
    INCORRECT_CLASS,
    FaceBox,
    ImageRecord,
    LoadReport,
    _n,
    check_class_map,
    check_classes,
    keep_third_class,
)
from .imaging import REASON_NOT_REGULAR, ImageError, box_is_valid, clip_box, image_header, is_image_file

__all__ = [
    # the records and constants, defined in maskedu.dataset
    "CLASS_NAMES",
    "CLASS_NAMES_3",
    "INCORRECT_CLASS",
    "FaceBox",
    "ImageRecord",
    "LoadReport",
    "Dataset",
    "KAGGLE_CLASS_NAMES",
    "DEFAULT_CLASS_MAP",
    "FOLDER_CLASS_MAP",
    "VOC_CLASS_MAP",
    "KAGGLE_CSV_HEADER",
    "KAGGLE_CSV_VALUES",
    "KAGGLE_REFERENCE",
    "check_class_map",
    # the loaders
    "LayoutError",
    "BoxCheck",
    "check_box",
    "image_size",
    "ColumnQuirk",
    "csv_column_quirk",
    "KaggleLayout",
    "find_kaggle_layout",
    "load_annotations",
    "load_class_folders",
    "load_voc",
    "detect_layout",
    "load_dataset",
    "compare_with_kaggle",
]


class LayoutError(MaskeduError, ValueError):
    """A folder that is not in the layout a loader expects; the message says what was found and what to do."""


# --------------------------------------------------------------------------- boxes and class maps


@dataclass(frozen=True)
class BoxCheck:
    """The verdict of :func:`check_box`: the usable box (or None), whether it was clipped, and why it was refused."""

    box: tuple[int, int, int, int] | None
    clipped: bool = False
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.box is not None


REASON_MALFORMED_BOX = "malformed box (not four finite numbers)"
REASON_INVERTED = "inverted box (x2 < x1 or y2 < y1)"
REASON_EMPTY = "empty box (zero width or height)"
REASON_OUTSIDE = "box entirely outside the image"


def check_box(box: Sequence[float], width: int, height: int) -> BoxCheck:
    """Validate one ``(x1, y1, x2, y2)`` box against an image of ``width`` x ``height`` pixels.

    A box running past the edge is clipped to the image (``clipped=True``); an empty, inverted or
    malformed box, or one entirely outside the image, is refused with a ``reason``. A kept box always
    satisfies ``0 <= x1 < x2 <= width`` and ``0 <= y1 < y2 <= height``.

    >>> check_box((-4, 10, 50, 60), 40, 80)
    BoxCheck(box=(0, 10, 40, 60), clipped=True, reason=None)
    >>> check_box((30, 10, 20, 60), 40, 80).reason
    'inverted box (x2 < x1 or y2 < y1)'
    """
    try:
        values = [float(v) for v in box]
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer too large for a float (JSON allows 1e400 as 1000...0)
        return BoxCheck(None, reason=REASON_MALFORMED_BOX)
    if len(values) != 4 or not np.isfinite(values).all():
        return BoxCheck(None, reason=REASON_MALFORMED_BOX)
    x1, y1, x2, y2 = values
    if x2 < x1 or y2 < y1:
        return BoxCheck(None, reason=REASON_INVERTED)
    if x2 == x1 or y2 == y1:
        return BoxCheck(None, reason=REASON_EMPTY)
    clipped_box = clip_box(values, width=width, height=height)
    if not box_is_valid(clipped_box):
        return BoxCheck(None, reason=REASON_OUTSIDE)
    was_clipped = x1 < 0 or y1 < 0 or x2 > width or y2 > height
    return BoxCheck(clipped_box, clipped=was_clipped)


def _note_unused_keys(report: LoadReport, cmap: Mapping[str, str | None], seen: Iterable[str], known: Iterable[str], what: str) -> None:
    """Report class_map keys that match no class of the dataset (a typo would silently map nothing)."""
    seen, known = set(seen), set(known)
    for key in cmap:
        if key not in seen and key not in known:
            close = difflib.get_close_matches(key, sorted(seen | known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            report.notes.append(f"class_map key {key!r} matches no {what} in this dataset{hint}; it was not used.")


def _note_mapping(report: LoadReport, counts: Counter, cmap: Mapping[str, str | None]) -> None:
    for cls in (CLASS_NAMES_3 if INCORRECT_CLASS in cmap.values() else CLASS_NAMES):
        if not any(v == cls for v in cmap.values()):
            report.notes.append(f"no class maps to {cls!r}: the class map leaves it empty.")
        elif not counts.get(cls):
            report.notes.append(f"no face was loaded for {cls!r}.")


# --------------------------------------------------------------------------- images


def image_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an image file as :func:`maskedu.imaging.load_image` would return it,
    read from the header only (no decoding); EXIF rotation by 90 degrees swaps the two.

    Raises :class:`maskedu.imaging.ImageError` for what ``load_image`` refuses before decoding: a
    missing or special file (FIFO, device, folder), an unknown format, a header over ``MAX_PIXELS``.
    Its ``reason`` is what the loaders write in their report.
    """
    width, height, orientation = image_header(path)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return width, height


def _drop_image(report: LoadReport, item: str, exc: ImageError, refused: list[str]) -> None:
    """Report an image the loaders cannot use, by the kind of problem; the details go in one note (see _note_refused)."""
    report.drop(item, exc.reason)
    refused.append(f"{item}: {exc.problem}")


def _note_refused(report: LoadReport, refused: list[str]) -> None:
    if refused:
        report.notes.append(f"images refused ({len(refused)}): " + "; ".join(refused[:3]) + ("; ..." if len(refused) > 3 else ""))


def _is_special(path: Path) -> bool:
    """True for a folder entry that is neither a folder nor a regular file (a FIFO, device, socket or broken link)."""
    try:
        return not path.is_dir() and not path.is_file()
    except OSError:
        return True


def _listdir(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _examples(items: Sequence[str], n: int = 3) -> str:
    shown = ", ".join(str(i) for i in list(items)[:n])
    return shown + (", ..." if len(items) > n else "")


def _add_box(
    report: LoadReport, boxes: list[FaceBox], raw_box, raw_label: str, cmap: Mapping[str, str | None],
    width: int, height: int, item: str, overshoot: list[float],
) -> None:
    verdict = check_box(raw_box, width, height)
    if not verdict.ok:
        report.drop(item, verdict.reason)
        return
    if verdict.clipped:
        report.boxes_clipped += 1
        x1, y1, x2, y2 = (float(v) for v in raw_box)
        overshoot.append(max(-x1, -y1, x2 - width, y2 - height))
    x1, y1, x2, y2 = verdict.box
    boxes.append(FaceBox(x1, y1, x2, y2, cmap.get(raw_label), raw_label))


def _count_kept_boxes(report: LoadReport, images: list[ImageRecord], overshoot: list[float]) -> None:
    """Fill the report's counts for an annotated layout (Kaggle, VOC) and note how much was clipped."""
    report.images_kept = len(images)
    report.boxes_kept = sum(len(r.boxes) for r in images)
    report.raw_class_counts = Counter(b.raw_label for r in images for b in r.boxes)
    _note_clipping(report, overshoot)


def _note_clipping(report: LoadReport, overshoot: list[float]) -> None:
    if overshoot:
        report.notes.append(
            f"clipped to the image: {_n(len(overshoot), 'box')} that ran past its edge "
            f"(by up to {max(overshoot):g} px; median {float(np.median(overshoot)):g} px)."
        )


# --------------------------------------------------------------------------- Kaggle layout: finding it


@dataclass(frozen=True)
class KaggleLayout:
    """Where the parts of a Kaggle-layout dataset are (any may be None when absent)."""

    root: Path
    images_dir: Path | None
    annotations_dir: Path | None
    csv_path: Path | None



def _find_pairs(root: Path, max_depth: int = 5) -> list[tuple[Path, Path]]:
    """Folders named ``images`` (any case) with a sibling named ``annotations``, shallowest first."""
    found = []
    frontier = [root]
    for _ in range(max_depth + 1):
        nxt = []
        for folder in frontier:
            children = [c for c in _listdir(folder) if c.is_dir() and not c.name.startswith(".")]
            names = {c.name.lower(): c for c in children}
            if "images" in names and "annotations" in names:
                found.append((names["images"], names["annotations"]))
            nxt.extend(children)
        frontier = nxt
        if found:
            break
    return found


def _find_file(root: Path, name: str, max_depth: int = 4) -> Path | None:
    frontier = [root]
    for _ in range(max_depth + 1):
        nxt = []
        for folder in frontier:
            for c in _listdir(folder):
                if c.is_file() and c.name.lower() == name:
                    return c
                if c.is_dir() and not c.name.startswith("."):
                    nxt.append(c)
        frontier = nxt
    return None


def find_kaggle_layout(root: str | Path) -> KaggleLayout:
    """Locate ``images/``, ``annotations/`` and ``train.csv`` of a Kaggle-layout dataset under ``root``.

    The Kaggle archive nests them as ``Medical mask/Medical mask/Medical Mask/{images,annotations}``;
    anything slightly different (one level less, other capitalisation) is found by searching for a
    folder named ``images`` with a sibling ``annotations``.
    """
    root = Path(root)
    canonical = root / KAGGLE_SUBDIR
    if (canonical / "images").is_dir() and (canonical / "annotations").is_dir():
        images, annotations = canonical / "images", canonical / "annotations"
    else:
        pairs = _find_pairs(root)
        with_json = [p for p in pairs if any(f.suffix.lower() == ".json" for f in _listdir(p[1]))]
        images, annotations = (with_json or pairs or [(None, None)])[0]
    csv_path = root / KAGGLE_CSV if (root / KAGGLE_CSV).is_file() else _find_file(root, KAGGLE_CSV)
    return KaggleLayout(root, images, annotations, csv_path)


# --------------------------------------------------------------------------- Kaggle layout: reading


def _image_name_for_json(json_path: Path, stems: dict[str, list[str]]) -> str:
    """``2756.png.json`` annotates ``2756.png``; ``2756.json`` annotates the image whose stem is 2756."""
    base = json_path.name[: -len(json_path.suffix)]
    if is_image_file(base):
        return base
    candidates = stems.get(base, [])
    return candidates[0] if candidates else base


def _read_kaggle_json(path: Path) -> tuple[str | None, list, str | None]:
    """(FileName, annotations, error). Raises nothing: a broken file comes back as an error string."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, [], f"{type(exc).__name__}: {exc}"
    except RecursionError:  # brackets nested deeper than Python's recursion limit
        return None, [], f"nested too deeply to read (over {sys.getrecursionlimit()} levels of brackets)"
    if not isinstance(data, dict) or not isinstance(data.get("Annotations", []), list):
        return None, [], "expected an object with an 'Annotations' list"
    return data.get("FileName"), data.get("Annotations", []), None


def _read_kaggle_csv(path: Path, report: LoadReport) -> tuple[list[str], list[tuple[int, str, list[float], str]]]:
    """The header and the rows ``(line, image name, [v1, v2, v3, v4], classname)`` of train.csv, in file order."""
    rows = []
    unreadable: list[str] = []
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                report.notes.append(f"{path.name} is empty (not even a header): nothing read from it.")
                return [], []
            header = [h.strip() for h in header]
            first_rows: list[list[str]] = []
            if len(header) == 6 and all(_is_number(h) for h in header[1:5]):
                report.notes.append(f"{path.name} has no header line: its first line is read as data.")
                first_rows, header = [header], []
            elif [h.lower() for h in header] != list(KAGGLE_CSV_HEADER) and [h.lower() for h in header] != list(KAGGLE_CSV_VALUES):
                report.notes.append(f"{path.name} has the header {header}, not the Kaggle one {list(KAGGLE_CSV_HEADER)}; its columns are read by position as name, x1, y1, x2, y2, classname.")
            start = 1 if first_rows else 2
            for line, row in enumerate(itertools.chain(first_rows, _csv_rows(reader)), start=start):
                item = f"{path.name} line {line}"
                if isinstance(row, csv.Error):
                    report.drop(item, "malformed CSV row (the csv module cannot read it)")
                    unreadable.append(f"{item}: {row}")
                    continue
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != 6:
                    report.drop(item, "malformed CSV row (not 6 fields)")
                    continue
                name, classname = row[0].strip(), row[5].strip()
                try:
                    values = [float(v) for v in row[1:5]]
                except ValueError:
                    report.drop(item, "malformed CSV row (a coordinate is not a number)")
                    continue
                if not name:
                    report.drop(item, "malformed CSV row (no image name)")
                    continue
                rows.append((line, name, values, classname))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        report.drop(path.name, f"unreadable CSV file ({type(exc).__name__})")
        report.notes.append(f"{path.name} could not be read: {exc}")
        return [], []
    if unreadable:
        report.notes.append(f"unreadable CSV rows: {_examples(unreadable)}")
    if any("\ufffd" in c for _, n, _, cls in rows for c in (n, cls)):
        report.notes.append(f"{path.name} is not valid UTF-8: bytes it cannot decode were read as \ufffd (image names holding one will not match a file).")
    return header, rows


def _csv_rows(reader):
    """The rows of a csv.reader; a row the csv module refuses (a field over its size limit, say) comes as its csv.Error."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield exc


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _csv_box(values: Sequence[float], order: str) -> tuple[float, float, float, float]:
    """The (x1, y1, x2, y2) box of a CSV row, read by position (``"position"``) or by the header's names (``"header"``)."""
    v1, v2, v3, v4 = values
    if order == "position":
        return (v1, v2, v3, v4)
    return (v1, v3, v2, v4)  # header says x1, x2, y1, y2


def _box_key(box: Sequence[float], label: str) -> tuple:
    """A key for comparing boxes from the JSON and the CSV; a box that is not four numbers matches nothing."""
    try:
        return tuple(round(float(v), 3) for v in box) + (label,)
    except (TypeError, ValueError, OverflowError):
        return (object(), label)  # check_box drops it later, with its reason



# --------------------------------------------------------------------------- Kaggle layout: the loader


@dataclass
class _ImageFolder:
    """The image files of a Kaggle layout, indexed by the names the annotations use."""

    by_name: dict[str, Path]                # file name -> path, image files only
    by_stem: dict[str, list[str]]           # "2756" -> ["2756.png"]: for JSON files named by the stem
    by_lower_name: dict[str, Path]          # for names that differ from the file only in case

    def find(self, name: str) -> tuple[Path | None, bool]:
        """The file an annotation's image name refers to, and whether it was matched only ignoring case."""
        if name in self.by_name:
            return self.by_name[name], False
        path = self.by_lower_name.get(name.lower())
        return path, path is not None


@dataclass
class _Tally:
    """What :func:`load_annotations` counts while it merges the JSON files and train.csv, for its notes."""

    json_only: int = 0         # images with a JSON file but no train.csv row
    csv_only: int = 0          # images with train.csv rows but no JSON file
    csv_for_broken: int = 0    # images whose JSON file is malformed, read from train.csv instead
    json_not_in_csv: int = 0   # JSON boxes without a matching train.csv row (kept)
    case_fixed: list[str] = field(default_factory=list)   # "Name.JPG -> name.jpg"
    refused: list[str] = field(default_factory=list)      # images the loader cannot read, with the problem
    overshoot: list[float] = field(default_factory=list)  # how far each clipped box ran past the edge


#: One annotated box before it is checked: (box, class name, the item named in the report).
_Entry = tuple[Sequence[float], str, str]


def _kaggle_layout_or_error(root: Path) -> KaggleLayout:
    """The Kaggle layout under ``root``; :class:`LayoutError` when it has no images or no annotations."""
    layout = find_kaggle_layout(root)
    if layout.images_dir is None:
        raise LayoutError(
            f"{root} is not in the Kaggle layout: no folder named 'images' with a sibling 'annotations' was found "
            f"(expected {KAGGLE_SUBDIR / 'images'}). {_describe(root)} "
            "Use load_dataset(root) to detect other layouts, or maskedu.get_dataset() to fetch the data."
        )
    if layout.csv_path is None and not any(f.suffix.lower() == ".json" for f in _listdir(layout.annotations_dir)):
        raise LayoutError(
            f"{root} has {layout.images_dir.name}/ but neither train.csv nor JSON files in {layout.annotations_dir}: "
            "there are no annotations to load. For XML annotations use load_voc(root)."
        )
    return layout


def _index_images(images_dir: Path, report: LoadReport) -> _ImageFolder:
    """Index the image files; every other entry of the folder is reported (special files too, not skipped)."""
    entries = [p for p in _listdir(images_dir) if not p.is_dir()]
    by_name = {p.name: p for p in entries if is_image_file(p)}
    by_stem: dict[str, list[str]] = {}
    for name in by_name:
        by_stem.setdefault(Path(name).stem, []).append(name)
    for p in entries:
        if not is_image_file(p):
            report.drop(f"images/{p.name}", "not an image file")
    return _ImageFolder(by_name, by_stem, {n.lower(): p for n, p in by_name.items()})


def _read_json_annotations(annotations_dir: Path, images: _ImageFolder, report: LoadReport) -> tuple[dict[str, list[_Entry]], set[str]]:
    """The boxes of every per-image JSON file, by image name, and the names whose JSON file is malformed."""
    boxes: dict[str, list[_Entry]] = {}
    broken: set[str] = set()
    filename_mismatch = []
    for jf in sorted(p for p in _listdir(annotations_dir) if not p.is_dir()):
        if _is_special(jf):  # reading a FIFO would wait forever
            report.drop(f"annotations/{jf.name}", REASON_NOT_REGULAR)
            continue
        if jf.suffix.lower() != ".json":
            report.drop(f"annotations/{jf.name}", "not a JSON annotation file")
            continue
        name = _image_name_for_json(jf, images.by_stem)
        file_name, annos, error = _read_kaggle_json(jf)
        if error:
            report.drop(f"annotations/{jf.name}", "malformed JSON file")
            report.notes.append(f"annotations/{jf.name}: {error}")
            broken.add(name)
            continue
        if file_name and str(file_name) != name:
            filename_mismatch.append(f"{jf.name} says {file_name!r}")
        entries = boxes.setdefault(name, [])
        for i, anno in enumerate(annos):
            item = f"{jf.name}[{i}]"
            if not isinstance(anno, dict) or "BoundingBox" not in anno or "classname" not in anno:
                report.drop(item, "malformed annotation entry (no BoundingBox or classname)")
                continue
            box = anno["BoundingBox"]
            if not isinstance(box, (list, tuple)) or len(box) != 4:
                report.drop(item, REASON_MALFORMED_BOX)
                continue
            entries.append((list(box), str(anno["classname"]).strip(), item))
    if filename_mismatch:
        report.notes.append(
            f"{len(filename_mismatch)} JSON files name another image in 'FileName' than their own file name "
            f"({_examples(filename_mismatch)}); the file name was used."
        )
    return boxes, broken


def _read_csv_annotations(
    csv_path: Path | None, json_boxes: dict[str, list[_Entry]], csv_order: str, report: LoadReport,
) -> dict[str, list[_Entry]]:
    """The boxes of train.csv by image name, read in ``csv_order`` ("auto": the order the JSON boxes confirm)."""
    if csv_path is None:
        return {}
    header, rows = _read_kaggle_csv(csv_path, report)
    order = csv_order
    if rows:
        both = [(n, v, c) for _, n, v, c in rows if n in json_boxes and json_boxes[n]]
        json_keys = {n: Counter(_box_key(b, c) for b, c, _ in json_boxes[n]) for n in {n for n, _, _ in both}}
        hits = {o: sum(_box_key(_csv_box(v, o), c) in json_keys[n] for n, v, c in both) for o in ("position", "header")}
        if order == "auto":
            order = "header" if hits["header"] > hits["position"] else "position"
        if both:
            confirm = f"the JSON boxes confirm it on {hits[order]} of {len(both)} rows that have one"
        else:
            confirm = "no image has both, so this follows the Kaggle file"
        if [h.lower() for h in header] == list(KAGGLE_CSV_HEADER) and order == "position":
            report.notes.append(
                f"{csv_path.name}: the header says {','.join(KAGGLE_CSV_HEADER)} but the values are "
                f"x1,y1,x2,y2 ({confirm}); read by position."
            )
        else:
            report.notes.append(f"{csv_path.name}: read in {order} order ({confirm}).")
    boxes: dict[str, list[_Entry]] = {}
    for line, name, values, classname in rows:
        boxes.setdefault(name, []).append((_csv_box(values, order), classname, f"{csv_path.name} line {line}"))
    return boxes


def _reconcile(
    from_json: list[_Entry] | None, from_csv: list[_Entry] | None, json_broken: bool, report: LoadReport, tally: _Tally,
) -> list[_Entry] | None:
    """One image's boxes: the JSON file's where it has one (CSV rows that disagree are reported), else train.csv's.

    None when neither has any (a malformed JSON file and no CSV row: already reported).
    """
    if from_json is not None and from_csv is not None:
        json_left = Counter(_box_key(b, c) for b, c, _ in from_json)
        csv_left = Counter(_box_key(b, c) for b, c, _ in from_csv)
        for b, c, item in from_csv:
            key = _box_key(b, c)
            if json_left[key] > 0:
                json_left[key] -= 1
            else:
                report.drop(item, "CSV row disagrees with the image's JSON (the JSON boxes were kept)")
        for b, c, _ in from_json:
            key = _box_key(b, c)
            if csv_left[key] > 0:
                csv_left[key] -= 1
            else:
                tally.json_not_in_csv += 1
        return from_json
    if from_json is not None:
        tally.json_only += 1
        return from_json
    if from_csv is not None:
        if json_broken:
            tally.csv_for_broken += 1
        else:
            tally.csv_only += 1
        return from_csv
    return None


def _kaggle_record(
    name: str, entries: list[_Entry], images: _ImageFolder, cmap: Mapping[str, str | None], report: LoadReport, tally: _Tally,
) -> ImageRecord | None:
    """The record of one annotated image with its checked boxes; None (reported) when none can be used."""
    path, case_fixed = images.find(name)
    if case_fixed:
        tally.case_fixed.append(f"{name} -> {path.name}")
    if path is None:
        report.drop(f"{name} ({_n(len(entries), 'box')})", "image file missing")
        return None
    try:
        width, height = image_size(path)
    except ImageError as exc:
        _drop_image(report, f"{name} ({_n(len(entries), 'box')})", exc, tally.refused)
        return None
    boxes: list[FaceBox] = []
    for box, classname, item in entries:
        _add_box(report, boxes, box, classname, cmap, width, height, item, tally.overshoot)
    if not boxes:
        report.drop(name, "image has no usable box" if entries else "image has no annotation")
        return None
    return ImageRecord(path, boxes, None, width, height)


def _note_sources(
    report: LoadReport, layout: KaggleLayout, tally: _Tally, images: _ImageFolder,
    json_boxes: dict[str, list[_Entry]], csv_boxes: dict[str, list[_Entry]], broken_json: set[str],
) -> None:
    """The notes on where the boxes came from, and on the images nothing annotates (the Kaggle test split)."""
    if tally.case_fixed:
        report.notes.append(f"image names matched ignoring case: {_n(len(tally.case_fixed), 'image')} ({_examples(tally.case_fixed)}).")
    if layout.csv_path is None:
        report.notes.append("no train.csv: every box comes from the JSON files.")
    elif tally.json_only:
        report.notes.append(f"JSON file but no train.csv row: {_n(tally.json_only, 'image')} (the JSON boxes were used).")
    if not json_boxes and not broken_json:
        report.notes.append("no JSON annotation files: every box comes from train.csv (read as described above).")
    elif tally.csv_only:
        report.notes.append(f"train.csv rows but no JSON file: {_n(tally.csv_only, 'image')} (the CSV boxes were used).")
    if tally.csv_for_broken:
        report.notes.append(f"malformed JSON file, read from train.csv instead: {_n(tally.csv_for_broken, 'image')}.")
    if tally.json_not_in_csv:
        report.notes.append(f"JSON boxes without a matching train.csv row: {tally.json_not_in_csv} (kept).")
    annotated_lower = {n.lower() for n in set(json_boxes) | set(csv_boxes) | broken_json}
    unannotated = [n for n in images.by_name if n.lower() not in annotated_lower]
    if unannotated:
        report.notes.append(
            f"no annotation at all (the Kaggle test split): {_n(len(unannotated), 'image')} in {layout.images_dir.name}/, "
            "not loaded as faces."
        )


def _kaggle_class_map(report: LoadReport, cmap: Mapping[str, str | None]) -> dict[str, str | None]:
    """The class map the dataset records: all 20 Kaggle classes, the user's keys, and unknown names (None).

    Notes class names outside the 20 and ``class_map`` keys that match nothing (a typo maps nothing).
    """
    unknown = sorted(c for c in report.raw_class_counts if c not in cmap and c not in KAGGLE_CLASS_NAMES)
    if unknown:
        n = sum(report.raw_class_counts[c] for c in unknown)
        report.notes.append(f"class names outside the 20 Kaggle classes ({_examples(unknown)}): {_n(n, 'box')}, kept with label None.")
    _note_unused_keys(report, cmap, report.raw_class_counts, KAGGLE_CLASS_NAMES, "class")
    full_map = {name: cmap.get(name) for name in KAGGLE_CLASS_NAMES}
    full_map.update(cmap)
    for c in unknown:
        full_map.setdefault(c, None)
    return full_map


def load_annotations(
    root: str | Path,
    class_map: Mapping[str, str | None] | None = None,
    *,
    csv_order: str = "auto",
    verbose: bool = False,
    classes: int = 2,
) -> Dataset:
    """Load the Kaggle "Face Mask Detection Dataset" (Wobot Intelligence) from its folder.

    ``root`` holds ``train.csv`` and ``Medical mask/Medical mask/Medical Mask/{images,annotations}/``
    (found when nested slightly differently). Boxes come from the per-image JSON files and from
    ``train.csv``; where both describe an image they are compared and the JSON wins.

    **The column quirk.** ``train.csv``'s header reads ``name,x1,x2,y1,y2,classname`` but its values are
    ``x1, y1, x2, y2`` (see :func:`csv_column_quirk`). ``csv_order="auto"`` checks which reading the JSON
    boxes confirm (the values' order, for the Kaggle file); ``"position"`` or ``"header"`` forces one.

    ``class_map`` maps the 20 class names to ``"with_mask"``/``"without_mask"``/None (default
    :data:`DEFAULT_CLASS_MAP`). Unmapped boxes are kept with ``label=None`` and their ``raw_label``.
    ``classes=3`` keeps ``face_with_mask_incorrect`` as a third class, ``"mask_worn_incorrectly"``
    (:func:`~maskedu.dataset.keep_third_class`).

    Boxes past the image edge are clipped; empty, inverted or outside boxes, annotations of missing
    images and malformed files are dropped and listed in ``dataset.report`` with their reasons.
    Images without any annotation (the Kaggle test split) are counted in a note, not loaded.

    >>> ds = load_annotations("data/face-mask-detection-dataset")  # doctest: +SKIP
    >>> print(ds.report)        # what was kept, clipped, dropped and why      # doctest: +SKIP
    >>> ds.class_counts()       # faces per class: with_mask, without_mask     # doctest: +SKIP
    """
    check_choice("csv_order", csv_order, ["auto", "position", "header"])
    root = _as_folder(root, "load_annotations")
    cmap = _with_classes(check_class_map(class_map), classes)
    layout = _kaggle_layout_or_error(root)
    report = LoadReport()
    images = _index_images(layout.images_dir, report)
    json_boxes, broken_json = _read_json_annotations(layout.annotations_dir, images, report)
    csv_boxes = _read_csv_annotations(layout.csv_path, json_boxes, csv_order, report)

    tally = _Tally()
    records: list[ImageRecord] = []
    names = sorted(set(json_boxes) | set(csv_boxes) | (broken_json & set(images.by_name)))
    for name in progress(names, desc="reading annotations", disable=None if len(names) > 500 else True):
        entries = _reconcile(json_boxes.get(name), csv_boxes.get(name), name in broken_json, report, tally)
        record = None if entries is None else _kaggle_record(name, entries, images, cmap, report, tally)
        if record is not None:
            records.append(record)

    _count_kept_boxes(report, records, tally.overshoot)
    _note_refused(report, tally.refused)
    _note_sources(report, layout, tally, images, json_boxes, csv_boxes, broken_json)
    full_map = _kaggle_class_map(report, cmap)
    dataset = Dataset(root, "kaggle", records, full_map, report)
    _note_mapping(report, dataset.class_counts(), full_map)
    if verbose:
        print(report.summary())
    return dataset


# --------------------------------------------------------------------------- the column quirk, for the student


@dataclass(frozen=True)
class ColumnQuirk:
    """One ``train.csv`` row read two ways, beside the JSON box of the same face."""

    csv_path: Path
    line: int
    header: tuple[str, ...]
    row: tuple[str, ...]
    by_header: tuple[float, float, float, float]
    by_position: tuple[float, float, float, float]
    json_box: tuple[float, float, float, float] | None
    json_file: Path | None
    image_path: Path | None = None

    @property
    def verdict(self) -> str:
        if self.json_box is None:
            return "no JSON box for this row to compare with"
        if _box_key(self.by_position, "") == _box_key(self.json_box, ""):
            return "the values are x1, y1, x2, y2: read by position, not by the header's names"
        if _box_key(self.by_header, "") == _box_key(self.json_box, ""):
            return "this file follows its header (not the Kaggle quirk)"
        return "neither reading matches the JSON box"

    def __str__(self) -> str:
        def fmt(box):
            return "(" + ", ".join(f"{v:g}" for v in box) + ")" if box is not None else "-"

        lines = [
            f"{self.csv_path.name}, line {self.line}",
            f"  header          : {','.join(self.header)}",
            f"  row             : {','.join(self.row)}",
            f"  read by header  : (x1, y1, x2, y2) = {fmt(self.by_header)}",
            f"  read by position: (x1, y1, x2, y2) = {fmt(self.by_position)}",
            f"  JSON BoundingBox: (x1, y1, x2, y2) = {fmt(self.json_box)}"
            + (f"   [{self.json_file.name}]" if self.json_file else ""),
            f"  verdict         : {self.verdict}",
        ]
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):  # IPython shows str()
        p.text(str(self))


def csv_column_quirk(root: str | Path, line: int | None = None, *, search: int = 500) -> ColumnQuirk:
    """Show the ``train.csv`` column quirk on one row: its header's reading, the positional reading, and the JSON box.

    ``line`` picks a CSV line (2 is the first data row). By default the first row whose image has a
    matching JSON box is shown, preferring (among the first ``search`` rows) one where the header's
    reading is still a plausible box, which makes the trap easy to miss.

    >>> print(csv_column_quirk("data/face-mask-detection-dataset"))  # doctest: +SKIP
    """
    root = _as_folder(root, "csv_column_quirk")
    layout = find_kaggle_layout(root)
    if layout.csv_path is None:
        raise LayoutError(f"no train.csv under {root}: the column quirk lives in the Kaggle train.csv.")
    chosen = fallback = None
    with open(layout.csv_path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        header = tuple(h.strip() for h in next(reader, []) or [])
        for n, row in enumerate(_csv_rows(reader), start=2):
            if line is not None and n != line:
                continue
            if line is None and n > search + 1 and fallback is not None:
                break
            if isinstance(row, csv.Error) or len(row) != 6 or not all(_is_number(v) for v in row[1:5]):
                if line is not None:
                    raise ValueError(f"{layout.csv_path.name} line {line} is not a data row with four numbers: {row}.")
                continue
            values = [float(v) for v in row[1:5]]
            json_box, jf = _json_box_for_row(layout, row, values)
            candidate = (n, row, values, json_box, jf)
            if line is not None:
                chosen = candidate
                break
            if json_box is None:
                continue
            fallback = fallback or candidate
            if box_is_valid(_csv_box(values, "header")):
                chosen = candidate
                break
    chosen = chosen or fallback
    if chosen is None:
        where = f"line {line}" if line is not None else "any row with a matching JSON box"
        raise ValueError(f"{layout.csv_path} has no readable data row at {where}.")
    n, row, values, json_box, jf = chosen
    image_path = None if layout.images_dir is None else layout.images_dir / row[0].strip()
    return ColumnQuirk(
        layout.csv_path, n, header, tuple(c.strip() for c in row),
        _csv_box(values, "header"), _csv_box(values, "position"), json_box, jf,
        image_path if image_path is not None and image_path.is_file() else None,
    )


def _json_box_for_row(layout: KaggleLayout, row: Sequence[str], values: Sequence[float]):
    """The JSON BoundingBox (and its file) matching a CSV row read either way, or (None, None)."""
    if layout.annotations_dir is None:
        return None, None
    jf = layout.annotations_dir / f"{row[0].strip()}.json"
    if not jf.is_file():
        return None, None
    _, annos, error = _read_kaggle_json(jf)
    keys = {_box_key(_csv_box(values, o), "") for o in ("position", "header")}
    for anno in annos if not error else []:
        box = anno.get("BoundingBox") if isinstance(anno, dict) else None
        if isinstance(box, list) and len(box) == 4 and anno.get("classname") == row[5].strip():
            try:
                if _box_key(box, "") in keys:
                    return tuple(float(v) for v in box), jf
            except (TypeError, ValueError):
                continue
    return None, None


# --------------------------------------------------------------------------- class folders


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


def _with_classes(cmap: dict[str, str | None], classes) -> dict[str, str | None]:
    """``cmap`` as it is for 2 classes; for 3, with the third class's spellings mapped to it."""
    return keep_third_class(cmap) if check_classes(classes) == 3 else cmap


def load_class_folders(root: str | Path, class_map: Mapping[str, str | None] | None = None, *, verbose: bool = False,
                       classes: int = 2) -> Dataset:
    """Load a folder of class folders: ``root/with_mask/*.jpg`` and ``root/without_mask/*.png`` (one face per image).

    Folder names are matched through ``class_map`` (default :data:`FOLDER_CLASS_MAP`) ignoring case,
    spaces, ``_`` and ``-``, so ``WithMask``, ``with-mask``, ``mask`` and ``no_mask`` all work.
    ``classes=3`` keeps a folder of the third class (``mask_weared_incorrect/``, ``incorrect_mask/``, ...:
    :data:`~maskedu.dataset.INCORRECT_SPELLINGS`) as ``"mask_worn_incorrectly"``.
    Sub-folders inside a class folder are read too. Files that are not images, unreadable images and
    folders that are not a class are reported, never loaded silently.

    >>> ds = load_class_folders("../shared/realfaces")                # doctest: +SKIP
    >>> ds.class_counts()                                              # doctest: +SKIP
    Counter({'with_mask': 300, 'without_mask': 300})
    """
    root = _as_folder(root, "load_class_folders")
    cmap = _with_classes(check_class_map(class_map, FOLDER_CLASS_MAP), classes)
    lookup = {_norm(k): v for k, v in cmap.items()}
    report = LoadReport()
    class_dirs, unmapped_dirs = [], []
    for child in _listdir(root):
        if child.is_dir():
            if child.name.startswith("."):
                continue
            key = _norm(child.name)
            if key not in lookup:
                n = sum(1 for f in child.rglob("*") if f.is_file())
                report.drop(f"{child.name}/ ({n} files)", "folder is not a class in class_map")
            elif lookup[key] is None:
                unmapped_dirs.append(child)
            else:
                class_dirs.append((child, lookup[key]))
        else:
            report.drop(child.name, "file outside the class folders")
    if not class_dirs and not unmapped_dirs:
        nested = [d for d in _listdir(root) if d.is_dir() and any(_norm(c.name) in lookup for c in _listdir(d) if c.is_dir())]
        hint = f" Class folders were found one level down, in {', '.join(d.name + '/' for d in nested)}: pass that folder." if nested else ""
        raise LayoutError(
            f"{root} has no class folders: expected sub-folders such as with_mask/ and without_mask/ "
            f"(known names: {', '.join(sorted(cmap))}; pass class_map={{'my_folder': 'with_mask', ...}} for others).{hint} "
            f"{_describe(root)}"
        )
    for d in unmapped_dirs:
        n = sum(1 for f in d.rglob("*") if f.is_file())
        report.drop(f"{d.name}/ ({n} files)", "folder's class maps to None in class_map")
    files = [(f, label, d) for d, label in class_dirs for f in sorted(d.rglob("*")) if not f.is_dir()]
    images = []
    refused: list[str] = []
    for f, label, d in progress(files, desc="reading folders", disable=None if len(files) > 500 else True):
        rel = f.relative_to(root).as_posix()
        if not is_image_file(f):
            report.drop(rel, "not an image file")
            continue
        try:
            width, height = image_size(f)
        except ImageError as exc:
            _drop_image(report, rel, exc, refused)
            continue
        images.append(ImageRecord(f, [], label, width, height))
    report.images_kept = len(images)
    _note_refused(report, refused)
    report.raw_class_counts = Counter(d.name for r in images for d, _ in class_dirs if d in r.path.parents)
    seen_names = {_norm(d.name) for d, _ in class_dirs} | {_norm(d.name) for d in unmapped_dirs}
    for key in cmap:
        if class_map is not None and _norm(key) not in seen_names:
            report.notes.append(f"class_map key {key!r} matches no folder in {root.name}/; it was not used.")
    full_map = {d.name: label for d, label in class_dirs}
    full_map.update({d.name: None for d in unmapped_dirs})
    dataset = Dataset(root, "folders", images, full_map, report)
    _note_mapping(report, dataset.class_counts(), full_map)
    if verbose:
        print(report.summary())
    return dataset


# --------------------------------------------------------------------------- PASCAL VOC


def _voc_pair(root: Path) -> tuple[Path, Path] | None:
    if (root / "images").is_dir() and (root / "annotations").is_dir():
        return root / "images", root / "annotations"
    pairs = _find_pairs(root)
    with_xml = [p for p in pairs if any(f.suffix.lower() == ".xml" for f in _listdir(p[1]))]
    return (with_xml or pairs or [None])[0]


def _xml_text(node, tag: str) -> str | None:
    found = node.find(tag)
    return None if found is None or found.text is None else found.text.strip()


def _read_voc_xml(xf: Path, ann_dir: Path, report: LoadReport):
    """The root element of one VOC annotation file, or None (reported) for a special, non-XML or malformed file."""
    if _is_special(xf):  # parsing a FIFO would wait forever
        report.drop(f"{ann_dir.name}/{xf.name}", REASON_NOT_REGULAR)
        return None
    if xf.suffix.lower() != ".xml":
        report.drop(f"{ann_dir.name}/{xf.name}", "not an XML annotation file")
        return None
    try:
        return ET.parse(xf).getroot()
    except (ET.ParseError, OSError) as exc:
        report.drop(xf.name, "malformed XML file")
        report.notes.append(f"{xf.name}: {exc}")
        return None


def _voc_image(xf: Path, filename: str, on_disk: dict[str, Path], by_stem: dict[str, list[Path]]) -> tuple[Path, str] | None:
    """The image an XML file annotates and how it was matched: by ``<filename>``, by the XML file's own name,
    or by ``<filename>``'s stem; None when no image fits. ``<filename>`` wins unless it names another
    image than the XML file's own name does."""
    own = by_stem.get(xf.stem, [])
    named = on_disk.get(filename)
    if named is not None and (named.stem == xf.stem or not own):
        return named, "<filename>"
    if own:
        return own[0], "the XML file's own name"
    if filename and by_stem.get(Path(filename).stem):
        return by_stem[Path(filename).stem][0], "<filename>'s stem"
    return None


def _voc_size_mismatch(node, xf: Path, width: int, height: int) -> str | None:
    """A note when the XML's ``<size>`` disagrees with the image file (whose size is used either way)."""
    xml_w, xml_h = _xml_text(node, "size/width"), _xml_text(node, "size/height")
    try:
        if xml_w and xml_h and float(xml_w) > 0 and (int(float(xml_w)), int(float(xml_h))) != (width, height):
            return f"{xf.name}: <size> {xml_w}x{xml_h}, file {width}x{height}"
    except (ValueError, OverflowError):  # not a number, NaN or infinite: the file's size is used anyway
        pass
    return None


def _voc_boxes(
    node, xf: Path, cmap: Mapping[str, str | None], width: int, height: int, report: LoadReport, overshoot: list[float],
) -> list[FaceBox]:
    """The checked boxes of every ``<object>``; malformed objects and unusable boxes are reported."""
    boxes: list[FaceBox] = []
    for i, obj in enumerate(node.findall("object")):
        item = f"{xf.name} object {i}"
        name = _xml_text(obj, "name")
        bb = obj.find("bndbox")
        if not name or bb is None:
            report.drop(item, "malformed object in XML (no name or bndbox)")
            continue
        raw = [_xml_text(bb, t) for t in ("xmin", "ymin", "xmax", "ymax")]
        if any(v is None for v in raw):
            report.drop(item, REASON_MALFORMED_BOX)
            continue
        _add_box(report, boxes, raw, name, cmap, width, height, item, overshoot)
    return boxes


def load_voc(root: str | Path, class_map: Mapping[str, str | None] | None = None, *, verbose: bool = False,
             classes: int = 2) -> Dataset:
    """Load a PASCAL VOC dataset: ``root/images/`` plus one ``root/annotations/<name>.xml`` per image.

    This is the format of andrewmvd's Kaggle "Face Mask Detection" (853 scenes; classes ``with_mask``,
    ``without_mask``, ``mask_weared_incorrect``; default map :data:`VOC_CLASS_MAP`). Real files have
    boxes that run a pixel past the edge (clipped, counted) and ``<filename>`` entries that disagree
    with the file on disk (the image is matched by ``<filename>`` or by the XML's own name, and the
    report says which was used). Malformed XML files are reported. ``classes=3`` keeps
    ``mask_weared_incorrect`` as a third class, ``"mask_worn_incorrectly"``.

    >>> ds = load_voc("data/andrewmvd")                               # doctest: +SKIP
    """
    root = _as_folder(root, "load_voc")
    pair = _voc_pair(root)
    if pair is None:
        raise LayoutError(
            f"{root} is not a PASCAL VOC dataset: expected images/ and annotations/*.xml. {_describe(root)}"
        )
    images_dir, ann_dir = pair
    cmap = _with_classes(check_class_map(class_map, VOC_CLASS_MAP), classes)
    report = LoadReport()
    files = [p for p in _listdir(images_dir) if not p.is_dir()]  # special files too: reported, not skipped
    on_disk = {p.name: p for p in files if is_image_file(p)}
    for p in files:
        if not is_image_file(p):
            report.drop(f"{images_dir.name}/{p.name}", "not an image file")
    by_stem: dict[str, list[Path]] = {}
    for p in on_disk.values():
        by_stem.setdefault(p.stem, []).append(p)
    refused: list[str] = []
    matched_by: Counter = Counter()
    disagree: list[str] = []
    used: dict[Path, str] = {}
    images: list[ImageRecord] = []
    overshoot: list[float] = []
    size_mismatch: list[str] = []
    for xf in [p for p in _listdir(ann_dir) if not p.is_dir()]:
        node = _read_voc_xml(xf, ann_dir, report)
        if node is None:
            continue
        filename = re.split(r"[\\/]", _xml_text(node, "filename") or "")[-1]
        match = _voc_image(xf, filename, on_disk, by_stem)
        if match is None:
            n_obj = len(node.findall("object"))
            report.drop(f"{xf.name} ({_n(n_obj, 'box')}; <filename> {filename!r})", "image file missing")
            continue
        path, how = match
        matched_by[how] += 1
        if path.name != filename:
            disagree.append(f"{xf.name}: <filename> {filename!r}, used {path.name}")
        if path in used:
            report.drop(xf.name, "another XML file already annotates this image")
            report.notes.append(f"{xf.name} and {used[path]} both annotate {path.name}; the first was used.")
            continue
        try:
            width, height = image_size(path)
        except ImageError as exc:
            _drop_image(report, path.name, exc, refused)
            continue
        mismatch = _voc_size_mismatch(node, xf, width, height)
        if mismatch:
            size_mismatch.append(mismatch)
        boxes = _voc_boxes(node, xf, cmap, width, height, report, overshoot)
        used[path] = xf.name
        if not boxes:
            report.drop(path.name, "image has no usable box")
            continue
        images.append(ImageRecord(path, boxes, None, width, height))
    _count_kept_boxes(report, images, overshoot)
    _note_refused(report, refused)
    if disagree:
        how = ", ".join(f"{n} by {k}" for k, n in matched_by.most_common())
        report.notes.append(
            f"{len(disagree)} XML files have a <filename> that disagrees with the file on disk ({_examples(disagree, 2)}). "
            f"Images matched: {how}."
        )
    if size_mismatch:
        report.notes.append(f"{len(size_mismatch)} XML <size> entries disagree with the image file ({_examples(size_mismatch, 2)}); the file's size was used.")
    unannotated = [p.name for p in on_disk.values() if p not in used]
    if unannotated:
        report.notes.append(f"no XML annotation: {_n(len(unannotated), 'image')} ({_examples(unannotated)}), not loaded.")
    unknown = sorted(c for c in report.raw_class_counts if c not in cmap)
    if unknown:
        report.notes.append(f"class names not in class_map ({_examples(unknown)}): kept with label None.")
    _note_unused_keys(report, cmap, report.raw_class_counts, VOC_CLASS_MAP if class_map is None else (), "class")
    full_map = dict(cmap)
    for c in unknown:
        full_map[c] = None
    dataset = Dataset(root, "voc", images, full_map, report)
    _note_mapping(report, dataset.class_counts(), full_map)
    if verbose:
        print(report.summary())
    return dataset


# --------------------------------------------------------------------------- detecting the layout

LAYOUTS: dict[str, str] = {
    "kaggle": "Kaggle 'Face Mask Detection Dataset': train.csv and/or images/ + annotations/*.json (load_annotations)",
    "voc": "PASCAL VOC: images/ + annotations/*.xml, e.g. andrewmvd's set (load_voc)",
    "folders": "class folders: with_mask/ and without_mask/ of face images (load_class_folders)",
}


def _as_folder(root, caller: str) -> Path:
    if root is None:
        raise TypeError(f"{caller}() needs the dataset's folder, got None. maskedu.get_dataset() finds or builds one.")
    path = Path(root).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{caller}(): the folder {path} does not exist (paths are relative to {Path.cwd()}).")
    if not path.is_dir():
        raise NotADirectoryError(f"{caller}(): {path} is a file; pass the folder that holds the dataset.")
    return path


def _describe(root: Path) -> str:
    entries = _listdir(root)
    if not entries:
        return f"{root} is empty."
    shown = [e.name + ("/" if e.is_dir() else "") for e in entries[:10]]
    more = f" and {len(entries) - 10} more" if len(entries) > 10 else ""
    return f"It holds: {', '.join(shown)}{more}."


def detect_layout(root: str | Path) -> str:
    """``"kaggle"``, ``"voc"`` or ``"folders"``: the layout of a dataset folder; :class:`LayoutError` when none fits."""
    root = _as_folder(root, "detect_layout")
    pair = _find_pairs(root)
    for images_dir, ann_dir in pair:
        suffixes = Counter(f.suffix.lower() for f in _listdir(ann_dir))
        if suffixes[".json"] and suffixes[".json"] >= suffixes[".xml"]:
            return "kaggle"
        if suffixes[".xml"]:
            return "voc"
    if (root / KAGGLE_CSV).is_file() and pair:
        return "kaggle"
    lookup = {_norm(k) for k in FOLDER_CLASS_MAP}
    if any(c.is_dir() and _norm(c.name) in lookup for c in _listdir(root)):
        return "folders"
    if pair and _find_file(root, KAGGLE_CSV):
        return "kaggle"
    known = "\n".join(f"  - {name}: {text}" for name, text in LAYOUTS.items())
    raise LayoutError(f"could not recognise the layout of {root}. {_describe(root)}\nKnown layouts:\n{known}")


def load_dataset(root: str | Path, **kw) -> Dataset:
    """Load a dataset folder in any known layout (Kaggle, PASCAL VOC, class folders), detected from its files.

    Keyword arguments (``class_map=...``, ``classes=3``, ...) go to the matching loader. A folder in none of the
    layouts gives a :class:`LayoutError` listing the layouts it knows.

    >>> ds = load_dataset("../shared/realfaces")                      # doctest: +SKIP
    >>> ds.layout                                                    # doctest: +SKIP
    'folders'
    """
    layout = detect_layout(root)
    loader = {"kaggle": load_annotations, "voc": load_voc, "folders": load_class_folders}[layout]
    return loader(root, **kw)


# --------------------------------------------------------------------------- what we loaded vs the full Kaggle set


def compare_with_kaggle(dataset: Dataset) -> str:
    """A small table: the full Kaggle dataset's published numbers (:data:`KAGGLE_REFERENCE`) beside what was loaded.

    >>> print(compare_with_kaggle(ds))                                 # doctest: +SKIP
    """
    if dataset.layout != "kaggle":
        raise ValueError(f"compare_with_kaggle() compares a Kaggle-layout dataset; this one is {dataset.layout!r}.")
    layout = find_kaggle_layout(dataset.root)
    files = [p.name for p in _listdir(layout.images_dir) if p.is_file() and is_image_file(p)] if layout.images_dir else []
    referenced = set()
    if layout.annotations_dir is not None:
        referenced |= {p.name[: -len(p.suffix)] for p in _listdir(layout.annotations_dir) if p.suffix.lower() == ".json"}
        referenced |= {Path(n).stem for n in referenced}
    if layout.csv_path is not None:
        with open(layout.csv_path, newline="", encoding="utf-8-sig", errors="replace") as f:
            referenced |= {row[0].strip() for row in _csv_rows(csv.reader(f)) if isinstance(row, list) and row}
    unannotated = sum(1 for n in files if n not in referenced and Path(n).stem not in referenced)
    counts = dataset.class_counts()
    rows = [
        ("images in images/", KAGGLE_REFERENCE["images"], len(files)),
        ("annotated images (loaded)", KAGGLE_REFERENCE["annotated_images"], len(dataset)),
        ("images without annotation (test split)", KAGGLE_REFERENCE["test_images"], unannotated),
        ("class names", KAGGLE_REFERENCE["classes"], len(dataset.raw_class_counts())),
        ("faces: with_mask", None, counts.get("with_mask", 0)),
        ("faces: without_mask", None, counts.get("without_mask", 0)),
    ]
    name = "sample" if dataset.source == "sample" else "loaded here"
    width = max(len(r[0]) for r in rows)
    lines = [f"{'':{width}}  {'full Kaggle set':>15}  {name:>12}"]
    for label, ref, ours in rows:
        ref_text = f"{ref:,}" if ref is not None else "-"
        lines.append(f"{label:{width}}  {ref_text:>15}  {ours:>12,}")
    return "\n".join(lines)
