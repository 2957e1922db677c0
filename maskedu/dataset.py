"""The data every stage shares: the class names, the Kaggle layout's names, and the dataset records.

These types are the contract between the stages (notebook 01 builds them, 02 crops them, 03 trains on them):

* :class:`FaceBox`: one annotated face, ``(x1, y1, x2, y2)`` pixels with x2/y2 exclusive, its mapped
  class (``"with_mask"``/``"without_mask"``, ``"mask_worn_incorrectly"`` with ``classes=3``, or None) and
  the dataset's own class name.
* :class:`ImageRecord`: one image file with its boxes (Kaggle/VOC layouts) or its folder label
  (class-folder layout).
* :class:`LoadReport`: what a loader kept, clipped and dropped, and why. Nothing is dropped silently.
* :class:`Dataset`: the records, the class mapping used, the layout and the report; its
  ``class_names`` (two, or three when the class map keeps the third class) say what label index means what.

The constants (:data:`CLASS_NAMES`, the Kaggle folder names and CSV header, the class maps) are defined
here once; the loaders (:mod:`maskedu.annotations`), the downloader and the sample builder import them.

>>> box = FaceBox(10, 20, 60, 90, "with_mask", "face_with_mask")
>>> box.width, box.height, box.area
(50, 70, 3500)
>>> record = ImageRecord(Path("1801.jpg"), [box], width=200, height=150)
>>> ds = Dataset(Path("."), "kaggle", [record], dict(DEFAULT_CLASS_MAP), LoadReport(images_kept=1, boxes_kept=1))
>>> ds.class_counts()
Counter({'with_mask': 1})
>>> ds.report
LoadReport(kept 1 image, 1 box, 0 clipped; dropped nothing)
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "CLASS_NAMES",
    "INCORRECT_CLASS",
    "CLASS_NAMES_3",
    "INCORRECT_SPELLINGS",
    "KAGGLE_CLASS_NAMES",
    "DEFAULT_CLASS_MAP",
    "FOLDER_CLASS_MAP",
    "VOC_CLASS_MAP",
    "KAGGLE_SUBDIR",
    "KAGGLE_IMAGES_DIR",
    "KAGGLE_ANNOTATIONS_DIR",
    "KAGGLE_CSV",
    "KEYPOINT_NAMES",
    "KAGGLE_CSV_HEADER",
    "KAGGLE_CSV_VALUES",
    "KAGGLE_REFERENCE",
    "FaceBox",
    "ImageRecord",
    "LoadReport",
    "Dataset",
    "check_class_map",
    "check_classes",
    "class_names_for",
    "default_class_names",
    "keep_third_class",
]

# --------------------------------------------------------------------------- class names and maps

#: The paper's two classes, in label-index order: label 0 is "with_mask", label 1 "without_mask".
CLASS_NAMES: tuple[str, str] = ("with_mask", "without_mask")

#: The third class, kept only when asked for (``get_dataset(classes=3)``, ``MASKEDU_CLASSES=3``): a mask
#: worn under the nose or the chin. Left out by default, as the paper does.
INCORRECT_CLASS: str = "mask_worn_incorrectly"

#: The three classes in label-index order: 0 and 1 mean what they mean with two classes, 2 is the third.
CLASS_NAMES_3: tuple[str, str, str] = (*CLASS_NAMES, INCORRECT_CLASS)

#: How datasets spell the third class: the Kaggle Wobot set ``face_with_mask_incorrect``, andrewmvd's VOC set
#: ``mask_weared_incorrect``, and class folders any of these (compared ignoring case, spaces, ``_``, ``-``).
INCORRECT_SPELLINGS: tuple[str, ...] = (
    "face_with_mask_incorrect", "mask_weared_incorrect", "mask_worn_incorrectly", "mask_worn_incorrect",
    "incorrect_mask", "mask_incorrect", "incorrectly_worn_mask",
)

#: The 20 class names of the Kaggle "Face Mask Detection Dataset" (Wobot Intelligence).
KAGGLE_CLASS_NAMES: tuple[str, ...] = (
    "face_with_mask", "face_no_mask", "face_with_mask_incorrect", "mask_colorful", "mask_surgical",
    "face_other_covering", "scarf_bandana", "eyeglasses", "helmet", "face_shield", "sunglasses", "hood",
    "hat", "goggles", "hair_net", "hijab_niqab", "other", "gas_mask", "balaclava_ski_mask", "turban",
)

#: Kaggle class name -> the paper's class. Only two of the 20 are faces the paper uses; the others
#: (mask types, hats, glasses, ...) map to None: their boxes are kept with ``label=None`` and stay
#: reachable through ``raw_label``, ``Dataset.raw_class_counts()`` and ``Dataset.filter(raw_labels=...)``.
#: Change it by passing your own: ``load_annotations(root, class_map={**DEFAULT_CLASS_MAP, "face_with_mask_incorrect": "without_mask"})``.
DEFAULT_CLASS_MAP: dict[str, str | None] = {name: None for name in KAGGLE_CLASS_NAMES}
DEFAULT_CLASS_MAP.update({"face_with_mask": "with_mask", "face_no_mask": "without_mask"})

#: Folder name -> class for :func:`~maskedu.annotations.load_class_folders`. Names are compared ignoring
#: case, spaces, ``_`` and ``-`` (so ``WithMask``, ``with-mask`` and ``with_mask`` are one name).
FOLDER_CLASS_MAP: dict[str, str | None] = {
    "with_mask": "with_mask", "mask": "with_mask", "masked": "with_mask", "face_with_mask": "with_mask",
    "without_mask": "without_mask", "no_mask": "without_mask", "non_mask": "without_mask",
    "unmasked": "without_mask", "face_no_mask": "without_mask", "without_a_mask": "without_mask",
    **{name: None for name in INCORRECT_SPELLINGS},
}

#: Class name -> class for :func:`~maskedu.annotations.load_voc` (andrewmvd's "Face Mask Detection" set).
VOC_CLASS_MAP: dict[str, str | None] = {
    "with_mask": "with_mask", "without_mask": "without_mask", "mask_weared_incorrect": None,
}

# --------------------------------------------------------------------------- the Kaggle layout on disk

#: Where the Kaggle archive puts the image and annotation folders, relative to the dataset's root.
KAGGLE_SUBDIR: Path = Path("Medical mask") / "Medical mask" / "Medical Mask"
KAGGLE_IMAGES_DIR: Path = KAGGLE_SUBDIR / "images"
KAGGLE_ANNOTATIONS_DIR: Path = KAGGLE_SUBDIR / "annotations"
#: The CSV of every box, at the dataset's root.
KAGGLE_CSV: str = "train.csv"
#: The five facial landmarks MTCNN gives, in its order (the crop, pattern and sample stages use them).
KEYPOINT_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

#: What the header of the Kaggle ``train.csv`` says ...
KAGGLE_CSV_HEADER: tuple[str, ...] = ("name", "x1", "x2", "y1", "y2", "classname")
#: ... and what its values really are (the per-image JSON ``BoundingBox`` shows it): read by position.
KAGGLE_CSV_VALUES: tuple[str, ...] = ("name", "x1", "y1", "x2", "y2", "classname")

#: The full Kaggle download, for comparison with what was loaded (from the dataset's Kaggle page:
#: 6,024 images, of which 4,326 are annotated (the train split) and 1,698 come without annotations
#: (the test split); 20 classes). The paper uses the annotated images and two of the classes.
KAGGLE_REFERENCE: dict[str, int] = {"images": 6024, "annotated_images": 4326, "test_images": 1698, "classes": 20}


def _n(count: int, word: str, plural: str | None = None) -> str:
    """``_n(1, "box")`` is "1 box", ``_n(3, "box")`` "3 boxes"."""
    if count == 1:
        return f"1 {word}"
    return f"{count} {plural or (word + 'es' if word.endswith(('s', 'x')) else word + 's')}"


def check_classes(classes, *, setting: str = "classes") -> int:
    """How many classes the course uses: 2 (the paper's, the default) or 3 (the third being
    :data:`INCORRECT_CLASS`); anything else raises :class:`~maskedu.common.ParameterError` naming ``setting``.

    >>> check_classes(3), check_classes("2")
    (3, 2)
    """
    from .common import ParameterError

    value = classes.strip() if isinstance(classes, str) else classes
    if isinstance(value, bool) or value not in (2, 3, "2", "3"):
        raise ParameterError(f"{setting}={classes!r} is not a choice: use 2 (with_mask and without_mask, the paper's) "
                             f"or 3 (also {INCORRECT_CLASS!r}, faces whose mask is under the nose or chin).")
    return int(value)


def class_names_for(classes) -> tuple[str, ...]:
    """The class names, in label-index order, for 2 or 3 classes.

    >>> class_names_for(3)
    ('with_mask', 'without_mask', 'mask_worn_incorrectly')
    """
    return CLASS_NAMES_3 if check_classes(classes) == 3 else CLASS_NAMES


def default_class_names(n_outputs: int) -> tuple[str, ...] | None:
    """The class names of a maskedu classifier with ``n_outputs`` outputs (2 or 3), None for other counts.

    >>> default_class_names(2), default_class_names(5)
    (('with_mask', 'without_mask'), None)
    """
    return {2: CLASS_NAMES, 3: CLASS_NAMES_3}.get(int(n_outputs))


def _norm_name(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch not in " _-\t")


def keep_third_class(class_map: Mapping[str, str | None]) -> dict[str, str | None]:
    """A copy of ``class_map`` with every spelling of the third class (:data:`INCORRECT_SPELLINGS`, compared
    ignoring case, spaces, ``_`` and ``-``) mapped to :data:`INCORRECT_CLASS`; labels 0 and 1 keep their meaning.

    >>> keep_third_class(VOC_CLASS_MAP)
    {'with_mask': 'with_mask', 'without_mask': 'without_mask', 'mask_weared_incorrect': 'mask_worn_incorrectly'}
    """
    spellings = {_norm_name(s) for s in INCORRECT_SPELLINGS}
    return {k: (INCORRECT_CLASS if _norm_name(k) in spellings else v) for k, v in class_map.items()}


def check_class_map(class_map: Mapping[str, str | None] | None, default: Mapping[str, str | None] | None = None) -> dict[str, str | None]:
    """Validate a class map (dataset class name -> ``"with_mask"``, ``"without_mask"``,
    ``"mask_worn_incorrectly"`` or None) and return a copy.

    ``None`` gives a copy of ``default`` (:data:`DEFAULT_CLASS_MAP` when not given). A map that sends a class
    to :data:`INCORRECT_CLASS` makes a three-class dataset (:attr:`Dataset.class_names`).

    >>> check_class_map({"face_with_mask": "with_mask", "hat": None})
    {'face_with_mask': 'with_mask', 'hat': None}
    """
    if class_map is None:
        return dict(DEFAULT_CLASS_MAP if default is None else default)
    if not isinstance(class_map, Mapping):
        raise TypeError(
            f"class_map must be a dict from the dataset's class names to {CLASS_NAMES[0]!r}, {CLASS_NAMES[1]!r} or None, "
            f"got {type(class_map).__name__}. Example: {{**DEFAULT_CLASS_MAP, 'face_with_mask_incorrect': 'without_mask'}}."
        )
    bad = {k: v for k, v in class_map.items() if v is not None and v not in CLASS_NAMES_3}
    if bad:
        key, value = next(iter(bad.items()))
        raise ValueError(
            f"class_map[{key!r}] = {value!r} is not allowed: values must be {CLASS_NAMES[0]!r}, {CLASS_NAMES[1]!r}, "
            f"{INCORRECT_CLASS!r} (a third class), or None (to keep the class unmapped). Bad entries: {bad}."
        )
    not_str = [k for k in class_map if not isinstance(k, str)]
    if not_str:
        raise TypeError(f"class_map keys must be class names (strings), got {not_str[:3]}.")
    return dict(class_map)


# --------------------------------------------------------------------------- the records

@dataclass(frozen=True)
class FaceBox:
    """One annotated face. ``label`` is the mapped class (one of the dataset's ``class_names``) or None for other classes."""

    x1: int
    y1: int
    x2: int
    y2: int
    label: str | None
    raw_label: str

    @property
    def xyxy(self) -> tuple[int, int, int, int]:
        return (self.x1, self.y1, self.x2, self.y2)

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        return self.y2 - self.y1

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)


