"""Candidates and pixels: a candidate is (x, y, r, g, b) per changed pixel; apply a population at once.

>>> import numpy as np
>>> img = np.zeros((4, 4, 3), np.uint8)
>>> perturb(img, [1, 2, 255, 0, 0])[2, 1]            # pixel x=1, y=2 turned red
array([255,   0,   0], dtype=uint8)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..common import check_choice
from .settings import COLOR_CHOICES

def _check_image(image: Any, name: str = "image") -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        hint = ""
        if np.issubdtype(arr.dtype, np.floating):
            hint = (" If your pixels are floats in 0..1, convert with (image * 255).round().astype(np.uint8);"
                    " if they are floats in 0..255, use image.round().astype(np.uint8).")
        raise TypeError(f"{name} must hold uint8 pixels (0..255), got dtype {arr.dtype}.{hint}")
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(
            f"{name} must be one RGB image of shape (height, width, 3), got shape {arr.shape}."
            + (" That looks like a batch: pass one image, e.g. images[0]." if arr.ndim == 4 else "")
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} has no pixels (shape {arr.shape}).")
    return arr


def decode_candidates(candidates: Any, height: int, width: int, *, colors: str = "any") -> np.ndarray:
    """Turn real-valued candidates into whole pixels: an ``(S, k, 5)`` int array of (x, y, r, g, b).

    ``candidates`` is one candidate ``(5k,)``, a population ``(S, 5k)`` or ``(S, k, 5)``. Values are
    rounded to the nearest integer (halves round up) and clipped: x to 0..width-1, y to 0..height-1 and
    colours to 0..255. With ``colors="extreme"`` each colour channel becomes 0 or 255 (255 from 127.5 up).

    >>> decode_candidates([3.6, -2, 300, 12.4, 127.5], 10, 10)
    array([[[  4,   0, 255,  12, 128]]])
    """
    cand = np.asarray(candidates, dtype=np.float64)
    if cand.ndim == 1:
        cand = cand[None, :]
    if cand.ndim == 2:
        if cand.shape[1] == 0 or cand.shape[1] % 5:
            raise ValueError(
                f"a candidate is 5 numbers (x, y, r, g, b) per pixel, so its length must be a multiple of 5; "
                f"got {cand.shape[1]}."
            )
        cand = cand.reshape(cand.shape[0], -1, 5)
    if cand.ndim != 3 or cand.shape[2] != 5:
        raise ValueError(
            f"candidates must have shape (5k,), (S, 5k) or (S, k, 5) with (x, y, r, g, b) per pixel; got {cand.shape}."
        )
    if not np.isfinite(cand).all():
        raise ValueError("candidates contain NaN or infinite values; every x, y, r, g, b must be a finite number.")
    out = np.floor(cand + 0.5)
    out[..., 0] = np.clip(out[..., 0], 0, width - 1)
    out[..., 1] = np.clip(out[..., 1], 0, height - 1)
    check_choice("colors", colors, COLOR_CHOICES)
    if colors == "extreme":
        out[..., 2:] = np.where(cand[..., 2:] >= 127.5, 255, 0)
    else:
        out[..., 2:] = np.clip(out[..., 2:], 0, 255)
    return out.astype(np.int64)


def perturb(images_or_image: Any, candidates: Any, *, colors: str = "any") -> np.ndarray:
    """Apply candidates to images, all at once by array indexing (no Python loop over candidates).

    Parameters
    ----------
    images_or_image : uint8 array
        One image ``(H, W, 3)`` (copied once per candidate) or a batch ``(S, H, W, 3)``, one per candidate.
    candidates : array-like
        ``(5k,)`` for one candidate, ``(S, 5k)`` or ``(S, k, 5)`` for S candidates of k pixels each, every
        pixel ``(x, y, r, g, b)``; x is the column, y the row. Fractions are rounded and out-of-range values
        clipped (see :func:`decode_candidates`). When two pixels of one candidate share (x, y), the later wins.

    Returns
    -------
    ``(H, W, 3)`` for one image and one 1-D candidate, else ``(S, H, W, 3)``; a new uint8 array (the input
    is never modified).

    >>> img = np.zeros((3, 3, 3), np.uint8)
    >>> out = perturb(img, [[0, 0, 255, 255, 255], [2, 1, 9, 9, 9]])
    >>> out.shape, out[0, 0, 0].tolist(), out[1, 1, 2].tolist()
    ((2, 3, 3, 3), [255, 255, 255], [9, 9, 9])
    """
    arr = np.asarray(images_or_image)
    single_candidate = np.ndim(candidates) == 1
    if arr.ndim == 4:
        if arr.dtype != np.uint8:
            raise TypeError(f"images must hold uint8 pixels (0..255), got dtype {arr.dtype}.")
        if arr.shape[3] != 3:
            raise ValueError(f"images must have shape (S, height, width, 3), got {arr.shape}.")
        h, w = arr.shape[1:3]
    else:
        arr = _check_image(arr)
        h, w = arr.shape[:2]
    cand = decode_candidates(candidates, h, w, colors=colors)
    s = cand.shape[0]
    if arr.ndim == 4:
        if arr.shape[0] != s:
            raise ValueError(f"got {arr.shape[0]} images but {s} candidates; give one image, or one per candidate.")
        out = arr.copy()
    else:
        out = np.repeat(arr[None], s, axis=0)
    rows = np.arange(s)[:, None]  # (S, 1) broadcast against (S, k)
    out[rows, cand[:, :, 1], cand[:, :, 0]] = cand[:, :, 2:].astype(np.uint8)
    if single_candidate and arr.ndim == 3:
        return out[0]
    return out


def candidate_bounds(height: int, width: int, pixels: int) -> list[tuple[float, float]]:
    """The search box DE explores: for each pixel x in [-0.5, W-0.5], y in [-0.5, H-0.5], colours in [-0.5, 255.5].

    Half a unit beyond each end, so that after rounding every whole value is equally likely.
    """
    one = [(-0.5, width - 0.5), (-0.5, height - 0.5), (-0.5, 255.5), (-0.5, 255.5), (-0.5, 255.5)]
    return one * pixels



class BlockImage:
    """A coarse view of ``image`` for a search that changes ``block`` x ``block`` squares instead of pixels.

    ``coarse`` has one pixel per square (the square's top-left pixel); calling the object with a batch of
    coarse images writes each changed coarse pixel into the full-size image as a square and returns what
    ``predict`` says about those full-size images (``both`` too, where ``predict`` has it). A pixel search
    run on ``coarse`` through this object is a search over squares; :meth:`full_pixels` turns its answer
    back into full-size pixels.

    >>> import numpy as np
    >>> blocks = BlockImage(lambda batch: batch.reshape(len(batch), -1).mean(axis=1, keepdims=True),
    ...                     np.zeros((4, 4, 3), np.uint8), block=2)
    >>> blocks.coarse.shape, blocks.full_pixels([[1, 0, 255, 0, 0]]).tolist()
    ((2, 2, 3), [[2, 0, 255, 0, 0], [3, 0, 255, 0, 0], [2, 1, 255, 0, 0], [3, 1, 255, 0, 0]])
    """

    def __init__(self, predict: Any, image: Any, block: int):
        from ..common import check_int

        self.predict, self.image = predict, _check_image(image)
        self.block = check_int("block", block, minimum=1)
        h, w = self.image.shape[:2]
        if self.block > min(h, w):
            raise ValueError(f"block={block} is larger than the {w} x {h} image; use a smaller block.")
        self.coarse = self.image[::self.block, ::self.block].copy()
        if callable(getattr(predict, "both", None)):  # logits where the model or oracle gives them
            self.both = lambda batch: predict.both(self.full(batch))

    def __call__(self, batch: Any) -> np.ndarray:
        return self.predict(self.full(batch))

    def full(self, batch: Any) -> np.ndarray:
        """Full-size images: each coarse pixel that differs from :attr:`coarse` painted as its square."""
        batch = np.asarray(batch)
        changed = (batch != self.coarse[None]).any(axis=3)
        h, w = self.image.shape[:2]
        up = np.repeat(np.repeat(batch, self.block, axis=1), self.block, axis=2)[:, :h, :w]
        mask = np.repeat(np.repeat(changed, self.block, axis=1), self.block, axis=2)[:, :h, :w]
        out = np.repeat(self.image[None], len(batch), axis=0)
        out[mask] = up[mask]
        return out

    def full_pixels(self, pixels: Any) -> np.ndarray:
        """Coarse (x, y, r, g, b) rows as the full-size pixels of their squares (clipped at the image's edge)."""
        h, w = self.image.shape[:2]
        out = []
        for x, y, r, g, b in np.asarray(pixels, np.int64).reshape(-1, 5).tolist():
            for yy in range(y * self.block, min(h, (y + 1) * self.block)):
                for xx in range(x * self.block, min(w, (x + 1) * self.block)):
                    out.append([xx, yy, r, g, b])
        return np.asarray(out, np.int64).reshape(-1, 5)
