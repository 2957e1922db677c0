"""Stage 02: find the faces with MTCNN and cut them out, fast, cached, and honest about what it misses.

One call does the sensible thing::

    from maskedu.crop import crop_faces
    crops = crop_faces(dataset)          # 50x50 face crops, labels, boxes, scores, where each came from
    crops.images.shape                   # (N, 50, 50, 3) uint8
    print(crops.report)                  # missed faces, unmatched detections, unreadable files, timing

The pieces underneath are public:

* :class:`FaceDetector` wraps **one** MTCNN instance. It shrinks large photos before detection (MTCNN's
  image pyramid makes a 4000-pixel photo take seconds; faces are found as well at 800 pixels), enlarges
  small close-ups, frames small photos in a grey border, and, only when that finds nothing, takes a
  second look with a wider border and more candidates passed to MTCNN's last network. The border is what rescues most
  masked faces: MTCNN was trained on bare faces in scenes, while masked photos are often close-ups whose
  face fills the frame, with the nose and mouth MTCNN looks for hidden. Where two looks find nothing, a
  *close-up look* shows the photo in seven views and accepts a face only where the views agree
  (:meth:`FaceDetector.close_up_look`, :func:`plot_close_up_look`). MTCNN's networks are traced once into
  TensorFlow graphs (:func:`compile_mtcnn`), and photos of similar size go through MTCNN in batches (on a
  CPU most of its time on a small photo is per-call overhead). Boxes and
  keypoints come back in the original image's pixels, clipped to it; boxes that clip to nothing are
  reported, not returned.
* :func:`match_detections` pairs detections with annotated boxes by IoU (the Hungarian algorithm from
  scipy), so annotated datasets get their labels from the annotations.
* :func:`crop_faces` runs it over a :class:`~maskedu.annotations.Dataset` and returns :class:`Crops`;
  results are cached under ``data/crops`` keyed by the files and every parameter.
* :func:`get_crops` is the one-liner later notebooks use: the dataset from
  :func:`maskedu.download.get_dataset`, cropped (or loaded from the cache).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .annotations import CLASS_NAMES, Dataset
from .common import check_choice, check_int, check_number, data_dir, progress
from .common import progress as _progress
from .imaging import ImageError, box_is_valid, clip_box, crop_box, iou_matrix, load_image

__all__ = [
    "KEYPOINT_NAMES",
    "Detection",
    "DetectionResult",
    "FaceDetector",
    "View",
    "CloseUpLook",
    "plot_close_up_look",
    "close_up_of",
    "CLOSE_UP_VIEWS",
    "compile_mtcnn",
    "match_detections",
    "Match",
    "largest_face",
    "CropReport",
    "Crops",
    "image_hashes",
    "crop_faces",
    "get_crops",
    "fallback_box",
    "background_images",
    "TradeOff",
    "threshold_tradeoff",
    "fallback_leak",
    "plot_detections",
    "plot_gallery",
    "plot_found_rates",
    "pair_crops",
    "take_per_class",
    "dataset_fingerprint",
    "CACHE_VERSION",
]

#: MTCNN's five landmarks, in the order the network predicts them.
KEYPOINT_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")

#: Bumped whenever the cropping code changes what it produces, so old cache files are not reused.
CACHE_VERSION = 4

_ORIGINS = ("detector", "annotation", "fallback")

#: Largest batch MTCNN is given, in pixels (batching large photos only costs memory).
_MAX_BATCH_PIXELS = 2_000_000

#: Largest canvas of a batch, as a multiple of its smallest photo's area (the rest of the canvas is grey).
_BATCH_SPREAD = 1.5

#: A proposal from MTCNN's first network can grow in its later two, which move and resize its box: the
#: close-up look keeps pyramid levels for faces down to this fraction of the smallest box that can matter.
#: With 0.7, the crops of all 600 shared development photos are the same as with every level kept.
_REFINE_MARGIN = 0.7

#: One MTCNN per TensorFlow device (compiled or not), shared by every FaceDetector (see FaceDetector.mtcnn).
_SHARED_MTCNN: dict[tuple[str, bool], Any] = {}


# =========================================================================== detections


@dataclass(frozen=True)
class Detection:
    """One face MTCNN found, in the original image's pixels.

    ``box`` is ``(x1, y1, x2, y2)`` whole pixels clipped to the image (x2/y2 exclusive);
    ``raw_box`` is what MTCNN said before clipping (it may be negative or run past the edge, and
    ``clipped`` tells whether it did). ``keypoints`` maps each of :data:`KEYPOINT_NAMES` to ``(x, y)``.
    ``attempt`` is 1 for the first pass, 2 when the face was found by the second look and 3 when by the
    close-up look (see :class:`FaceDetector`); for the close-up look ``score`` is the views' agreement.
    """

    box: tuple[int, int, int, int]
    score: float
    keypoints: dict[str, tuple[float, float]]
    raw_box: tuple[float, float, float, float]
    clipped: bool = False
    attempt: int = 1

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


@dataclass
class DetectionResult:
    """Everything one :meth:`FaceDetector.detect_full` call learnt about an image.

    ``detections`` (most confident first), ``degenerate`` (raw boxes that were empty once clipped to the
    image: reported rather than silently dropped), ``scale`` (the factor the photo was resized by before
    detection), ``attempts`` (how many looks ran: 1, plus one for the second look, plus one for the
    close-up look) and ``seconds``.
    """

    detections: list[Detection]
    degenerate: list[tuple[float, float, float, float]] = field(default_factory=list)
    scale: float = 1.0
    attempts: int = 1
    seconds: float = 0.0

    @property
    def found(self) -> bool:
        return bool(self.detections)

    @property
    def best(self) -> Detection | None:
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

    views: tuple["View", ...]
    pictures: list[np.ndarray]
    view_boxes: list[np.ndarray]
    view_scores: list[np.ndarray]
    boxes: np.ndarray
    scores: np.ndarray
    view_of: np.ndarray
    agreement: np.ndarray
    min_agreement: float
    detection: Detection | None = None
    seconds: float = 0.0

    @property
    def found(self) -> bool:
        return self.detection is not None


@dataclass(frozen=True)
class View:
    """One way the close-up look shows a photo to MTCNN (see :class:`FaceDetector`).

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


