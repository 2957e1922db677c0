"""The embedded default dataset: real faces from installed packages, masked and composited into scenes.

When neither the Kaggle dataset nor credentials are at hand, the course still runs: this module writes a
small dataset in the **exact** layout of Kaggle's "Face Mask Detection Dataset" (Wobot Intelligence)::

    <dest>/Medical mask/Medical mask/Medical Mask/images/1801.jpg, 1803.png, ...
    <dest>/Medical mask/Medical mask/Medical Mask/annotations/1801.jpg.json, ...
    <dest>/train.csv      # header name,x1,x2,y1,y2,classname -- values in the order x1, y1, x2, y2!

so every later stage runs on it unchanged.

How it is made (each step is a plain function below):

1. :func:`face_sources` -- the real face photos that installed packages ship (scikit-image's astronaut
   and cameraman, matplotlib's Grace Hopper, and 36 small grey faces from scikit-image's Labeled Faces
   in the Wild subset), each with its face box and five landmarks found by MTCNN (computed once per
   process, not hard-coded).
2. :func:`draw_mask` -- the technique of the MaskTheFace tool: a mask polygon is laid out in the face's
   own frame (eye line = x axis, eye distance = unit) from the five landmarks, so it follows the face's
   position, size and tilt; filled with a shaded colour, with pleats, seams and ear loops.
3. Scenes: each face is flipped, scaled, tilted and re-lit, then blended into a background (gradients,
   blurred textures, non-face scikit-image photos) at a random place; some scenes hold 2-3 faces.
   About half the faces wear a mask (surgical, cloth, N95, KN95; several colours).

Everything is drawn from ``numpy.random.default_rng([seed, image_index])``: the same seed gives the same
bytes, and the first images do not change when you ask for more.

>>> root = make_sample_dataset("data/sample", n_images=20)      # doctest: +SKIP
>>> sorted(p.name for p in root.iterdir())                        # doctest: +SKIP
['Medical mask', 'train.csv']
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from . import files
from .common import check_int
from .dataset import KAGGLE_ANNOTATIONS_DIR as ANNOTATIONS_SUBDIR, KAGGLE_CSV, KAGGLE_CSV_HEADER, KEYPOINT_NAMES
from .dataset import KAGGLE_IMAGES_DIR as IMAGES_SUBDIR

__all__ = [
    "make_sample_dataset",
    "is_sample_dataset",
    "read_sample_info",
    "face_sources",
    "FaceSource",
    "draw_mask",
    "MASK_STYLES",
    "IMAGES_SUBDIR",
    "ANNOTATIONS_SUBDIR",
    "MARKER_NAME",
    "SOURCES_NAME",
    "read_sources",
    "SAMPLE_VERSION",
]

#: Bump when the generator changes, so a dataset built by an older version is rebuilt.
#: 2: the sample records which real face each annotated face was made from (:data:`SOURCES_NAME`).
SAMPLE_VERSION = 2
#: The file written last into a finished sample: its parameters and counts.
MARKER_NAME = ".maskedu-sample.json"
#: Beside the marker: for every annotated image, which real face (source photo) each face box was made from,
#: so a train/test split can keep every person on one side (the Kaggle layout itself has no place for it).
SOURCES_NAME = ".maskedu-sources.json"
#: The mask shapes :func:`draw_mask` knows.
MASK_STYLES = ("surgical", "cloth", "n95", "kn95")

_FIRST_ID = 1801  # the real set's annotated images start here; ids below are its unannotated test images
_KP_ORDER = KEYPOINT_NAMES

_MASK_COLOURS = {
    "surgical": [(142, 196, 232), (120, 180, 225), (236, 238, 240), (150, 214, 190), (240, 190, 205), (45, 48, 55)],
    "cloth": [(25, 25, 30), (40, 55, 95), (120, 122, 128), (170, 40, 45), (60, 110, 70), (205, 185, 150), (95, 60, 120)],
    "n95": [(238, 238, 232), (225, 226, 222), (200, 202, 205)],
    "kn95": [(240, 240, 240), (30, 30, 34), (210, 215, 225)],
}
# The scikit-image photos used as scene backgrounds: none has a human face in it.
_BACKGROUNDS = ("coffee", "rocket", "brick", "grass", "gravel", "hubble_deep_field")


# --------------------------------------------------------------------------- the real faces


@dataclass(frozen=True)
class FaceSource:
    """One real photo with one face: the image, MTCNN's face box (x1, y1, x2, y2) and its five landmarks.

    ``keypoints`` is a (5, 2) float array of (x, y) in the order left eye, right eye, nose, mouth left,
    mouth right, where *left* means the image's left side. ``frontal`` is False for a face seen from the
    side (its nose far off the eyes' midline): masks are not drawn on those.
    """

    name: str
    image: np.ndarray = field(repr=False)
    box: tuple[int, int, int, int]
    keypoints: np.ndarray = field(repr=False)
    score: float
    credit: str

    @property
    def frontal(self) -> bool:
        le, re, nose = self.keypoints[0], self.keypoints[1], self.keypoints[2]
        d = float(np.hypot(*(re - le)))
        return d > 0 and abs(float(np.dot(nose - (le + re) / 2, (re - le) / d))) / d < 0.25


def _source_photos() -> list[tuple[str, np.ndarray, str]]:
    from matplotlib import cbook
    from skimage import data

    grace = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
    camera = np.repeat(data.camera()[:, :, None], 3, axis=2)
    return [
        ("astronaut", np.ascontiguousarray(data.astronaut()[:, :, :3]), "scikit-image data.astronaut(): Eileen Collins, NASA (public domain)"),
        ("grace_hopper", grace, "matplotlib sample data grace_hopper.jpg: Grace Hopper, US Navy (public domain)"),
        ("cameraman", camera, "scikit-image data.camera(): the 'cameraman' photo (scikit-image's own, CC0)"),
    ]


@lru_cache(maxsize=1)
def _mtcnn():
    from .common import import_tensorflow

    import_tensorflow()  # quietly, before mtcnn imports it
    from mtcnn import MTCNN

    return MTCNN()


@lru_cache(maxsize=1)
def _face_sources_cached() -> tuple[FaceSource, ...]:
    detector = _mtcnn()
    out = []
    for name, image, credit in _source_photos():
        found = detector.detect_faces(image)
        if not found:
            raise RuntimeError(f"MTCNN found no face in the bundled photo {name!r}; the sample cannot be built.")
        best = max(found, key=lambda d: float(d["confidence"]))
        x, y, w, h = (int(v) for v in best["box"])
        kp = np.array([best["keypoints"][k] for k in _KP_ORDER], dtype=np.float64)
        out.append(FaceSource(name, image, (x, y, x + w, y + h), kp, float(best["confidence"]), credit))
    out.extend(_lfw_sources(detector))
    return tuple(out)


_LFW_FACES = 36  # how many of lfw_subset's 100 faces to use (MTCNN looks at them all in one picture)
_LFW_SCALE = 4  # its 25 x 25 faces are blown up to 100 x 100 pixels
_LFW_PAD = 40


def _lfw_sources(detector) -> list[FaceSource]:
    """Faces from scikit-image's ``lfw_subset`` (Labeled Faces in the Wild): small and grey, but many people.

    The faces are enlarged and laid out on one grey sheet so MTCNN finds all their landmarks in one pass.
    """
    from skimage import data

    faces = np.asarray(data.lfw_subset()[:_LFW_FACES])  # the first 100 are faces, the rest are not
    side = 25 * _LFW_SCALE
    cell = side + 2 * _LFW_PAD
    cols = int(math.ceil(math.sqrt(len(faces))))
    rows = int(math.ceil(len(faces) / cols))
    sheet = np.full((rows * cell, cols * cell), 128, np.uint8)
    tiles = []
    for i, f in enumerate(faces):
        tile = np.asarray(Image.fromarray(np.clip(f * 255 + 0.5, 0, 255).astype(np.uint8)).resize((side, side), Image.Resampling.BICUBIC))
        r, c = divmod(i, cols)
        sheet[r * cell + _LFW_PAD : r * cell + _LFW_PAD + side, c * cell + _LFW_PAD : c * cell + _LFW_PAD + side] = tile
        tiles.append(tile)
    best: dict[int, dict] = {}
    for d in detector.detect_faces(np.repeat(sheet[:, :, None], 3, axis=2)):
        x, y, w, h = d["box"]
        r, c = int((y + h / 2) // cell), int((x + w / 2) // cell)
        i = r * cols + c
        if 0 <= i < len(tiles) and float(d["confidence"]) >= 0.99 and float(d["confidence"]) > float(best.get(i, {"confidence": 0})["confidence"]):
            best[i] = d
    out = []
    for i, d in sorted(best.items()):
        r, c = divmod(i, cols)
        ox, oy = c * cell + _LFW_PAD, r * cell + _LFW_PAD
        x, y, w, h = (int(v) for v in d["box"])
        box = (max(0, x - ox), max(0, y - oy), min(side, x + w - ox), min(side, y + h - oy))
        kp = np.array([d["keypoints"][k] for k in _KP_ORDER], dtype=np.float64) - [ox, oy]
        if box[2] - box[0] < 0.5 * side or not ((kp >= 0) & (kp < side)).all():
            continue
        out.append(FaceSource(f"lfw_{i:03d}", np.repeat(tiles[i][:, :, None], 3, axis=2), box, kp, float(d["confidence"]),
                              "scikit-image data.lfw_subset(): Labeled Faces in the Wild (research use)"))
    return out


def face_sources() -> list[FaceSource]:
    """The real face photos behind the sample, with MTCNN's box and landmarks (computed once per process).

    >>> [s.name for s in face_sources()][:4]      # doctest: +SKIP
    ['astronaut', 'grace_hopper', 'cameraman', 'lfw_001']
    """
    return list(_face_sources_cached())


@dataclass
class _Patch:
    """A head cut from a source photo: RGB + alpha, face box and landmarks in the patch's coordinates."""

    rgb: np.ndarray  # float32 H x W x 3, 0..255
    alpha: np.ndarray  # float32 H x W, 0..1
    box: np.ndarray  # (4,) x1 y1 x2 y2
    kp: np.ndarray  # (5, 2)
    frontal: bool
    name: str


@lru_cache(maxsize=1)
def _head_patches() -> tuple[_Patch, ...]:
    patches = []
    for src in _face_sources_cached():
        H, W = src.image.shape[:2]
        x1, y1, x2, y2 = src.box
        w, h = x2 - x1, y2 - y1
        if src.name.startswith("lfw_"):  # a tight square crop: fade it out as an oval
            cx, cy = W / 2, H / 2
            rx, ry = 0.62 * W, 0.68 * H
        else:  # the head with some hair and neck, little of the photo's backdrop
            cx, cy = (x1 + x2) / 2, y1 + 0.42 * h
            rx, ry = 0.92 * w, 1.0 * h
        rx1, ry1 = max(0, int(cx - rx)), max(0, int(cy - ry))
        rx2, ry2 = min(W, int(math.ceil(cx + rx))), min(H, int(math.ceil(cy + ry)))
        rgb = src.image[ry1:ry2, rx1:rx2].astype(np.float32)
        yy, xx = np.mgrid[ry1:ry2, rx1:rx2].astype(np.float32)
        r = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
        alpha = np.clip((1.0 - r) / 0.3, 0.0, 1.0)
        # soften the patch border too where the photo's edge cut the ellipse
        ph, pw = alpha.shape
        edge = max(4.0, 0.06 * min(ph, pw))
        ramp_y = np.clip(np.minimum(np.arange(ph) + 0.5, ph - np.arange(ph) - 0.5) / edge, 0, 1)
        ramp_x = np.clip(np.minimum(np.arange(pw) + 0.5, pw - np.arange(pw) - 0.5) / edge, 0, 1)
        alpha *= ramp_y[:, None] * ramp_x[None, :]
        alpha = alpha * alpha * (3 - 2 * alpha)  # smoothstep
        box = np.array([x1 - rx1, y1 - ry1, x2 - rx1, y2 - ry1], dtype=np.float64)
        kp = src.keypoints - np.array([rx1, ry1], dtype=np.float64)
        patches.append(_Patch(rgb, alpha.astype(np.float32), box, kp, src.frontal, src.name))
    return tuple(patches)


# --------------------------------------------------------------------------- masks (MaskTheFace technique)


def _face_frame(kp: np.ndarray):
    """Origin (eyes' midpoint), u (eye-to-eye vector) and v (u turned 90° towards the chin) of a face."""
    le, re = kp[0], kp[1]
    o = (le + re) / 2
    u = re - le
    v = np.array([-u[1], u[0]])
    return o, u, v


def _to_frame(kp: np.ndarray, pts: np.ndarray) -> np.ndarray:
    o, u, v = _face_frame(kp)
    d2 = float(u @ u)
    rel = pts - o
    return np.stack([rel @ u / d2, rel @ v / d2], axis=-1)


def _from_frame(kp: np.ndarray, ab: np.ndarray) -> np.ndarray:
    o, u, v = _face_frame(kp)
    ab = np.asarray(ab, dtype=np.float64)
    return o + ab[..., :1] * u + ab[..., 1:2] * v


def _mask_layout(kp: np.ndarray, style: str) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """The mask outline, its inner lines (pleats, seams) and its ear loops, in the face frame (a, b)."""
    f = _to_frame(kp, kp)
    nose_a, nose_b = f[2]
    mouth_b = float((f[3, 1] + f[4, 1]) / 2)
    mouth_b = max(mouth_b, nose_b + 0.15)
    top = 0.5 * nose_b
    chin = mouth_b + 0.72
    ac = 0.5 * nose_a  # follow a turned head a little
    lines: list[np.ndarray] = []
    loops: list[np.ndarray] = []
    if style == "surgical":
        outline = np.array([
            (ac - 0.98, top + 0.06), (ac, top - 0.04), (ac + 0.98, top + 0.06),
            (ac + 0.96, mouth_b + 0.3), (ac + 0.55, chin - 0.06), (ac, chin + 0.02),
            (ac - 0.55, chin - 0.06), (ac - 0.96, mouth_b + 0.3),
        ])
        span = (mouth_b + 0.3) - (top + 0.06)
        for t in (0.3, 0.5, 0.7):
            b = top + 0.06 + t * span
            lines.append(np.array([(ac - 0.95, b), (ac, b + 0.04 * (t - 0.5)), (ac + 0.95, b)]))
        lines.append(np.array([(ac - 0.5, top + 0.06), (ac + 0.5, top + 0.06)]))  # the nose wire
        loops += [np.array([(ac - 0.98, top + 0.06), (ac - 1.08, -0.02)]), np.array([(ac + 0.98, top + 0.06), (ac + 1.08, -0.02)]),
                  np.array([(ac - 0.96, mouth_b + 0.3), (ac - 1.06, 0.3)]), np.array([(ac + 0.96, mouth_b + 0.3), (ac + 1.06, 0.3)])]
    elif style == "cloth":
        t = np.linspace(0, np.pi, 24)
        bottom = np.stack([ac + 0.92 * np.cos(t), mouth_b + 0.1 + (chin + 0.08 - mouth_b - 0.1) * np.sin(t)], axis=1)
        top_curve = np.array([(ac - 0.92, top + 0.16), (ac - 0.5, top + 0.02), (ac, top - 0.06), (ac + 0.5, top + 0.02), (ac + 0.92, top + 0.16)])
        outline = np.concatenate([top_curve, np.array([(ac + 0.94, mouth_b)]), bottom, np.array([(ac - 0.94, mouth_b)])])
        lines.append(np.array([(ac, top - 0.06), (ac, chin + 0.08)]))  # centre seam
        loops += [np.array([(ac - 0.92, top + 0.16), (ac - 1.07, 0.05)]), np.array([(ac + 0.92, top + 0.16), (ac + 1.07, 0.05)])]
    elif style == "n95":
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        cb, rb = (top + chin + 0.1) / 2, (chin + 0.1 - top) / 2
        outline = np.stack([ac + 0.86 * np.cos(t), cb + rb * np.sin(t)], axis=1)
        lines.append(np.array([(ac, top + 0.02), (ac, chin + 0.06)]))
        loops += [np.array([(ac - 0.8, cb - 0.35 * rb), (ac - 1.07, -0.05)]), np.array([(ac + 0.8, cb - 0.35 * rb), (ac + 1.07, -0.05)]),
                  np.array([(ac - 0.8, cb + 0.45 * rb), (ac - 1.05, 0.45)]), np.array([(ac + 0.8, cb + 0.45 * rb), (ac + 1.05, 0.45)])]
    elif style == "kn95":
        outline = np.array([
            (ac - 0.95, top + 0.12), (ac, top - 0.06), (ac + 0.95, top + 0.12),
            (ac + 0.9, mouth_b + 0.2), (ac + 0.45, chin - 0.05), (ac, chin + 0.08), (ac - 0.45, chin - 0.05), (ac - 0.9, mouth_b + 0.2),
        ])
        lines.append(np.array([(ac, top - 0.06), (ac, chin + 0.08)]))
        loops += [np.array([(ac - 0.95, top + 0.12), (ac - 1.08, 0.0)]), np.array([(ac + 0.95, top + 0.12), (ac + 1.08, 0.0)]),
                  np.array([(ac - 0.9, mouth_b + 0.2), (ac - 1.06, 0.3)]), np.array([(ac + 0.9, mouth_b + 0.2), (ac + 1.06, 0.3)])]
    else:
        raise ValueError(f"style={style!r} is not one of the mask styles: {', '.join(MASK_STYLES)}.")
    return outline, lines, loops


def draw_mask(
    image: np.ndarray,
    keypoints,
    *,
    style: str = "surgical",
    color: tuple[int, int, int] | None = None,
    supersample: int = 3,
    return_box: bool = False,
):
    """Draw a face mask over nose and mouth, placed from MTCNN's five landmarks (the MaskTheFace technique).

    ``keypoints`` is MTCNN's ``keypoints`` dict, or a (5, 2) array (left eye, right eye, nose, mouth left,
    mouth right; *left* = the image's left). The mask is laid out in the face's own frame -- origin between
    the eyes, unit = the eye distance, axes along and across the eye line -- so it scales and tilts with the
    face. ``style`` is one of :data:`MASK_STYLES`; ``color`` defaults to the style's usual colour.

    Returns the new RGB uint8 image (and, with ``return_box=True``, the mask's box x1, y1, x2, y2).

    >>> src = face_sources()[0]                                   # doctest: +SKIP
    >>> masked = draw_mask(src.image, src.keypoints, style="n95") # doctest: +SKIP
    """
    from .common import check_choice

    check_choice("style", style, MASK_STYLES)
    kp = _as_keypoints(keypoints)
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be an H x W x 3 RGB array, got shape {img.shape}.")
    rgb = img.astype(np.float32)
    colour = color if color is not None else _MASK_COLOURS[style][0]
    alpha, box = _paint_mask(rgb, kp, style, np.asarray(colour, dtype=np.float32), supersample=supersample, rng=None)
    out = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    return (out, box) if return_box else out


def _as_keypoints(keypoints) -> np.ndarray:
    if isinstance(keypoints, dict):
        missing = [k for k in _KP_ORDER if k not in keypoints]
        if missing:
            raise ValueError(f"keypoints is missing {missing}; pass MTCNN's keypoints dict or a (5, 2) array.")
        kp = np.array([keypoints[k] for k in _KP_ORDER], dtype=np.float64)
        if kp[0, 0] > kp[1, 0]:  # some detectors name eyes from the person's point of view
            kp[[0, 1]] = kp[[1, 0]]
            kp[[3, 4]] = kp[[4, 3]]
        return kp
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.shape != (5, 2) or not np.isfinite(kp).all():
        raise ValueError(f"keypoints must be a (5, 2) array of finite (x, y) points, got shape {kp.shape}.")
    if np.allclose(kp[0], kp[1]):
        raise ValueError("the two eye keypoints coincide; cannot place a mask.")
    return kp


def _paint_mask(rgb: np.ndarray, kp: np.ndarray, style: str, colour: np.ndarray, *, supersample: int, rng):
    """Paint a mask into ``rgb`` (float32, modified in place); return its coverage (H x W) and its box."""
    H, W = rgb.shape[:2]
    outline, lines, loops = _mask_layout(kp, style)
    pts = _from_frame(kp, outline)
    eye_d = float(np.hypot(*(kp[1] - kp[0])))
    loop_pts = [_from_frame(kp, seg) for seg in loops]
    allp = np.concatenate([pts] + loop_pts)
    bx1, by1 = np.floor(allp.min(axis=0) - 2).astype(int)
    bx2, by2 = np.ceil(allp.max(axis=0) + 2).astype(int)
    bx1, by1, bx2, by2 = max(bx1, 0), max(by1, 0), min(bx2, W), min(by2, H)
    if bx2 <= bx1 or by2 <= by1:
        return np.zeros((H, W), np.float32), (0, 0, 0, 0)
    ss = int(supersample)
    size = ((bx2 - bx1) * ss, (by2 - by1) * ss)

    def raster(polys, *, fill: bool, width: float = 1.0) -> np.ndarray:
        layer = Image.new("L", size, 0)
        draw = ImageDraw.Draw(layer)
        for p in polys:
            q = [((x - bx1) * ss, (y - by1) * ss) for x, y in p]
            if fill:
                draw.polygon(q, fill=255)
            else:
                draw.line(q, fill=255, width=max(1, int(round(width * ss))), joint="curve")
        small = layer.resize((bx2 - bx1, by2 - by1), Image.Resampling.BOX)
        return np.asarray(small, dtype=np.float32) / 255.0

    cover = raster([pts], fill=True)
    inner = raster([_from_frame(kp, seg) for seg in lines], fill=False, width=max(1.0, 0.025 * eye_d)) * cover
    loop_cov = raster(loop_pts, fill=False, width=max(1.0, 0.03 * eye_d)) * (1.0 - cover)

    # shading: darker towards the mask's sides and bottom, as a curved surface lit from the front
    yy, xx = np.mgrid[by1:by2, bx1:bx2].astype(np.float64)
    ab = _to_frame(kp, np.stack([xx, yy], axis=-1).reshape(-1, 2)).reshape(by2 - by1, bx2 - bx1, 2)
    a = ab[..., 0] - 0.5 * _to_frame(kp, kp)[2, 0]
    shade = 1.0 - 0.28 * np.clip(a / 0.95, -1, 1) ** 2 - 0.06 * np.clip(ab[..., 1] - 1.0, 0, 1)
    if style == "n95":
        shade += 0.08 * np.exp(-((a / 0.45) ** 2 + ((ab[..., 1] - 1.0) / 0.5) ** 2))
    tex = 1.0
    if rng is not None:
        tex = 1.0 + rng.normal(0.0, 0.025, size=shade.shape)
    fill = colour[None, None, :] * (shade * tex)[..., None].astype(np.float32)
    line_col = colour * (0.72 if colour.mean() > 70 else 1.6)
    fill = fill * (1 - inner[..., None]) + np.clip(line_col, 0, 255)[None, None, :] * inner[..., None]
    loop_col = np.array([235, 235, 235], np.float32) if style != "cloth" else colour
    region = rgb[by1:by2, bx1:bx2]
    region[:] = region * (1 - cover[..., None]) + fill * cover[..., None]
    region[:] = region * (1 - loop_cov[..., None]) + loop_col[None, None, :] * loop_cov[..., None]
    full = np.zeros((H, W), np.float32)
    full[by1:by2, bx1:bx2] = np.maximum(cover, loop_cov)
    ys, xs = np.nonzero(cover > 0.5)
    box = (0, 0, 0, 0) if len(xs) == 0 else (int(xs.min() + bx1), int(ys.min() + by1), int(xs.max() + bx1 + 1), int(ys.max() + by1 + 1))
    return full, box


# --------------------------------------------------------------------------- scenes


@dataclass
class _Face:
    box: tuple[int, int, int, int]
    masked: bool
    style: str | None
    mask_box: tuple[int, int, int, int] | None
    source: str = ""


def _transform_patch(p: _Patch, rng: np.random.Generator, face_w: float):
    """Flip, scale and tilt a head patch; return rgb, alpha, face box and keypoints in the new patch."""
    rgb, alpha, box, kp = p.rgb, p.alpha, p.box.copy(), p.kp.copy()
    h0, w0 = alpha.shape
    if rng.random() < 0.5:
        rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
        box = np.array([w0 - box[2], box[1], w0 - box[0], box[3]])
        kp[:, 0] = w0 - kp[:, 0]
        kp = kp[[1, 0, 2, 4, 3]]
    s = face_w / float(box[2] - box[0])
    theta = math.radians(rng.uniform(-12, 12))
    c, si = math.cos(theta), math.sin(theta)
    R = np.array([[c, -si], [si, c]]) * s
    corners = np.array([[0, 0], [w0, 0], [0, h0], [w0, h0]], dtype=np.float64)
    centre = np.array([w0 / 2, h0 / 2])
    moved = (corners - centre) @ R.T
    lo, hi = moved.min(axis=0), moved.max(axis=0)
    W, H = int(math.ceil(hi[0] - lo[0])), int(math.ceil(hi[1] - lo[1]))
    offset = -lo

    def fwd(pts):
        return (pts - centre) @ R.T + offset

    Ri = np.linalg.inv(R)
    # PIL wants output -> input: x_in = Ri (x_out - offset) + centre
    t = centre - Ri @ offset
    coeffs = (Ri[0, 0], Ri[0, 1], t[0], Ri[1, 0], Ri[1, 1], t[1])
    rgba = np.dstack([np.clip(rgb, 0, 255), alpha * 255]).astype(np.uint8)
    img = Image.fromarray(rgba, "RGBA")
    if s < 0.8:  # shrink first with a proper filter, then rotate: no aliasing
        img = img.resize((max(1, round(w0 * s)), max(1, round(h0 * s))), Image.Resampling.LANCZOS)
        sx, sy = img.width / w0, img.height / h0
        coeffs = (coeffs[0] * sx, coeffs[1] * sx, coeffs[2] * sx, coeffs[3] * sy, coeffs[4] * sy, coeffs[5] * sy)
    # premultiply alpha so the transparent surroundings do not bleed dark edges
    out = img.transform((W, H), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BICUBIC)
    arr = np.asarray(out, dtype=np.float32)
    new_kp = fwd(kp)
    bc = fwd(np.array([[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]]))[0]
    bw, bh = (box[2] - box[0]) * s, (box[3] - box[1]) * s
    aw = bw * abs(c) + 0.5 * bh * abs(si)
    ah = bh * abs(c) + 0.5 * bw * abs(si)
    new_box = np.array([bc[0] - aw / 2, bc[1] - ah / 2, bc[0] + aw / 2, bc[1] + ah / 2])
    return arr[..., :3].copy(), arr[..., 3] / 255.0, new_box, new_kp


def _jitter_colour(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    grey = rgb.mean(axis=2, keepdims=True)
    sat = rng.uniform(0.65, 1.25)
    rgb = grey + (rgb - grey) * sat
    contrast = rng.uniform(0.75, 1.2)
    mean = float(grey.mean())
    rgb = (rgb - mean) * contrast + mean
    gain = rng.uniform(0.65, 1.25)
    warm = rng.uniform(-0.08, 0.08)
    rgb = rgb * gain * np.array([1 + warm, 1.0, 1 - warm], np.float32)
    return np.clip(rgb, 0, 255)


def _background(rng: np.random.Generator, W: int, H: int) -> np.ndarray:
    kind = rng.choice(["gradient", "blur", "photo", "photo"])
    if kind == "gradient":
        c1, c2 = rng.uniform(30, 235, size=3), rng.uniform(30, 235, size=3)
        ang = rng.uniform(0, 2 * np.pi)
        t = np.arange(W, dtype=np.float32)[None, :] * math.cos(ang) + np.arange(H, dtype=np.float32)[:, None] * math.sin(ang)
        t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
        bg = c1.astype(np.float32) * (1 - t[..., None]) + c2.astype(np.float32) * t[..., None]
        return bg + 3.0 * rng.standard_normal(size=bg.shape, dtype=np.float32)
    if kind == "blur":
        small = rng.uniform(40, 215, size=(int(rng.integers(3, 7)), int(rng.integers(3, 7)), 3))
        small = (0.55 * small + 0.45 * small.mean(axis=2, keepdims=True)).astype(np.uint8)  # muted, like a room
        img = Image.fromarray(small).resize((W, H), Image.Resampling.BICUBIC)
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(2, 8))))
        return np.asarray(img, dtype=np.float32) + 2.5 * rng.standard_normal(size=(H, W, 3), dtype=np.float32)
    name = str(rng.choice(_BACKGROUNDS))
    photo = _background_photo(name)
    ph, pw = photo.shape[:2]
    scale = max(W / pw, H / ph) * rng.uniform(1.0, 1.6)
    img = Image.fromarray(photo).resize((max(W, round(pw * scale)), max(H, round(ph * scale))), Image.Resampling.BILINEAR)
    x0 = int(rng.integers(0, img.width - W + 1))
    y0 = int(rng.integers(0, img.height - H + 1))
    img = img.crop((x0, y0, x0 + W, y0 + H))
    if rng.random() < 0.7:
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(1, 5))))
    return np.asarray(img, dtype=np.float32)


