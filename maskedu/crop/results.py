"""What cropping returns: :class:`Crops` (the arrays every later stage consumes) and its
:class:`CropReport` (everything the cropping could not do, by file), with the cache file format.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..annotations import CLASS_NAMES
from ..imaging import iou_matrix

__all__ = ["CropReport", "Crops", "image_hashes", "CACHE_VERSION", "ORIGINS"]

#: Bumped whenever the cropping code changes what it produces, so old cache files are not reused.
CACHE_VERSION = 4

#: Where a crop can come from.
ORIGINS = ("detector", "annotation", "fallback")
_ORIGINS = ORIGINS


@dataclass
class CropReport:
    """What :func:`crop_faces` did, and everything it could not do, by file.

    * ``missed``: annotated faces no detection matched, as ``(path, box, class)``.
    * ``unmatched``: detections that match no annotated face, as ``(path, box, score)``.
    * ``no_face``: images where the detector found nothing (class-folder layout), as ``(path, class)``.
    * ``unreadable``: files that could not be read, as ``(path, reason)``; they are skipped.
    * ``degenerate``: boxes that were empty once clipped to the image, as ``(path, box)``.
    * ``images``: images attempted; ``seconds``: wall time of the run (0 when loaded from the cache
      files; ``compute_seconds`` keeps the time the original run took).
    * ``per_class``: for each class, ``[images or faces, found by the detector]``.
    * ``second_look``: images whose face was found only by the detector's second look;
      ``close_up_look``: images whose face was found only by its close-up look.
    * ``slowest``: ``(path, seconds)`` of the slowest image (reading, detecting and cropping).
    """

    images: int = 0
    source: str = "mtcnn"
    layout: str = ""
    missed: list[tuple[str, tuple[int, int, int, int], str | None]] = field(default_factory=list)
    unmatched: list[tuple[str, tuple[int, int, int, int], float]] = field(default_factory=list)
    no_face: list[tuple[str, str | None]] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    degenerate: list[tuple[str, tuple[float, float, float, float]]] = field(default_factory=list)
    per_class: dict[str, list[int]] = field(default_factory=dict)
    second_look: int = 0
    close_up_look: int = 0
    slowest: tuple[str, float] = ("", 0.0)
    compute_seconds: float = 0.0
    seconds: float = 0.0
    from_cache: bool = False
    settings: dict[str, Any] = field(default_factory=dict)

    def found_rate(self) -> dict[str, float]:
        """Fraction of images (class folders) or annotated faces (annotated layouts) the detector found, per class."""
        return {c: (found / total if total else float("nan")) for c, (total, found) in self.per_class.items()}

    @property
    def seconds_per_image(self) -> float:
        return self.compute_seconds / self.images if self.images else float("nan")

    def summary(self) -> str:
        lines = [f"{self.images} images, source={self.source!r}, layout={self.layout!r}"
                 + (" (loaded from the cache)" if self.from_cache or not self.images
                    else f", {self.compute_seconds:.1f} s ({self.seconds_per_image:.3f} s per image)")]
        for c, rate in self.found_rate().items():
            total, found = self.per_class[c]
            what = "faces" if self.layout != "folders" else "images"
            if not total:  # nothing of this class went through the detector (e.g. source="annotations")
                continue
            lines.append(f"  {c:>14}: detector found {found}/{total} {what} ({100 * rate:.1f}%)")
        if self.second_look:
            lines.append(f"  {self.second_look} found only by the second look (grey border, relaxed thresholds)")
        if self.close_up_look:
            lines.append(f"  {self.close_up_look} found only by the close-up look (several views agreeing)")

        def _list(title: str, items: list, fmt) -> None:
            if items:
                shown = "; ".join(fmt(i) for i in items[:3])
                more = f" and {len(items) - 3} more" if len(items) > 3 else ""
                lines.append(f"  {title}: {len(items)} ({shown}{more})")

        _list("annotated faces missed by the detector", self.missed, lambda m: f"{Path(m[0]).name} {m[2]}")
        _list("detections matching no annotation", self.unmatched, lambda m: f"{Path(m[0]).name} score {m[2]:.2f}")
        _list("images with no face found", self.no_face, lambda m: Path(m[0]).name)
        _list("unreadable files skipped", self.unreadable, lambda m: f"{Path(m[0]).name}: {m[1][:60]}")
        _list("degenerate boxes (empty inside the image)", self.degenerate, lambda m: Path(m[0]).name)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        counts = ", ".join(f"{name}={len(getattr(self, name))}" for name in ("missed", "unmatched", "no_face", "unreadable", "degenerate")
                           if getattr(self, name))
        rates = ", ".join(f"{c} {100 * r:.1f}%" for c, r in self.found_rate().items() if self.per_class[c][0])
        where = " (from the cache)" if self.from_cache else ""
        return (f"CropReport({self.images} images, source={self.source!r}, layout={self.layout!r}{where}"
                + (f", found {rates}" if rates else "") + (f", {counts}" if counts else "") + ")")

    def _repr_html_(self) -> str:
        """In a notebook: the summary, briefly (every list is available as an attribute)."""
        return f"<pre>{html.escape(self.summary())}</pre>"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "CropReport":
        raw = json.loads(text)
        raw["missed"] = [(p, tuple(b), c) for p, b, c in raw.get("missed", [])]
        raw["unmatched"] = [(p, tuple(b), float(s)) for p, b, s in raw.get("unmatched", [])]
        raw["no_face"] = [(p, c) for p, c in raw.get("no_face", [])]
        raw["unreadable"] = [(p, r) for p, r in raw.get("unreadable", [])]
        raw["degenerate"] = [(p, tuple(b)) for p, b in raw.get("degenerate", [])]
        raw["slowest"] = tuple(raw.get("slowest", ("", 0.0)))
        return cls(**raw)


@dataclass
class Crops:
    """Face crops and where each came from: the arrays every later stage consumes.

    ``images`` uint8 (N, S, S, 3); ``labels`` int64 (N,) index into ``class_names`` (-1: a class the
    class map leaves out); ``paths`` (N,) source file; ``boxes`` int (N, 4) xyxy in the source image;
    ``scores`` float32 detector confidence (nan when not from the detector); ``ious`` float32 IoU of the
    detection with its matched annotation (nan where there is none); ``origin`` (N,) each
    ``"detector"``, ``"annotation"`` or ``"fallback"``; ``report`` a :class:`CropReport`.
    """

    images: np.ndarray
    labels: np.ndarray
    paths: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    ious: np.ndarray
    origin: np.ndarray
    class_names: tuple[str, ...] = CLASS_NAMES
    report: CropReport = field(default_factory=CropReport)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, mask_or_indices) -> "Crops":
        """The crops selected by a boolean mask or an index array (the report is shared)."""
        sel = np.asarray(mask_or_indices)
        if sel.dtype == bool:
            if sel.shape != (len(self),):
                raise ValueError(f"a boolean mask must have shape ({len(self)},), got {sel.shape}.")
        elif sel.size and not np.issubdtype(sel.dtype, np.integer):
            raise TypeError(f"select crops with a boolean mask or integer indices, got dtype {sel.dtype}.")
        else:
            sel = sel.astype(np.int64).reshape(-1)
        return Crops(
            images=self.images[sel], labels=self.labels[sel], paths=self.paths[sel], boxes=self.boxes[sel],
            scores=self.scores[sel], ious=self.ious[sel], origin=self.origin[sel],
            class_names=self.class_names, report=self.report,
        )

    def class_counts(self) -> dict[str, int]:
        """Crops per class name (and ``"unmapped"`` for label -1)."""
        out = {name: int((self.labels == i).sum()) for i, name in enumerate(self.class_names)}
        if (self.labels < 0).any():
            out["unmapped"] = int((self.labels < 0).sum())
        return out

    def origin_counts(self) -> dict[str, dict[str, int]]:
        """For each class, how many crops came from the detector, the annotations and the fallback."""
        return {
            name: {o: int(((self.labels == i) & (self.origin == o)).sum()) for o in _ORIGINS}
            for i, name in enumerate(self.class_names)
        }

    # ------------------------------------------------------------------ identity, for train/test splits

    def photo_ids(self) -> np.ndarray:
        """Each crop's photo as ``folder/file``: ``images/1801.jpg`` in the Kaggle layout, ``with_mask/0001.jpg``
        for class folders (the folder keeps equal file names in different folders apart)."""
        return np.array(["/".join(Path(str(p)).parts[-2:]) for p in self.paths], dtype=str)

    def hashes(self) -> np.ndarray:
        """A content hash of each crop's pixels (20 hex digits of SHA-256 over its shape and bytes): two
        crops with the same hash are the same face, pixel for pixel."""
        return image_hashes(self.images)

    def groups(self) -> np.ndarray:
        """What must stay on one side of a train/test split, one string per crop.

        For the embedded sample, the **person**: ``"person:astronaut"``, read from the sample's record of
        which real face each face box was made from (:func:`maskedu.sample.read_sources`): the sample draws
        its few hundred faces from a few dozen real faces, so a split by photo would put the same person on
        both sides and test recognition of a face already seen. Elsewhere (and for a crop matching no
        recorded face) the **photo**: ``"photo:images/1801.jpg"``, so faces of one photo stay together.
        """
        from ..sample import IMAGES_SUBDIR, read_sources

        photos = self.photo_ids()
        out = [f"photo:{p}" for p in photos]
        roots: dict[Path, dict | None] = {}
        sub = IMAGES_SUBDIR.parts
        for i, p in enumerate(self.paths):
            path = Path(str(p))
            if len(path.parts) < len(sub) + 2 or path.parent.parts[-len(sub):] != sub:
                continue
            root = path.parents[len(sub)]
            if root not in roots:
                roots[root] = read_sources(root)
            faces = (roots[root] or {}).get(path.name)
            if not faces:
                continue
            boxes = np.array([f["box"] for f in faces], dtype=np.float64).reshape(-1, 4)
            overlap = iou_matrix(np.asarray(self.boxes[i], dtype=np.float64)[None], boxes)[0]
            best = int(np.argmax(overlap))
            if overlap[best] >= 0.3:
                out[i] = f"person:{faces[best]['source']}"
        return np.array(out, dtype=str)

    def __repr__(self) -> str:
        return (f"Crops({len(self)} crops of {self.images.shape[1:3] if len(self) else '?'} px, "
                f"classes={self.class_counts()}, origin={dict(zip(*np.unique(self.origin, return_counts=True)))})")

    # ------------------------------------------------------------------ cache files

    def save(self, path: str | os.PathLike, *, key: str = "") -> Path:
        """Write the crops to one ``.npz`` file (no pickled objects: strings are unicode arrays)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        try:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh, images=self.images, labels=self.labels, paths=self.paths.astype(str), boxes=self.boxes,
                    scores=self.scores, ious=self.ious, origin=self.origin.astype(str),
                    class_names=np.array(self.class_names, dtype=str), report=np.array(self.report.to_json()),
                    key=np.array(key), version=np.array(CACHE_VERSION),
                )
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk or a stop must not leave half a file behind
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, key: str | None = None) -> "Crops":
        """Read crops written by :meth:`save`; raises ``ValueError`` when the file is corrupt or stale."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["version"]) != CACHE_VERSION:
                    raise ValueError(f"cache version {int(z['version'])} is not {CACHE_VERSION}")
                if key is not None and str(z["key"]) != key:
                    raise ValueError("cache key does not match")
                crops = cls(
                    images=z["images"], labels=z["labels"], paths=z["paths"], boxes=z["boxes"], scores=z["scores"],
                    ious=z["ious"], origin=z["origin"], class_names=tuple(str(c) for c in z["class_names"]),
                    report=CropReport.from_json(str(z["report"])),
                )
        except ValueError:
            raise
        except Exception as exc:  # zip errors, missing arrays, bad JSON: all mean "do not trust it"
            raise ValueError(f"{type(exc).__name__}: {exc}") from exc
        crops._validate()
        return crops

    def _validate(self) -> None:
        n = len(self)
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or (n and self.images.shape[3] != 3):
            raise ValueError(f"images must be uint8 (N, S, S, 3), got {self.images.dtype} {self.images.shape}")
        for name in ("labels", "paths", "scores", "ious", "origin"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected ({n},)")
        if self.boxes.shape != (n, 4):
            raise ValueError(f"boxes has shape {self.boxes.shape}, expected ({n}, 4)")
        if n and not set(np.unique(self.origin)) <= set(_ORIGINS):
            raise ValueError(f"unknown origin values {set(np.unique(self.origin)) - set(_ORIGINS)}")


def image_hashes(images) -> np.ndarray:
    """A content hash per image (20 hex digits of SHA-256 over its shape and bytes), as a string array.

    >>> image_hashes(np.zeros((2, 50, 50, 3), np.uint8))[0] == image_hashes(np.zeros((1, 50, 50, 3), np.uint8))[0]
    True
    """
    out = []
    for img in np.asarray(images):
        h = hashlib.sha256(str(img.shape).encode())
        h.update(np.ascontiguousarray(img).tobytes())
        out.append(h.hexdigest()[:20])
    return np.array(out, dtype=str)