@dataclass
class ImageRecord:
    """One image file. ``boxes`` for annotated layouts; ``label`` for the class-folder layout."""

    path: Path
    boxes: list[FaceBox] = field(default_factory=list)
    label: str | None = None
    width: int | None = None
    height: int | None = None

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class LoadReport:
    """What a loader did: counts of what was kept and clipped, and every dropped item with its reason."""

    images_kept: int = 0
    boxes_kept: int = 0
    boxes_clipped: int = 0
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)
    notes: list[str] = field(default_factory=list)
    raw_class_counts: Counter = field(default_factory=Counter)

    def drop(self, item: str, reason: str) -> None:
        self.dropped.append((str(item), reason))

    @property
    def dropped_by_reason(self) -> Counter:
        return Counter(reason for _, reason in self.dropped)

    def summary(self) -> str:
        lines = [f"kept {self.images_kept} images and {self.boxes_kept} boxes ({self.boxes_clipped} clipped to the image)"]
        if self.dropped:
            lines.append(f"dropped {len(self.dropped)} items:")
            for reason, n in self.dropped_by_reason.most_common():
                examples = [item for item, r in self.dropped if r == reason][:3]
                lines.append(f"  {n:5d} × {reason}  (e.g. {', '.join(examples)})")
        else:
            lines.append("dropped nothing")
        lines.extend(self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        """One line: the counts and the commonest reasons for dropping (``print(report)`` lists them all).

        >>> report = LoadReport(images_kept=2, boxes_kept=3)
        >>> report.drop("7.jpg", "image file missing"); report.notes.append("a note")
        >>> report
        LoadReport(kept 2 images, 3 boxes, 0 clipped; dropped 1 item: 1 × image file missing; 1 note)
        """
        text = f"kept {_n(self.images_kept, 'image')}, {_n(self.boxes_kept, 'box')}, {self.boxes_clipped} clipped; "
        if self.dropped:
            reasons = self.dropped_by_reason.most_common()
            shown = ", ".join(f"{n} × {reason}" for reason, n in reasons[:3])
            more = f", and {_n(len(reasons) - 3, 'other reason')}" if len(reasons) > 3 else ""
            text += f"dropped {_n(len(self.dropped), 'item')}: {shown}{more}"
        else:
            text += "dropped nothing"
        if self.notes:
            text += f"; {_n(len(self.notes), 'note')}"
        return f"LoadReport({text})"

    def _repr_html_(self) -> str:
        """A notebook cell's view: the counts, one table row per reason with a few examples, then the notes."""
        out = [f"<p><b>Kept</b> {_n(self.images_kept, 'image')} and {_n(self.boxes_kept, 'box')} "
               f"({self.boxes_clipped} clipped to the image).</p>"]
        if self.dropped:
            rows = []
            for reason, n in self.dropped_by_reason.most_common():
                examples = [item for item, r in self.dropped if r == reason][:3]
                rows.append(f"<tr><td style='text-align:right'>{n}</td><td>{html.escape(reason)}</td>"
                            f"<td><small>{html.escape(', '.join(examples))}</small></td></tr>")
            out.append(f"<p><b>Dropped</b> {_n(len(self.dropped), 'item')}:</p>"
                       "<table><tr><th>n</th><th>reason</th><th>e.g.</th></tr>" + "".join(rows) + "</table>")
        else:
            out.append("<p>Dropped nothing.</p>")
        if self.notes:
            shown = "".join(f"<li>{html.escape(note)}</li>" for note in self.notes[:10])
            more = f"<li>... and {_n(len(self.notes) - 10, 'more note')}: <code>print(report)</code></li>" if len(self.notes) > 10 else ""
            out.append(f"<ul>{shown}{more}</ul>")
        return "".join(out)


@dataclass
class Dataset:
    """A loaded dataset: records, layout (``"kaggle"``, ``"folders"``, ``"voc"``), class map and report."""

    root: Path
    layout: str
    images: list[ImageRecord]
    class_map: dict[str, str | None]
    report: LoadReport
    source: str = ""  # "kaggle", "sample", or "" for a user's folder

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self):
        return iter(self.images)

    def __getitem__(self, i: int) -> ImageRecord:
        return self.images[i]

    @property
    def class_names(self) -> tuple[str, ...]:
        """The classes, in label-index order: :data:`CLASS_NAMES`, or :data:`CLASS_NAMES_3` when the class map
        sends a class to :data:`INCORRECT_CLASS` (``get_dataset(classes=3)``)."""
        return CLASS_NAMES_3 if INCORRECT_CLASS in self.class_map.values() else CLASS_NAMES

    @property
    def annotated(self) -> bool:
        """True when faces carry boxes (Kaggle/VOC layouts), False for class folders."""
        return self.layout != "folders"

    def class_counts(self) -> Counter:
        """Faces per mapped class (boxes for annotated layouts, images for class folders)."""
        if self.annotated:
            return Counter(b.label for r in self.images for b in r.boxes if b.label is not None)
        return Counter(r.label for r in self.images if r.label is not None)

    def raw_class_counts(self) -> Counter:
        """Faces per class name as the dataset spells it (all 20 Kaggle classes, say)."""
        if self.annotated:
            return Counter(b.raw_label for r in self.images for b in r.boxes)
        return Counter(r.label for r in self.images)

    def files(self) -> list[Path]:
        return [r.path for r in self.images]

    def iter_faces(self, *, mapped_only: bool = True):
        """Yield ``(record, box)`` for every annotated face (only the mapped classes unless ``mapped_only=False``).

        For the class-folder layout there are no boxes: each image is one face, yielded as ``(record, None)``.
        """
        for record in self.images:
            if not self.annotated:
                if record.label is not None or not mapped_only:
                    yield record, None
                continue
            for box in record.boxes:
                if box.label is not None or not mapped_only:
                    yield record, box

    def face_sizes(self, *, mapped_only: bool = True) -> np.ndarray:
        """The size of every face in pixels, as an int array: the shorter side of its box.

        The shorter side is what decides whether a detector can find the face and how much a
        crop resized to 50x50 must be enlarged. For class folders the whole image is the face.

        >>> ds.face_sizes()                                   # doctest: +SKIP
        array([212,  64,  48, ...])
        """
        sizes = []
        for record, box in self.iter_faces(mapped_only=mapped_only):
            if box is not None:
                sizes.append(min(box.width, box.height))
            elif record.width is not None and record.height is not None:
                sizes.append(min(record.width, record.height))
        return np.asarray(sizes, dtype=np.int64)

    def filter(self, *, labels=None, raw_labels=None, keep_empty: bool = False) -> "Dataset":
        """A new Dataset keeping only faces whose mapped ``labels`` or dataset's own ``raw_labels`` are given.

        >>> hats = ds.filter(raw_labels=["hat"])                        # doctest: +SKIP
        >>> masked = ds.filter(labels=["with_mask"])                     # doctest: +SKIP

        Images left without a face are removed unless ``keep_empty=True``. The report is shared.
        """
        if labels is None and raw_labels is None:
            raise ValueError("filter() needs labels=[...] (mapped classes) or raw_labels=[...] (the dataset's own names).")
        labels = None if labels is None else {labels} if isinstance(labels, str) else set(labels)
        raw_labels = None if raw_labels is None else {raw_labels} if isinstance(raw_labels, str) else set(raw_labels)
        if labels is not None:
            unknown = labels - set(self.class_names) - {None}
            if unknown:
                raise ValueError(f"labels {sorted(map(str, unknown))} are not mapped classes; use one of {self.class_names} (or raw_labels= for the dataset's own names).")

        def keep(label, raw):
            return (labels is not None and label in labels) or (raw_labels is not None and raw in raw_labels)

        images = []
        for record in self.images:
            if self.annotated:
                boxes = [b for b in record.boxes if keep(b.label, b.raw_label)]
                if boxes or keep_empty:
                    images.append(ImageRecord(record.path, boxes, record.label, record.width, record.height))
            elif keep(record.label, record.label) or keep_empty:
                images.append(record)
        return Dataset(self.root, self.layout, images, dict(self.class_map), self.report, self.source)

    def remap(self, class_map: dict) -> "Dataset":
        """A new Dataset with every box relabelled from its raw class through ``class_map`` (no reloading).

        >>> ds2 = ds.remap({**DEFAULT_CLASS_MAP, "face_with_mask_incorrect": "without_mask"})   # doctest: +SKIP
        """
        if not self.annotated:
            raise ValueError("class-folder datasets keep only the mapped label; reload with load_class_folders(root, class_map=...) instead.")
        cmap = check_class_map(class_map)
        images = [
            ImageRecord(
                r.path,
                [FaceBox(b.x1, b.y1, b.x2, b.y2, cmap.get(b.raw_label), b.raw_label) for b in r.boxes],
                r.label,
                r.width,
                r.height,
            )
            for r in self.images
        ]
        full = {name: cmap.get(name) for name in self.class_map}
        full.update(cmap)
        return Dataset(self.root, self.layout, images, full, self.report, self.source)

    def __repr__(self) -> str:
        counts = dict(self.class_counts())
        return f"Dataset(layout={self.layout!r}, source={self.source!r}, images={len(self.images)}, classes={counts}, root='{self.root}')"

    def _repr_html_(self) -> str:
        """A notebook cell's view: layout, size, faces per class and the report's one-line summary."""
        counts = self.class_counts()
        per_class = ", ".join(f"{counts.get(c, 0)} {c}" for c in self.class_names)
        faces = "faces" if self.annotated else "images"
        source = f" ({html.escape(self.source)})" if self.source else ""
        return (f"<p><b>Dataset</b>{source}: {self.layout} layout, {_n(len(self.images), 'image')} in "
                f"<code>{html.escape(str(self.root))}</code><br>{faces}: {per_class}, "
                f"{sum(self.raw_class_counts().values()) - sum(counts.values())} of other classes<br>"
                f"<small>{html.escape(repr(self.report))}; <code>print(ds.report)</code> for the details</small></p>")

