"""The adversarial mask pattern (notebook 06): decoy faces placed by simulated annealing to flood a detector.

The experiment: copies of a face-like tile (a *decoy*) are placed on a canvas; each copy has a position,
a rotation and a scale. A search moves them around to maximise how many faces a detector finds on the
canvas. Printed on a mask, the decoys drown the wearer's real face in false detections.

The pieces, from the bottom up:

* **Detectors** behind one small interface (:class:`HogDetector` = dlib's HOG frontal face detector,
  the original's; :class:`MtcnnDetector` = the package's own), built by :func:`get_detector`. Each has
  ``detect(image) -> Detections`` (boxes xyxy int + scores) and ``candidates(image)``, which also
  returns the near misses below the detection threshold.
* **Decoys** (:func:`make_decoy`): ``"hog"`` (the HOG picture of a real face, what the detector's
  features look like), ``"photo"`` (the face itself) or ``"cartoon"`` (a drawn face).
* **The search space** (:class:`PatternSpace`): canvas size, decoy, number of copies and the ranges of
  rotation and scale. A state is an ``(n_copies, 4)`` array of ``x, y, rotation, scale``;
  ``space.render(state)`` draws it in memory (OpenCV affine warps, never through a file), always
  inside the canvas.
* **Fitness** (:func:`count_fitness`, :func:`smooth_fitness`): the original counted detections; the
  smooth version adds a bonus below one detection for the windows the detector *nearly* calls faces
  (their sub-threshold scores), so the search feels a slope where the count is flat.
* **The search** (:func:`search_pattern`): simulated annealing (:mod:`maskedu.anneal`, written out by
  hand) or random search with the same budget.
* **Wearing it** (:func:`wear_pattern`, :func:`evaluate_worn`): the found pattern is warped onto the
  mask region of a face (from MTCNN's landmarks) and the detectors are run again, against a plain mask.

>>> space = PatternSpace(decoy="cartoon", n_copies=3)
>>> state = space.random_state(seed=0)
>>> space.render(state).shape
(320, 480, 3)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from .anneal import (
    AnnealResult,
    IterationInfo,
    Schedule,
    make_schedule,
    random_search,
    simulated_annealing,
)
from .common import check_choice, check_int, check_number
from .crop.faces import Face
from .imaging import as_rgb_array, iou_matrix

__all__ = [
    "Detections",
    "HogDetector",
    "MtcnnDetector",
    "DETECTORS",
    "get_detector",
    "Decoy",
    "DECOYS",
    "make_decoy",
    "hog_picture",
    "demo_face",
    "PatternSpace",
    "FITNESSES",
    "count_fitness",
    "smooth_fitness",
    "make_fitness",
    "PatternResult",
    "search_pattern",
    "simulated_annealing",
    "random_search",
    "draw_boxes",
    "FaceLandmarks",
    "Face",
    "find_faces",
    "mask_polygon",
    "wear_pattern",
    "wear_plain_mask",
    "closeup",
    "WornFace",
    "WornReport",
    "evaluate_worn",
]


# =========================================================================== detectors


@dataclass(frozen=True)
class Detections:
    """What a detector found in one picture, as arrays (the fitness functions score thousands of these):
    ``boxes`` int64 (N, 4) as x1, y1, x2, y2 (clipped to the image), ``scores`` (N,), and ``keypoints``
    MTCNN's five landmarks per face (empty dicts for HOG). :meth:`faces` gives them as
    :class:`maskedu.crop.Face` objects, the package's one face type.
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: tuple = ()

    def __len__(self) -> int:
        return len(self.scores)

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4), np.int64), np.zeros(0, np.float64), ())

    def faces(self) -> list[Face]:
        """The detections as the package's face type, one :class:`maskedu.crop.Face` each."""
        keypoints = self.keypoints or tuple({} for _ in range(len(self)))
        return [Face(box=tuple(int(v) for v in b), score=float(sc), keypoints=dict(k))
                for b, sc, k in zip(self.boxes, self.scores, keypoints)]

    def above(self, threshold: float) -> "Detections":
        """Only the detections scoring at least ``threshold``."""
        keep = self.scores >= threshold
        return Detections(self.boxes[keep], self.scores[keep], tuple(k for k, m in zip(self.keypoints, keep) if m))


