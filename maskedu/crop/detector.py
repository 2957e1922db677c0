"""The detection policy: what MTCNN is shown, and when a face counts as found.

:class:`FaceDetector` looks at a photo up to three times:

1. the **first look**: the photo shrunk to ``max_side`` (or enlarged to ``min_side``), small photos in a
   grey frame, MTCNN's usual thresholds;
2. the **second look**, only where the first found nothing: a wider frame and relaxed thresholds;
3. the **close-up look**, only where both found nothing: the photo in several :class:`View` s (frames of
   different widths, mirrored, smaller, taller above) with low thresholds, a box accepted only where
   the views agree (:meth:`FaceDetector.close_up_look`).

Its settings come in five small groups (:class:`NetworkSettings`, :class:`SizeSettings`,
:class:`SecondLookSettings`, :class:`CloseUpSettings`, :class:`RunSettings`); each setting can also be
passed by its old keyword (``FaceDetector(close_up=False, threads=1)``). Calls into the ``mtcnn``
package itself live in :mod:`maskedu.crop.mtcnn_internals`.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from ..common import check_int, check_number
from ..imaging import box_is_valid, clip_box, iou_matrix, load_image
from .faces import KEYPOINT_NAMES, Face
from .mtcnn_internals import run_mtcnn, shared_mtcnn

__all__ = [
    "FaceDetector", "DetectionResult", "CloseUpLook", "View", "CLOSE_UP_VIEWS", "NetworkSettings", "SizeSettings",
    "SecondLookSettings", "CloseUpSettings", "RunSettings", "close_up_of",
]

#: A face as the detector reports it (the package's one face type, :class:`~maskedu.crop.faces.Face`).
Detection = Face

#: Largest batch MTCNN is given, in pixels (batching large photos only costs memory).
_MAX_BATCH_PIXELS = 2_000_000

#: Largest canvas of a batch, as a multiple of its smallest photo's area (the rest of the canvas is grey).
_BATCH_SPREAD = 1.5

#: A proposal from MTCNN's first network can grow in its later two, which move and resize its box: the
#: close-up look keeps pyramid levels for faces down to this fraction of the smallest box that can matter
#: (chosen so that no crop of the shared development photos changes; see benchmarks/RESULTS.md).
_REFINE_MARGIN = 0.7


def _check_thresholds(name: str, value: Sequence[float]) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in value)
    except TypeError:
        raise TypeError(f"{name} must be three numbers (PNet, RNet, ONet), got {value!r}.") from None
    if len(values) != 3:
        raise ValueError(f"{name} must be three numbers (PNet, RNet, ONet thresholds), got {len(values)}: {value!r}.")
    for stage, v in zip(("PNet", "RNet", "ONet"), values):
        check_number(f"{name} ({stage})", v, minimum=0.0, maximum=1.0)
    return values  # type: ignore[return-value]


def _check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}.")
    return value


def _set(obj, name: str, value) -> None:
    object.__setattr__(obj, name, value)  # normalise a field of a frozen dataclass after checking it


# =========================================================================== the close-up look's views


@dataclass(frozen=True)
class View:
    """One way the close-up look shows a photo to MTCNN.

    The photo gets a grey frame of ``top``, ``sides`` and ``bottom`` times its longer side, is mirrored
    left to right when ``mirror`` is true, and the framed picture is resized so its longer side is
    ``side`` pixels. A taller frame above mimics the forehead a tight close-up has cut off.
    """

    top: float = 0.35
    sides: float = 0.35
    bottom: float = 0.35
    mirror: bool = False
    side: int = 300

    def __post_init__(self):
        for name in ("top", "sides", "bottom"):
            check_number(f"View.{name}", getattr(self, name), minimum=0.0, maximum=2.0)
        if not isinstance(self.mirror, bool):
            raise TypeError(f"View.mirror must be True or False, got {self.mirror!r}.")
        check_int("View.side", self.side, minimum=48, maximum=2000)


#: The close-up look's views: the same frame mirrored, wider, narrower, smaller, and taller above.
CLOSE_UP_VIEWS: tuple[View, ...] = (
    View(),
    View(mirror=True),
    View(0.5, 0.5, 0.5),
    View(side=200),
    View(0.2, 0.2, 0.2),
    View(0.8, 0.4, 0.3),
    View(0.6, 0.35, 0.2),
)


# =========================================================================== settings


@dataclass(frozen=True)
class NetworkSettings:
    """MTCNN's own settings: the confidence ``thresholds`` of its three networks (PNet, RNet, ONet), the
    smallest face looked for (``min_face_size``, in pixels of the image as MTCNN sees it) and the step of
    its image pyramid (``scale_factor``)."""

    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8)
    min_face_size: int = 20
    scale_factor: float = 0.709

    def __post_init__(self):
        _set(self, "thresholds", _check_thresholds("thresholds", self.thresholds))
        _set(self, "min_face_size", check_int("min_face_size", self.min_face_size, minimum=12, maximum=10_000))
        _set(self, "scale_factor", check_number("scale_factor", self.scale_factor, minimum=0.1, maximum=0.95))


@dataclass(frozen=True)
class SizeSettings:
    """How a photo is sized for the first look: shrunk so its longer side is at most ``max_side``
    (``None``: full resolution, as the paper ran it, and slow), enlarged so its shorter side is at least
    ``min_side`` (at most 4x; ``None``: never), and framed in a grey border of ``pad`` times its longer
    side when it is at most ``max_side / 2`` pixels (MTCNN finds a face that fills the photo far more
    often once it sits in a frame)."""

    max_side: int | None = 800
    min_side: int | None = 160
    pad: float = 0.2

    def __post_init__(self):
        if self.max_side is not None:
            _set(self, "max_side", check_int("max_side", self.max_side, minimum=48))
        if self.min_side is not None:
            _set(self, "min_side", check_int("min_side", self.min_side, minimum=12, maximum=4096))
        if self.max_side is not None and self.min_side is not None and self.min_side > self.max_side:
            raise ValueError(f"min_side={self.min_side} must not exceed max_side={self.max_side}.")
        _set(self, "pad", check_number("pad", self.pad, minimum=0.0, maximum=1.0))


@dataclass(frozen=True)
class SecondLookSettings:
    """The second look, taken only where the first found nothing (so it never adds a second face):
    the photo in a grey border of ``pad`` times its size, shrunk to fit ``max_side``, with ``thresholds``."""

    enabled: bool = True
    thresholds: tuple[float, float, float] = (0.5, 0.6, 0.8)
    pad: float = 0.35

    def __post_init__(self):
        _check_flag("retry", self.enabled)
        _set(self, "thresholds", _check_thresholds("retry_thresholds", self.thresholds))
        _set(self, "pad", check_number("retry_pad", self.pad, minimum=0.0, maximum=1.0))


@dataclass(frozen=True)
class CloseUpSettings:
    """The close-up look, taken only where the first two found nothing: the photo in each of ``views``
    with ``thresholds``. A box's *agreement* is the mean, over the views, of the best score of a box
    there overlapping it with IoU >= ``iou`` (0 for a view with none). The best box is accepted when its
    agreement reaches ``min_agreement`` and its side is at least ``min_size`` times the photo's shorter
    side (this look is for close-ups; small faces in scenes are the first look's job)."""

    enabled: bool = True
    views: tuple[View, ...] = CLOSE_UP_VIEWS
    thresholds: tuple[float, float, float] = (0.3, 0.3, 0.3)
    iou: float = 0.5
    min_agreement: float = 0.35
    min_size: float = 0.4

    def __post_init__(self):
        _check_flag("close_up", self.enabled)
        views = tuple(self.views) if not isinstance(self.views, View) else (self.views,)
        if not views or not all(isinstance(v, View) for v in views):
            raise TypeError(f"close_up_views must be one or more maskedu.crop.View objects, got {self.views!r}.")
        _set(self, "views", views)
        _set(self, "thresholds", _check_thresholds("close_up_thresholds", self.thresholds))
        _set(self, "iou", check_number("close_up_iou", self.iou, minimum=0.0, maximum=1.0))
        _set(self, "min_agreement", check_number("close_up_min_agreement", self.min_agreement, minimum=0.0, maximum=1.0))
        _set(self, "min_size", check_number("close_up_min_size", self.min_size, minimum=0.0, maximum=1.0))


@dataclass(frozen=True)
class RunSettings:
    """How the work is done, not what is found: ``compiled`` traces MTCNN's networks into TensorFlow
    graphs (``False`` runs ``mtcnn`` exactly as installed); ``batch_size`` photos of similar size go
    through MTCNN together; ``threads`` batches run at once (batches are independent, so the boxes do not
    depend on it); ``device`` is the TensorFlow device."""

    compiled: bool = True
    batch_size: int = 16
    threads: int = 4
    device: str = "CPU:0"

    def __post_init__(self):
        _check_flag("compiled", self.compiled)
        _set(self, "batch_size", check_int("batch_size", self.batch_size, minimum=1, maximum=256))
        _set(self, "threads", check_int("threads", self.threads, minimum=1, maximum=64))
        if not isinstance(self.device, str) or not self.device:
            raise TypeError(f"device must be a TensorFlow device string such as 'CPU:0', got {self.device!r}.")


#: Each old keyword of FaceDetector: (its settings group, the field there).
_KEYWORDS: dict[str, tuple[str, str]] = {
    "thresholds": ("network", "thresholds"), "min_face_size": ("network", "min_face_size"),
    "scale_factor": ("network", "scale_factor"),
    "max_side": ("size", "max_side"), "min_side": ("size", "min_side"), "pad": ("size", "pad"),
    "retry": ("second_look", "enabled"), "retry_thresholds": ("second_look", "thresholds"),
    "retry_pad": ("second_look", "pad"),
    "close_up": ("close_up", "enabled"), "close_up_views": ("close_up", "views"),
    "close_up_thresholds": ("close_up", "thresholds"), "close_up_iou": ("close_up", "iou"),
    "close_up_min_agreement": ("close_up", "min_agreement"), "close_up_min_size": ("close_up", "min_size"),
    "compiled": ("run", "compiled"), "batch_size": ("run", "batch_size"), "threads": ("run", "threads"),
    "device": ("run", "device"),
}
_GROUPS = {"network": NetworkSettings, "size": SizeSettings, "second_look": SecondLookSettings,
           "close_up": CloseUpSettings, "run": RunSettings}


# =========================================================================== results


@dataclass
class DetectionResult:
    """Everything the detector learnt about one image: ``detections`` (:class:`~maskedu.crop.faces.Face`
    objects, most confident first), ``degenerate`` (raw boxes that were empty once clipped to the image:
    reported, not silently dropped), ``scale`` (the factor the photo was resized by for the first look),
    ``attempts`` (how many looks ran) and ``seconds``."""

    detections: list[Face]
    degenerate: list[tuple[float, float, float, float]] = field(default_factory=list)
    scale: float = 1.0
    attempts: int = 1
    seconds: float = 0.0

    @property
    def found(self) -> bool:
        return bool(self.detections)

    @property
    def best(self) -> Face | None:
        return self.detections[0] if self.detections else None


@dataclass
class CloseUpLook:
    """What :meth:`FaceDetector.close_up_look` saw in one photo.

    ``pictures``: what MTCNN was shown in each of the ``views``; ``view_boxes`` / ``view_scores``: its
    boxes (x1, y1, x2, y2, in that picture's pixels) and ONet scores per view. ``boxes`` (M x 4, in the
    photo's pixels), ``scores``, ``view_of`` and ``agreement`` list every candidate of every view; a
    candidate's agreement is the mean over the views of the best score of an overlapping box there.
    ``detection`` is the accepted face (agreement at least ``min_agreement``, and large enough), or None.
    """

    views: tuple[View, ...]
    pictures: list[np.ndarray]
    view_boxes: list[np.ndarray]
    view_scores: list[np.ndarray]
    boxes: np.ndarray
    scores: np.ndarray
    view_of: np.ndarray
    agreement: np.ndarray
    min_agreement: float
    detection: Face | None = None
    seconds: float = 0.0

    @property
    def found(self) -> bool:
        return self.detection is not None


# =========================================================================== the detector


class FaceDetector:
    """MTCNN, once, with the image handling real photos need: up to three looks at each photo (see
    :mod:`maskedu.crop.detector`), batches of similar-sized photos, boxes in the photo's own pixels.

    ``FaceDetector()`` is the tuned default. Change a group of settings with its dataclass
    (``FaceDetector(close_up=CloseUpSettings(min_agreement=0.5))``) or a single setting by its keyword
    (``FaceDetector(close_up=False)``, ``FaceDetector(thresholds=(0.6, 0.7, 0.9), threads=1)``); the
    keywords are the fields of the groups: ``thresholds``, ``min_face_size``, ``scale_factor``
    (:class:`NetworkSettings`); ``max_side``, ``min_side``, ``pad`` (:class:`SizeSettings`); ``retry``,
    ``retry_thresholds``, ``retry_pad`` (:class:`SecondLookSettings`); ``close_up``, ``close_up_views``,
    ``close_up_thresholds``, ``close_up_iou``, ``close_up_min_agreement``, ``close_up_min_size``
    (:class:`CloseUpSettings`); ``compiled``, ``batch_size``, ``threads``, ``device`` (:class:`RunSettings`).
    :meth:`paper` is MTCNN as the paper ran it.

    >>> from skimage import data
    >>> faces = FaceDetector().detect(data.astronaut())
    >>> len(faces), faces[0].score > 0.99
    (1, True)
    >>> FaceDetector(close_up=False).close_up.enabled
    False
    """

    def __init__(self, *, network: NetworkSettings | None = None, size: SizeSettings | None = None,
                 second_look: SecondLookSettings | None = None, close_up: CloseUpSettings | bool | None = None,
                 run: RunSettings | None = None, **keywords: Any):
        groups: dict[str, Any] = {"network": network, "size": size, "second_look": second_look, "close_up": close_up,
                                  "run": run}
        if isinstance(close_up, bool):  # the old keyword: close_up=False turns the close-up look off
            groups["close_up"] = None
            keywords["close_up"] = close_up
        changes: dict[str, dict[str, Any]] = {name: {} for name in _GROUPS}
        for key, value in keywords.items():
            if key not in _KEYWORDS:
                raise TypeError(f"FaceDetector got an unexpected keyword {key!r}; the settings are "
                                f"{', '.join(sorted(_GROUPS))} (dataclasses) or the keywords {', '.join(_KEYWORDS)}.")
            group, name = _KEYWORDS[key]
            if groups[group] is not None:
                raise TypeError(f"FaceDetector got both {group}= and {key}=; put {key} inside the {group} settings.")
            changes[group][name] = value
        for name, cls in _GROUPS.items():
            given = groups[name]
            if given is not None and not isinstance(given, cls):
                raise TypeError(f"{name} must be a maskedu.crop.{cls.__name__}, got {type(given).__name__}.")
            groups[name] = given if given is not None else cls(**changes[name])
        self.network: NetworkSettings = groups["network"]
        self.size: SizeSettings = groups["size"]
        self.second_look: SecondLookSettings = groups["second_look"]
        self.close_up: CloseUpSettings = groups["close_up"]
        self.run: RunSettings = groups["run"]
        self._mtcnn = None

    # ------------------------------------------------------------------ each setting by its old name

    thresholds = property(lambda self: self.network.thresholds)
    min_face_size = property(lambda self: self.network.min_face_size)
    scale_factor = property(lambda self: self.network.scale_factor)
    max_side = property(lambda self: self.size.max_side)
    min_side = property(lambda self: self.size.min_side)
    pad = property(lambda self: self.size.pad)
    retry = property(lambda self: self.second_look.enabled)
    retry_thresholds = property(lambda self: self.second_look.thresholds)
    retry_pad = property(lambda self: self.second_look.pad)
    close_up_views = property(lambda self: self.close_up.views)
    close_up_thresholds = property(lambda self: self.close_up.thresholds)
    close_up_iou = property(lambda self: self.close_up.iou)
    close_up_min_agreement = property(lambda self: self.close_up.min_agreement)
    close_up_min_size = property(lambda self: self.close_up.min_size)
    compiled = property(lambda self: self.run.compiled)
    batch_size = property(lambda self: self.run.batch_size)
    threads = property(lambda self: self.run.threads)
    device = property(lambda self: self.run.device)

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def paper(cls, **kwargs: Any) -> "FaceDetector":
        """MTCNN as the paper used it: ``mtcnn`` as installed (not compiled), full resolution, default
        thresholds, one image at a time, no second or close-up look."""
        settings = dict(max_side=None, min_side=None, retry=False, batch_size=1, threads=1, pad=0.0, close_up=False,
                        compiled=False)
        settings.update(kwargs)
        return cls(**settings)

    @classmethod
    def crowd(cls, **kwargs: Any) -> "FaceDetector":
        """Settings for group photos, where most faces are small, turned or half hidden: lower thresholds for
        MTCNN's last two networks, so more of those faces pass, and small photos enlarged to a shorter side of
        400 px, so faces under 20 px reach MTCNN's smallest window. It finds more faces and leaves more boxes
        that match no annotated face, and costs more time (``benchmarks/scene_recall.py --crowd``).

        >>> FaceDetector.crowd().thresholds
        (0.6, 0.6, 0.7)
        """
        settings: dict[str, Any] = dict(thresholds=(0.6, 0.6, 0.7), min_side=400)
        settings.update(kwargs)
        return cls(**settings)

    def config(self) -> dict[str, Any]:
        """The settings that decide what this detector finds (part of the crop cache key)."""
        on = self.close_up.enabled
        return {
            "thresholds": list(self.thresholds),
            "min_face_size": self.min_face_size,
            "scale_factor": self.scale_factor,
            "max_side": self.max_side,
            "min_side": self.min_side,
            "retry": self.retry,
            "retry_thresholds": list(self.retry_thresholds),
            "retry_pad": self.retry_pad,
            "pad": self.pad,
            "close_up": on,
            "close_up_views": [asdict(v) for v in self.close_up_views] if on else None,
            "close_up_thresholds": list(self.close_up_thresholds) if on else None,
            "close_up_iou": self.close_up_iou if on else None,
            "close_up_min_agreement": self.close_up_min_agreement if on else None,
            "close_up_min_size": self.close_up_min_size if on else None,
            "batch_size": self.batch_size,
        }

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.config().items() if k != "close_up_views" and (v is not None)}
        if self.close_up.enabled:
            shown["close_up_views"] = f"<{len(self.close_up_views)} views>"
        shown["compiled"] = self.compiled
        shown["threads"] = self.threads
        args = ", ".join(f"{k}={v if k == 'close_up_views' else repr(v)}" for k, v in shown.items())
        return f"FaceDetector({args})"

    @property
    def mtcnn(self):
        """The MTCNN instance, shared by every FaceDetector on the same device (built on first use)."""
        if self._mtcnn is None:
            self._mtcnn = shared_mtcnn(self.device, self.compiled)
        return self._mtcnn

    # ------------------------------------------------------------------ detection

    def prepare(self, image: np.ndarray, *, pad: float = 0.0, fit_frame: bool = False) -> tuple[np.ndarray, float, int]:
        """Resize (and optionally frame) an image the way MTCNN will see it.

        The photo is shrunk so its longer side is at most ``max_side`` (with ``fit_frame=True``, so that
        the framed result is), or enlarged so its shorter side is ``min_side`` (at most 4x); then a grey
        border of ``pad`` times its longer side is added. Returns ``(prepared, scale, border)``: a point
        ``(x, y)`` in the prepared image is ``((x - border) / scale, (y - border) / scale)`` in the original.
        """
        import cv2

        h, w = image.shape[:2]
        scale = 1.0
        limit = None if self.max_side is None else self.max_side / ((1 + 2 * pad) if fit_frame else 1.0)
        if limit is not None and max(h, w) > limit:
            scale = limit / max(h, w)
        elif self.min_side is not None and min(h, w) < self.min_side:
            scale = min(self.min_side / min(h, w), 4.0)
        out = image
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            out = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        border = 0
        if pad > 0:
            border = int(round(pad * max(out.shape[:2])))
            out = cv2.copyMakeBorder(out, border, border, border, border, cv2.BORDER_CONSTANT, value=(127, 127, 127))
        return np.ascontiguousarray(out), scale, border

    def _first_pass_pad(self, image: np.ndarray) -> float:
        """The first pass frames only photos up to half of ``max_side``: there the frame is cheap and
        close-ups are common. Larger photos, the costliest and rarely close-ups, get their frame in the second look."""
        if self.max_side is not None and max(image.shape[:2]) > self.max_side / 2:
            return 0.0
        return self.pad

    def close_up_smallest_face(self, image_shape: Sequence[int], scale: float) -> float:
        """The smallest face worth finding in a close-up view that shows a photo of ``image_shape`` at
        ``scale``: the look accepts only boxes of at least ``close_up_min_size`` times the photo's shorter
        side, and a box that is ``sqrt(close_up_iou)`` times smaller than that cannot overlap one with an
        IoU of ``close_up_iou`` (the IoU of two nested squares is the ratio of their areas), so it can neither
        be accepted nor add to an accepted box's agreement. Levels of the view's pyramid that find only
        such boxes are left out, with a margin (0.7) for MTCNN's later networks, which can enlarge a
        proposal's box."""
        smallest = np.sqrt(self.close_up_iou) * self.close_up_min_size * min(image_shape[:2]) * scale
        return float(_REFINE_MARGIN * smallest)

    def levels_to_skip(self, smallest_face: float) -> int:
        """How many of the image pyramid's first levels find only faces smaller than ``smallest_face``
        pixels (of the image MTCNN is given), and so can be left out (see :func:`~maskedu.crop.mtcnn_internals.run_pnet`). Level ``j``
        finds faces from about ``min_face_size / scale_factor ** j`` to ``/ scale_factor ** (j + 1)`` pixels."""
        if not np.isfinite(smallest_face) or smallest_face <= self.min_face_size:
            return 0
        # level j is left out when its largest face, min_face_size / scale_factor ** (j + 1), is below smallest_face
        steps = np.log(smallest_face / self.min_face_size) / np.log(1 / self.scale_factor)
        return max(0, int(np.ceil(steps - 1e-9)) - 1)

    def _run(self, prepared: list[np.ndarray], thresholds: tuple[float, float, float], skip_levels: int = 0) -> list[np.ndarray]:
        """Run MTCNN on a list of prepared images of the same shape, leaving out the pyramid's first
        ``skip_levels`` levels; one array of raw rows per image (see :func:`~maskedu.crop.mtcnn_internals.run_mtcnn`)."""
        rows = run_mtcnn(self.mtcnn, prepared, thresholds=thresholds, min_face_size=self.min_face_size,
                         scale_factor=self.scale_factor, skip_levels=skip_levels, staged=self.compiled, device=self.device)
        if rows.size == 0 or rows.ndim != 2 or rows.shape[1] < 16:
            return [np.zeros((0, 16)) for _ in prepared]
        ids = rows[:, 0].astype(int)
        return [rows[ids == i] for i in range(len(prepared))]

    def _run_batched(self, prepared: list[np.ndarray], thresholds,
                     min_faces: Sequence[float] | None = None) -> tuple[list[np.ndarray], list[float]]:
        """Run MTCNN on many prepared images, batching those of similar size.

        MTCNN 1.0 accepts a batch, but it must be one array: images of one batch are placed top-left on
        a grey canvas of the batch's largest size (so no coordinate shifts). Images are grouped by size
        so the canvas adds little. ``min_faces`` gives, per image, the smallest face worth finding in it
        (in its pixels): a batch holds images that skip the same pyramid levels (:meth:`levels_to_skip`).
        Up to ``threads`` batches run at once. Returns the rows per image and the
        seconds attributed to each (the wall time of each batch, shared by its images; with several threads,
        scaled so that they add up to the wall time of the whole call).
        """
        n = len(prepared)
        out: list[np.ndarray] = [np.zeros((0, 16))] * n
        seconds = [0.0] * n
        # MTCNN's smallest window is 12 pixels: a smaller image cannot hold a face (and breaks its pyramid)
        usable = [i for i in range(n) if min(prepared[i].shape[:2]) >= 12]
        skip = [0 if min_faces is None else self.levels_to_skip(min_faces[i]) for i in range(n)]
        order = sorted(usable, key=lambda i: (skip[i], prepared[i].shape[0] * prepared[i].shape[1], i))
        batches: list[list[int]] = []
        for i in order:
            if batches and len(batches[-1]) < self.batch_size:
                group = batches[-1] + [i]
                hh = max(prepared[j].shape[0] for j in group)
                ww = max(prepared[j].shape[1] for j in group)
                smallest = prepared[group[0]].shape[0] * prepared[group[0]].shape[1]
                # similar sizes only (little canvas wasted), and no huge batches (large images gain nothing)
                if skip[i] == skip[group[0]] and hh * ww <= _BATCH_SPREAD * smallest and len(group) * hh * ww <= _MAX_BATCH_PIXELS:
                    batches[-1].append(i)
                    continue
            batches.append([i])

        def run(group: list[int]) -> float:
            t0 = time.perf_counter()
            hh = max(prepared[j].shape[0] for j in group)
            ww = max(prepared[j].shape[1] for j in group)
            canvases = []
            for j in group:
                img = prepared[j]
                if img.shape[:2] != (hh, ww):
                    canvas = np.full((hh, ww, 3), 127, np.uint8)
                    canvas[: img.shape[0], : img.shape[1]] = img
                    img = canvas
                canvases.append(img)
            for j, rows in zip(group, self._run(canvases, thresholds, skip[group[0]])):
                out[j] = rows
            return time.perf_counter() - t0

        t0 = time.perf_counter()
        if self.threads > 1 and len(batches) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(self.threads, len(batches)), thread_name_prefix="maskedu-mtcnn") as pool:
                took = list(pool.map(run, batches))
        else:
            took = [run(group) for group in batches]
        fit = (time.perf_counter() - t0) / sum(took) if sum(took) > 0 else 1.0
        for group, t in zip(batches, took):
            for j in group:
                seconds[j] += t * fit / len(group)
        return out, seconds

    def _to_detections(self, rows, scale, border, width, height, attempt, degenerate) -> list[Face]:
        found = []
        for row in rows:
            raw = tuple(float((v - border) / scale) for v in row[1:5])
            score = float(row[5])
            xs = (row[6:11] - border) / scale
            ys = (row[11:16] - border) / scale
            box = clip_box(raw, width=width, height=height) if np.isfinite(raw).all() else (0, 0, 0, 0)
            if not box_is_valid(box):
                degenerate.append(raw)
                continue
            clipped = raw[0] < 0 or raw[1] < 0 or raw[2] > width or raw[3] > height
            keypoints = {name: (float(x), float(y)) for name, x, y in zip(KEYPOINT_NAMES, xs, ys)}
            found.append(Face(box=box, score=score, keypoints=keypoints, raw_box=raw, clipped=bool(clipped), attempt=attempt))
        found.sort(key=lambda d: -d.score)
        return found

    def detect_full(self, image: np.ndarray | str | os.PathLike) -> DetectionResult:
        """Detect faces in one image and say everything about it (see :class:`DetectionResult`)."""
        return self.detect_many([image])[0]

    def detect_many(self, images: Sequence[np.ndarray | str | os.PathLike]) -> list[DetectionResult]:
        """Detect faces in many images at once, in batches of similar size (much faster than one by one:
        on a CPU most of MTCNN's time per small image is fixed overhead that a batch shares).

        Files that cannot be read raise :class:`~maskedu.imaging.ImageError`; load them first with
        :func:`~maskedu.imaging.load_image` to handle them one by one. Photos of one batch share a grey
        canvas, which shifts MTCNN's pyramid rounding: a box can move by a pixel or two (and a borderline
        score cross a threshold) depending on the batch; ``batch_size=1`` gives batch-independent results.
        """
        arrays, loading = [], []
        for image in images:
            t0 = time.perf_counter()
            arrays.append(load_image(image))
            loading.append(time.perf_counter() - t0)
        results = self.run_first_look(arrays)
        for r, t in zip(results, loading):
            r.seconds += t
        again = [i for i, r in enumerate(results) if not r.detections] if self.retry else []
        if again:
            for i, second in zip(again, self.run_second_look([arrays[i] for i in again])):
                r = results[i]
                r.detections = second.detections
                r.degenerate += second.degenerate
                r.attempts = 2
                r.seconds += second.seconds
        third = [i for i, r in enumerate(results) if not r.detections] if self.close_up.enabled else []
        if third:
            for i, look in zip(third, self._close_up_look([arrays[i] for i in third])):
                r = results[i]
                r.detections = [] if look.detection is None else [look.detection]
                r.attempts += 1
                r.seconds += look.seconds
        return results

    def run_first_look(self, images: Sequence[np.ndarray]) -> list[DetectionResult]:
        """The first look alone at loaded RGB images: sized by :class:`SizeSettings`, small ones framed,
        MTCNN with ``thresholds``. One :class:`DetectionResult` per image, whatever it found."""
        prepared, seconds = [], []
        for arr in images:
            t0 = time.perf_counter()
            prepared.append(self.prepare(arr, pad=self._first_pass_pad(arr)))
            seconds.append(time.perf_counter() - t0)
        rows, took = self._run_batched([p[0] for p in prepared], self.thresholds)
        results = []
        for i, arr in enumerate(images):
            h, w = arr.shape[:2]
            degenerate: list[tuple[float, float, float, float]] = []
            _, scale, border = prepared[i]
            found = self._to_detections(rows[i], scale, border, w, h, 1, degenerate)
            results.append(DetectionResult(found, degenerate, scale, 1, seconds[i] + took[i]))
        return results

    def run_second_look(self, images: Sequence[np.ndarray], *, thresholds: Sequence[float] | None = None) -> list[DetectionResult]:
        """The second look alone at loaded RGB images (:meth:`detect_many` takes it only where the first
        found nothing): a wider frame and ``retry_thresholds``, or ``thresholds`` when given (for studying
        the thresholds, as :func:`~maskedu.crop.threshold_tradeoff` does). Its faces have ``attempt == 2``."""
        thresholds = self.retry_thresholds if thresholds is None else _check_thresholds("thresholds", thresholds)
        if not len(images):
            return []
        t0 = time.perf_counter()
        second = [self.prepare(arr, pad=self.retry_pad, fit_frame=True) for arr in images]
        prep_share = (time.perf_counter() - t0) / len(images)
        rows, took = self._run_batched([p[0] for p in second], thresholds)
        results = []
        for k, arr in enumerate(images):
            h, w = arr.shape[:2]
            _, scale, border = second[k]
            degenerate: list[tuple[float, float, float, float]] = []
            found = self._to_detections(rows[k], scale, border, w, h, 2, degenerate)
            results.append(DetectionResult(found, degenerate, scale, 2, prep_share + took[k]))
        return results

    def view(self, image: np.ndarray, view: View) -> tuple[np.ndarray, float, float, float]:
        """The picture MTCNN sees in one close-up :class:`View` (``view.side`` pixels square):
        ``(picture, scale, top, left)``; a point ``(x, y)`` in it is ``((x / scale) - left, (y / scale) - top)``
        in the (mirrored, if ``view.mirror``) photo."""
        import cv2

        h, w = image.shape[:2]
        longer = max(h, w)
        top, left, bottom = (int(round(f * longer)) for f in (view.top, view.sides, view.bottom))
        if view.mirror:
            image = image[:, ::-1]
        framed = cv2.copyMakeBorder(np.ascontiguousarray(image), top, bottom, left, left, cv2.BORDER_CONSTANT,
                                    value=(127, 127, 127))
        fh, fw = framed.shape[:2]
        scale = view.side / max(fh, fw)
        size = (max(1, round(fw * scale)), max(1, round(fh * scale)))
        out = cv2.resize(framed, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        # grey up to a square: every picture of a view has the same shape, so a batch of them needs no canvas
        # and what MTCNN finds in one photo does not depend on which photos share its batch
        extra_y, extra_x = view.side - out.shape[0], view.side - out.shape[1]
        out = cv2.copyMakeBorder(out, extra_y // 2, extra_y - extra_y // 2, extra_x // 2, extra_x - extra_x // 2,
                                 cv2.BORDER_CONSTANT, value=(127, 127, 127))
        return np.ascontiguousarray(out), scale, top + extra_y // 2 / scale, left + extra_x // 2 / scale

    def close_up_look(self, image: np.ndarray | str | os.PathLike) -> "CloseUpLook":
        """Run only the close-up look on one photo and keep everything it saw (for teaching and debugging;
        :meth:`detect_many` runs it where the first two looks found nothing). See :func:`plot_close_up_look`."""
        return self._close_up_look([load_image(image)])[0]

    def _close_up_look(self, images: list[np.ndarray]) -> list["CloseUpLook"]:
        """The close-up look (see the class docstring) on several photos, all their views batched together."""
        t0 = time.perf_counter()
        views = self.close_up_views
        prepared, geometry, min_faces = [], [], []
        for image in images:
            for view in views:
                picture, scale, top, left = self.view(image, view)
                prepared.append(picture)
                geometry.append((scale, top, left, view.mirror))
                min_faces.append(self.close_up_smallest_face(image.shape, scale))
        prep_share = (time.perf_counter() - t0) / len(images)
        rows, took = self._run_batched(prepared, self.close_up_thresholds, min_faces)
        looks = []
        for k, image in enumerate(images):
            at = slice(k * len(views), (k + 1) * len(views))
            look = self._agree(image, prepared[at], rows[at], geometry[at])
            look.seconds = prep_share + sum(took[at])
            looks.append(look)
        return looks

    def _agree(self, image, pictures, rows, geometry) -> "CloseUpLook":
        """Map every view's boxes back to the photo, score each box by the views' agreement, accept the best."""
        h, w = image.shape[:2]
        n_views = len(self.close_up_views)
        boxes, scores, points, view_of = [], [], [], []
        for v, (view_rows, (scale, top, left, mirror)) in enumerate(zip(rows, geometry)):
            for row in view_rows:
                x1, y1, x2, y2 = row[1:5] / scale - np.array([left, top, left, top])
                xs, ys = row[6:11] / scale - left, row[11:16] / scale - top
                if mirror:  # back to the photo's orientation; the eyes and mouth corners swap sides
                    x1, x2 = w - x2, w - x1
                    xs, ys = (w - xs)[[1, 0, 2, 4, 3]], ys[[1, 0, 2, 4, 3]]
                boxes.append((x1, y1, x2, y2))
                scores.append(float(row[5]))
                points.append((xs, ys))
                view_of.append(v)
        look = CloseUpLook(views=self.close_up_views, pictures=list(pictures),
                           view_boxes=[np.asarray(r[:, 1:5], dtype=np.float64).reshape(-1, 4) for r in rows],
                           view_scores=[np.asarray(r[:, 5], dtype=np.float64) for r in rows],
                           boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
                           scores=np.asarray(scores, dtype=np.float64), view_of=np.asarray(view_of, dtype=int),
                           agreement=np.zeros(len(boxes)), min_agreement=self.close_up_min_agreement)
        if not boxes:
            return look
        overlap = iou_matrix(look.boxes, look.boxes) >= self.close_up_iou
        support = np.zeros((len(boxes), n_views))
        for j, (v, score) in enumerate(zip(view_of, scores)):
            support[:, v] = np.maximum(support[:, v], np.where(overlap[:, j], score, 0.0))
        look.agreement = support.mean(axis=1)
        sides = np.maximum(look.boxes[:, 2] - look.boxes[:, 0], look.boxes[:, 3] - look.boxes[:, 1])
        eligible = sides >= self.close_up_min_size * min(h, w)
        if not eligible.any():
            return look
        best = int(np.argmax(np.where(eligible, look.agreement, -1.0)))
        if look.agreement[best] < self.close_up_min_agreement:
            return look
        raw = tuple(float(v) for v in boxes[best])
        box = clip_box(raw, width=w, height=h)
        if not box_is_valid(box):
            return look
        xs, ys = points[best]
        clipped = raw[0] < 0 or raw[1] < 0 or raw[2] > w or raw[3] > h
        keypoints = {name: (float(x), float(y)) for name, x, y in zip(KEYPOINT_NAMES, xs, ys)}
        look.detection = Face(box=box, score=float(look.agreement[best]), keypoints=keypoints, raw_box=raw,
                                   clipped=bool(clipped), attempt=3)
        return look

    def detect(self, image: np.ndarray | str | os.PathLike) -> list[Face]:
        """The faces in one image (an RGB array or a file), most confident first.

        Boxes are clipped to the image; boxes that MTCNN placed wholly outside it are left out here and
        listed by :meth:`detect_full`.
        """
        return self.detect_full(image).detections

    def __call__(self, image):
        return self.detect(image)


def close_up_of(image, face: Face, *, above: float = 0.8, beside: float = 0.6, width: int = 110) -> np.ndarray:
    """A tight close-up of ``face`` in ``image``, cut the way many masked-face photos are (the RMFD kind):
    from ``above`` eye-distances above the eyes down to just below the chin, and ``beside`` eye-distances to
    each side of the eyes, resized to ``width`` pixels wide. Use it with
    :func:`maskedu.sample.draw_mask` to make the close-ups MTCNN struggles with.

    >>> from skimage import data
    >>> from maskedu.sample import draw_mask
    >>> photo = data.astronaut()
    >>> face = FaceDetector().detect(photo)[0]
    >>> close_up_of(draw_mask(photo, face.keypoints, style="cloth"), face).shape
    (131, 110, 3)
    """
    import cv2

    img = load_image(image)
    above = check_number("above", above, minimum=0.0, maximum=5.0)
    beside = check_number("beside", beside, minimum=0.0, maximum=5.0)
    width = check_int("width", width, minimum=12, maximum=4000)
    (lx, ly), (rx, ry) = face.keypoints["left_eye"], face.keypoints["right_eye"]
    eyes = rx - lx
    if eyes <= 0:
        raise ValueError(f"the face's eyes are not left of right ({lx:.0f} vs {rx:.0f}); pass a detection from FaceDetector.")
    h, w = img.shape[:2]
    x1, x2 = max(0, int(lx - beside * eyes)), min(w, int(rx + beside * eyes))
    y1, y2 = max(0, int(min(ly, ry) - above * eyes)), min(h, int(face.box[3] + 0.1 * eyes))
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise ValueError(f"the close-up box ({x1}, {y1}, {x2}, {y2}) is empty; is the face inside the image?")
    cut = np.ascontiguousarray(img[y1:y2, x1:x2])
    height = max(1, int(width * cut.shape[0] / cut.shape[1]))
    return cv2.resize(cut, (width, height), interpolation=cv2.INTER_AREA if width < cut.shape[1] else cv2.INTER_LINEAR)