@lru_cache(maxsize=None)
def _background_photo(name: str) -> np.ndarray:
    from skimage import data

    arr = np.asarray(getattr(data, name)())
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3].astype(np.uint8))


_SCENE_SIZES = ((640, 480), (800, 600), (600, 800), (720, 540), (512, 512), (960, 640), (480, 640))


def _make_scene(rng: np.random.Generator) -> tuple[np.ndarray, list[_Face]]:
    W, H = _SCENE_SIZES[int(rng.integers(len(_SCENE_SIZES)))]
    canvas = _background(rng, W, H)
    n_faces = int(rng.choice([1, 2, 3], p=[0.55, 0.3, 0.15]))
    patches = _head_patches()
    faces: list[_Face] = []
    taken: list[np.ndarray] = []
    lo = max(52.0, 0.08 * min(W, H))
    hi = min(0.36 * min(W, H), 230.0) / (1.0 + 0.25 * (n_faces - 1))
    for _ in range(n_faces):
        masked = bool(rng.random() < 0.5)
        lfw = bool(rng.random() < 0.4)
        options = [i for i, p in enumerate(patches) if (p.frontal or not masked) and p.name.startswith("lfw_") == lfw]
        if not options:
            options = [i for i, p in enumerate(patches) if p.frontal or not masked]
        p = patches[options[int(rng.integers(len(options)))]]
        src_w = float(p.box[2] - p.box[0])
        top = min(hi, (1.0 if lfw else 1.7) * src_w)  # do not blow a small face up into a blur
        face_w = float(rng.uniform(lo, max(lo + 1, top)))
        rgb, alpha, box, kp = _transform_patch(p, rng, face_w)
        ph, pw = alpha.shape
        placed = None
        for _try in range(30):
            fx = rng.uniform(4 - box[0], W - 4 - box[2])
            fy = rng.uniform(4 - box[1], H - 4 - box[3])
            fbox = box + np.array([fx, fy, fx, fy])
            grown = _grow(fbox, 0.45)
            if all(not _overlaps(grown, _grow(t, 0.45)) for t in taken):
                placed = (int(round(fx)), int(round(fy)))
                break
        if placed is None:
            continue
        style = None
        mask_box = None
        if masked:
            style = str(rng.choice(MASK_STYLES, p=[0.4, 0.3, 0.15, 0.15]))
            palette = _MASK_COLOURS[style]
            colour = np.asarray(palette[int(rng.integers(len(palette)))], np.float32)
            colour = np.clip(colour * rng.uniform(0.9, 1.08), 0, 255)
            cover, mbox = _paint_mask(rgb, kp, style, colour, supersample=3, rng=rng)
            alpha = np.maximum(alpha, cover)
            mask_box = tuple(int(v) for v in (mbox[0] + placed[0], mbox[1] + placed[1], mbox[2] + placed[0], mbox[3] + placed[1]))
        rgb = _jitter_colour(rgb, rng)
        _blend(canvas, rgb, alpha, placed)
        fb = box + np.array([placed[0], placed[1], placed[0], placed[1]])
        x1, y1 = int(max(0, math.floor(fb[0]))), int(max(0, math.floor(fb[1])))
        x2, y2 = int(min(W, math.ceil(fb[2]))), int(min(H, math.ceil(fb[3])))
        taken.append(fb)
        faces.append(_Face((x1, y1, x2, y2), masked, style, mask_box, p.name))
    # scene lighting: a soft directional gradient, then sensor noise
    ang = rng.uniform(0, 2 * np.pi)
    xs = (np.arange(W, dtype=np.float32) - W / 2)[None, :] * math.cos(ang)
    ys = (np.arange(H, dtype=np.float32)[:, None] - H / 2) * math.sin(ang)
    t = (xs + ys) / (0.5 * math.hypot(W, H))
    light = np.float32(rng.uniform(0.8, 1.1)) + np.float32(rng.uniform(0.0, 0.15)) * t
    canvas *= light[..., None]
    canvas += np.float32(rng.uniform(0.5, 3.0)) * rng.standard_normal(size=canvas.shape, dtype=np.float32)
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8), faces


