"""From canvas to face: a mask pattern searched over wear conditions, judged on faces it never saw, printed.

:func:`maskedu.pattern.search_pattern` scores a pattern on a flat canvas. Worn, the same pattern is warped
by a face's landmarks, seen at another size and angle, in other light, blurred, and in a printer's colours.
This module makes those conditions explicit and searches, evaluates and prints with them:

* **Wear conditions** (:class:`WearCondition`, :func:`sample_conditions`): a reproducible set, drawn from a
  seed, of (face, face width 150-450 px, rotation, pattern scale, brightness, contrast, blur, print colour).
  :meth:`WearConditions.wear` puts a pattern on a face under one condition.
* **Expectation over transformations** (:func:`worn_fitness`, :func:`search_worn_pattern`): a candidate is
  scored by its average effect over the conditions (flooding: false faces around the wearer; evasion: the
  wearer's face lost). The budget is counted in detector evaluations: one per condition per candidate.
* **Held-out evaluation** (:func:`evaluate_patterns`): patterns worn on faces never used in any search
  (checked by pixel hash: :class:`HeldOutError` otherwise), for a detector and a transfer detector, per-face
  means with bootstrap intervals and paired per-face differences.
* **Printing** (:func:`export_print`, :func:`non_printability`): a PNG and a PDF at a physical size, and
  Sharif et al.'s non-printability score against a stated palette.

>>> WearCondition(face=0, face_width=300, rotation=5.0).face_width
300
>>> iterations_for(2000, n_conditions=8)   # 8 conditions per candidate: 250 candidates, the first one included
249
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import cv2
import numpy as np

from .common import MaskeduError, ParameterError, check_choice, check_int, check_number
from .crop.faces import Face
from .imaging import as_rgb_array, iou_matrix
from .pattern import (
    PatternResult,
    PatternSpace,
    closeup,
    find_faces,
    get_detector,
    search_pattern,
    wear_pattern,
)

__all__ = [
    "HeldOutError",
    "FaceNotFoundError",
    "WearFace",
    "pixel_hash",
    "prepare_faces",
    "WearCondition",
    "WearConditions",
    "sample_conditions",
    "GOALS",
    "worn_outcome",
    "worn_fitness",
    "iterations_for",
    "search_worn_pattern",
    "random_pattern",
    "bootstrap_interval",
    "HeldOutReport",
    "evaluate_patterns",
    "PRINTABLE_PALETTE",
    "PALETTE_SOURCE",
    "non_printability",
    "PrintExport",
    "export_print",
    "pdf_page_size_cm",
]


class HeldOutError(MaskeduError, ValueError):
    """A face meant to be held out (evaluation) was also used to search the pattern."""


class FaceNotFoundError(MaskeduError, ValueError):
    """No face with landmarks was found in a photo given as a face to wear a pattern."""


# =========================================================================== faces


def pixel_hash(image: np.ndarray) -> str:
    """A short fingerprint of an image's pixels (its RGB uint8 values and shape): equal pixels, equal hash.

    >>> a = np.zeros((4, 4, 3), np.uint8)
    >>> pixel_hash(a) == pixel_hash(a.copy()), pixel_hash(a) == pixel_hash(a + 1)
    (True, False)
    """
    rgb = np.ascontiguousarray(as_rgb_array(image))
    digest = hashlib.sha256(repr(rgb.shape).encode() + rgb.tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class WearFace:
    """A photo with the face that will wear the pattern: ``image`` (RGB uint8), ``face`` (box and the five
    landmarks that place the mask), a ``name`` and ``digest``, the photo's :func:`pixel_hash`."""

    name: str
    image: np.ndarray = field(repr=False)
    face: Face = field(repr=False)
    digest: str = ""

    def __post_init__(self) -> None:
        if not self.digest:
            object.__setattr__(self, "digest", pixel_hash(self.image))


def _as_wear_face(item: Any, name: str, min_confidence: float) -> WearFace | None:
    if isinstance(item, WearFace):
        return item
    if hasattr(item, "keypoints") and hasattr(item, "image") and hasattr(item, "box"):  # maskedu.sample.FaceSource
        from .dataset import KEYPOINT_NAMES

        kp = np.asarray(item.keypoints, dtype=np.float64).reshape(5, 2)
        face = Face.from_keypoints(item.box, dict(zip(KEYPOINT_NAMES, map(tuple, kp))), getattr(item, "score", float("nan")))
        return WearFace(getattr(item, "name", name), as_rgb_array(item.image), face)
    image = as_rgb_array(item)
    faces = find_faces(image, min_confidence=min_confidence)
    if not faces:
        return None
    return WearFace(name, image, faces[0])


