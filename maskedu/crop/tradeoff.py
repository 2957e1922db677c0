"""The second look's trade-off: what lowering its ONet threshold buys (faces found) and costs (false
alarms on face-free pictures), measured by :func:`threshold_tradeoff` on :func:`background_images`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..annotations import CLASS_NAMES, Dataset
from ..common import progress as _progress_bar
from ..imaging import ImageError, load_image
from .cropping import _verbose, match_detections
from .detector import FaceDetector

__all__ = ["BACKGROUND_NAMES", "background_images", "TradeOff", "threshold_tradeoff"]


#: scikit-image sample pictures with no human face in them (chelsea is a cat: a classic false alarm).
BACKGROUND_NAMES = (
    "brick", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass", "gravel", "horse",
    "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina",
    "rocket", "text", "checkerboard",
)


def background_images(*, crops_per_image: int = 5, seed: int = 0, min_side: int = 60, whole: bool = True) -> list[tuple[str, np.ndarray]]:
    """Face-free pictures for measuring false detections: ``[(name, RGB uint8 array), ...]``.

    The scikit-image sample pictures in :data:`BACKGROUND_NAMES`, whole, and ``crops_per_image``
    random square crops of each (fixed ``seed``; sides from ``min_side`` pixels up to the picture's
    shorter side), so both scenes and close-up textures are tried; ``whole=False`` leaves out the whole
    pictures (only the crops, which are smaller and quicker). The false-positive rate of a detector is
    the share of these pictures where it reports any face.

    >>> pictures = background_images(crops_per_image=0)
    >>> len(pictures), pictures[0][1].dtype
    (20, dtype('uint8'))
    """
    import skimage.data

    from ..imaging import as_rgb_array

    rng = np.random.default_rng(seed)
    out: list[tuple[str, np.ndarray]] = []
    for name in BACKGROUND_NAMES:
        raw = np.asarray(getattr(skimage.data, name)())
        if raw.dtype == bool:
            raw = raw.astype(np.uint8) * 255
        img = as_rgb_array(raw)
        if whole:
            out.append((name, img))
        h, w = img.shape[:2]
        for k in range(crops_per_image):
            side = int(rng.integers(min_side, max(min_side + 1, min(h, w) + 1)))
            side = min(side, h, w)
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            out.append((f"{name}[{y}:{y + side},{x}:{x + side}]", np.ascontiguousarray(img[y : y + side, x : x + side])))
    return out




@dataclass
class TradeOff:
    """Found rate per class and false-positive rate as the second look's ONet threshold moves.

    ``thresholds`` (T,), ``found_rate`` {class: (T,)} share of photos (class folders) or annotated faces
    where the detector finds the face, ``false_positive_rate`` (T,) share of face-free pictures with any
    detection, ``counts`` how many photos/faces/pictures each rate is over, ``current`` the detector's own
    setting.
    """

    thresholds: np.ndarray
    found_rate: dict[str, np.ndarray]
    false_positive_rate: np.ndarray
    counts: dict[str, int]
    current: float

    def plot(self, *, budget: float | None = None, ax=None):
        """Both curves against the threshold (see :func:`maskedu.crop.plots.plot_tradeoff`)."""
        from .plots import plot_tradeoff

        return plot_tradeoff(self, budget=budget, ax=ax)


def _second_look_scores(detector: FaceDetector, images: list[np.ndarray], floor: float) -> list[tuple[bool, list, list]]:
    """For each image: whether the first look found a face, its detections as ``(box, score)``, and the
    second look's detections with its ONet threshold lowered to ``floor`` (only where the first found nothing)."""
    first = detector.run_first_look(images)
    out = [(r.found, [(d.box, d.score) for d in r.detections], []) for r in first]
    again = [i for i, o in enumerate(out) if not o[0]] if detector.retry else []
    if again:
        relaxed = (detector.retry_thresholds[0], detector.retry_thresholds[1], floor)
        for i, r in zip(again, detector.run_second_look([images[i] for i in again], thresholds=relaxed)):
            out[i] = (False, [], [(d.box, d.score) for d in r.detections])
    return out


def threshold_tradeoff(
    dataset: Dataset,
    backgrounds: Sequence[tuple[str, np.ndarray]] | None = None,
    *,
    detector: FaceDetector | None = None,
    thresholds: Sequence[float] | None = None,
    min_iou: float = 0.3,
    verbose: bool = True,
    progress: bool | None = None,
) -> TradeOff:
    """Measure what the second look's ONet threshold buys (faces found) and costs (false alarms).

    Each photo of ``dataset`` and each face-free picture of ``backgrounds`` (default
    :func:`background_images`) goes through the detector once, with the second look's ONet threshold
    at the lowest of ``thresholds``; the rates at every higher threshold follow from the scores. On
    class folders a photo counts as found when any face is detected; on annotated data a face counts
    when a detection overlaps it by ``min_iou``. ``verbose`` shows progress bars (``progress=`` is its
    old, deprecated name).
    """
    _, bar = _verbose(verbose, progress, "threshold_tradeoff")
    detector = detector or FaceDetector()
    thresholds = np.round(np.arange(0.5, 0.96, 0.05), 2) if thresholds is None else np.asarray(thresholds, dtype=float)
    floor = float(thresholds.min())
    backgrounds = background_images() if backgrounds is None else list(backgrounds)
    names = getattr(dataset, "class_names", CLASS_NAMES)
    found = {c: np.zeros(len(thresholds)) for c in names}
    counts = {c: 0 for c in names}

    def hits(first_found, first, second, t):
        return first if first_found else [(b, s) for b, s in second if s >= t]

    records = list(dataset.images)
    chunk = 64
    for start in _progress_bar(range(0, len(records), chunk), desc="Trade-off: photos", disable=None if bar else True):
        batch = []
        for rec in records[start : start + chunk]:
            try:
                batch.append((rec, load_image(rec.path)))
            except ImageError:
                continue
        scores = _second_look_scores(detector, [img for _, img in batch], floor)
        for (rec, _), (ff, first, second) in zip(batch, scores):
            if dataset.annotated:
                ann = [b.xyxy for b in rec.boxes if b.label in found]
                labels = [b.label for b in rec.boxes if b.label in found]
                for c in labels:
                    counts[c] += 1
                for k, t in enumerate(thresholds):
                    dets = [b for b, _ in hits(ff, first, second, t)]
                    for _, ai, _ in match_detections(dets, ann, min_iou=min_iou).pairs:
                        found[labels[ai]][k] += 1
            elif rec.label in found:
                counts[rec.label] += 1
                for k, t in enumerate(thresholds):
                    found[rec.label][k] += bool(hits(ff, first, second, t))
    fp = np.zeros(len(thresholds))
    pictures = [img for _, img in backgrounds]
    for start in _progress_bar(range(0, len(pictures), chunk), desc="Trade-off: face-free pictures", disable=None if bar else True):
        for ff, first, second in _second_look_scores(detector, pictures[start : start + chunk], floor):
            for k, t in enumerate(thresholds):
                fp[k] += bool(hits(ff, first, second, t))
    counts["background"] = len(backgrounds)
    rates = {c: found[c] / counts[c] for c in names if counts[c]}
    return TradeOff(thresholds, rates, fp / max(1, len(backgrounds)), counts, detector.retry_thresholds[2])