def _grow(b: np.ndarray, f: float) -> np.ndarray:
    w, h = b[2] - b[0], b[3] - b[1]
    return np.array([b[0] - f * w, b[1] - f * h, b[2] + f * w, b[3] + f * h])


def _overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


def _blend(canvas: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, at: tuple[int, int]) -> None:
    H, W = canvas.shape[:2]
    ph, pw = alpha.shape
    x0, y0 = at
    cx1, cy1, cx2, cy2 = max(0, x0), max(0, y0), min(W, x0 + pw), min(H, y0 + ph)
    if cx2 <= cx1 or cy2 <= cy1:
        return
    px1, py1 = cx1 - x0, cy1 - y0
    a = alpha[py1 : py1 + cy2 - cy1, px1 : px1 + cx2 - cx1, None]
    region = canvas[cy1:cy2, cx1:cx2]
    region[:] = region * (1 - a) + rgb[py1 : py1 + cy2 - cy1, px1 : px1 + cx2 - cx1] * a


# --------------------------------------------------------------------------- writing the dataset


def _image_ids(seed: int, n_images: int, n_unannotated: int) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng([seed, 0x5A11])
    gaps = rng.integers(1, 4, size=n_images)
    gaps[0] = 0
    train = (_FIRST_ID + np.cumsum(gaps)).tolist()
    test = sorted(rng.choice(np.arange(1, _FIRST_ID), size=n_unannotated, replace=False).tolist()) if n_unannotated else []
    return [int(v) for v in train], [int(v) for v in test]


