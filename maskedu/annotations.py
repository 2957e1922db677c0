"""Datasets in memory: the records every later stage consumes, and the loaders that build them.

The types are fixed here (they are the contract between the stages):

* :class:`FaceBox`: one annotated face, ``(x1, y1, x2, y2)`` pixels with x2/y2 exclusive, its mapped
  class (``"with_mask"``/``"without_mask"`` or None) and the dataset's own class name.
* :class:`ImageRecord`: one image file with its boxes (Kaggle/VOC layouts) or its folder label
  (class-folder layout).
* :class:`LoadReport`: what a loader kept, clipped and dropped, and why. Nothing is dropped silently.
* :class:`Dataset`: the records, the class mapping used, the layout and the report.

Loaders (implemented below): :func:`load_annotations` (Kaggle layout), :func:`load_class_folders`,
:func:`load_voc`, and :func:`load_dataset` which recognises the layout of a folder.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CLASS_NAMES",
    "FaceBox",
    "ImageRecord",
    "LoadReport",
    "Dataset",
]

#: The paper's two classes, in label-index order: label 0 is "with_mask", label 1 "without_mask".
CLASS_NAMES: tuple[str, str] = ("with_mask", "without_mask")


@dataclass(frozen=True)
class FaceBox:
    """One annotated face. ``label`` is the mapped class (one of CLASS_NAMES) or None for other classes."""

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

    def __repr__(self) -> str:
        counts = dict(self.class_counts())
        return f"Dataset(layout={self.layout!r}, source={self.source!r}, images={len(self.images)}, classes={counts}, root='{self.root}')"
