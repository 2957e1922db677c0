"""03: score face finding on annotated crowd scenes: which annotated faces were found, by face size and class.

A crowd photo holds many faces, most of them small. To say how well a detector does on such photos, every
detection is matched to at most one annotated face and every annotated face to at most one detection
(:func:`match_faces`: greedy, best overlap first, IoU at least 0.4). A face's *size* is the shorter side of
its annotated box; found rates are reported per size bin (:data:`SIZE_BINS`) because small faces are where
detectors fail. :func:`score_scenes` does it for a whole annotated dataset, :func:`plot_found_by_size`
draws the found rate by face size, :func:`show_scene` a photo with its annotated and found faces.

>>> scores = score_scene([(0, 0, 40, 40), (100, 100, 110, 110)], ["with_mask", "without_mask"],
...                      [(2, 1, 41, 42)], predicted=["with_mask"])
>>> scores.recall(), scores.recall_by_side()["32-64"], scores.unmatched_detections
(0.5, 1.0, 0)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .common import ParameterError, ParameterTypeError, check_number
from .imaging import iou_matrix

__all__ = [
    "SIZE_BINS", "FaceMatch", "SceneScores", "match_faces", "face_side", "size_bin", "score_scene",
    "score_scenes", "plot_found_by_size", "show_scene", "scenes_dir",
]

#: Face-size bins (shorter side of the annotated box, in pixels of the photo): name -> [low, high).
SIZE_BINS: dict[str, tuple[float, float]] = {
    "<16": (0.0, 16.0), "16-32": (16.0, 32.0), "32-64": (32.0, 64.0), "64+": (64.0, float("inf")),
}

#: The overlap a detection needs with an annotated face to count as finding it.
MIN_IOU = 0.4


def scenes_dir() -> Path | None:
    """The shared annotated crowd scenes (``../shared/scenes`` beside the checkout, PASCAL VOC), or None
    where absent. ``$MASKEDU_SCENES`` overrides the location."""
    from .common import shared_dir

    return shared_dir("scenes", "MASKEDU_SCENES", ("images", "annotations"))


def _boxes(boxes, name: str) -> np.ndarray:
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterTypeError(f"{name} must be boxes (x1, y1, x2, y2) as numbers; could not read them: {exc}") from None
    if arr.size == 0:
        return np.zeros((0, 4))
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ParameterError(f"{name} must be a list of (x1, y1, x2, y2) boxes (shape N x 4); got shape {arr.shape}.")
    if not np.isfinite(arr).all():
        raise ParameterError(f"{name} holds NaN or infinite coordinates; pass finite pixel coordinates.")
    return arr


@dataclass(frozen=True)
class FaceMatch:
    """How detections pair with annotated faces in one photo (indices into the two lists)."""

    pairs: list[tuple[int, int, float]]  # (detection index, annotated face index, IoU), best overlap first
    unmatched_detections: list[int]
    missed_faces: list[int]


def match_faces(detected, annotated, *, min_iou: float = MIN_IOU) -> FaceMatch:
    """Pair detected boxes with annotated faces, one to one, greedily: the pair with the largest IoU first,
    then the largest among the boxes left, and so on while the IoU is at least ``min_iou``.

    Greedy (rather than the best total overlap) is how detection benchmarks count a find: each detection
    claims the face it overlaps most that no better detection has claimed.

    >>> m = match_faces([(0, 0, 10, 10), (1, 0, 11, 10), (50, 50, 60, 60)], [(0, 0, 10, 10)])
    >>> m.pairs, m.unmatched_detections, m.missed_faces
    ([(0, 0, 1.0)], [1, 2], [])
    """
    min_iou = check_number("min_iou", min_iou, minimum=0.0, maximum=1.0)
    det, ann = _boxes(detected, "detected"), _boxes(annotated, "annotated")
    pairs: list[tuple[int, int, float]] = []
    if len(det) and len(ann):
        overlap = iou_matrix(det, ann)
        order = np.argsort(-overlap, axis=None, kind="stable")
        used_d, used_a = set(), set()
        for flat in order:
            i, j = divmod(int(flat), len(ann))
            value = float(overlap[i, j])
            if value < min_iou or value <= 0:
                break
            if i in used_d or j in used_a:
                continue
            pairs.append((i, j, value))
            used_d.add(i)
            used_a.add(j)
    matched_d = {p[0] for p in pairs}
    matched_a = {p[1] for p in pairs}
    return FaceMatch(pairs, [i for i in range(len(det)) if i not in matched_d],
                     [j for j in range(len(ann)) if j not in matched_a])


def face_side(box) -> float:
    """A face's size: the shorter side of its box (x1, y1, x2, y2), in pixels."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return max(0.0, min(x2 - x1, y2 - y1))