def _clip_boxes(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Clip xyxy boxes to the image; return them with a mask of the boxes that are still non-empty."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    boxes = np.round(boxes).astype(np.int64)
    ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes, ok


def _import_dlib():
    try:
        import dlib
    except ImportError as exc:
        raise ImportError(
            "dlib is not installed, so the HOG face detector is unavailable. Install the prebuilt wheels with "
            "`pip install dlib-bin` (no compiler needed), or use get_detector('mtcnn')."
        ) from exc
    return dlib


class HogDetector:
    """dlib's HOG + linear SVM frontal face detector (the one the original experiment attacked).

    ``upsample`` doubles the image that many times first (finds faces smaller than about 80 px, at
    about 4x the cost per step). With ``grey=True`` (the default) dlib is given the luminance, which
    is a third faster than letting it take the strongest gradient over the three colour channels and
    finds the same faces. A greyscale (H, W) uint8 image is also accepted as it is. A detection is a window scoring at least ``threshold`` (dlib's own
    default is 0); :meth:`candidates` also returns windows down to ``floor`` (dlib's ``adjust_threshold``),
    the near misses the smooth fitness climbs on.

    >>> det = HogDetector()
    >>> from skimage import data
    >>> len(det.detect(data.astronaut()))
    1
    """

    name = "hog"

    def __init__(self, upsample: int = 0, *, threshold: float = 0.0, floor: float = -1.0, grey: bool = True):
        self.upsample = check_int("upsample", upsample, minimum=0, maximum=3)
        self.grey = bool(grey)
        self.threshold = check_number("threshold", threshold)
        self.floor = check_number("floor", floor, maximum=self.threshold)
        self._detector = _hog_detector()

    def candidates(self, image: np.ndarray) -> Detections:
        """Every window scoring at least ``floor``, best first."""
        image = np.asarray(image)
        if not (image.ndim == 2 and image.dtype == np.uint8):
            image = as_rgb_array(image)
            if self.grey:
                image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        rects, scores, _ = self._detector.run(image, self.upsample, self.floor)
        if not rects:
            return Detections.empty()
        boxes = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects])
        boxes, ok = _clip_boxes(boxes, image.shape[1], image.shape[0])
        scores = np.asarray(scores, dtype=np.float64)[ok]
        order = np.argsort(-scores, kind="stable")
        return Detections(boxes[ok][order], scores[order], tuple({} for _ in order))

    def detect(self, image: np.ndarray) -> Detections:
        """The faces: windows scoring at least ``threshold``."""
        return self.candidates(image).above(self.threshold)

    def __repr__(self) -> str:
        return f"HogDetector(upsample={self.upsample}, threshold={self.threshold}, floor={self.floor}, grey={self.grey})"


@lru_cache(maxsize=1)
def _hog_detector():
    return _import_dlib().get_frontal_face_detector()


@lru_cache(maxsize=4)
def _face_detector(floor: float, min_face_size: int):
    """The package's MTCNN wrapper (:class:`maskedu.crop.FaceDetector`), one per setting, reused."""
    from .crop import FaceDetector

    # No border, no second look: the canvas is scored exactly as it is drawn.
    return FaceDetector(thresholds=(0.6, 0.7, floor), min_face_size=min_face_size, retry=False, pad=0.0)


class MtcnnDetector:
    """MTCNN (the package's face detector, notebook 02), with the same interface as :class:`HogDetector`.

    A detection is a face whose final-stage confidence is at least ``threshold``; :meth:`candidates`
    lowers the final stage's cut-off to ``floor`` to see the near misses. It runs through
    :class:`maskedu.crop.FaceDetector`, whose one MTCNN instance is shared by every detector with the
    same settings (building it costs a few seconds).
    """

    name = "mtcnn"

    def __init__(self, *, threshold: float = 0.9, floor: float = 0.5, min_face_size: int = 20):
        self.threshold = check_number("threshold", threshold, minimum=0.0, maximum=1.0)
        self.floor = check_number("floor", floor, minimum=0.0, maximum=self.threshold)
        self.min_face_size = check_int("min_face_size", min_face_size, minimum=12)
        self._detector = _face_detector(self.floor, self.min_face_size)

    def candidates(self, image: np.ndarray) -> Detections:
        image = as_rgb_array(image)
        faces = [f for f in self._detector.detect(image) if f.score >= self.floor]
        if not faces:
            return Detections.empty()
        boxes, ok = _clip_boxes(np.array([f.box for f in faces]), image.shape[1], image.shape[0])
        scores = np.array([float(f.score) for f in faces])
        keypoints = [{k: (float(v[0]), float(v[1])) for k, v in f.keypoints.items()} for f in faces]
        idx = [i for i in np.argsort(-scores, kind="stable") if ok[i]]
        return Detections(boxes[idx], scores[idx], tuple(keypoints[i] for i in idx))

    def detect(self, image: np.ndarray) -> Detections:
        return self.candidates(image).above(self.threshold)

    def __repr__(self) -> str:
        return f"MtcnnDetector(threshold={self.threshold}, floor={self.floor})"


DETECTORS = {"hog": HogDetector, "mtcnn": MtcnnDetector}


def get_detector(name: str | HogDetector | MtcnnDetector = "hog", **kwargs: Any):
    """A detector by name: ``"hog"`` (dlib, the original's target) or ``"mtcnn"``; keyword args go to it.

    A detector object is returned as it is.
    """
    if isinstance(name, (HogDetector, MtcnnDetector)):
        return name
    if not isinstance(name, str) or name.lower() not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of {sorted(DETECTORS)} (for example get_detector('hog')).")
    return DETECTORS[name.lower()](**kwargs)


# =========================================================================== decoys