def prepare_faces(items: Iterable[Any], names: Sequence[str] | None = None, *, skip_missing: bool = False,
                  min_confidence: float = 0.9) -> list[WearFace]:
    """The faces that will wear a pattern, one :class:`WearFace` per photo (its largest face).

    ``items`` are RGB images (MTCNN finds the face and its landmarks), :class:`WearFace` objects, or
    :func:`maskedu.sample.face_sources` entries (their landmarks are used as they are). A photo where MTCNN
    finds no face raises :class:`FaceNotFoundError`; with ``skip_missing=True`` it is left out and named in a
    warning instead.
    """
    items = list(items)
    if names is not None and len(names) != len(items):
        raise ParameterError(f"names must name every photo: {len(names)} names for {len(items)} photos.")
    out, missing = [], []
    for i, item in enumerate(items):
        name = names[i] if names is not None else f"face_{i}"
        face = _as_wear_face(item, name, min_confidence)
        if face is None:
            missing.append(name)
        else:
            out.append(face)
    if missing:
        text = f"MTCNN found no face (confidence >= {min_confidence}) in {len(missing)} photo(s): {', '.join(missing[:10])}"
        if not skip_missing:
            raise FaceNotFoundError(text + "; pass photos with a visible frontal face, or skip_missing=True to leave them out.")
        warnings.warn(text + "; they were left out.", stacklevel=2)
    if not out:
        raise FaceNotFoundError("no face to wear the pattern: give at least one photo with a visible frontal face.")
    return out


# =========================================================================== wear conditions

#: Print-like colour change: ink never reaches pure black and paper is not pure white (sRGB levels).
PRINT_RANGE = (20.0, 235.0)


@dataclass(frozen=True)
class WearCondition:
    """How one worn pattern is seen: which ``face`` (index into the condition set's faces), the face's
    width in pixels, the photo's in-plane ``rotation`` (degrees), the pattern's ``scale`` on the mask (how
    the mask fits), ``brightness`` (added, in 0-255 levels) and ``contrast`` (a factor around mid-grey),
    Gaussian ``blur`` (sigma in pixels) and the print's colour: per-channel ``ink`` gains and ``saturation``.
    """

    face: int
    face_width: int
    rotation: float = 0.0
    scale: float = 1.0
    brightness: float = 0.0
    contrast: float = 1.0
    blur: float = 0.0
    ink: tuple[float, float, float] = (1.0, 1.0, 1.0)
    saturation: float = 1.0


