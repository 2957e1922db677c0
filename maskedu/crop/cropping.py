"""Cropping: every face of a dataset cut out as a small square, matched to its annotation, cached.

:func:`crop_faces` runs the detector (:class:`~maskedu.crop.FaceDetector`) over a
:class:`~maskedu.annotations.Dataset` and returns :class:`~maskedu.crop.Crops`; :func:`match_detections`
pairs detections with annotated boxes by IoU (scipy's Hungarian algorithm), so annotated datasets get
their labels from the annotations; :func:`get_crops` is the one-liner later notebooks use.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..annotations import Dataset
from ..common import (check_choice, check_int, check_number, data_dir, find_artifact, in_shared_layer, progress,
                      renamed_flag)
from ..imaging import ImageError, box_is_valid, clip_box, crop_box, iou_matrix, load_image
from .detector import DetectionResult, FaceDetector
from .faces import Face
from .results import CACHE_VERSION, ORIGINS, Crops, CropReport

__all__ = [
    "DEFAULT_MARGIN", "crop_faces", "get_crops", "match_detections", "Match", "largest_face", "fallback_box",
    "fallback_leak", "take_per_class", "pair_crops", "dataset_fingerprint",
]

#: How much each box grows on every side before cropping, as a fraction of its size: the crops a model
#: trains on and the faces :func:`maskedu.detect.detect_masks` classifies are cut alike.
DEFAULT_MARGIN = 0.1


def _verbose(verbose: bool, progress: bool | None, func: str) -> tuple[bool, bool]:
    """``(prints, bar)``: whether to print and whether to show progress bars. Both follow ``verbose``; the
    old ``progress=`` keyword, where given, still decides the bar alone (with a DeprecationWarning)."""
    if not isinstance(verbose, bool):
        raise TypeError(f"verbose must be True or False, got {verbose!r}.")
    if progress is None:
        return verbose, verbose
    return verbose, renamed_flag(progress, old="progress", where=func, stacklevel=4)


@dataclass(frozen=True)
class Match:
    """How detections pair with annotated boxes in one image (indices into the two lists)."""

    pairs: list[tuple[int, int, float]]  # (detection index, annotation index, IoU)
    unmatched_detections: list[int]
    missed_annotations: list[int]


def match_detections(detected: np.ndarray | Sequence, annotated: np.ndarray | Sequence, *, min_iou: float = 0.3) -> Match:
    """Pair detected boxes with annotated boxes so the total IoU is largest (Hungarian algorithm).

    A pair counts only when its IoU is at least ``min_iou``; detections left over match no
    annotation, annotations left over were missed.

    >>> m = match_detections([(0, 0, 10, 10), (50, 50, 60, 60)], [(1, 1, 11, 11)])
    >>> m.pairs[0][:2], m.unmatched_detections, m.missed_annotations
    ((0, 0), [1], [])
    """
    from scipy.optimize import linear_sum_assignment

    min_iou = check_number("min_iou", min_iou, minimum=0.0, maximum=1.0)
    det = np.asarray(detected, dtype=np.float64).reshape(-1, 4)
    ann = np.asarray(annotated, dtype=np.float64).reshape(-1, 4)
    pairs: list[tuple[int, int, float]] = []
    if len(det) and len(ann):
        overlap = iou_matrix(det, ann)
        rows, cols = linear_sum_assignment(overlap, maximize=True)
        pairs = [(int(r), int(c), float(overlap[r, c])) for r, c in zip(rows, cols) if overlap[r, c] >= min_iou and overlap[r, c] > 0]
    used_d = {p[0] for p in pairs}
    used_a = {p[1] for p in pairs}
    return Match(
        pairs=sorted(pairs),
        unmatched_detections=[i for i in range(len(det)) if i not in used_d],
        missed_annotations=[j for j in range(len(ann)) if j not in used_a],
    )



def fallback_box(width: int, height: int, kind: str) -> tuple[int, int, int, int]:
    """The box a fallback crops when no face is found: ``"whole"`` image or its ``"center"`` square.

    >>> fallback_box(200, 100, "center")
    (50, 0, 150, 100)
    """
    check_choice("fallback", kind, ("whole", "center"))
    if kind == "whole":
        return (0, 0, int(width), int(height))
    side = min(width, height)
    x1, y1 = (width - side) // 2, (height - side) // 2
    return (x1, y1, x1 + side, y1 + side)


def _label_index(label: str | None, class_names: Sequence[str]) -> int:
    return class_names.index(label) if label in class_names else -1


def dataset_fingerprint(dataset: Dataset) -> list:
    """What identifies a dataset's content for the cache: each file's path, size and modification
    time (nanoseconds), and its label or annotated boxes."""
    out = []
    for rec in dataset.images:
        path = Path(rec.path)
        try:
            st = path.stat()
            stamp = [st.st_size, st.st_mtime_ns]
        except OSError:
            stamp = [None, None]
        boxes = [[b.x1, b.y1, b.x2, b.y2, b.label, b.raw_label] for b in rec.boxes]
        out.append([str(path.resolve()), *stamp, rec.label, boxes])
    return out


def _cache_key(dataset: Dataset, params: dict[str, Any]) -> str:
    blob = json.dumps({"version": CACHE_VERSION, "layout": dataset.layout, "params": params,
                       "files": dataset_fingerprint(dataset)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _as_dataset(dataset) -> Dataset:
    if isinstance(dataset, Dataset):
        return dataset
    if isinstance(dataset, (str, os.PathLike)):
        path = Path(dataset)
        if not path.is_dir():
            raise FileNotFoundError(f"{path} is not a folder. Pass a Dataset or the folder of one (Kaggle, VOC or class folders).")
        from ..annotations import load_dataset

        return load_dataset(path)
    raise TypeError(f"crop_faces needs a maskedu Dataset or a folder path, got {type(dataset).__name__}. "
                    "Load one with maskedu.load_dataset(folder) or maskedu.get_dataset().")


def crop_faces(
    dataset: Dataset | str | os.PathLike,
    *,
    size: int = 50,
    source: str = "mtcnn",
    margin: float = DEFAULT_MARGIN,
    fallback: str | None = None,
    keep: str = "largest",
    min_iou: float = 0.3,
    detector: FaceDetector | None = None,
    cache: bool = True,
    verbose: bool = True,
    progress: bool | None = None,
) -> Crops:
    """Cut every face out of a dataset as a ``size`` x ``size`` crop; see :class:`Crops` for the result.

    Parameters
    ----------
    dataset:
        A :class:`~maskedu.annotations.Dataset` (or a folder, loaded with ``load_dataset``).
    size:
        Side of the square crops in pixels (the paper: 50).
    source:
        ``"mtcnn"`` detects faces. On annotated datasets (Kaggle, VOC) each detection is matched to an
        annotated box by IoU and takes its label; missed faces and unmatched detections are reported.
        On class folders one face of each photo is kept (see ``keep``) and labelled by its folder.
        ``"annotations"`` crops the annotated boxes directly (annotated datasets only).
    margin:
        How much to grow each box on every side before cropping, as a fraction of its size. Crops are
        square and taken from the full-resolution image.
    fallback:
        Class folders only: what to crop from a photo where no face is found. ``None`` (default) crops
        nothing (the photo is listed in ``report.no_face``); ``"whole"`` takes the whole photo;
        ``"center"`` its centre square. Such crops have ``origin == "fallback"``. Beware: when masked
        faces are missed more often, "came from the fallback" itself predicts the label.
    keep:
        Class folders only: which face of a photo with several stands for the photo's label.
        ``"largest"`` (default) keeps the largest face, the photo's subject; ``"confident"`` keeps the one
        MTCNN scores highest. MTCNN's scores crowd just under 1.0 and a mask lowers them, so the most
        confident face of a masked photo is too often a small unmasked passer-by (``benchmarks/RESULTS.md``).
    min_iou:
        Smallest IoU for a detection to count as the annotated face it overlaps.
    detector:
        A :class:`FaceDetector` to use (default: ``FaceDetector()``).
    cache:
        Reuse (and write) ``data/crops/crops-<key>.npz``; the key covers every file's path, size and
        modification time, the annotations and every parameter here, so any change recomputes. A cache
        that cannot be written is a warning naming the path and the reason: the crops are still returned.
    verbose:
        Show a progress bar and print one line saying how many crops were made (or loaded from the
        cache); ``print(crops.report)`` says the rest. ``progress=`` is its old name (deprecated).

    >>> crops = crop_faces(dataset)                       # doctest: +SKIP
    >>> crops.images.shape, crops.report.found_rate()     # doctest: +SKIP
    """
    start = time.perf_counter()
    verbose, bar = _verbose(verbose, progress, "crop_faces")
    dataset = _as_dataset(dataset)
    size = check_int("size", size, minimum=8, maximum=1024)
    check_choice("source", source, ("mtcnn", "annotations"))
    margin = check_number("margin", margin, minimum=0.0, maximum=2.0)
    check_choice("fallback", fallback, (None, "whole", "center"))
    check_choice("keep", keep, ("largest", "confident"))
    min_iou = check_number("min_iou", min_iou, minimum=0.0, maximum=1.0)
    if detector is not None and not isinstance(detector, FaceDetector):
        raise TypeError(f"detector must be a maskedu.crop.FaceDetector, got {type(detector).__name__}.")
    if source == "annotations" and not dataset.annotated:
        raise ValueError("source='annotations' needs annotated boxes, but this dataset is class folders "
                         "(one label per photo). Use source='mtcnn'.")
    if fallback is not None and dataset.annotated:
        raise ValueError("fallback only applies to class folders. In an annotated dataset the faces the detector "
                         "misses are listed in report.missed; source='annotations' crops every annotated face.")
    if source == "mtcnn" and detector is None:
        detector = FaceDetector()

    params = {"size": size, "source": source, "margin": margin, "fallback": fallback, "keep": keep, "min_iou": min_iou,
              "detector": detector.config() if source == "mtcnn" else None, "class_names": list(dataset.class_names)}
    cache_file = None
    if cache:
        key = _cache_key(dataset, params)
        try:
            cache_file = data_dir() / "crops" / f"crops-{key[:20]}.npz"
        except OSError as exc:  # the data folder cannot be made: crop without the cache rather than not at all
            warnings.warn(f"The crop cache cannot be used ({exc}); cropping without it.", stacklevel=2)
        loaded: list[Crops] = []

        def unusable(path: Path) -> str | None:  # loads it (once) when it is usable
            try:
                loaded.append(Crops.load(path, key=key))
                return None
            except ValueError as exc:
                if not in_shared_layer(path):  # a shared layer's copy is only skipped (with a warning), never removed
                    warnings.warn(f"The crop cache {path} is unreadable ({exc}); rebuilding it.", stacklevel=4)
                    try:
                        path.unlink(missing_ok=True)
                    except OSError:
                        pass  # saving over it below warns if the folder cannot be written
                return f"unreadable ({exc})"

        found = find_artifact(f"crops/crops-{key[:20]}.npz", fast=False, problem=unusable)  # own folder, then shared
        if found is not None:
            crops = loaded[-1]
            crops.report.from_cache = True
            crops.report.seconds = time.perf_counter() - start
            if verbose:
                print(f"Loaded {len(crops)} crops from the cache {found}")
            return crops

    crops = _compute(dataset, size=size, source=source, margin=margin, fallback=fallback, keep=keep,
                     min_iou=min_iou, detector=detector, show_bar=bar)
    crops.report.settings = params
    crops.report.compute_seconds = crops.report.seconds = time.perf_counter() - start
    if cache_file is not None:
        try:
            crops.save(cache_file, key=key)
        except OSError as exc:  # finished work is returned: a cache that cannot be written only costs a recompute
            warnings.warn(f"The crops could not be saved to the cache {cache_file} ({exc}); they are returned, "
                          "but the next call computes them again.", stacklevel=2)
            cache_file = None
    if verbose:
        print(f"Cropped {len(crops)} faces from {crops.report.images} images" + (f"; cached in {cache_file}" if cache_file else ""))
    return crops


def _compute(dataset: Dataset, *, size, source, margin, fallback, keep, min_iou, detector, show_bar) -> Crops:
    class_names = tuple(dataset.class_names)  # the data says its classes: two, or three with classes=3
    report = CropReport(source=source, layout=dataset.layout)
    report.per_class = {c: [0, 0] for c in class_names}
    images, labels, paths, boxes, scores, ious, origin = [], [], [], [], [], [], []

    def add(crop, label, path, box, score=float("nan"), overlap=float("nan"), how="detector"):
        images.append(crop)
        labels.append(_label_index(label, class_names))
        paths.append(str(path))
        boxes.append(tuple(int(v) for v in box))
        scores.append(score)
        ious.append(overlap)
        origin.append(how)

    records = list(dataset.images)
    chunk = 64 if detector is None else 16 * detector.batch_size  # a wide pool lets similar sizes batch together
    bar = progress(total=len(records), desc="Cropping faces", disable=None if show_bar else True)
    try:
        for start in range(0, len(records), chunk):
            loaded = []
            for rec in records[start : start + chunk]:
                report.images += 1
                t0 = time.perf_counter()
                try:
                    loaded.append((rec, load_image(rec.path), time.perf_counter() - t0))
                except ImageError as exc:
                    report.unreadable.append((str(rec.path), exc.problem))
                    bar.update(1)
            results = detector.detect_many([img for _, img, _ in loaded]) if source == "mtcnn" else [None] * len(loaded)
            for (rec, image, took), result in zip(loaded, results):
                t0 = time.perf_counter()
                _crop_one(rec, image, result, report, add, size=size, margin=margin, fallback=fallback, keep=keep,
                          min_iou=min_iou, annotated=dataset.annotated)
                took += time.perf_counter() - t0 + (result.seconds if result is not None else 0.0)
                if took > report.slowest[1]:
                    report.slowest = (str(rec.path), took)
                bar.update(1)
    finally:
        bar.close()

    n = len(images)
    return Crops(
        images=np.stack(images).astype(np.uint8) if n else np.zeros((0, size, size, 3), np.uint8),
        labels=np.asarray(labels, dtype=np.int64).reshape(n),
        paths=np.asarray(paths, dtype=str).reshape(n),
        boxes=np.asarray(boxes, dtype=np.int64).reshape(n, 4),
        scores=np.asarray(scores, dtype=np.float32).reshape(n),
        ious=np.asarray(ious, dtype=np.float32).reshape(n),
        origin=np.asarray(origin, dtype=str).reshape(n),
        class_names=class_names,
        report=report,
    )


def _crop_one(rec, image, result: DetectionResult | None, report: CropReport, add, *, size, margin, fallback, keep,
              min_iou, annotated) -> None:
    """Crop one loaded image's faces (``result`` is None for ``source="annotations"``) and ``add`` them;
    everything else goes to ``report``."""
    path = str(rec.path)
    h, w = image.shape[:2]

    if result is None:
        for b in rec.boxes:
            box = clip_box(b.xyxy, width=w, height=h)
            if not box_is_valid(box):
                report.degenerate.append((path, tuple(float(v) for v in b.xyxy)))
                continue
            add(crop_box(image, box, size=size, margin=margin), b.label, path, box, how="annotation")
        return

    report.degenerate.extend((path, raw) for raw in result.degenerate)
    if result.found and result.detections[0].attempt == 2:
        report.second_look += 1
    if result.found and result.detections[0].attempt == 3:
        report.close_up_look += 1

    if annotated:
        ann = [clip_box(b.xyxy, width=w, height=h) for b in rec.boxes]
        for b in rec.boxes:
            if b.label in report.per_class:
                report.per_class[b.label][0] += 1
        match = match_detections([d.box for d in result.detections], ann, min_iou=min_iou)
        for di, ai, overlap in match.pairs:
            d, b = result.detections[di], rec.boxes[ai]
            if b.label in report.per_class:
                report.per_class[b.label][1] += 1
            add(crop_box(image, d.box, size=size, margin=margin), b.label, path, d.box, d.score, overlap)
        report.missed.extend((path, tuple(rec.boxes[ai].xyxy), rec.boxes[ai].label) for ai in match.missed_annotations)
        report.unmatched.extend((path, result.detections[di].box, result.detections[di].score) for di in match.unmatched_detections)
    else:
        if rec.label in report.per_class:
            report.per_class[rec.label][0] += 1
        best = result.best if keep == "confident" else largest_face(result.detections)
        if best is not None:
            if rec.label in report.per_class:
                report.per_class[rec.label][1] += 1
            add(crop_box(image, best.box, size=size, margin=margin), rec.label, path, best.box, best.score)
        else:
            report.no_face.append((path, rec.label))
            if fallback is not None:
                box = fallback_box(w, h, fallback)
                crop = crop_box(image, box, size=size, margin=0.0, square=fallback == "center")
                add(crop, rec.label, path, box, how="fallback")


def largest_face(detections: Sequence[Face]) -> Face | None:
    """The detection with the longest box side (the photo's subject), the more confident one on a tie;
    ``None`` for no detections.

    >>> a = Face(box=(0, 0, 30, 30), score=1.0, keypoints={}, raw_box=(0, 0, 30, 30))
    >>> b = Face(box=(50, 50, 250, 260), score=0.98, keypoints={}, raw_box=(50, 50, 250, 260))
    >>> largest_face([a, b]) is b
    True
    """
    if not detections:
        return None
    return max(detections, key=lambda d: (max(d.width, d.height), d.score))




def fallback_leak(crops: Crops) -> dict[str, dict[str, float]]:
    """How much "this crop came from the fallback" says about its label: a shortcut a classifier can learn.

    For each origin, the number of crops and the share of each class among them. When nearly every
    fallback crop is masked, a model can score well on those crops by recognising "a whole photo, not
    a face" instead of a mask.
    """
    out: dict[str, dict[str, float]] = {}
    for o in ORIGINS:
        sel = crops.origin == o
        n = int(sel.sum())
        if not n:
            continue
        row: dict[str, float] = {"crops": n}
        for i, c in enumerate(crops.class_names):
            row[c] = float((crops.labels[sel] == i).mean())
        out[o] = row
    return out



def take_per_class(dataset: Dataset, n: int, *, seed: int = 0) -> Dataset:
    """A smaller Dataset with at most ``n`` random images of each class (by folder label, or by the
    first annotated face's class), in their original order; for quick runs in fast mode."""
    n = check_int("n", n, minimum=1)
    rng = np.random.default_rng(seed)
    groups: dict[Any, list[int]] = {}
    for i, rec in enumerate(dataset.images):
        key = rec.label if not dataset.annotated else next((b.label for b in rec.boxes if b.label), None)
        groups.setdefault(key, []).append(i)
    keep = sorted(int(i) for idx in groups.values() for i in rng.choice(idx, size=min(n, len(idx)), replace=False))
    return Dataset(dataset.root, dataset.layout, [dataset.images[i] for i in keep], dict(dataset.class_map),
                   dataset.report, getattr(dataset, "source", ""))


def pair_crops(detected: Crops, annotated: Crops, *, min_iou: float = 0.3) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``: detector crop ``i`` and annotation crop ``j`` of the same face (same file, boxes
    overlapping by at least ``min_iou``, matched one to one)."""
    pairs: list[tuple[int, int]] = []
    for path in np.unique(detected.paths):
        di = np.flatnonzero(detected.paths == path)
        aj = np.flatnonzero(annotated.paths == path)
        if not len(di) or not len(aj):
            continue
        m = match_detections(detected.boxes[di], annotated.boxes[aj], min_iou=min_iou)
        pairs += [(int(di[a]), int(aj[b])) for a, b, _ in m.pairs]
    return sorted(pairs)


def get_crops(dataset: Dataset | str | os.PathLike | None = None, *, verbose: bool = True, **kwargs: Any) -> Crops:
    """The crops later notebooks train on: :func:`crop_faces` of ``dataset`` (default:
    :func:`maskedu.download.get_dataset`, the Kaggle data when present, else the embedded sample),
    from the cache when nothing changed.

    >>> crops = get_crops()            # doctest: +SKIP
    """
    if dataset is None:
        from ..download import get_dataset

        dataset = get_dataset(verbose=verbose)
    return crop_faces(dataset, verbose=verbose, **kwargs)