@dataclass(frozen=True)
class Decoy:
    """A face-like tile: ``rgb`` uint8 (h, w, 3) and ``alpha`` float32 (h, w) in [0, 1] (where it is opaque)."""

    name: str
    rgb: np.ndarray
    alpha: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.rgb.shape[1], self.rgb.shape[0]

    def preview(self, background: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
        """The tile composited on a plain background, as an RGB uint8 image."""
        a = self.alpha[..., None]
        return (self.rgb * a + np.array(background, np.float32) * (1 - a)).round().astype(np.uint8)


DECOYS = ("hog", "photo", "cartoon")
_FACES = ("astronaut", "grace_hopper")


@lru_cache(maxsize=2)
def _face_image(name: str) -> np.ndarray:
    if name == "astronaut":
        from skimage import data

        return data.astronaut()
    from matplotlib import cbook

    from .imaging import load_image

    return load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


# Face boxes of the two shipped photos (as MTCNN finds them), so building a decoy needs no detector run.
_FACE_BOXES = {"astronaut": (182, 64, 265, 171), "grace_hopper": (178, 110, 351, 330)}


def demo_face(name: str = "astronaut") -> np.ndarray:
    """A face photo that ships with the installed packages: ``"astronaut"`` (scikit-image's Eileen
    Collins) or ``"grace_hopper"`` (matplotlib's sample), as RGB uint8. A fresh copy every call."""
    check_choice("face", name, _FACES)
    return _face_image(name).copy()


def _face_crop(face: str, margin: float) -> np.ndarray:
    img = _face_image(face)
    x1, y1, x2, y2 = _FACE_BOXES[face]
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half = max(x2 - x1, y2 - y1) * (0.5 + margin)
    h, w = img.shape[:2]
    a, b = int(max(cx - half, 0)), int(max(cy - half, 0))
    c, d = int(min(cx + half, w)), int(min(cy + half, h))
    return img[b:d, a:c]


def _ellipse_alpha(size: int, feather: float = 0.06) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2
    r = np.sqrt(((xx - c) / (0.46 * size)) ** 2 + ((yy - c) / (0.5 * size)) ** 2)
    return np.clip((1 - r) / feather, 0, 1).astype(np.float32)


def hog_picture(image: np.ndarray, cell: int = 12, orientations: int = 9) -> np.ndarray:
    """How HOG sees an image: scikit-image's ``hog(..., visualize=True)`` picture, scaled to [0, 1].

    The image is cut into ``cell`` x ``cell`` pixel cells; in each, a star of lines shows how strong the
    edges are in each of ``orientations`` directions. dlib's face detector compares such a grid (of its
    own, 8-pixel cells) with a template of a frontal face.
    """
    from skimage.feature import hog

    grey = cv2.cvtColor(as_rgb_array(image), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    cell = check_int("cell", cell, minimum=2)
    _, picture = hog(grey, orientations=orientations, pixels_per_cell=(cell, cell), cells_per_block=(2, 2), visualize=True)
    return (picture / max(float(picture.max()), 1e-9)).astype(np.float32)


def make_decoy(kind: str = "hog", size: int = 140, *, face: str = "astronaut") -> Decoy:
    """Build a decoy tile ``size`` pixels square.

    * ``"hog"``: scikit-image's HOG picture of a real face (``skimage.feature.hog(..., visualize=True)``:
      in each 12 x 12 cell a star of lines, one per gradient direction, as bright as that direction is
      strong), lines thickened to survive printing, transparent between the lines. This is what the HOG
      detector "sees", stripped of everything else.
    * ``"photo"``: the face photo itself, cut out in an oval.
    * ``"cartoon"``: a drawn face: oval head, two eyes, brows, nose and mouth.

    ``face`` picks the photo: ``"astronaut"`` or ``"grace_hopper"`` (both ship with the packages).
    """
    check_choice("decoy", kind, DECOYS)
    size = check_int("size", size, minimum=32, maximum=1024)
    check_choice("face", face, _FACES)
    if kind == "hog":
        crop = cv2.resize(_face_crop(face, margin=0.3), (192, 192), interpolation=cv2.INTER_AREA)
        picture = cv2.dilate(hog_picture(crop, cell=12), np.ones((2, 2), np.uint8))
        alpha = np.clip(cv2.resize(picture, (size, size), interpolation=cv2.INTER_AREA), 0, 1).astype(np.float32)
        rgb = np.full((size, size, 3), 255, np.uint8)  # white lines; alpha carries the picture
        return Decoy("hog", rgb, alpha)
    if kind == "photo":
        crop = cv2.resize(_face_crop(face, margin=0.2), (size, size), interpolation=cv2.INTER_AREA)
        return Decoy("photo", crop, _ellipse_alpha(size))
    # cartoon: dark features on a skin-toned oval
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = (236, 200, 170)
    s = size / 100.0
    ink = (40, 30, 30)
    lw = max(1, int(round(3 * s)))
    for ex in (33, 67):
        cv2.ellipse(img, (int(ex * s), int(42 * s)), (int(9 * s), int(5 * s)), 0, 0, 360, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(img, (int(ex * s), int(42 * s)), int(4 * s), ink, -1, cv2.LINE_AA)
        cv2.line(img, (int((ex - 11) * s), int(31 * s)), (int((ex + 11) * s), int(30 * s)), ink, lw, cv2.LINE_AA)
    cv2.line(img, (int(50 * s), int(45 * s)), (int(46 * s), int(62 * s)), ink, lw, cv2.LINE_AA)
    cv2.line(img, (int(46 * s), int(62 * s)), (int(54 * s), int(63 * s)), ink, lw, cv2.LINE_AA)
    cv2.ellipse(img, (int(50 * s), int(74 * s)), (int(15 * s), int(6 * s)), 0, 0, 180, ink, lw, cv2.LINE_AA)
    return Decoy("cartoon", img, _ellipse_alpha(size))


# =========================================================================== the search space


@dataclass
class PatternSpace:
    """Where the decoys may go: a ``canvas`` (width, height), the decoy tile and ``n_copies`` of it.

    A state is a float array of shape ``(n_copies, 4)``: the centre ``x, y`` in pixels, the ``rotation``
    in degrees (counter-clockwise) and the ``scale`` (1 = the tile's own size). Every state is kept
    inside ``rotation_range`` x ``scale_range`` and with every copy entirely on the canvas
    (:meth:`clip`). :meth:`neighbour` moves one copy a little; :meth:`render` draws a state.

    >>> space = PatternSpace(n_copies=6)        # the original's 6 copies x (x, y, rotation, scale)
    >>> space.random_state(seed=1).shape
    (6, 4)
    """

    decoy: Decoy | str = "hog"
    n_copies: int = 6
    canvas: tuple[int, int] = (480, 320)
    rotation_range: tuple[float, float] = (-45.0, 45.0)
    scale_range: tuple[float, float] = (0.6, 1.4)
    background: tuple[int, int, int] = (0, 0, 0)
    step: tuple[float, float, float] = (0.08, 10.0, 0.1)  # position (fraction of canvas), degrees, scale
    tile_size: int = 140

    PARAMS = ("x", "y", "rotation", "scale")

    def __post_init__(self) -> None:
        if isinstance(self.decoy, str):
            self.decoy = make_decoy(self.decoy, self.tile_size)
        elif not isinstance(self.decoy, Decoy):
            raise TypeError(f"decoy must be one of {DECOYS} or a Decoy from make_decoy(), got {self.decoy!r}.")
        self.n_copies = check_int("n_copies (the number of decoy copies)", self.n_copies, minimum=1, maximum=64)
        if len(self.canvas) != 2:
            raise ValueError(f"canvas must be (width, height), got {self.canvas!r}.")
        self.canvas = (check_int("canvas width", self.canvas[0], minimum=16), check_int("canvas height", self.canvas[1], minimum=16))
        r0, r1 = (check_number("rotation_range", v, minimum=-180, maximum=180) for v in self.rotation_range)
        s0, s1 = (check_number("scale_range", v, minimum=0.0, strict_minimum=True) for v in self.scale_range)
        if r0 > r1 or s0 > s1:
            raise ValueError(f"ranges must be (low, high): rotation_range={self.rotation_range}, scale_range={self.scale_range}.")
        self.rotation_range, self.scale_range = (r0, r1), (s0, s1)
        if len(self.background) != 3:
            raise ValueError(f"background must be an RGB triple, got {self.background!r}.")
        w, h = self.canvas
        ew, eh = self._extent(np.linspace(r0, r1, 181), s1)
        if ew.max() > w or eh.max() > h:
            raise ValueError(
                f"a {self.decoy.size[0]}x{self.decoy.size[1]} px decoy at scale {s1} and rotations {self.rotation_range} "
                f"needs up to {ew.max():.0f}x{eh.max():.0f} px, more than the {w}x{h} canvas; "
                "lower scale_range, narrow rotation_range or enlarge the canvas."
            )
        tile = self.decoy.rgb.astype(np.float32) * self.decoy.alpha[..., None]
        self._premultiplied = np.dstack([tile, self.decoy.alpha * 255.0]).astype(np.float32)
        self._blank = np.empty((h, w, 3), np.float32)
        for c in range(3):
            self._blank[:, :, c] = float(self.background[c])

    # ------------------------------------------------------------------ geometry

    def _extent(self, rotation, scale):
        """Width and height of the axis-aligned box around a rotated, scaled tile."""
        tw, th = self.decoy.size
        rad = np.deg2rad(rotation)
        c, s = np.abs(np.cos(rad)), np.abs(np.sin(rad))
        return scale * (tw * c + th * s), scale * (tw * s + th * c)

    @property
    def lower(self) -> np.ndarray:
        return np.array([0.0, 0.0, self.rotation_range[0], self.scale_range[0]])

    @property
    def upper(self) -> np.ndarray:
        return np.array([float(self.canvas[0]), float(self.canvas[1]), self.rotation_range[1], self.scale_range[1]])

    def clip(self, state: np.ndarray) -> np.ndarray:
        """A copy of ``state`` with rotation and scale inside their ranges and every copy fully on the canvas."""
        state = self._check_state(state).copy()
        state[:, 2] = np.clip(state[:, 2], *self.rotation_range)
        state[:, 3] = np.clip(state[:, 3], *self.scale_range)
        ew, eh = self._extent(state[:, 2], state[:, 3])
        w, h = self.canvas
        state[:, 0] = np.clip(state[:, 0], ew / 2, w - ew / 2)
        state[:, 1] = np.clip(state[:, 1], eh / 2, h - eh / 2)
        return state

    def _check_state(self, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (self.n_copies, 4):
            raise ValueError(f"a state must have shape (n_copies, 4) = ({self.n_copies}, 4) for x, y, rotation, scale; got {state.shape}.")
        if not np.isfinite(state).all():
            raise ValueError("a state must hold finite numbers (found NaN or infinity).")
        return state

    # ------------------------------------------------------------------ moves

    def random_state(self, rng: np.random.Generator | None = None, *, seed: int | None = None) -> np.ndarray:
        """A uniformly random state (every copy somewhere on the canvas)."""
        rng = rng if rng is not None else np.random.default_rng(seed)
        return self.clip(rng.uniform(self.lower, self.upper, size=(self.n_copies, 4)))

    def neighbour(self, state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Move one randomly chosen copy a little: Gaussian steps in position, rotation and scale."""
        new = np.array(state, dtype=np.float64, copy=True)
        i = int(rng.integers(self.n_copies))
        pos, rot, scl = self.step
        new[i] += rng.normal(0.0, 1.0, 4) * np.array([pos * self.canvas[0], pos * self.canvas[1], rot, scl])
        return self.clip(new)

    # ------------------------------------------------------------------ drawing

    def render(self, state: np.ndarray) -> np.ndarray:
        """Draw a state as an RGB uint8 image of the canvas size (in memory; deterministic).

        Copies are drawn in order, each over the ones before, alpha-blended. Only the pixels each copy
        covers are warped, so a render costs a fraction of a millisecond per copy.
        """
        state = self._check_state(state)
        w, h = self.canvas
        out = self._blank.copy()
        tw, th = self.decoy.size
        for x, y, rot, scale in state:
            m = cv2.getRotationMatrix2D((tw / 2.0, th / 2.0), float(rot), float(scale))
            m[:, 2] += (x - tw / 2.0, y - th / 2.0)
            ew, eh = self._extent(rot, scale)
            x0, y0 = max(int(math.floor(x - ew / 2)) - 1, 0), max(int(math.floor(y - eh / 2)) - 1, 0)
            x1, y1 = min(int(math.ceil(x + ew / 2)) + 1, w), min(int(math.ceil(y + eh / 2)) + 1, h)
            if x1 <= x0 or y1 <= y0:
                continue
            m[:, 2] -= (x0, y0)
            warped = cv2.warpAffine(self._premultiplied, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
            # out = out * (1 - alpha) + premultiplied colour, with alpha spread over 3 channels (numpy
            # broadcasting a (h, w, 1) array is an order of magnitude slower than this)
            keep = cv2.cvtColor(255.0 - warped[:, :, 3], cv2.COLOR_GRAY2RGB)
            roi = out[y0:y1, x0:x1]
            roi *= keep * (1.0 / 255.0)
            roi += cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB)
        return cv2.convertScaleAbs(out)  # round and saturate to uint8

    def describe(self, state: np.ndarray) -> str:
        """The state as a small table, one copy per line."""
        state = self._check_state(state)
        rows = [f"copy {i}: x={x:6.1f}  y={y:6.1f}  rotation={r:6.1f}°  scale={s:4.2f}" for i, (x, y, r, s) in enumerate(state)]
        return "\n".join(rows)


# =========================================================================== fitness


def count_fitness(image: np.ndarray, detector) -> float:
    """The original's fitness: how many faces the detector finds."""
    return float(len(detector.detect(image)))


def smooth_fitness(image: np.ndarray, detector, *, top: int = 10) -> float:
    """Detections, plus a bonus below 1 so that "almost a face" scores more than "nothing".

    ``count + mean margin of the best `top` near misses``: every window the detector scores between its
    ``floor`` and its ``threshold`` gets a margin in [0, 1) (0 at the floor, close to 1 just under the
    threshold); the bonus is the sum of the ``top`` largest margins divided by ``top``, so it never reaches
    1 and one more detection always beats any bonus. The search still maximises the count, but where the
    count is flat the bonus tells it which copies are nearly faces, and which way is up.

    (A variant that also rewarded the scores of the detected faces did worse in
    ``benchmarks/pattern_search.py``: it made the search fuss over faces it already had.)
    """
    top = check_int("top", top, minimum=1)
    found = detector.candidates(image)
    hits = found.scores >= detector.threshold
    count = int(hits.sum())
    near = found.scores[~hits]
    if not near.size:
        return float(count)
    margins = np.clip((near - detector.floor) / (detector.threshold - detector.floor + 1e-12), 0.0, 0.999)
    return count + float(np.sort(margins)[::-1][:top].sum()) / top


FITNESSES = {"count": count_fitness, "smooth": smooth_fitness}


def make_fitness(space: PatternSpace, detector, kind: str = "smooth") -> Callable[[np.ndarray], float]:
    """``state -> fitness``: render the state in memory and score it with ``detector``."""
    check_choice("fitness", kind, FITNESSES)
    score = FITNESSES[kind]
    detector = get_detector(detector)

    def fitness(state: np.ndarray) -> float:
        return score(space.render(state), detector)

    return fitness


# =========================================================================== the search


@dataclass
class PatternResult:
    """A found pattern: the best state, its picture, the faces the detector finds on it, and the search."""

    space: PatternSpace
    detector: Any
    fitness: str
    method: str
    best_state: np.ndarray
    image: np.ndarray
    detections: Detections
    search: AnnealResult
    seed: int | None = None
    conditions: Any = None  # the maskedu.worn.WearConditions it was searched over (None: the flat canvas)
    goal: str = "flood"

    @property
    def detector_evaluations(self) -> int:
        """Detector runs the search spent: one per candidate, times the wear conditions when it had them."""
        return self.search.n_evaluations * (len(self.conditions) if self.conditions is not None else 1)

    @property
    def n_detections(self) -> int:
        return len(self.detections)

    @property
    def history(self):
        return self.search.history

    def __repr__(self) -> str:
        return (f"PatternResult({self.method}, fitness={self.fitness!r}, detector={self.detector.name!r}, "
                f"copies={self.space.n_copies}, detections={self.n_detections}, best_fitness={self.search.best_fitness:.3f}, "
                f"iterations={len(self.search.history)}, seconds={self.search.seconds:.1f})")


METHODS = ("annealing", "random")


def search_pattern(
    detector: str | Any = "hog",
    decoy: str | Decoy = "hog",
    n_copies: int = 6,
    *,
    fitness: str = "smooth",
    method: str = "annealing",
    schedule: str | Schedule = "exponential",
    t0: float = 1.0,
    max_iters: int = 1000,
    max_attempts: int | None = None,
    seed: int | None = 0,
    space: PatternSpace | None = None,
    on_iteration: Callable[[IterationInfo], bool | None] | None = None,
    conditions: Any = None,
    goal: str = "flood",
    **space_kwargs: Any,
) -> PatternResult:
    """Search a decoy pattern that makes ``detector`` see as many faces as possible.

    One line does the original experiment (6 copies, 1000 iterations, exponential cooling, HOG)::

        result = search_pattern("hog", "hog", 6)
        plt.imshow(draw_boxes(result.image, result.detections.boxes))

    ``fitness`` is ``"count"`` (the original's) or ``"smooth"``; ``method`` is ``"annealing"`` or
    ``"random"`` (the same number of fitness evaluations, drawn independently). ``schedule`` and ``t0``
    (the initial temperature) shape the cooling; ``max_attempts`` stops after that many rejections in a
    row, like the original. ``on_iteration`` receives an :class:`~maskedu.anneal.IterationInfo` each
    iteration (return True to stop). Extra keyword arguments build the :class:`PatternSpace`; pass a
    ready ``space`` instead to reuse one (it then decides the decoy and the number of copies).

    With ``conditions`` (a :class:`maskedu.worn.WearConditions`), each candidate is worn under every
    condition and scored by its mean effect (:func:`maskedu.worn.worn_fitness`, ``goal`` "flood" or
    "evade"): expectation over transformations; :func:`maskedu.worn.search_worn_pattern` sets the
    iterations from a budget of detector evaluations.
    """
    check_choice("method", method, METHODS)
    check_choice("fitness", fitness, FITNESSES)
    t0 = check_number("t0 (the initial temperature)", t0, minimum=0.0, strict_minimum=True)
    max_iters = check_int("max_iters", max_iters, minimum=1)
    detector = get_detector(detector)
    if space is None:
        space = PatternSpace(decoy=decoy, n_copies=n_copies, **space_kwargs)
    if conditions is not None:
        from .worn import worn_fitness

        score = worn_fitness(space, detector, conditions, kind=fitness, goal=goal)
    else:
        check_choice("goal", goal, ("flood",))  # on a flat canvas there is no wearer to hide
        score = make_fitness(space, detector, fitness)
    rng = np.random.default_rng(seed)
    if method == "annealing":
        if isinstance(schedule, str):
            schedule = make_schedule(schedule, t0, max_iters=max_iters)
        initial = space.random_state(rng)
        result = simulated_annealing(score, initial, space.neighbour, schedule=schedule, max_iters=max_iters,
                                     max_attempts=max_attempts, seed=rng, on_iteration=on_iteration)
    else:
        result = random_search(score, space.random_state, max_iters=max_iters, seed=rng, on_iteration=on_iteration)
    image = space.render(result.best_state)
    return PatternResult(space, detector, fitness, method, result.best_state, image, detector.detect(image), result, seed,
                         conditions, goal)


# =========================================================================== drawing


def draw_boxes(image: np.ndarray, boxes: np.ndarray, *, color: tuple[int, int, int] = (0, 255, 0), scores: Sequence[float] | None = None,
               thickness: int | None = None) -> np.ndarray:
    """A copy of ``image`` with xyxy ``boxes`` burnt into its pixels (and their scores, when given).

    An array, for image grids and widgets that show arrays; to draw boxes on a matplotlib figure, use
    :func:`maskedu.plotting.show_boxes`, the package's box drawer.
    """
    out = as_rgb_array(image).copy()
    thickness = thickness or max(2, int(round(max(out.shape[:2]) / 250)))
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, dtype=np.int64).reshape(-1, 4)):
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2) - 1, int(y2) - 1), color, thickness, cv2.LINE_AA)
        if scores is not None:
            cv2.putText(out, f"{float(scores[i]):.2f}", (int(x1) + 2, max(int(y1) - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.4 * thickness, color, max(1, thickness // 2), cv2.LINE_AA)
    return out


# =========================================================================== wearing the pattern


#: A face with its landmarks: the package's one face type (:class:`maskedu.crop.Face`; its ``left_eye`` ...
#: ``mouth_right`` are in image-left, image-right order when made by :meth:`~maskedu.crop.Face.from_keypoints`).
#: The name is kept for code written before the face types were merged.
FaceLandmarks = Face


def find_faces(image: np.ndarray, *, min_confidence: float = 0.9) -> list[Face]:
    """Faces and their landmarks, by MTCNN (largest first), eyes and mouth corners in image-left,
    image-right order (:meth:`maskedu.crop.Face.from_keypoints`)."""
    found = MtcnnDetector(threshold=min_confidence, floor=min_confidence).detect(image)
    faces = [Face.from_keypoints(b, k, s) for b, k, s in zip(found.boxes, found.keypoints, found.scores)]
    return sorted(faces, key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))


def _mask_frame(face: Face):
    """The face's own axes: origin between the eyes, ``right`` along the eyes, ``down`` towards the chin."""
    le, re = np.array(face.left_eye), np.array(face.right_eye)
    mid = (le + re) / 2
    d = float(np.linalg.norm(re - le))
    if d < 2:
        raise ValueError("the eyes are less than 2 px apart; the face is too small to wear a pattern.")
    right = (re - le) / d
    down = np.array([-right[1], right[0]])
    return mid, right, down, d


def mask_polygon(face: Face) -> np.ndarray:
    """The mask's outline on a face (float (6, 2) x, y points), from the landmarks.

    It spans from halfway between the eyes and the nose tip down past the mouth to the chin, a little
    wider than the eyes at the top and narrower at the chin, turning with the head.
    """
    top, bottom, half_top, half_bottom, mid, right, down = _mask_geometry(face)
    pts = [(-half_top, top), (half_top, top), (half_top * 0.95, (top + bottom) / 2), (half_bottom, bottom),
           (-half_bottom, bottom), (-half_top * 0.95, (top + bottom) / 2)]
    return np.array([mid + u * right + v * down for u, v in pts], dtype=np.float64)


def _mask_geometry(face: Face):
    mid, right, down, d = _mask_frame(face)
    nose = float((np.array(face.nose) - mid) @ down)
    mouth = float(((np.array(face.mouth_left) + np.array(face.mouth_right)) / 2 - mid) @ down)
    nose, mouth = max(nose, 0.3 * d), max(mouth, 0.6 * d)
    top = 0.5 * nose
    bottom = mouth + max(mouth - nose, 0.3 * d) + 0.45 * d
    return top, bottom, 1.0 * d, 0.7 * d, mid, right, down


def _mask_region(shape, face: Face) -> np.ndarray:
    region = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(region, [np.round(mask_polygon(face) * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return region.astype(np.float32) / 255.0


def wear_plain_mask(image: np.ndarray, face: Face, color: tuple[int, int, int] = (160, 190, 220)) -> np.ndarray:
    """A copy of ``image`` with a plain mask of ``color`` (surgical blue by default) over the face's mask region."""
    image = as_rgb_array(image)
    a = _mask_region(image.shape, face)[..., None]
    return (image * (1 - a) + np.array(color, np.float32) * a).round().astype(np.uint8)


def wear_pattern(image: np.ndarray, pattern: np.ndarray, face: Face) -> np.ndarray:
    """A copy of ``image`` with ``pattern`` (an RGB picture, e.g. ``result.image``) printed on the face's mask.

    The pattern's rectangle is mapped onto the mask's bounding rectangle in the face's own axes (so it
    turns with the head) and cut to the mask's outline.
    """
    image = as_rgb_array(image)
    pattern = as_rgb_array(pattern)
    top, bottom, half_top, _, mid, right, down = _mask_geometry(face)
    ph, pw = pattern.shape[:2]
    src = np.float32([[0, 0], [pw, 0], [0, ph]])
    dst = np.float32([mid - half_top * right + top * down, mid + half_top * right + top * down, mid - half_top * right + bottom * down])
    m = cv2.getAffineTransform(src, dst)
    printed = cv2.warpAffine(pattern, m, (image.shape[1], image.shape[0]), flags=cv2.INTER_AREA if pw > 2 * half_top else cv2.INTER_LINEAR)
    a = _mask_region(image.shape, face)[..., None]
    return (image * (1 - a) + printed * a).round().astype(np.uint8)


def closeup(image: np.ndarray, face: Face, *, face_width: int = 450, margin: float = 0.5) -> tuple[np.ndarray, Face]:
    """Crop around a face (``margin`` of its width on each side) and resize so the face is ``face_width`` px wide.

    A mask seen from across the room is a few pixels of pattern; a close-up is where decoys can work,
    so the wearing experiment looks at faces this size. Returns the picture and the moved landmarks.
    """
    image = as_rgb_array(image)
    face_width = check_int("face_width", face_width, minimum=40, maximum=2000)
    x1, y1, x2, y2 = face.box
    fw, fh = max(x2 - x1, 1), max(y2 - y1, 1)
    h, w = image.shape[:2]
    a, b = int(max(x1 - margin * fw, 0)), int(max(y1 - margin * fh, 0))
    c, d = int(min(x2 + margin * fw, w)), int(min(y2 + margin * fh, h))
    factor = face_width / fw
    crop = image[b:d, a:c]
    size = (max(int(round(crop.shape[1] * factor)), 1), max(int(round(crop.shape[0] * factor)), 1))
    resized = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)
    return resized, face.scaled(factor, (a, b))


@dataclass(frozen=True)
class WornFace:
    """One face wearing a plain mask and the pattern: detections and what they mean."""

    plain: np.ndarray
    patterned: np.ndarray
    face: Face
    plain_detections: Detections
    pattern_detections: Detections
    plain_face_found: bool
    pattern_face_found: bool
    plain_decoys: int
    pattern_decoys: int


@dataclass
class WornReport:
    """The pattern worn on several faces, against a plain mask on the same faces, for one detector."""

    detector: str
    faces: list[WornFace] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def decoys_per_image(self) -> tuple[float, float]:
        """Mean false detections per image: (plain mask, pattern)."""
        if not self.faces:
            return (float("nan"), float("nan"))
        return (float(np.mean([f.plain_decoys for f in self.faces])), float(np.mean([f.pattern_decoys for f in self.faces])))

    @property
    def face_found_rate(self) -> tuple[float, float]:
        """Share of images where the real face is still found: (plain mask, pattern)."""
        if not self.faces:
            return (float("nan"), float("nan"))
        return (float(np.mean([f.plain_face_found for f in self.faces])), float(np.mean([f.pattern_face_found for f in self.faces])))

    def table(self) -> str:
        (pd, qd), (pf, qf) = self.decoys_per_image, self.face_found_rate
        return "\n".join([
            f"detector {self.detector} on {len(self.faces)} faces      plain mask   pattern",
            f"  decoy detections per image   {pd:10.2f}   {qd:7.2f}",
            f"  real face still found        {pf:10.0%}   {qf:7.0%}",
        ])

    def __str__(self) -> str:
        return self.table()


def _split(found: Detections, face_box, iou_threshold: float) -> tuple[bool, int]:
    if not len(found):
        return False, 0
    overlaps = iou_matrix(found.boxes, np.array([face_box]))[:, 0]
    real = overlaps >= iou_threshold
    return bool(real.any()), int((~real).sum())


def evaluate_worn(
    images: Sequence[np.ndarray] | None,
    pattern: np.ndarray,
    detector: str | Any = "hog",
    *,
    face_width: int = 450,
    iou_threshold: float = 0.3,
    mask_color: tuple[int, int, int] = (160, 190, 220),
) -> WornReport:
    """Print ``pattern`` on the mask of every face and count what ``detector`` sees, against a plain mask.

    ``images`` are photos of people (None: the astronaut and Grace Hopper, which ship with the packages);
    the largest face of each is found by MTCNN (its landmarks place the mask), shown as a close-up
    ``face_width`` px wide, masked plainly and with the pattern. A detection overlapping the real face
    (IoU >= ``iou_threshold``) means the face is still found; any other is a decoy. Images without a face
    are skipped and named in a warning, never silently.
    """
    import warnings

    detector = get_detector(detector)
    check_number("iou_threshold", iou_threshold, minimum=0.0, maximum=1.0)
    if images is None:
        images = [demo_face("astronaut"), demo_face("grace_hopper")]
    start = time.perf_counter()
    report = WornReport(detector=detector.name)
    skipped = []
    for i, image in enumerate(images):
        image = as_rgb_array(image)
        faces = find_faces(image)
        if not faces:
            skipped.append(i)
            continue
        picture, face = closeup(image, faces[0], face_width=face_width)
        plain = wear_plain_mask(picture, face, mask_color)
        patterned = wear_pattern(picture, pattern, face)
        dp, dq = detector.detect(plain), detector.detect(patterned)
        pf, pd = _split(dp, face.box, iou_threshold)
        qf, qd = _split(dq, face.box, iou_threshold)
        report.faces.append(WornFace(plain, patterned, face, dp, dq, pf, qf, pd, qd))
    if skipped:
        warnings.warn(f"evaluate_worn: MTCNN found no face in image(s) {skipped}; they were skipped.", stacklevel=2)
    report.seconds = time.perf_counter() - start
    return report