def compile_mtcnn(mtcnn) -> None:
    """Trace the three networks of an ``mtcnn.MTCNN`` instance into TensorFlow graphs, in place.

    ``mtcnn`` 1.0 calls its Keras networks eagerly, layer by layer, for every level of the image pyramid:
    on a CPU that per-call overhead is most of the time spent on a small photo. Each network is wrapped
    in one ``tf.function`` with a fully flexible input shape (they are fully convolutional, or take a
    batch of fixed-size patches), so it is traced once and then reused for every size. Same weights,
    same arithmetic: the boxes are the same (to float rounding). Networks that are not where this
    version of ``mtcnn`` keeps them are left as they are.
    """
    import tensorflow as tf

    for stage in getattr(mtcnn, "stages", []):
        model = getattr(stage, "_model", None)
        if model is None or isinstance(model, tf.types.experimental.PolymorphicFunction):
            continue
        stage._model = tf.function(model, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
                                   reduce_retracing=True)


def run_pnet(stage, images, *, min_face_size: int = 20, scale_factor: float = 0.709, threshold_pnet: float = 0.6,
             nms_pnet1: float = 0.5, nms_pnet2: float = 0.7, skip_levels: int = 0, **_: Any) -> np.ndarray:
    """MTCNN's first stage, its proposal network (PNet) over the image pyramid, as ``mtcnn`` 1.0's PNet stage
    runs it, but able to leave out the pyramid's first ``skip_levels`` levels.

    ``stage`` is the ``mtcnn`` PNet stage (``MTCNN().stages[0]``), whose network and box utilities are used
    as they are; ``images`` an ``(N, H, W, 3)`` float32 batch normalised as MTCNN does it
    (``(pixel - 127.5) / 128``). The pyramid is MTCNN's own: level ``j`` shrinks the image by
    ``12 / min_face_size * scale_factor ** j`` and finds faces of about ``min_face_size / scale_factor ** j``
    pixels. The first levels are the largest images, so they cost most (the first alone about half of
    the stage), and they find only the smallest faces: :meth:`FaceDetector.levels_to_skip` says how many
    may go where small faces cannot matter. The levels kept are exactly the levels MTCNN would use. Returns
    the stage's rows (image id, x1, y1, x2, y2, score), squared, for RNet.
    """
    from mtcnn.utils.bboxes import generate_bounding_box, resize_to_square, smart_nms_from_bboxes, upscale_bboxes
    from mtcnn.utils.images import build_scale_pyramid, scale_images

    n, h, w = (int(v) for v in images.shape[:3])
    scales = list(build_scale_pyramid(w, h, min_face_size=min_face_size, scale_factor=scale_factor))
    scales = scales[min(skip_levels, max(len(scales) - 1, 0)):]  # at least the last level
    found = []
    for scale in scales:
        reg, cls = stage._model(scale_images(images, scale))
        boxes = upscale_bboxes(generate_bounding_box(reg, cls, threshold_pnet), np.full(n, scale))
        found.append(smart_nms_from_bboxes(boxes, threshold=nms_pnet1, method="union", initial_sort=False))
    boxes = np.concatenate(found, axis=0) if found else np.empty((0, 6))
    boxes = smart_nms_from_bboxes(boxes, threshold=nms_pnet2, method="union", initial_sort=True)
    return resize_to_square(boxes)


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


