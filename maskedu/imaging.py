"""Images and boxes: the helpers every stage shares.

* :func:`load_image` reads any image real data holds (JPEG, PNG, EXIF-rotated, RGBA, palette,
  greyscale, 16-bit, CMYK) into an RGB ``uint8`` array, refusing corrupt or oversized files, folders,
  FIFOs and devices with an :class:`ImageError` that names the file and says what to do. It changes
  no process-wide setting (Pillow's limits, warning filters), so it is safe in threads.
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
import stat
import struct
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageOps

from .common import MaskeduError, ParameterTypeError

__all__ = [
    "ImageError",
    "MAX_PIXELS",
    "REASON_UNREADABLE",
    "REASON_TOO_LARGE",
    "REASON_NOT_REGULAR",
    "REASON_MISSING",
    "IMAGE_SUFFIXES",
    "load_image",
    "image_header",
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

Box = Sequence[float]


#: Why an image was refused, in the words a dataset loader's report uses (:attr:`ImageError.reason`).
REASON_UNREADABLE = "unreadable image"
REASON_TOO_LARGE = "image too large to decode safely"
REASON_NOT_REGULAR = "not a regular file (a folder, FIFO, device or socket)"
REASON_MISSING = "image file missing"


class ImageError(MaskeduError, ValueError):
    """An image file that cannot be used, with the file name and what to do about it.

    ``reason`` is the short, fixed kind of problem (one of the ``REASON_*`` constants) that
    dataset loaders group their dropped files by; the message has the details.
    """

    def __init__(self, path: str | os.PathLike | None, problem: str, advice: str = "", *, reason: str = REASON_UNREADABLE):
        self.path = None if path is None else str(path)
        self.problem = problem
        self.reason = reason
        where = f"{self.path}: " if self.path else ""
        text = f"{where}{problem}"
        if advice:
            text += f" {advice}"
        super().__init__(text)


def is_image_file(path: str | os.PathLike) -> bool:
    """True for a file whose suffix is a known image suffix (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def to_rgb_uint8(img: Image.Image, path: str | os.PathLike | None = None) -> np.ndarray:
    """Convert a PIL image of any mode to an H x W x 3 ``uint8`` RGB array, each mode scaled over its own range.

    * ``"I;16"`` (16-bit PNG and TIFF) and ``"I"`` (Pillow's mode for 16-bit PGM/PPM): 0..65535 -> 0..255.
      An ``"I"`` image with values outside 0..65535 (a true 32-bit file) is refused: it has no 8-bit meaning.
    * ``"F"`` (32-bit float TIFF): 0..1 -> 0..255, like a float array; other values are refused.
    * Transparency (RGBA, LA, PA, palette with a transparent colour) is composited onto white.
    * Palette, CMYK, YCbCr, bilevel and the rest are converted by Pillow.

    Nothing is clipped: a value the mode cannot hold in 0..255 raises :class:`ImageError` (naming ``path``).
    """
    mode = img.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        arr = np.asarray(img)
        if mode == "I":
            arr = _checked_range(arr, 0, 65535, path, "a 32-bit integer image (Pillow mode 'I')",
                                 "Only 16-bit values (0 to 65535) have a meaning as an 8-bit picture.")
            grey = np.rint(arr.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
        else:
            grey = _array_to_uint8(arr, path)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    try:
        if mode == "P" and "transparency" in img.info:
            img = img.convert("RGBA")
            mode = "RGBA"
        if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
            img = img.convert("RGBA")
            background = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, img)
        if img.mode != "RGB":
            img = img.convert("RGB")
    except ValueError as exc:  # a mode Pillow cannot turn into RGB
        raise ImageError(path, f"has the image mode {mode!r}, which cannot be converted to RGB ({exc}).") from exc
    return np.asarray(img, dtype=np.uint8).copy()


def _checked_range(arr: np.ndarray, low: float, high: float, path, what: str, advice: str) -> np.ndarray:
    """``arr`` unchanged when every value lies in [low, high]; else an ImageError saying which values it holds."""
    if arr.size:
        lo, hi = arr.min(), arr.max()
        if lo < low or hi > high:
            raise ImageError(path, f"{what} must hold values from {low:g} to {high:g}; this one holds values from {lo:g} to {hi:g}.", advice)
    return arr


def _array_to_uint8(arr: np.ndarray, path=None) -> np.ndarray:
    """Scale one array to ``uint8`` by its dtype's own range (see :func:`as_rgb_array`); never clip."""
    dtype = arr.dtype
    if dtype == np.uint8:
        return arr
    if dtype.kind == "b":
        return arr.astype(np.uint8) * np.uint8(255)
    if dtype.kind in "iu" and dtype.itemsize == 8:  # numpy's default int: values are taken as 8-bit
        arr = _checked_range(arr, 0, 255, path, "an array of 64-bit integers",
                             "64-bit integers are read as 8-bit values; convert with .astype(np.uint8) after scaling, "
                             "or pass uint16/int32/... data in its own dtype.")
        return arr.astype(np.uint8)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        scaled = (arr.astype(np.float64) - float(info.min)) * (255.0 / (float(info.max) - float(info.min)))
        return np.rint(scaled).astype(np.uint8)
    if dtype.kind == "f":
        values = arr.astype(np.float64)
        if not np.isfinite(values).all():
            raise ImageError(path, "a float image must hold values from 0 to 1; this one holds NaN or infinite values.")
        values = _checked_range(values, 0.0, 1.0, path, "a float image",
                                "Divide by 255 if it holds 0-255 values (or convert it with .astype(np.uint8)).")
        return np.rint(values * 255.0).astype(np.uint8)
    raise ImageError(path, f"an image array cannot have the dtype {dtype}.",
                     "Use uint8 (0-255), another integer type (scaled over its range), bool, or floats from 0 to 1.")


_FILE_KINDS = {
    stat.S_IFDIR: "a folder", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket",
}


def _open_regular_file(path: Path):
    """Open ``path`` for binary reading if it is a regular file; refuse anything else without blocking.

    Opening a FIFO for reading waits for a writer and a device never ends, so the file type is checked
    with ``os.stat`` first and again (``os.fstat``) on the opened descriptor, which is opened non-blocking.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        raise ImageError(path, "file not found.", "Check the path (it is relative to the notebook's folder).",
                         reason=REASON_MISSING) from exc
    except (OSError, ValueError) as exc:
        raise ImageError(path, f"cannot be opened ({exc}).") from exc
    fd = None
    try:
        if stat.S_ISREG(info.st_mode):
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
            info = os.fstat(fd)  # the file may have been swapped since the first look
        if not stat.S_ISREG(info.st_mode):
            kind = _FILE_KINDS.get(stat.S_IFMT(info.st_mode), "a special file")
            problem = "is a folder, not an image." if kind == "a folder" else f"is {kind}, not an image file."
            raise ImageError(path, problem, reason=REASON_NOT_REGULAR)
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)
        stream = os.fdopen(fd, "rb")
    except OSError as exc:
        if fd is not None:
            os.close(fd)
        raise ImageError(path, f"cannot be opened ({exc}).") from exc
    except BaseException:
        if fd is not None:
            os.close(fd)
        raise
    return stream


# Errors Pillow's format plugins raise for "not my format" while identifying a file (as Image.open treats them).
_NOT_THIS_FORMAT = (SyntaxError, IndexError, TypeError, struct.error)


def _identify(stream, path) -> Image.Image:
    """Identify an image and read its header (lazily, like ``Image.open``) without Pillow's process-wide size check.

    ``Image.open`` compares the size with ``Image.MAX_IMAGE_PIXELS`` and raises or warns on its own; we
    compare it with the caller's ``max_pixels`` instead, so no global limit or warning filter is touched.
    """
    prefix = stream.read(16)
    tried: set[str] = set()
    hints: list[str] = []
    for register in (Image.preinit, Image.init):
        register()
        for fmt in list(Image.ID):
            if fmt in tried:
                continue
            tried.add(fmt)
            factory, accept = Image.OPEN[fmt]
            try:
                verdict = accept(prefix) if accept else True
                if isinstance(verdict, str):  # "this is my format, but its support is missing"
                    hints.append(verdict)
                    continue
                if not verdict:
                    continue
                stream.seek(0)
                return factory(stream, "" if path is None else str(path))
            except _NOT_THIS_FORMAT:
                continue
    hint = f" ({'; '.join(hints)})" if hints else ""
    raise Image.UnidentifiedImageError(f"cannot identify image file{hint}")


def load_image(source: str | os.PathLike | bytes | np.ndarray | Image.Image, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image into an RGB ``uint8`` array of shape H x W x 3.

    ``source`` is a path, the file's bytes, a PIL image, or an array. EXIF orientation is applied,
    so a phone photo stands the right way up. How each kind is scaled to 0..255 (nothing is clipped;
    a value outside its kind's range raises :class:`ImageError`):

    * 8-bit files and ``uint8`` arrays: unchanged. Transparency is composited onto white.
    * 16-bit files (PNG, TIFF, PGM/PPM; Pillow modes ``"I;16"`` and ``"I"``): 0..65535 -> 0..255.
    * Float files (mode ``"F"``) and float arrays (float16/32/64): 0..1 -> 0..255.
    * Integer arrays other than 64-bit (uint16, uint32, int8, int16, int32): their dtype's whole range,
      minimum -> 0 and maximum -> 255 (int8 -128 is black, 127 white).
    * 64-bit integer arrays (numpy's default int) hold 8-bit values 0..255; ``bool``: False 0, True 255.

    The size is read from the header and compared with ``max_pixels`` before anything is decoded, so a
    crafted header cannot make it allocate gigabytes. Pillow's own settings are never changed: a
    truncated file raises, as ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` (default False) says.

    Raises :class:`ImageError` for a missing, corrupt, truncated or oversized file, a folder, a FIFO or
    a device (refused without opening it for a blocking read), and an array it cannot convert;
    :class:`maskedu.common.ParameterTypeError` for a source of another type.

    >>> from matplotlib import cbook
    >>> img = load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    >>> img.shape, img.dtype
    ((600, 512, 3), dtype('uint8'))
    """
    if isinstance(source, np.ndarray):
        return as_rgb_array(source)
    if isinstance(source, Image.Image):
        _check_size(source, None, max_pixels)
        try:
            img = ImageOps.exif_transpose(source)
        except Exception as exc:  # a broken EXIF block in an image opened elsewhere
            raise ImageError(None, f"has EXIF data Pillow cannot apply ({type(exc).__name__}: {exc}).") from exc
        return to_rgb_uint8(img)
    path = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        stream = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        stream = _open_regular_file(path)
    else:
        raise ParameterTypeError(
            f"load_image() takes a path, the file's bytes, a PIL image or a numpy array, got {type(source).__name__}."
        )
    with stream:
        return _decode(stream, path, max_pixels)


def _check_size(img: Image.Image, path, max_pixels: int) -> None:
    width, height = img.size
    if width * height > max_pixels:
        raise ImageError(
            path,
            f"is {width}x{height} pixels, more than the cap of {max_pixels:,}.",
            "Resize it first, or pass a larger max_pixels if you trust the file.",
            reason=REASON_TOO_LARGE,
        )


def _decode(stream, path, max_pixels: int) -> np.ndarray:
    try:
        with _identify(stream, path) as img:
            _check_size(img, path, max_pixels)
            img.load()
            img = ImageOps.exif_transpose(img)
            return to_rgb_uint8(img, path)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:  # a plugin's own check (GIF frames, TIFF tiles) against Pillow's limit
        raise ImageError(path, f"is too large to decode safely ({exc}).", "Resize it first.", reason=REASON_TOO_LARGE) from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageError(path, f"is not an image Pillow can read: corrupt, or not an image at all ({exc}).") from exc
    except Exception as exc:  # Pillow parsing untrusted bytes raises many kinds; each one means "bad file"
        raise ImageError(
            path, f"could not be decoded ({type(exc).__name__}: {exc}); the file is probably truncated or corrupt."
        ) from exc


def image_header(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> tuple[int, int, int]:
    """``(width, height, EXIF orientation)`` of an image file, from its header only (nothing is decoded).

    Refuses what :func:`load_image` refuses before decoding (a missing or special file, an unknown
    format, more than ``max_pixels``) with the same :class:`ImageError`.
    """
    path = Path(path)
    with _open_regular_file(path) as stream:
        try:
            with _identify(stream, path) as img:
                _check_size(img, path, max_pixels)
                try:
                    orientation = int(img.getexif().get(0x0112, 1))
                except Exception:  # a broken EXIF block does not stop load_image either
                    orientation = 1
                return int(img.size[0]), int(img.size[1]), orientation
        except ImageError:
            raise
        except Image.DecompressionBombError as exc:
            raise ImageError(path, f"is too large to decode safely ({exc}).", reason=REASON_TOO_LARGE) from exc
        except Image.UnidentifiedImageError as exc:
            raise ImageError(path, f"is not an image Pillow can read: corrupt, or not an image at all ({exc}).") from exc
        except Exception as exc:
            raise ImageError(path, f"has a header Pillow cannot read ({type(exc).__name__}: {exc}).") from exc


def as_rgb_array(image: np.ndarray) -> np.ndarray:
    """Check an in-memory image and return it as H x W x 3 uint8.

    Shapes: H x W (greyscale), H x W x 1, H x W x 3, or H x W x 4 (the alpha channel is dropped).
    Values are scaled by dtype as :func:`load_image` describes; anything else raises :class:`ImageError`.
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ImageError(None, f"an image array must be H x W x 3 (RGB), got shape {arr.shape}.")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageError(None, f"an image must have at least one pixel, got shape {arr.shape}.")
    arr = _array_to_uint8(arr[:, :, :3])
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
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