def size_bin(side: float) -> str:
    """The :data:`SIZE_BINS` name of a face whose shorter side is ``side`` pixels.

    >>> size_bin(15.9), size_bin(16), size_bin(200)
    ('<16', '16-32', '64+')
    """
    for name, (low, high) in SIZE_BINS.items():
        if low <= side < high:
            return name
    raise ParameterError(f"a face size must be 0 or more pixels, got {side}.")


@dataclass
class SceneScores:
    """Every annotated face of some scenes, found or not, and what the detector said besides.

    Per face: ``sides`` (shorter side of the annotated box), ``classes`` (its class as annotated, e.g.
    ``mask_weared_incorrect``), ``labels`` (that class mapped to the classifier's classes, or None where
    the class map leaves it out), ``found`` and ``predicted`` (the label given to the detection that found
    it, or None). ``unmatched_detections``: detections that found no annotated face. ``seconds``: time per
    scene, when given. Scores of several photos add up with ``+``.
    """

    sides: np.ndarray = field(default_factory=lambda: np.zeros(0))
    classes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    found: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    predicted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    unmatched_detections: int = 0
    scenes: int = 0
    seconds: list[float] = field(default_factory=list)

    def __add__(self, other: "SceneScores") -> "SceneScores":
        if not isinstance(other, SceneScores):
            return NotImplemented
        return SceneScores(np.concatenate([self.sides, other.sides]), np.concatenate([self.classes, other.classes]),
                           np.concatenate([self.labels, other.labels]), np.concatenate([self.found, other.found]),
                           np.concatenate([self.predicted, other.predicted]),
                           self.unmatched_detections + other.unmatched_detections, self.scenes + other.scenes,
                           self.seconds + other.seconds)

    @property
    def faces(self) -> int:
        return len(self.sides)

    @staticmethod
    def _rate(hits: np.ndarray) -> float:
        return float(hits.mean()) if len(hits) else float("nan")

    def recall(self, min_side: float = 0.0) -> float:
        """Share of annotated faces at least ``min_side`` pixels (shorter side) that were found (NaN: none)."""
        return self._rate(self.found[self.sides >= min_side])

    def recall_by_side(self) -> dict[str, float]:
        """Found rate per :data:`SIZE_BINS` bin (NaN for a bin without faces)."""
        return {name: self._rate(self.found[(self.sides >= lo) & (self.sides < hi)]) for name, (lo, hi) in SIZE_BINS.items()}

    def faces_by_side(self) -> dict[str, int]:
        """How many annotated faces each size bin holds."""
        return {name: int(((self.sides >= lo) & (self.sides < hi)).sum()) for name, (lo, hi) in SIZE_BINS.items()}

    def recall_by_class(self) -> dict[str, float]:
        """Found rate per annotated class (as annotated, every class of the data)."""
        return {c: self._rate(self.found[self.classes == c]) for c in sorted(set(self.classes.tolist()))}

    def label_accuracy_found(self) -> float:
        """Among found faces whose class the classifier knows (``labels`` not None) and that got a label,
        the share labelled right (NaN: none)."""
        known = self.found & np.array([lab is not None for lab in self.labels], dtype=bool) & \
            np.array([p is not None for p in self.predicted], dtype=bool)
        return self._rate(self.labels[known] == self.predicted[known])

    def s_per_scene(self) -> float:
        return float(np.mean(self.seconds)) if self.seconds else float("nan")

    def summary(self, name: str = "") -> dict:
        """The figures as a plain dict (rates rounded to 4 places; NaN becomes None so it prints as JSON)."""

        def r(v: float):
            return None if not np.isfinite(v) else round(float(v), 4)

        return {
            "name": name, "scenes": self.scenes, "faces": self.faces, "recall": r(self.recall()),
            "recall_32up": r(self.recall(32)), "recall_by_side": {k: r(v) for k, v in self.recall_by_side().items()},
            "recall_by_class": {k: r(v) for k, v in self.recall_by_class().items()},
            "label_accuracy_found": r(self.label_accuracy_found()), "unmatched_detections": self.unmatched_detections,
            "s_per_scene": r(self.s_per_scene()),
        }