def _encode(image: np.ndarray, rng: np.random.Generator) -> tuple[str, bytes]:
    buf = io.BytesIO()
    pil = Image.fromarray(image)
    if rng.random() < 0.35:
        pil.save(buf, format="PNG", compress_level=1)
        return "png", buf.getvalue()
    pil.save(buf, format="JPEG", quality=int(rng.integers(78, 96)))
    return "jpg", buf.getvalue()


def _params(n_images: int, seed: int, n_unannotated: int) -> dict:
    return {"generator": "maskedu.sample", "version": SAMPLE_VERSION, "n_images": n_images, "seed": seed, "n_unannotated": n_unannotated}


def read_sample_info(root: str | os.PathLike) -> dict | None:
    """The marker of a finished sample dataset (parameters, counts, build seconds), or None."""
    marker = Path(root) / MARKER_NAME
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("generator") == "maskedu.sample" else None


def read_sources(root: str | os.PathLike) -> dict[str, list[dict]] | None:
    """For a sample dataset: ``{image file name: [{"box": [x1, y1, x2, y2], "source": name}, ...]}``, one entry
    per face drawn into the image (``source`` is the :class:`FaceSource` it was made from); None for any
    other dataset, or a sample built before the file existed.

    >>> read_sources("data/sample")["1801.jpg"]          # doctest: +SKIP
    [{'box': [112, 40, 190, 131], 'source': 'astronaut'}]
    """
    try:
        doc = json.loads((Path(root) / SOURCES_NAME).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("generator") != "maskedu.sample" or not isinstance(doc.get("images"), dict):
        return None
    return doc["images"]


def is_sample_dataset(root: str | os.PathLike, **params) -> bool:
    """True when ``root`` holds a finished sample (built with ``params``, when given, by this version)."""
    info = read_sample_info(root)
    if info is None or not (Path(root) / IMAGES_SUBDIR).is_dir() or not (Path(root) / KAGGLE_CSV).is_file():
        return False
    want = dict(params)
    if want:
        want.setdefault("version", SAMPLE_VERSION)
    return all(info.get(k) == v for k, v in want.items())


def make_sample_dataset(
    dest: str | os.PathLike,
    n_images: int = 200,
    seed: int = 0,
    *,
    n_unannotated: int | None = None,
    force: bool = False,
    verbose: bool = False,
) -> Path:
    """Write a small face-mask dataset in the exact Kaggle layout, from real photos, and return its root.

    ``n_images`` annotated scenes (one to three faces each, about half of them masked) get ids from 1801
    upwards, a JSON file each and their rows in ``train.csv``; ``n_unannotated`` more scenes (default
    ``max(1, n_images // 20)``) get ids below 1800 and no annotation, like the real set's test images.

    A finished dataset with the same parameters is reused at once (its marker file, written last, records
    them). Other parameters, or ``force=True``, rebuild it. The build happens in a temporary folder beside
    ``dest`` that is renamed into place when complete, so an interrupted build never looks finished.
    A folder at ``dest`` that is not a sample dataset is never replaced unless ``force=True``.

    >>> root = make_sample_dataset("data/sample", n_images=12)          # doctest: +SKIP
    >>> (root / "train.csv").read_text().splitlines()[0]                # doctest: +SKIP
    'name,x1,x2,y1,y2,classname'
    """
    if not isinstance(dest, (str, os.PathLike)) or str(dest) == "":
        raise TypeError(f"dest must be a folder path (str or Path), got {dest!r}.")
    n_images = check_int("n_images", n_images, minimum=1, maximum=20_000)
    seed = check_int("seed", seed, minimum=0)
    if n_unannotated is None:
        n_unannotated = max(1, n_images // 20)
    n_unannotated = check_int("n_unannotated", n_unannotated, minimum=0, maximum=1_000)
    if not isinstance(force, bool):
        raise TypeError(f"force must be True or False, got {force!r}.")
    dest = Path(dest).expanduser().resolve()
    params = _params(n_images, seed, n_unannotated)
    if not force and is_sample_dataset(dest, **params):
        if verbose:
            print(f"Sample dataset already built in {dest} (reused).")
        return dest
    if dest.exists() and not force:
        if not dest.is_dir():
            raise FileExistsError(f"{dest} exists and is a file; choose another dest for the sample dataset.")
        if any(dest.iterdir()) and read_sample_info(dest) is None:
            raise FileExistsError(
                f"{dest} already holds files that are not a maskedu sample dataset; they are left alone. "
                "Choose another dest, or pass force=True to replace the folder."
            )
    start = time.perf_counter()
    with files.install_lock(dest, quiet=not verbose):
        files.clean_leftovers(dest)
        if not force and is_sample_dataset(dest, **params):  # another process built it while we waited
            return dest
        with files.building(dest) as tmp:
            counts = _build(tmp, n_images, seed, n_unannotated, verbose=verbose)
            info = dict(params, **counts, seconds=round(time.perf_counter() - start, 2))
            (tmp / MARKER_NAME).write_text(json.dumps(info, indent=2) + "\n")
            files.swap_into_place(tmp, dest)
    if verbose:
        print(f"Built the sample dataset in {dest}: {counts['n_faces']} faces ({counts['n_masked']} masked) "
              f"in {n_images} images, {time.perf_counter() - start:.1f} s.")
    return dest


def _build(root: Path, n_images: int, seed: int, n_unannotated: int, *, verbose: bool) -> dict:
    from .common import progress

    images_dir = root / IMAGES_SUBDIR
    ann_dir = root / ANNOTATIONS_SUBDIR
    images_dir.mkdir(parents=True)
    ann_dir.mkdir(parents=True)
    train_ids, test_ids = _image_ids(seed, n_images, n_unannotated)
    rows: list[list] = []
    sources: dict[str, list[dict]] = {}
    n_faces = n_masked = 0
    jobs = [(i, tid, True) for i, tid in enumerate(train_ids)] + [(n_images + j, tid, False) for j, tid in enumerate(test_ids)]
    for index, image_id, annotated in progress(jobs, desc="sample scenes", disable=not verbose or None):
        rng = np.random.default_rng([seed, index])
        image, faces = _make_scene(rng)
        ext, payload = _encode(image, rng)
        name = f"{image_id}.{ext}"
        (images_dir / name).write_bytes(payload)
        if not annotated:
            continue
        annos = []
        sources[name] = [{"box": [int(v) for v in f.box], "source": f.source} for f in faces]
        for f in faces:
            annos.append(_annotation(rng, f.box, "face_with_mask" if f.masked else "face_no_mask"))
            n_faces += 1
            n_masked += int(f.masked)
            if f.masked and f.mask_box is not None and rng.random() < 0.3:
                H, W = image.shape[:2]
                mb = (max(0, f.mask_box[0]), max(0, f.mask_box[1]), min(W, f.mask_box[2]), min(H, f.mask_box[3]))
                if mb[2] > mb[0] and mb[3] > mb[1]:
                    annos.append(_annotation(rng, mb, "mask_colorful" if f.style == "cloth" else "mask_surgical"))
        doc = {"FileName": name, "NumOfAnno": len(annos), "Annotations": annos}
        (ann_dir / f"{name}.json").write_text(json.dumps(doc))
        for a in annos:
            x1, y1, x2, y2 = a["BoundingBox"]
            rows.append([name, x1, y1, x2, y2, a["classname"]])  # the real file's order under its x1,x2,y1,y2 header
    with open(root / KAGGLE_CSV, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(KAGGLE_CSV_HEADER)
        writer.writerows(rows)
    (root / SOURCES_NAME).write_text(json.dumps({"generator": "maskedu.sample", "version": SAMPLE_VERSION,
                                                  "images": sources}) + "\n")
    return {"n_faces": n_faces, "n_masked": n_masked, "n_annotations": len(rows), "unannotated_ids": test_ids}


def _annotation(rng: np.random.Generator, box, classname: str) -> dict:
    return {
        "isProtected": False,
        "ID": int(rng.integers(10**17, 10**18)),
        "BoundingBox": [int(v) for v in box],
        "classname": classname,
        "Confidence": 1,
        "Attributes": {},
    }
