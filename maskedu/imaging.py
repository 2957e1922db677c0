"""Images and boxes: the helpers every stage shares.

* :func:`load_image` reads any image real data holds (JPEG, PNG, EXIF-rotated, RGBA, palette,
  greyscale, 16-bit, CMYK) into an RGB ``uint8`` array, refusing corrupt or oversized files with an
  :class:`ImageError` that names the file and says what to do.
* Boxes are ``(x1, y1, x2, y2)`` in pixels, ``x2``/``y2`` exclusive, so ``image[y1:y2, x1:x2]`` is the box.
  :func:`iou`, :func:`clip_box` and :func:`crop_box` work on them.

>>> import numpy as np
>>> iou((0, 0, 10, 10), (5, 0, 15, 10))
0.3333333333333333
>>> clip_box((-3, 2, 120, 50), width=100, height=80)
(0, 2, 100, 50)
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageFile, ImageOps

from .common import MaskeduError

__all__ = [
    "ImageError",
    "MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "load_image",
    "to_rgb_uint8",
    "is_image_file",
    "iou",
    "iou_matrix",
    "clip_box",
    "box_is_valid",
    "crop_box",
    "resize",
]

#: Largest image accepted, in pixels (a guard against decompression bombs). 80 megapixels.
MAX_PIXELS = 80_000_000
#: File suffixes treated as images when a folder is scanned.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

# Never load a truncated file as a half-grey picture: we want the error.
ImageFile.LOAD_TRUNCATED_IMAGES = False

Box = Sequence[float]


class ImageError(MaskeduError, ValueError):
    """An image file that cannot be used, with the file name and what to do about it."""

    def __init__(self, path: str | os.PathLike | None, problem: str, advice: str = ""):
        self.path = None if path is None else str(path)
        self.problem = problem
        where = f"{self.path}: " if self.path else ""
        text = f"{where}{problem}"
        if advice:
            text += f" {advice}"
        super().__init__(text)


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a file whose suffix is a known image suffix (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def to_rgb_uint8(img: Image.Image) -> np.ndarray:
    """Convert a PIL image of any mode to an H x W x 3 ``uint8`` RGB array.

    Transparency is composited onto white; 16-bit and 32-bit greyscale are scaled down to 8 bits
    (by the image's own maximum when it uses less than the full 16-bit range, as many 16-bit PNGs do);
    CMYK and palette images are converted by PIL.
    """
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = float(arr.max()) if arr.size else 0.0
        if mode != "F" and top <= 255:
            scale = 1.0
        elif mode == "F":
            scale = 255.0 / top if top > 1.0 else 255.0
        else:
            scale = 255.0 / (65535.0 if top > 4095 else max(top, 1.0))
        grey = np.clip(arr * scale, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def load_image(source: str | os.PathLike | bytes | np.ndarray, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image into an RGB ``uint8`` array of shape H x W x 3.

    ``source`` is a path, the file's bytes, or an array (returned as RGB uint8 after checking).
    EXIF orientation is applied, so a phone photo stands the right way up.

    Raises :class:`ImageError` for a missing, corrupt, truncated or oversized file.

    >>> from matplotlib import cbook
    >>> img = load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    >>> img.shape, img.dtype
    ((600, 512, 3), dtype('uint8'))
    """
    if isinstance(source, np.ndarray):
        return as_rgb_array(source)
    path = None
    if isinstance(source, (bytes, bytearray)):
        stream = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.exists():
            raise ImageError(path, "file not found.", "Check the path (it is relative to the notebook's folder).")
        if path.is_dir():
            raise ImageError(path, "is a folder, not an image.")
        stream = path
    old_cap = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = max_pixels
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as img:
                if img.width * img.height > max_pixels:
                    raise ImageError(
                        path,
                        f"is {img.width}x{img.height} pixels, more than the cap of {max_pixels:,}.",
                        "Resize it first, or pass a larger max_pixels if you trust the file.",
                    )
                img.load()
                img = ImageOps.exif_transpose(img)
                return to_rgb_uint8(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(path, f"is too large to decode safely ({exc}).", "Resize it first.") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError(path, "is not an image PIL can read (corrupt, or not an image at all).") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(path, f"could not be decoded ({exc}); the file is probably truncated or corrupt.") from exc
    finally:
        Image.MAX_IMAGE_PIXELS = old_cap


def as_rgb_array(image: np.ndarray) -> np.ndarray:
    """Check an in-memory image and return it as H x W x 3 uint8 (greyscale and RGBA are converted)."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ImageError(None, f"an image array must be H x W x 3 (RGB), got shape {arr.shape}.")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(np.nanmax(arr)) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageError(None, f"an image must have at least one pixel, got shape {arr.shape}.")
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------- boxes


def box_is_valid(box: Box) -> bool:
    """True when the box has positive width and height and finite coordinates."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return bool(np.isfinite([x1, y1, x2, y2]).all() and x2 > x1 and y2 > y1)


def clip_box(box: Box, *, width: int, height: int) -> tuple[int, int, int, int]:
    """Round a box to whole pixels and clip it to the image; the result may be empty (check with box_is_valid)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    x1 = int(min(max(np.floor(x1), 0), width))
    y1 = int(min(max(np.floor(y1), 0), height))
    x2 = int(min(max(np.ceil(x2), 0), width))
    y2 = int(min(max(np.ceil(y2), 0), height))
    return x1, y1, x2, y2


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    ax1, ay1, ax2, ay2 = (float(v) for v in a)
    bx1, by1, bx2, by2 = (float(v) for v in b)
    iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = max(0.0, ax2 - ax1) * max(0.0, ay2 - ay1) + max(0.0, bx2 - bx1) * max(0.0, by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``boxes_a`` (N x 4) with every box in ``boxes_b`` (M x 4), as an N x M array."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def resize(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize an RGB uint8 image to ``size`` (an int for a square, or (width, height)) with area-aware resampling."""
    w, h = (size, size) if isinstance(size, (int, np.integer)) else size
    pil = Image.fromarray(image)
    return np.asarray(pil.resize((int(w), int(h)), Image.Resampling.BILINEAR, reducing_gap=2.0), dtype=np.uint8)


def crop_box(image: np.ndarray, box: Box, *, size: int | tuple[int, int] | None = 50, margin: float = 0.0,
             square: bool = True) -> np.ndarray:
    """Cut a box out of an image, grown by ``margin`` (a fraction of its size) and made square, then resized.

    Parts that fall outside the image are filled by repeating the edge pixels, so a face near the border
    keeps its proportions. ``size`` is as in :func:`resize` (an int for a square, or (width, height));
    ``size=None`` returns the crop at its own resolution.

    >>> img = np.zeros((100, 80, 3), np.uint8)
    >>> crop_box(img, (10, 20, 40, 60), size=50).shape
    (50, 50, 3)
    """
    if not box_is_valid(box):
        raise ValueError(f"cannot crop an empty or inverted box {tuple(box)}; x2 must exceed x1 and y2 exceed y1.")
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    bw, bh = (x2 - x1) * (1 + 2 * margin), (y2 - y1) * (1 + 2 * margin)
    if square:
        bw = bh = max(bw, bh)
    nx1, ny1 = int(round(cx - bw / 2)), int(round(cy - bh / 2))
    nx2, ny2 = max(nx1 + 1, int(round(cx + bw / 2))), max(ny1 + 1, int(round(cy + bh / 2)))
    # Slice the part inside the image, then repeat its edge pixels for the part outside (never pad the whole photo).
    sx1, sy1 = min(max(nx1, 0), w - 1), min(max(ny1, 0), h - 1)
    sx2, sy2 = max(min(nx2, w), sx1 + 1), max(min(ny2, h), sy1 + 1)
    crop = image[sy1:sy2, sx1:sx2]
    pads = ((sy1 - ny1, ny2 - sy2), (sx1 - nx1, nx2 - sx2), (0, 0))
    if any(a > 0 or b > 0 for a, b in pads[:2]):
        crop = np.pad(crop, pads, mode="edge")
    if size is None:
        return np.ascontiguousarray(crop)
    return resize(crop, size)