def score_scene(annotated, classes: Sequence[str], detected, *, predicted: Sequence[str] | None = None,
                labels: Sequence[str | None] | None = None, min_iou: float = MIN_IOU,
                seconds: float | None = None) -> SceneScores:
    """Score one photo: ``annotated`` face boxes with their ``classes``, against ``detected`` boxes (with
    the classifier's ``predicted`` labels, one per detection, when there are any). ``labels`` maps each
    annotated face to a classifier class (None: a class it does not know); by default the class itself."""
    ann, det = _boxes(annotated, "annotated"), _boxes(detected, "detected")
    classes = list(classes)
    if len(classes) != len(ann):
        raise ParameterError(f"classes has {len(classes)} names for {len(ann)} annotated boxes: give one per box.")
    labels = list(classes) if labels is None else list(labels)
    if len(labels) != len(ann):
        raise ParameterError(f"labels has {len(labels)} entries for {len(ann)} annotated boxes: give one per box.")
    if predicted is not None and len(predicted) != len(det):
        raise ParameterError(f"predicted has {len(predicted)} labels for {len(det)} detections: give one per detection.")
    m = match_faces(det, ann, min_iou=min_iou)
    found = np.zeros(len(ann), dtype=bool)
    pred = np.full(len(ann), None, dtype=object)
    for i, j, _ in m.pairs:
        found[j] = True
        if predicted is not None:
            pred[j] = predicted[i]
    return SceneScores(np.array([face_side(b) for b in ann], dtype=np.float64), np.array(classes, dtype=object),
                       np.array(labels, dtype=object), found, pred, len(m.unmatched_detections), 1,
                       [] if seconds is None else [float(seconds)])


def _as_faces(result) -> tuple[list, list | None, float | None]:
    """(boxes, labels or None, seconds or None) from what a detector returned for one photo: a
    :class:`maskedu.detect.ImageResult`, a list of its faces, of :class:`maskedu.crop.Detection`, or of boxes."""
    seconds = getattr(result, "seconds", None)
    faces = list(getattr(result, "faces", result))
    boxes, labels = [], []
    for f in faces:
        box = getattr(f, "box", f)
        boxes.append(tuple(float(v) for v in box))
        labels.append(getattr(f, "label", None))
    has_labels = bool(faces) and all(lab is not None for lab in labels)
    return boxes, (labels if has_labels else None), seconds


def score_scenes(dataset, results: Sequence, *, min_iou: float = MIN_IOU,
                 class_map: Mapping[str, str | None] | None = None) -> SceneScores:
    """Score what a detector found in every photo of an annotated ``dataset`` (a
    :class:`maskedu.annotations.Dataset`, e.g. from :func:`~maskedu.annotations.load_voc`).

    ``results`` holds one entry per photo of ``dataset.images``, in order: what :func:`maskedu.detect.detect_masks`
    returned for it (its boxes, labels and seconds are used), or a list of detections or plain boxes.
    Every annotated face counts, whatever its class; ``class_map`` (default the dataset's) says which class
    the classifier should have given each (faces of a class it maps to None count for finding only).
    """
    records = list(getattr(dataset, "images", dataset))
    results = list(results)
    if len(results) != len(records):
        raise ParameterError(f"results has {len(results)} entries for {len(records)} photos: give one per photo, "
                             "in the dataset's order.")
    cmap = dict(getattr(dataset, "class_map", {}) if class_map is None else class_map)
    total = SceneScores()
    for rec, result in zip(records, results):
        raw = [getattr(b, "raw_label", None) or b.label for b in rec.boxes]
        labels = [cmap.get(c, b.label) if cmap else b.label for c, b in zip(raw, rec.boxes)]
        boxes, predicted, seconds = _as_faces(result)
        total = total + score_scene([b.xyxy for b in rec.boxes], raw, boxes, predicted=predicted, labels=labels,
                                    min_iou=min_iou, seconds=seconds)
    return total