class FaceDetector:
    """MTCNN, once, with the image handling real photos need.

    Parameters
    ----------
    thresholds:
        Confidence thresholds of MTCNN's three networks (PNet, RNet, ONet). MTCNN's defaults are
        ``(0.6, 0.7, 0.8)``.
    min_face_size:
        Smallest face looked for, in pixels of the image *as MTCNN sees it* (after resizing).
    scale_factor:
        Step of MTCNN's image pyramid (0.709 in the paper that introduced MTCNN).
    max_side:
        Photos whose longer side exceeds this are shrunk to it before detection (boxes are scaled
        back). ``None`` keeps full resolution, which is how the paper ran it and why it was slow.
    min_side:
        Photos whose shorter side is below this are enlarged to it (at most 4x) so a small
        close-up face is large enough for MTCNN's 12-pixel window at a usable scale. ``None``: never enlarge.
    retry:
        Take a second look when the first pass finds nothing: the photo gets a wider grey border of
        ``retry_pad`` times its size, and the thresholds become ``retry_thresholds``. The second look
        runs only on photos where the first found nothing, so it never adds a second face to a photo that
        already has one; on face-free pictures it always runs, which is where its false alarms are
        measured (:func:`threshold_tradeoff`).
    pad:
        Grey border added in the first pass around photos of at most ``max_side / 2`` pixels, as a
        fraction of the longer side (0 for none). Larger photos are framed only in the second look,
        whose framed image is shrunk to fit ``max_side``: they are the costliest, and rarely close-ups.
        MTCNN finds a face that fills the whole photo far more reliably once it sits in a frame: on the
        shared development photos, framing every photo lifted masked faces found from about 62% to 73%
        without a detection on the face-free pictures of :func:`background_images`.
    close_up:
        Take a third look, the *close-up look*, at photos where the first two found nothing. Masked
        close-ups defeat MTCNN in a particular way: the face fills the photo, the forehead is often cut
        off, and the nose and mouth are hidden, so its last network gives the face a middling score
        that moves a lot with how the photo is framed. The close-up look shows the photo in several
        ``close_up_views`` (frames of different widths, mirrored, smaller, taller above) with low
        thresholds (``close_up_thresholds``), and accepts a box only when the views *agree*: the
        agreement of a box is the mean, over all views, of the best score of a box in that view
        overlapping it with IoU >= ``close_up_iou`` (0 for a view with none). A real face scores in most
        views; a texture that looks face-like in one view rarely does in the others. A box is accepted
        when its agreement reaches ``close_up_min_agreement`` and its side is at least
        ``close_up_min_size`` times the photo's shorter side: this look is for close-ups, small faces in
        scenes are the first pass's job (and small boxes are where its false alarms were). The accepted
        detection has ``attempt == 3`` and its agreement as ``score``. Tuned on the shared development
        photos' misses against 420 face-free pictures (:func:`background_images` with a different seed
        than the benchmark's): with agreement 0.35 and size 0.4, none of them got a face (the most
        agreeing reached 0.26), and 31 of the 55 masked photos the first two looks missed were found.
    compiled:
        Trace MTCNN's three networks into TensorFlow graphs (:func:`compile_mtcnn`) and hand each batch to
        its stages as one float32 tensor: same boxes, three to four times faster on a CPU. ``False`` runs
        ``mtcnn`` exactly as installed (``MTCNN.detect_faces``).
    batch_size:
        How many photos of similar size :meth:`detect_many` sends through MTCNN together. On a CPU most
        of MTCNN's time on a small photo is fixed per-call overhead, which a batch shares.
    threads:
        How many batches go through MTCNN at once. MTCNN's networks keep both cores of a small machine
        busy, but between them its stages spend a third of their time in single-threaded work (box
        generation, non-maximum suppression, cropping, and TensorFlow's area resize of each pyramid level);
        other batches fill that gap; four at once were fastest on a 2-core machine (``benchmarks/RESULTS.md``).
        Each batch in flight holds its own activations, so more threads cost memory. Batches are
        independent, so the boxes do not depend on it.
    device:
        TensorFlow device for MTCNN, ``"CPU:0"`` by default.

    >>> from skimage import data
    >>> faces = FaceDetector().detect(data.astronaut())
    >>> len(faces), faces[0].score > 0.99
    (1, True)
    """

    def __init__(
        self,
        *,
        thresholds: Sequence[float] = (0.6, 0.7, 0.8),
        min_face_size: int = 20,
        scale_factor: float = 0.709,
        max_side: int | None = 800,
        min_side: int | None = 160,
        retry: bool = True,
        retry_thresholds: Sequence[float] = (0.5, 0.6, 0.8),
        retry_pad: float = 0.35,
        pad: float = 0.2,
        close_up: bool = True,
        close_up_views: Sequence[View] = CLOSE_UP_VIEWS,
        close_up_thresholds: Sequence[float] = (0.3, 0.3, 0.3),
        close_up_iou: float = 0.5,
        close_up_min_agreement: float = 0.35,
        close_up_min_size: float = 0.4,
        compiled: bool = True,
        batch_size: int = 16,
        threads: int = 4,
        device: str = "CPU:0",
    ):
        self.thresholds = _check_thresholds("thresholds", thresholds)
        self.min_face_size = check_int("min_face_size", min_face_size, minimum=12, maximum=10_000)
        self.scale_factor = check_number("scale_factor", scale_factor, minimum=0.1, maximum=0.95)
        self.max_side = None if max_side is None else check_int("max_side", max_side, minimum=48)
        self.min_side = None if min_side is None else check_int("min_side", min_side, minimum=12, maximum=4096)
        if self.max_side is not None and self.min_side is not None and self.min_side > self.max_side:
            raise ValueError(f"min_side={self.min_side} must not exceed max_side={self.max_side}.")
        if not isinstance(retry, bool):
            raise TypeError(f"retry must be True or False, got {retry!r}.")
        self.retry = retry
        self.retry_thresholds = _check_thresholds("retry_thresholds", retry_thresholds)
        self.retry_pad = check_number("retry_pad", retry_pad, minimum=0.0, maximum=1.0)
        self.pad = check_number("pad", pad, minimum=0.0, maximum=1.0)
        for name, flag in (("close_up", close_up), ("compiled", compiled)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False, got {flag!r}.")
        self.close_up = close_up
        self.compiled = compiled
        views = tuple(close_up_views) if not isinstance(close_up_views, View) else (close_up_views,)
        if not views or not all(isinstance(v, View) for v in views):
            raise TypeError(f"close_up_views must be one or more maskedu.crop.View objects, got {close_up_views!r}.")
        self.close_up_views = views
        self.close_up_thresholds = _check_thresholds("close_up_thresholds", close_up_thresholds)
        self.close_up_iou = check_number("close_up_iou", close_up_iou, minimum=0.0, maximum=1.0)
        self.close_up_min_agreement = check_number("close_up_min_agreement", close_up_min_agreement, minimum=0.0, maximum=1.0)
        self.close_up_min_size = check_number("close_up_min_size", close_up_min_size, minimum=0.0, maximum=1.0)
        self.batch_size = check_int("batch_size", batch_size, minimum=1, maximum=256)
        self.threads = check_int("threads", threads, minimum=1, maximum=64)
        if not isinstance(device, str) or not device:
            raise TypeError(f"device must be a TensorFlow device string such as 'CPU:0', got {device!r}.")
        self.device = device
        self._mtcnn = None

    # ------------------------------------------------------------------ construction helpers

    @classmethod
    def paper(cls, **kwargs: Any) -> "FaceDetector":
        """MTCNN as the paper used it: ``mtcnn`` as installed (not compiled), full resolution, default
        thresholds, one image at a time, no second or close-up look."""
        settings = dict(max_side=None, min_side=None, retry=False, batch_size=1, threads=1, pad=0.0, close_up=False,
                        compiled=False)
        settings.update(kwargs)
        return cls(**settings)

    def config(self) -> dict[str, Any]:
        """The settings that decide what this detector finds (part of the crop cache key)."""
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
            "close_up": self.close_up,
            "close_up_views": [asdict(v) for v in self.close_up_views] if self.close_up else None,
            "close_up_thresholds": list(self.close_up_thresholds) if self.close_up else None,
            "close_up_iou": self.close_up_iou if self.close_up else None,
            "close_up_min_agreement": self.close_up_min_agreement if self.close_up else None,
            "close_up_min_size": self.close_up_min_size if self.close_up else None,
            "batch_size": self.batch_size,
        }

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.config().items() if k != "close_up_views" and (v is not None)}
        if self.close_up:
            shown["close_up_views"] = f"<{len(self.close_up_views)} views>"
        shown["compiled"] = self.compiled
        shown["threads"] = self.threads
        args = ", ".join(f"{k}={v if k == 'close_up_views' else repr(v)}" for k, v in shown.items())
        return f"FaceDetector({args})"

    @property
    def mtcnn(self):
        """The MTCNN instance (built on first use: loading its weights takes a few seconds).

        Every FaceDetector on the same device shares one instance (one compiled and one as installed):
        MTCNN keeps only its weights, and the settings that differ between detectors are passed on each call.
        """
        if self._mtcnn is None:
            key = (self.device, self.compiled)
            if key not in _SHARED_MTCNN:
                from .common import import_tensorflow

                import_tensorflow()  # quietly, before mtcnn imports it
                from mtcnn import MTCNN

                mtcnn = MTCNN(stages="face_and_landmarks_detection", device=self.device)
                if self.compiled:
                    compile_mtcnn(mtcnn)
                _SHARED_MTCNN[key] = mtcnn
            self._mtcnn = _SHARED_MTCNN[key]
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
        close-ups are common. Larger photos get their frame in the second look (measured on the shared
        photos, framing them in the first pass found no additional face and doubled their cost)."""
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
        pixels (of the image MTCNN is given), and so can be left out (see :func:`run_pnet`). Level ``j``
        finds faces from about ``min_face_size / scale_factor ** j`` to ``/ scale_factor ** (j + 1)`` pixels."""
        if not np.isfinite(smallest_face) or smallest_face <= self.min_face_size:
            return 0
        # level j is left out when its largest face, min_face_size / scale_factor ** (j + 1), is below smallest_face
        steps = np.log(smallest_face / self.min_face_size) / np.log(1 / self.scale_factor)
        return max(0, int(np.ceil(steps - 1e-9)) - 1)

    def _run(self, prepared: list[np.ndarray], thresholds: tuple[float, float, float], skip_levels: int = 0) -> list[np.ndarray]:
        """Run MTCNN on a list of prepared images of the same shape, leaving out the pyramid's first
        ``skip_levels`` levels (:func:`run_pnet`); one array of raw rows per image
        (columns: image id, x1, y1, x2, y2, score, 5 keypoint x, 5 keypoint y).

        With ``compiled=True`` the batch goes straight to MTCNN's stages (its public ``stages``) as one
        float32 tensor: ``MTCNN.detect_faces`` normalises it to float64 numpy, which TensorFlow then copies
        again for every level of the image pyramid; that conversion alone took about as long as the networks.
        The batch is handed over as uint8 and TensorFlow normalises it, with the same float32 arithmetic
        (the same numbers, bit for bit): done in numpy, its temporary float arrays were fresh memory for every batch,
        and their page faults were 80% of ``detect_many``'s (measured with ``perf``).
        Same stages, same settings, same boxes (to float rounding). ``compiled=False`` calls ``detect_faces``
        (the networks called eagerly, layer by layer), or, where pyramid levels are left out, which
        ``detect_faces`` cannot do, the same stages with those eager networks.
        """
        settings = dict(threshold_pnet=thresholds[0], threshold_rnet=thresholds[1], threshold_onet=thresholds[2],
                        min_face_size=self.min_face_size, scale_factor=self.scale_factor)
        if self.compiled or skip_levels:
            import tensorflow as tf

            batch = np.stack(prepared)  # uint8: TensorFlow makes the float copy, in memory it keeps for reuse
            with tf.device(self.device):
                normalized = (tf.cast(batch, tf.float32) - 127.5) / 128.0  # MTCNN's own normalisation, in float32
                shapes = np.stack([p.shape for p in prepared])
                try:
                    pnet, *later = self.mtcnn.stages
                    rows = run_pnet(pnet, normalized, skip_levels=skip_levels, **settings)
                    for stage in later:
                        rows = stage(bboxes_batch=rows, images_normalized=normalized, images_oshapes=shapes, **settings)
                except tf.errors.InvalidArgumentError:  # what MTCNN itself does when no face survives a stage
                    rows = np.empty((0, 16))
        else:
            rows = self.mtcnn.detect_faces(
                list(prepared),
                box_format="xyxy",
                output_type="numpy",
                postprocess=False,  # we clip ourselves, so clipping is seen and reported
                **settings,
            )
        rows = np.asarray(rows, dtype=np.float64)
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

    def _to_detections(self, rows, scale, border, width, height, attempt, degenerate) -> list[Detection]:
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
            found.append(Detection(box=box, score=score, keypoints=keypoints, raw_box=raw, clipped=bool(clipped), attempt=attempt))
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
        n = len(images)
        seconds = [0.0] * n
        arrays, prepared = [], []
        for i, image in enumerate(images):
            t0 = time.perf_counter()
            arr = load_image(image)
            arrays.append(arr)
            prepared.append(self.prepare(arr, pad=self._first_pass_pad(arr)))
            seconds[i] += time.perf_counter() - t0
        rows, took = self._run_batched([p[0] for p in prepared], self.thresholds)
        results = []
        for i, arr in enumerate(arrays):
            h, w = arr.shape[:2]
            degenerate: list[tuple[float, float, float, float]] = []
            _, scale, border = prepared[i]
            found = self._to_detections(rows[i], scale, border, w, h, 1, degenerate)
            results.append(DetectionResult(found, degenerate, scale, 1, seconds[i] + took[i]))
        again = [i for i, r in enumerate(results) if not r.detections] if self.retry else []
        if again:
            t0 = time.perf_counter()
            second = [self.prepare(arrays[i], pad=self.retry_pad, fit_frame=True) for i in again]
            prep_share = (time.perf_counter() - t0) / len(again)
            rows, took = self._run_batched([p[0] for p in second], self.retry_thresholds)
            for k, i in enumerate(again):
                h, w = arrays[i].shape[:2]
                _, scale, border = second[k]
                r = results[i]
                r.detections = self._to_detections(rows[k], scale, border, w, h, 2, r.degenerate)
                r.attempts = 2
                r.seconds += prep_share + took[k]
        third = [i for i, r in enumerate(results) if not r.detections] if self.close_up else []
        if third:
            for i, look in zip(third, self._close_up_look([arrays[i] for i in third])):
                r = results[i]
                r.detections = [] if look.detection is None else [look.detection]
                r.attempts += 1
                r.seconds += look.seconds
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
        look.detection = Detection(box=box, score=float(look.agreement[best]), keypoints=keypoints, raw_box=raw,
                                   clipped=bool(clipped), attempt=3)
        return look

    def detect(self, image: np.ndarray | str | os.PathLike) -> list[Detection]:
        """The faces in one image (an RGB array or a file), most confident first.

        Boxes are clipped to the image; boxes that MTCNN placed wholly outside it are left out here and
        listed by :meth:`detect_full`.
        """
        return self.detect_full(image).detections

    def __call__(self, image):
        return self.detect(image)