def _printed(pattern: np.ndarray, c: WearCondition) -> np.ndarray:
    """The pattern as a printer would render it under ``c``: gamut squeezed, inks off, zoomed by ``scale``."""
    p = pattern.astype(np.float32)
    lo, hi = PRINT_RANGE
    p = lo + p * ((hi - lo) / 255.0)
    grey = p.mean(axis=2, keepdims=True)
    p = grey + (p - grey) * c.saturation
    p *= np.asarray(c.ink, np.float32)
    if abs(c.scale - 1.0) > 1e-6:
        h, w = p.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), 0.0, float(c.scale))
        p = cv2.warpAffine(p, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return np.clip(p, 0, 255).round().astype(np.uint8)


@dataclass
class WearConditions:
    """A reproducible set of wear conditions on a list of faces (made by :func:`sample_conditions`).

    Indexing gives a :class:`WearCondition`; :meth:`wear` puts a pattern on a face under condition ``i``.
    The close-up of each face at each width is computed once and kept.
    """

    faces: tuple[WearFace, ...]
    conditions: tuple[WearCondition, ...]
    seed: int | None = None
    margin: float = 0.3
    _closeups: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.conditions)

    def __getitem__(self, i: int) -> WearCondition:
        return self.conditions[i]

    def __iter__(self):
        return iter(self.conditions)

    @property
    def digests(self) -> frozenset[str]:
        """The pixel hashes of the faces' photos."""
        return frozenset(f.digest for f in self.faces)

    def face_of(self, i: int) -> WearFace:
        return self.faces[self.conditions[i].face]

    def _closeup(self, face: int, width: int) -> tuple[np.ndarray, Face]:
        key = (face, width)
        if key not in self._closeups:
            wf = self.faces[face]
            # a tight crop has no room around the face: extend its edges so the close-up has its margin
            pad = int(math.ceil(self.margin * max(wf.face.width, wf.face.height))) + 2
            padded = cv2.copyMakeBorder(wf.image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            self._closeups[key] = closeup(padded, wf.face.scaled(1.0, (-pad, -pad)), face_width=width, margin=self.margin)
        return self._closeups[key]

    def wear(self, pattern: np.ndarray, i: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """Condition ``i`` applied: the face wearing ``pattern`` (RGB uint8) and the face's box in that picture.

        In order: the face's close-up at ``face_width``; the pattern printed (colours squeezed into a print's
        range, inks and saturation changed, zoomed by ``scale``) and warped onto the mask by the landmarks;
        the photo turned by ``rotation`` about the face's centre; brightness, contrast and blur.
        """
        c = self.conditions[i]
        picture, face = self._closeup(c.face, c.face_width)
        image = wear_pattern(picture, _printed(as_rgb_array(pattern), c), face)
        x1, y1, x2, y2 = face.box
        if abs(c.rotation) > 1e-6:
            h, w = image.shape[:2]
            m = cv2.getRotationMatrix2D(((x1 + x2) / 2.0, (y1 + y2) / 2.0), float(c.rotation), 1.0)
            image = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
            corners = np.array([[x1, y1, 1], [x2, y1, 1], [x1, y2, 1], [x2, y2, 1]], np.float64) @ m.T
            # the upright box of the turned face, shrunk back towards the face's own size
            cx, cy = corners.mean(axis=0)
            hw, hh = (x2 - x1) / 2.0, (y2 - y1) / 2.0
            x1, y1, x2, y2 = cx - hw, cy - hh, cx + hw, cy + hh
        out = image.astype(np.float32)
        if c.contrast != 1.0 or c.brightness != 0.0:
            out = (out - 128.0) * c.contrast + 128.0 + c.brightness
        if c.blur > 0.05:
            out = cv2.GaussianBlur(out, (0, 0), float(c.blur))
        return np.clip(out, 0, 255).round().astype(np.uint8), tuple(int(round(v)) for v in (x1, y1, x2, y2))


def _check_range(name: str, value: Sequence[float], *, minimum: float | None = None, maximum: float | None = None) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a (low, high) pair of numbers, got {value!r}.") from None
    check_number(f"{name} low", lo, minimum=minimum, maximum=maximum)
    check_number(f"{name} high", hi, minimum=minimum, maximum=maximum)
    if lo > hi:
        raise ParameterError(f"{name} must be (low, high) with low <= high, got {value!r}.")
    return lo, hi


def sample_conditions(
    n: int,
    *,
    seed: int | None = 0,
    faces: Sequence[Any],
    widths: Sequence[int] | None = None,
    width_range: tuple[int, int] = (150, 450),
    rotation_range: tuple[float, float] = (-10.0, 10.0),
    scale_range: tuple[float, float] = (0.9, 1.1),
    brightness_range: tuple[float, float] = (-30.0, 30.0),
    contrast_range: tuple[float, float] = (0.75, 1.25),
    blur_range: tuple[float, float] = (0.0, 1.5),
    ink_range: tuple[float, float] = (0.9, 1.1),
    saturation_range: tuple[float, float] = (0.7, 1.0),
    margin: float = 0.3,
) -> WearConditions:
    """Draw ``n`` wear conditions from ``seed``: the same seed and faces give the same set.

    The faces take turns (condition ``i`` wears face ``i % len(faces)``), so each is used equally. The
    face width is drawn uniformly from ``width_range`` (150-450 px by default), or, with ``widths``, taken
    from that list in turn (every face at every width when ``n = len(faces) * len(widths)``, the held-out
    evaluation's fixed grid); every other setting is drawn uniformly from its range. ``faces`` are photos,
    :class:`WearFace` objects or :func:`maskedu.sample.face_sources` entries (see :func:`prepare_faces`).
    ``margin`` is how much of the photo around the face is kept (a fraction of the face's width per side).

    >>> from maskedu.sample import face_sources                               # doctest: +SKIP
    >>> a = sample_conditions(6, seed=3, faces=face_sources()[:2])            # doctest: +SKIP
    >>> a.conditions == sample_conditions(6, seed=3, faces=face_sources()[:2]).conditions   # doctest: +SKIP
    True
    """
    n = check_int("n (the number of conditions)", n, minimum=1)
    wear_faces = tuple(prepare_faces(faces))
    w0, w1 = _check_range("width_range", width_range, minimum=40, maximum=2000)
    if widths is not None:
        widths = [check_int("widths", w, minimum=40, maximum=2000) for w in widths]
        if not widths:
            raise ParameterError("widths must list at least one face width (or be None to draw from width_range).")
    ranges = {
        "rotation": _check_range("rotation_range", rotation_range, minimum=-45, maximum=45),
        "scale": _check_range("scale_range", scale_range, minimum=0.5, maximum=2.0),
        "brightness": _check_range("brightness_range", brightness_range, minimum=-128, maximum=128),
        "contrast": _check_range("contrast_range", contrast_range, minimum=0.1, maximum=3.0),
        "blur": _check_range("blur_range", blur_range, minimum=0.0, maximum=10.0),
    }
    ink = _check_range("ink_range", ink_range, minimum=0.5, maximum=1.5)
    sat = _check_range("saturation_range", saturation_range, minimum=0.0, maximum=1.5)
    margin = check_number("margin", margin, minimum=0.0, maximum=2.0)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        f = i % len(wear_faces)
        if widths is not None:
            width = widths[(i // len(wear_faces)) % len(widths)]
        else:
            width = int(round(rng.uniform(w0, w1)))
        draw = {k: float(rng.uniform(*r)) for k, r in ranges.items()}
        gains = tuple(float(g) for g in rng.uniform(*ink, size=3))
        out.append(WearCondition(face=f, face_width=width, ink=gains, saturation=float(rng.uniform(*sat)), **draw))
    return WearConditions(wear_faces, tuple(out), seed, margin)


# =========================================================================== scoring a worn pattern

GOALS = ("flood", "evade")


def worn_outcome(image: np.ndarray, box, detector, *, iou_threshold: float = 0.3) -> tuple[bool, int]:
    """What ``detector`` sees on one worn picture: (the wearer's face found, number of false faces).

    A detection overlapping the wearer's ``box`` with IoU >= ``iou_threshold`` is the face; any other is false.
    """
    found = detector.detect(image)
    if not len(found):
        return False, 0
    own = iou_matrix(found.boxes, np.array([box]))[:, 0] >= iou_threshold
    return bool(own.any()), int((~own).sum())


def _condition_score(image: np.ndarray, box, detector, goal: str, kind: str, iou_threshold: float, top: int = 10) -> float:
    """One condition's fitness from one detector evaluation (``detector.candidates``)."""
    found = detector.candidates(image)
    thr, floor = detector.threshold, detector.floor
    if len(found):
        own = iou_matrix(found.boxes, np.array([box]))[:, 0] >= iou_threshold
    else:
        own = np.zeros(0, bool)
    if goal == "flood":
        other = found.scores[~own]
        hits = other >= thr
        value = float(hits.sum())
        if kind == "smooth" and (~hits).any():
            margins = np.clip((other[~hits] - floor) / (thr - floor + 1e-12), 0.0, 0.999)
            value += float(np.sort(margins)[::-1][:top].sum()) / top
        return value
    best = float(found.scores[own].max()) if own.any() else floor  # evade: how far the wearer's face is below the threshold
    if kind == "count":
        return float(best < thr)
    return float(np.clip((thr - best) / (thr - floor + 1e-12), -1.0, 1.0))


def worn_fitness(space: PatternSpace, detector: Any, conditions: WearConditions, *, kind: str = "smooth",
                 goal: str = "flood", iou_threshold: float = 0.3) -> Callable[[np.ndarray], float]:
    """``state -> fitness``: the mean, over ``conditions``, of the pattern's effect when worn.

    The state is drawn once (``space.render``) and worn under every condition; each costs one detector
    evaluation. ``goal="flood"`` scores false faces around the wearer (with ``kind="smooth"``, plus a bonus
    below one for near misses, as :func:`maskedu.pattern.smooth_fitness`); ``goal="evade"`` scores how far
    the wearer's own face falls below the detection threshold (``kind="count"``: 1 when it is lost).
    The function's ``evaluations_per_call`` is ``len(conditions)``.
    """
    check_choice("fitness", kind, ("count", "smooth"))
    check_choice("goal", goal, GOALS)
    check_number("iou_threshold", iou_threshold, minimum=0.0, maximum=1.0)
    if not isinstance(conditions, WearConditions):
        raise ParameterError(f"conditions must be a WearConditions from sample_conditions(), got {type(conditions).__name__}.")
    detector = get_detector(detector)

    def fitness(state: np.ndarray) -> float:
        pattern = space.render(state)
        scores = [_condition_score(*conditions.wear(pattern, i), detector, goal, kind, iou_threshold) for i in range(len(conditions))]
        return float(np.mean(scores))

    fitness.evaluations_per_call = len(conditions)
    return fitness


def iterations_for(evaluations: int, n_conditions: int = 1) -> int:
    """Search iterations that spend at most ``evaluations`` detector evaluations when every candidate is
    scored on ``n_conditions`` conditions (the first state costs one candidate too).

    >>> iterations_for(1000), iterations_for(1000, 10)
    (999, 99)
    """
    evaluations = check_int("evaluations", evaluations, minimum=2)
    n_conditions = check_int("n_conditions", n_conditions, minimum=1)
    iters = evaluations // n_conditions - 1
    if iters < 1:
        raise ParameterError(f"{evaluations} detector evaluations do not pay for two candidates on {n_conditions} "
                             f"conditions each; give at least {2 * n_conditions}.")
    return iters


def search_worn_pattern(conditions: WearConditions, detector: Any = "hog", decoy: Any = "hog", n_copies: int = 6, *,
                        evaluations: int = 2000, goal: str = "flood", **kwargs: Any) -> PatternResult:
    """Search a pattern by its average effect over ``conditions`` (expectation over transformations), within
    ``evaluations`` detector evaluations (one per condition per candidate).

    Other keyword arguments go to :func:`maskedu.pattern.search_pattern` (``fitness``, ``method``,
    ``schedule``, ``seed``, ``space``...). The result remembers its conditions (``result.conditions``) so a
    held-out evaluation can refuse its faces, and ``result.detector_evaluations`` says what it spent.
    """
    if "max_iters" in kwargs:
        raise ParameterError("search_worn_pattern counts its budget in detector evaluations: pass evaluations=, not max_iters=.")
    iters = iterations_for(evaluations, len(conditions))
    return search_pattern(detector, decoy, n_copies, max_iters=iters, conditions=conditions, goal=goal, **kwargs)


def random_pattern(space: PatternSpace, seed: int | None = 0) -> np.ndarray:
    """A pattern of the same decoys placed at random (the held-out comparison's third arm)."""
    return space.render(space.random_state(seed=seed))


# =========================================================================== held-out evaluation


def bootstrap_interval(values: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000,
                       seed: int | None = 0) -> tuple[float, float]:
    """A percentile bootstrap interval for the mean of ``values`` (scipy.stats.bootstrap), resampling
    the values (faces) with replacement. Fewer than two values give (nan, nan); equal values give that value.

    >>> bootstrap_interval([1.0, 1.0, 1.0])
    (1.0, 1.0)
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(x) < 2:
        return (float("nan"), float("nan"))
    if np.all(x == x[0]):
        return (float(x[0]), float(x[0]))
    res = stats.bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="percentile",
                          random_state=np.random.default_rng(seed))
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


@dataclass
class HeldOutReport:
    """Patterns worn on held-out faces: per face (averaged over its conditions) and summarised.

    ``per_face[detector][arm]`` holds two arrays over the test faces: ``"false_faces"`` (mean false faces per
    worn face) and ``"own_face_found"`` (share of the face's conditions where its own face was found).
    ``summary`` has each mean with its bootstrap interval; ``differences`` the paired per-face differences
    (``"eot - flat"`` ...) with theirs.
    """

    arms: tuple[str, ...]
    detectors: tuple[str, ...]
    faces: tuple[str, ...]
    widths: tuple[int, ...]
    n_conditions: int
    per_face: dict
    summary: dict
    differences: dict
    records: list = field(default_factory=list, repr=False)
    seconds: float = 0.0
    confidence: float = 0.95

    def mean(self, detector: str, arm: str, metric: str = "false_faces") -> float:
        return self.summary[detector][arm][metric][0]

    def by_width(self, detector: str, metric: str = "false_faces") -> dict[str, dict[int, float]]:
        """``{arm: {face width: mean over the worn pictures at that width}}``: where in 150-450 px a pattern works."""
        out: dict[str, dict[int, float]] = {}
        for arm in self.arms:
            rows = [r for r in self.records if r["arm"] == arm and r["detector"] == detector]
            out[arm] = {w: float(np.mean([r[metric] for r in rows if r["face_width"] == w])) for w in self.widths}
        return out

    def table(self) -> str:
        pct = f"{self.confidence:.0%}"
        lines = [f"{len(self.faces)} held-out faces x {self.n_conditions // max(len(self.faces), 1)} conditions "
                 f"(face widths {min(self.widths)}-{max(self.widths)} px); mean per face [{pct} bootstrap interval]"]
        for det in self.detectors:
            lines.append(f"{det:>6}  {'arm':<14} {'false faces per worn face':>30}   {'own face still found':>28}")
            for arm in self.arms:
                f, (fl, fh) = self.summary[det][arm]["false_faces"][0], self.summary[det][arm]["false_faces"][1]
                o, (ol, oh) = self.summary[det][arm]["own_face_found"][0], self.summary[det][arm]["own_face_found"][1]
                lines.append(f"{'':>6}  {arm:<14} {f:>12.2f} [{fl:6.2f}, {fh:6.2f}]       {o:>12.0%} [{ol:5.0%}, {oh:5.0%}]")
            for name, d in self.differences.get(det, {}).items():
                f, (fl, fh) = d["false_faces"]
                o, (ol, oh) = d["own_face_found"]
                lines.append(f"{'':>6}  {name:<14} {f:>+12.2f} [{fl:+6.2f}, {fh:+6.2f}]       {o:>+12.0%} [{ol:+5.0%}, {oh:+5.0%}]  (paired per face)")
            if len(self.widths) > 1:
                lines.append(f"{'':>6}  false faces by face width: " + ", ".join(f"{w} px" for w in self.widths))
                for arm, row in self.by_width(det).items():
                    lines.append(f"{'':>6}  {arm:<14} " + "  ".join(f"{v:6.2f}" for v in row.values()))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _digests_of(items: Iterable[Any]) -> set[str]:
    out = set()
    for item in items:
        if isinstance(item, str):
            out.add(item)
        elif isinstance(item, WearFace):
            out.add(item.digest)
        elif hasattr(item, "image") and hasattr(item, "keypoints"):
            out.add(pixel_hash(item.image))
        else:
            out.add(pixel_hash(item))
    return out


def _detector(name: Any):
    """A detector for counting faces: ``"mtcnn"`` cuts its last stage at its threshold (as :func:`find_faces`
    does), since only detections count here, not near misses."""
    if isinstance(name, str) and name.lower() == "mtcnn":
        return get_detector("mtcnn", threshold=0.9, floor=0.9)
    return get_detector(name)


def _pattern_image(value: Any, name: str) -> np.ndarray:
    if isinstance(value, PatternResult):
        return value.image
    try:
        return as_rgb_array(value)
    except Exception as exc:  # noqa: BLE001 - re-raised with the arm's name
        raise ParameterError(f"pattern {name!r} must be a PatternResult or an RGB image: {exc}") from None


def evaluate_patterns(
    patterns: Mapping[str, Any],
    test_faces: Sequence[Any] | None = None,
    conditions: WearConditions | None = None,
    *,
    detector: Any = "hog",
    transfer: Any = "mtcnn",
    search_faces: Iterable[Any] = (),
    widths: Sequence[int] = (150, 225, 300, 375, 450),
    seed: int | None = 1,
    iou_threshold: float = 0.3,
    differences: Sequence[tuple[str, str]] = (("eot", "flat"), ("eot", "random"), ("flat", "random")),
    confidence: float = 0.95,
    n_resamples: int = 2000,
) -> HeldOutReport:
    """Wear each pattern on held-out faces and count what ``detector`` (and ``transfer``) sees.

    ``patterns`` maps an arm's name to a :class:`~maskedu.pattern.PatternResult` or an image, e.g.
    ``{"flat": flat, "eot": eot, "random": random_pattern(space)}``. The faces are ``test_faces``, worn
    under ``conditions`` (None: every face at every width in ``widths``, the other settings drawn from
    ``seed``: the same grid for every arm). A test face whose pixels match a face used to search any of
    the patterns (a PatternResult's ``conditions``) or listed in ``search_faces`` raises
    :class:`HeldOutError`. Per face, the false faces are averaged over its conditions, and "own face still
    found" is the share of its conditions where the wearer's face was detected; the means over faces get
    bootstrap intervals (faces resampled), and each ``(a, b)`` in ``differences`` whose arms are both given
    gets the paired per-face difference ``a - b`` with its interval. ``transfer=None`` skips the transfer
    detector.
    """
    if not isinstance(patterns, Mapping) or not patterns:
        raise ParameterError("patterns must be a dict of arm name -> pattern, e.g. {'flat': p1, 'eot': p2, 'random': p3}.")
    images = {str(k): _pattern_image(v, str(k)) for k, v in patterns.items()}
    check_number("iou_threshold", iou_threshold, minimum=0.0, maximum=1.0)
    check_number("confidence", confidence, minimum=0.5, maximum=0.999)
    if conditions is None:
        if test_faces is None:
            raise ParameterError("give the held-out faces (test_faces) or a WearConditions on them (conditions).")
        faces = prepare_faces(test_faces)
        widths = tuple(check_int("widths", w, minimum=40, maximum=2000) for w in widths)
        conditions = sample_conditions(len(faces) * len(widths), seed=seed, faces=faces, widths=widths)
    elif not isinstance(conditions, WearConditions):
        raise ParameterError(f"conditions must be a WearConditions from sample_conditions(), got {type(conditions).__name__}.")
    elif test_faces is not None and _digests_of(prepare_faces(test_faces)) != set(conditions.digests):
        raise ParameterError("conditions were drawn on other faces than test_faces; pass one or the other.")
    used = _digests_of(search_faces)
    for v in patterns.values():
        if isinstance(v, PatternResult) and getattr(v, "conditions", None) is not None:
            used |= set(v.conditions.digests)
    clash = [f.name for f in conditions.faces if f.digest in used]
    if clash:
        raise HeldOutError(f"{len(clash)} of the {len(conditions.faces)} test faces were used to search a pattern "
                           f"(same pixels): {', '.join(clash[:10])}. Evaluate on faces the search never saw.")

    dets = [_detector(detector)] + ([_detector(transfer)] if transfer is not None else [])
    names = [d.name for d in dets]
    if len(set(names)) < len(names):
        names = [f"{n}_{i}" for i, n in enumerate(names)]
    start = time.perf_counter()
    n_faces = len(conditions.faces)
    records = []
    sums = {n: {a: {"false_faces": np.zeros(n_faces), "own_face_found": np.zeros(n_faces), "n": np.zeros(n_faces)} for a in images} for n in names}
    for arm, pattern in images.items():
        for i, c in enumerate(conditions):
            worn, box = conditions.wear(pattern, i)
            for name, det in zip(names, dets):
                own, false = worn_outcome(worn, box, det, iou_threshold=iou_threshold)
                s = sums[name][arm]
                s["false_faces"][c.face] += false
                s["own_face_found"][c.face] += own
                s["n"][c.face] += 1
                records.append({"arm": arm, "detector": name, "face": conditions.faces[c.face].name,
                                "face_width": c.face_width, "false_faces": false, "own_face_found": own})
    per_face, summary = {}, {}
    for name in names:
        per_face[name], summary[name] = {}, {}
        for arm in images:
            s = sums[name][arm]
            n = np.maximum(s["n"], 1)
            per_face[name][arm] = {"false_faces": s["false_faces"] / n, "own_face_found": s["own_face_found"] / n}
            summary[name][arm] = {m: (float(v.mean()), bootstrap_interval(v, confidence=confidence, n_resamples=n_resamples, seed=0))
                                  for m, v in per_face[name][arm].items()}
    diffs = {}
    for name in names:
        diffs[name] = {}
        for a, b in differences:
            if a in images and b in images:
                diffs[name][f"{a} - {b}"] = {
                    m: (float((per_face[name][a][m] - per_face[name][b][m]).mean()),
                        bootstrap_interval(per_face[name][a][m] - per_face[name][b][m], confidence=confidence, n_resamples=n_resamples, seed=0))
                    for m in ("false_faces", "own_face_found")}
    return HeldOutReport(tuple(images), tuple(names), tuple(f.name for f in conditions.faces),
                         tuple(sorted({c.face_width for c in conditions})), len(conditions), per_face, summary, diffs,
                         records, time.perf_counter() - start, confidence)


# =========================================================================== printing

#: The printable palette :func:`non_printability` measures against (sRGB, 0-255): paper white, the four
#: process inks, the three two-ink overprints and three greys of black ink.
PRINTABLE_PALETTE = np.array([
    (255, 255, 255),  # paper white
    (0, 174, 239),    # cyan       C100
    (236, 0, 140),    # magenta    M100
    (255, 242, 0),    # yellow     Y100
    (35, 31, 32),     # black      K100
    (237, 28, 36),    # red        M100 Y100
    (0, 166, 81),     # green      C100 Y100
    (46, 49, 146),    # blue       C100 M100
    (199, 200, 202),  # grey       K25
    (147, 149, 152),  # grey       K50
    (88, 89, 91),     # grey       K75
], dtype=np.uint8)

PALETTE_SOURCE = (
    "the sRGB colours Adobe's applications show for solid CMYK inks and their overprints in the U.S. Web Coated "
    "(SWOP) v2 profile (e.g. cyan C100 = #00AEEF, red M100 Y100 = #ED1C24): what an offset or good inkjet print "
    "can reach, not a measurement of any printer. Sharif et al. (2016) printed and photographed 30 colours "
    "of their own printer; for a real print, do the same and pass those colours as the palette argument."
)


def non_printability(pattern: np.ndarray, palette: np.ndarray | Sequence = PRINTABLE_PALETTE) -> float:
    """Sharif et al.'s (2016) non-printability score: for each pixel, the product of its distances to the
    palette's colours, averaged over the pixels. 0 when every pixel is a palette colour; larger the further
    the pattern strays from what the printer can reproduce. Colours are scaled to [0, 1] (a distance is at
    most sqrt(3)); the default palette is :data:`PRINTABLE_PALETTE` (:data:`PALETTE_SOURCE` says whence).

    >>> non_printability(np.full((4, 4, 3), 255, np.uint8))
    0.0
    >>> non_printability(np.full((4, 4, 3), 128, np.uint8)) > 0
    True
    """
    p = as_rgb_array(pattern).reshape(-1, 3).astype(np.float64) / 255.0
    pal = np.asarray(palette, dtype=np.float64)
    if pal.ndim != 2 or pal.shape[1] != 3 or len(pal) < 1:
        raise ParameterError(f"palette must be an (n, 3) array of RGB colours (0-255), got shape {pal.shape}.")
    if pal.min() < 0 or pal.max() > 255:
        raise ParameterError("palette colours must be RGB values in 0-255.")
    pal = pal / 255.0
    colours, counts = np.unique(p, axis=0, return_counts=True)  # a pattern has few distinct colours
    d = np.sqrt(((colours[:, None, :] - pal[None, :, :]) ** 2).sum(axis=2))
    return float((np.prod(d, axis=1) * counts).sum() / counts.sum())


@dataclass(frozen=True)
class PrintExport:
    """Where :func:`export_print` wrote the pattern and at what size."""

    png: Path
    pdf: Path
    pixels: tuple[int, int]
    size_cm: tuple[float, float]
    dpi: int
    nps: float

    def __str__(self) -> str:
        return (f"{self.size_cm[0]:g} x {self.size_cm[1]:g} cm at {self.dpi} dpi = {self.pixels[0]} x {self.pixels[1]} px; "
                f"non-printability {self.nps:.4f}; {self.png.name}, {self.pdf.name}")


def export_print(pattern: np.ndarray | PatternResult, path: str | os.PathLike, size_cm: tuple[float, float] = (17.5, 9.5),
                 dpi: int = 300, *, palette: np.ndarray | Sequence = PRINTABLE_PALETTE) -> PrintExport:
    """Write ``pattern`` at a physical size for printing: ``path`` with ``.png`` and ``.pdf``.

    ``size_cm`` is (width, height) in centimetres (a surgical mask's 17.5 x 9.5 cm by default). The PNG has
    ``round(cm / 2.54 * dpi)`` pixels each way and records ``dpi`` (its pHYs chunk), so a printer sizes it
    right; the PDF is one page of exactly ``size_cm`` holding the picture edge to edge (matplotlib). Print
    at 100 % ("actual size"), not "fit to page". Also returns the pattern's :func:`non_printability`.
    """
    from matplotlib.figure import Figure
    from PIL import Image

    image = pattern.image if isinstance(pattern, PatternResult) else as_rgb_array(pattern)
    if len(size_cm) != 2:
        raise ParameterError(f"size_cm must be (width, height) in centimetres, got {size_cm!r}.")
    w_cm, h_cm = (check_number("size_cm", v, minimum=0.5, maximum=200.0) for v in size_cm)
    dpi = check_int("dpi", dpi, minimum=36, maximum=2400)
    path = Path(path)
    if path.suffix.lower() in (".png", ".pdf"):
        path = path.with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)
    size = (max(int(round(w_cm / 2.54 * dpi)), 1), max(int(round(h_cm / 2.54 * dpi)), 1))
    interp = cv2.INTER_AREA if size[0] < image.shape[1] else cv2.INTER_CUBIC
    printed = cv2.resize(image, size, interpolation=interp)
    png, pdf = path.with_suffix(".png"), path.with_suffix(".pdf")
    Image.fromarray(printed).save(png, dpi=(dpi, dpi))
    fig = Figure(figsize=(w_cm / 2.54, h_cm / 2.54))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(printed, interpolation="none", aspect="auto")
    ax.set_axis_off()
    fig.savefig(pdf, dpi=dpi)
    return PrintExport(png, pdf, size, (w_cm, h_cm), dpi, non_printability(image, palette))


def pdf_page_size_cm(path: str | os.PathLike) -> tuple[float, float]:
    """The first page's size in centimetres, from its ``/MediaBox`` (points of 1/72 inch).

    Reads the file's bytes, so it needs no PDF library; it checks what :func:`export_print` wrote.
    """
    import re

    data = Path(path).read_bytes()
    m = re.search(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]", data)
    if m is None:
        raise MaskeduError(f"{path}: no /MediaBox found; is it a PDF?")
    x0, y0, x1, y1 = (float(v) for v in m.groups())
    return ((x1 - x0) / 72 * 2.54, (y1 - y0) / 72 * 2.54)