def _figure_and_axes(ax, figsize):
    """The given axes and its figure, or a new figure (:func:`maskedu.plotting.figure_and_axes`)."""
    from .plotting import figure_and_axes

    fig, ax, _ = figure_and_axes(ax, figsize)
    return fig, ax


def plot_found_by_size(scores: SceneScores | Mapping[str, SceneScores], *, ax=None, title: str | None = None):
    """Bar chart of the found rate per face-size bin, one bar group per way of finding faces (pass a dict
    ``{name: SceneScores}`` to compare several); the number of faces in each bin is written under it.
    Returns the :class:`matplotlib.figure.Figure`.

    >>> fig = plot_found_by_size(score_scene([(0, 0, 40, 40)], ["with_mask"], [(0, 0, 40, 40)]))
    >>> type(fig).__name__
    'Figure'
    """
    named = {"found": scores} if isinstance(scores, SceneScores) else dict(scores)
    if not named or not all(isinstance(s, SceneScores) for s in named.values()):
        raise ParameterTypeError("plot_found_by_size takes a SceneScores or a dict {name: SceneScores}.")
    fig, ax = _figure_and_axes(ax, (6, 3.5))
    bins = list(SIZE_BINS)
    x = np.arange(len(bins))
    width = 0.8 / len(named)
    for k, (name, s) in enumerate(named.items()):
        rates = np.nan_to_num(np.array([s.recall_by_side()[b] for b in bins]) * 100)
        ax.bar(x - 0.4 + width * (k + 0.5), rates, width, label=name)
    counts = next(iter(named.values())).faces_by_side()
    ax.set_xticks(x, [f"{b} px\n({counts[b]} faces)" for b in bins])
    ax.set_ylim(0, 100)
    ax.set_ylabel("faces found (%)")
    ax.set_xlabel("face size (shorter side of the annotated box)")
    if len(named) > 1:
        ax.legend(loc="upper left")
    ax.set_title(title if title is not None else "Found rate by face size")
    fig.tight_layout()
    return fig


def show_scene(image, annotated, detected=(), *, min_iou: float = MIN_IOU, ax=None, title: str | None = None):
    """A photo with its annotated faces (dashed: green where found, red where missed) and the detections
    (thin white: the ones that match no annotated face are dotted). Returns the Figure.

    ``annotated``: boxes, or a :class:`maskedu.annotations.ImageRecord` (its boxes); ``detected``: boxes or
    what :func:`maskedu.detect.detect_masks` returned for the photo.
    """
    from matplotlib.patches import Rectangle

    from .imaging import load_image

    img = load_image(image)
    ann = [b.xyxy for b in annotated.boxes] if hasattr(annotated, "boxes") else list(annotated)
    det, _, _ = _as_faces(detected)
    m = match_faces(det, ann, min_iou=min_iou)
    fig, ax = _figure_and_axes(ax, (7, 7 * img.shape[0] / max(img.shape[1], 1)))
    ax.imshow(img)
    ax.axis("off")
    found = {j for _, j, _ in m.pairs}
    for j, (x1, y1, x2, y2) in enumerate(ann):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, linestyle="--", linewidth=1.5,
                               edgecolor="#009E73" if j in found else "#D55E00"))
    stray = set(m.unmatched_detections)
    for i, (x1, y1, x2, y2) in enumerate(det):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, linewidth=0.8, edgecolor="white",
                               linestyle=":" if i in stray else "-"))
    ax.set_title(title if title is not None else
                 f"{len(found)} of {len(ann)} annotated faces found (green), {len(ann) - len(found)} missed (red); "
                 f"{len(stray)} other detections", fontsize=9)
    return fig