# =========================================================================== matching


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


# =========================================================================== results


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
        from .sample import IMAGES_SUBDIR, read_sources

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


# =========================================================================== cropping


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
        from .annotations import load_dataset

        return load_dataset(path)
    raise TypeError(f"crop_faces needs a maskedu Dataset or a folder path, got {type(dataset).__name__}. "
                    "Load one with maskedu.load_dataset(folder) or maskedu.get_dataset().")


def crop_faces(
    dataset: Dataset | str | os.PathLike,
    *,
    size: int = 50,
    source: str = "mtcnn",
    margin: float = 0.1,
    fallback: str | None = None,
    keep: str = "largest",
    min_iou: float = 0.3,
    detector: FaceDetector | None = None,
    cache: bool = True,
    progress: bool = True,
    verbose: bool = False,
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
        MTCNN scores highest. On ``../shared/realfaces`` 25 of 600 photos show several faces, and in 12 of
        them the most confident face was not the largest but often a small face in the background (sides of
        28 to 37 pixels against 273 to 359 for the subject): MTCNN's scores crowd just under 1.0, and a mask
        lowers them, so the most confident face of a masked photo is too often an unmasked passer-by.
    min_iou:
        Smallest IoU for a detection to count as the annotated face it overlaps.
    detector:
        A :class:`FaceDetector` to use (default: ``FaceDetector()``).
    cache:
        Reuse (and write) ``data/crops/crops-<key>.npz``; the key covers every file's path, size and
        modification time, the annotations and every parameter here, so any change recomputes. A cache
        that cannot be written is a warning naming the path and the reason: the crops are still returned.
    progress:
        Show a progress bar.
    verbose:
        Print where the crops came from and the report.

    >>> crops = crop_faces(dataset)                       # doctest: +SKIP
    >>> crops.images.shape, crops.report.found_rate()     # doctest: +SKIP
    """
    start = time.perf_counter()
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
              "detector": detector.config() if source == "mtcnn" else None, "class_names": list(CLASS_NAMES)}
    cache_file = None
    if cache:
        key = _cache_key(dataset, params)
        try:
            cache_file = data_dir() / "crops" / f"crops-{key[:20]}.npz"
        except OSError as exc:  # the data folder cannot be made: crop without the cache rather than not at all
            warnings.warn(f"The crop cache cannot be used ({exc}); cropping without it.", stacklevel=2)
        if cache_file is not None and cache_file.exists():
            try:
                crops = Crops.load(cache_file, key=key)
                crops.report.from_cache = True
                crops.report.seconds = time.perf_counter() - start
                if verbose:
                    print(f"Loaded {len(crops)} crops from the cache {cache_file}")
                    print(crops.report)
                return crops
            except ValueError as exc:
                warnings.warn(f"The crop cache {cache_file} is unreadable ({exc}); rebuilding it.", stacklevel=2)
                try:
                    cache_file.unlink(missing_ok=True)
                except OSError:
                    pass  # saving over it below warns if the folder cannot be written

    crops = _compute(dataset, size=size, source=source, margin=margin, fallback=fallback, keep=keep,
                     min_iou=min_iou, detector=detector, show_progress=progress)
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
        print(crops.report)
    return crops


def _compute(dataset: Dataset, *, size, source, margin, fallback, keep, min_iou, detector, show_progress) -> Crops:
    class_names = tuple(CLASS_NAMES)
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
    bar = progress(total=len(records), desc="Cropping faces", disable=None if show_progress else True)
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


def largest_face(detections: Sequence[Detection]) -> Detection | None:
    """The detection with the longest box side (the photo's subject), the more confident one on a tie;
    ``None`` for no detections.

    >>> a = Detection(box=(0, 0, 30, 30), score=1.0, keypoints={}, raw_box=(0, 0, 30, 30))
    >>> b = Detection(box=(50, 50, 250, 260), score=0.98, keypoints={}, raw_box=(50, 50, 250, 260))
    >>> largest_face([a, b]) is b
    True
    """
    if not detections:
        return None
    return max(detections, key=lambda d: (max(d.width, d.height), d.score))


# =========================================================================== face-free pictures

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

    from .imaging import as_rgb_array

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


# =========================================================================== what the notebook shows


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
        """Both curves against the threshold, with the detector's setting and an optional false-alarm budget."""
        import matplotlib.pyplot as plt

        created = ax is None
        if created:
            fig, ax = plt.subplots(figsize=(7, 4))
        colours = {"with_mask": "#0072B2", "without_mask": "#D55E00"}
        for c, rate in self.found_rate.items():
            ax.plot(self.thresholds, 100 * rate, "o-", color=colours.get(c), label=f"found: {c} (n={self.counts.get(c, 0)})")
        ax.plot(self.thresholds, 100 * self.false_positive_rate, "s--", color="#455a64",
                label=f"false alarms on face-free pictures (n={self.counts.get('background', 0)})")
        ax.axvline(self.current, color="#9e9e9e", linestyle=":", label=f"FaceDetector() default ({self.current:.2f})")
        if budget is not None:
            ax.axhline(100 * budget, color="#ef6c00", linestyle="-.", label=f"false-alarm budget {100 * budget:.0f}%")
        ax.set_xlabel("ONet threshold of the second look")
        ax.set_ylabel("%")
        ax.set_ylim(-2, 102)
        ax.legend(fontsize=8, loc="center left")
        ax.grid(alpha=0.3)
        return ax.figure


def _second_look_scores(detector: FaceDetector, images: list[np.ndarray], floor: float) -> list[tuple[bool, list, list]]:
    """For each image: whether the first pass found a face, its detections as ``(box, score)``, and the
    second look's detections with its ONet threshold lowered to ``floor`` (only where the first found nothing)."""
    prepared = [detector.prepare(img, pad=detector._first_pass_pad(img)) for img in images]
    rows, _ = detector._run_batched([p[0] for p in prepared], detector.thresholds)
    out = []
    for img, (_, scale, border), r in zip(images, prepared, rows):
        h, w = img.shape[:2]
        first = detector._to_detections(r, scale, border, w, h, 1, [])
        out.append((bool(first), [(d.box, d.score) for d in first], []))
    again = [i for i, o in enumerate(out) if not o[0]] if detector.retry else []
    if again:
        prepared = [detector.prepare(images[i], pad=detector.retry_pad, fit_frame=True) for i in again]
        relaxed = (detector.retry_thresholds[0], detector.retry_thresholds[1], floor)
        rows, _ = detector._run_batched([p[0] for p in prepared], relaxed)
        for i, (_, scale, border), r in zip(again, prepared, rows):
            h, w = images[i].shape[:2]
            second = detector._to_detections(r, scale, border, w, h, 2, [])
            out[i] = (False, [], [(d.box, d.score) for d in second])
    return out


def threshold_tradeoff(
    dataset: Dataset,
    backgrounds: Sequence[tuple[str, np.ndarray]] | None = None,
    *,
    detector: FaceDetector | None = None,
    thresholds: Sequence[float] | None = None,
    min_iou: float = 0.3,
    progress: bool = True,
) -> TradeOff:
    """Measure what the second look's ONet threshold buys (faces found) and costs (false alarms).

    Each photo of ``dataset`` and each face-free picture of ``backgrounds`` (default
    :func:`background_images`) goes through the detector once, with the second look's ONet threshold
    at the lowest of ``thresholds``; the rates at every higher threshold follow from the scores. On
    class folders a photo counts as found when any face is detected; on annotated data a face counts
    when a detection overlaps it by ``min_iou``.
    """
    detector = detector or FaceDetector()
    thresholds = np.round(np.arange(0.5, 0.96, 0.05), 2) if thresholds is None else np.asarray(thresholds, dtype=float)
    floor = float(thresholds.min())
    backgrounds = background_images() if backgrounds is None else list(backgrounds)
    found = {c: np.zeros(len(thresholds)) for c in CLASS_NAMES}
    counts = {c: 0 for c in CLASS_NAMES}

    def hits(first_found, first, second, t):
        return first if first_found else [(b, s) for b, s in second if s >= t]

    records = list(dataset.images)
    chunk = 64
    for start in _progress(range(0, len(records), chunk), desc="Trade-off: photos", disable=None if progress else True):
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
    for start in _progress(range(0, len(pictures), chunk), desc="Trade-off: face-free pictures", disable=None if progress else True):
        for ff, first, second in _second_look_scores(detector, pictures[start : start + chunk], floor):
            for k, t in enumerate(thresholds):
                fp[k] += bool(hits(ff, first, second, t))
    counts["background"] = len(backgrounds)
    rates = {c: found[c] / counts[c] for c in CLASS_NAMES if counts[c]}
    return TradeOff(thresholds, rates, fp / max(1, len(backgrounds)), counts, detector.retry_thresholds[2])


def fallback_leak(crops: Crops) -> dict[str, dict[str, float]]:
    """How much "this crop came from the fallback" says about its label: a shortcut a classifier can learn.

    For each origin, the number of crops and the share of each class among them. When nearly every
    fallback crop is masked, a model can score well on those crops by recognising "a whole photo, not
    a face" instead of a mask.
    """
    out: dict[str, dict[str, float]] = {}
    for o in _ORIGINS:
        sel = crops.origin == o
        n = int(sel.sum())
        if not n:
            continue
        row: dict[str, float] = {"crops": n}
        for i, c in enumerate(crops.class_names):
            row[c] = float((crops.labels[sel] == i).mean())
        out[o] = row
    return out


def plot_detections(image, detections: Sequence[Detection] | DetectionResult, *, annotations: Sequence = (), ax=None, title: str | None = None):
    """Draw detections (boxes, scores and the five keypoints) and, dashed, any annotated boxes."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if isinstance(detections, DetectionResult):
        detections = detections.detections
    img = load_image(image)
    created = ax is None
    if created:
        fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(img)
    for box in annotations:
        xyxy = box.xyxy if hasattr(box, "xyxy") else tuple(box)
        colour = {"with_mask": "#0072B2", "without_mask": "#D55E00"}.get(getattr(box, "label", None), "#9e9e9e")
        ax.add_patch(Rectangle(xyxy[:2], xyxy[2] - xyxy[0], xyxy[3] - xyxy[1], fill=False, edgecolor=colour,
                               linestyle="--", linewidth=1.5))
    for d in detections:
        x1, y1, x2, y2 = d.box
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="#ffeb3b", linewidth=2))
        ax.text(x1, y1, f"{d.score:.2f}" + {1: "", 2: " (2nd look)", 3: " (close-up look)"}.get(d.attempt, ""), color="black", fontsize=7,
                va="bottom", bbox=dict(facecolor="#ffeb3b", edgecolor="none", pad=1), clip_on=True)
        xs, ys = zip(*(d.keypoints[k] for k in KEYPOINT_NAMES))
        ax.scatter(xs, ys, s=14, c=["#2196f3", "#2196f3", "#ff5722", "#9c27b0", "#9c27b0"], edgecolors="white", linewidths=0.5, zorder=3)
    ax.set_xlim(-0.5, img.shape[1] - 0.5)
    ax.set_ylim(img.shape[0] - 0.5, -0.5)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return ax.figure


def close_up_of(image, face: Detection, *, above: float = 0.8, beside: float = 0.6, width: int = 110) -> np.ndarray:
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


def plot_close_up_look(look: CloseUpLook, *, image=None, size: float = 1.9):
    """Draw a :class:`CloseUpLook`: every view as MTCNN saw it with its boxes and ONet scores, then the photo
    with the accepted box and its agreement (pass the photo as ``image`` for the last panel).

    >>> look = FaceDetector().close_up_look(photo)      # doctest: +SKIP
    >>> plot_close_up_look(look, image=photo)            # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = len(look.pictures) + (image is not None)
    fig, axes = plt.subplots(1, n, figsize=(size * n, size * 1.25), squeeze=False)
    for ax, view, picture, boxes, scores in zip(axes[0], look.views, look.pictures, look.view_boxes, look.view_scores):
        ax.imshow(picture)
        for (x1, y1, x2, y2), sc in zip(boxes, scores):
            colour = "#0072B2" if sc >= 0.8 else "#E69F00" if sc >= 0.5 else "#D55E00"
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=colour, lw=1.2))
            ax.text(x1, y1, f"{sc:.2f}", color="white", fontsize=6, va="bottom",
                    bbox=dict(facecolor=colour, edgecolor="none", pad=0.5))
        frame = f"frame {view.top:g}/{view.sides:g}/{view.bottom:g}" + (", mirrored" if view.mirror else "")
        ax.set_title(f"{frame}\n{view.side}px, best {scores.max() if len(scores) else 0:.2f}", fontsize=7)
        ax.set_axis_off()
    if image is not None:
        ax = axes[0][-1]
        ax.imshow(load_image(image))
        d = look.detection
        if d is not None:
            x1, y1, x2, y2 = d.box
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color="#1565c0", lw=2))
            ax.set_title(f"accepted: agreement {d.score:.2f}\n(needs {look.min_agreement:.2f})", fontsize=7)
        else:
            best = float(look.agreement.max()) if len(look.agreement) else 0.0
            ax.set_title(f"nothing accepted: best agreement {best:.2f}\n(needs {look.min_agreement:.2f})", fontsize=7)
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_gallery(crops: Crops, *, per_class: int = 8, seed: int = 0, size: float = 1.2):
    """A row of random crops per class, each titled by where it came from (detector score, annotation or fallback)."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    rows = [(i, c) for i, c in enumerate(crops.class_names) if (crops.labels == i).any()]
    if not rows:
        raise ValueError("there are no labelled crops to show; print(crops.report) says why.")
    fig, axes = plt.subplots(len(rows), per_class, figsize=(size * per_class, size * 1.25 * len(rows)), squeeze=False)
    for r, (i, c) in enumerate(rows):
        idx = np.flatnonzero(crops.labels == i)
        pick = rng.choice(idx, size=min(per_class, len(idx)), replace=False)
        for k, ax in enumerate(axes[r]):
            ax.set_axis_off()
            if k >= len(pick):
                continue
            j = pick[k]
            ax.imshow(crops.images[j])
            what = crops.origin[j]
            ax.set_title(f"{crops.scores[j]:.2f}" if what == "detector" else what, fontsize=7)
        axes[r][0].text(-0.1, 0.5, c, transform=axes[r][0].transAxes, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def plot_found_rates(reports: dict[str, CropReport], *, ax=None):
    """Bars of the detector's found rate per class for several runs (e.g. the paper's MTCNN and ours)."""
    import matplotlib.pyplot as plt

    created = ax is None
    if created:
        fig, ax = plt.subplots(figsize=(7, 3.6))
    names = list(reports)
    classes = list(CLASS_NAMES)
    width = 0.8 / max(1, len(names))
    palette = ["#90a4ae", "#1565c0", "#ef6c00", "#6a1b9a"]
    for j, name in enumerate(names):
        rates = reports[name].found_rate()
        values = [100 * rates.get(c, float("nan")) for c in classes]
        bars = ax.bar(np.arange(len(classes)) + (j - (len(names) - 1) / 2) * width, values, width,
                      label=name, color=palette[j % len(palette)])
        ax.bar_label(bars, labels=[f"{v:.0f}%" for v in values], fontsize=8, padding=2)
    ax.set_xticks(np.arange(len(classes)), classes)
    ax.set_ylabel("found by the detector (%)")
    ax.set_ylim(0, 110)
    ax.legend(fontsize=8, loc="lower right")
    return ax.figure


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
        from .download import get_dataset

        dataset = get_dataset(verbose=verbose)
    return crop_faces(dataset, verbose=verbose, **kwargs)
