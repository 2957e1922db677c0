"""maskedu.imaging.load_image on every image kind real data holds, and the box helpers.

Every fixture image is generated here with PIL, so nothing third-party ships with the tests.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from maskedu.imaging import (
    ImageError,
    box_is_valid,
    clip_box,
    crop_box,
    iou,
    iou_matrix,
    load_image,
)

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def halves(width=40, height=20, left=RED, right=BLUE) -> Image.Image:
    """A picture whose left half is one colour and right half another: orientation is visible."""
    arr = np.zeros((height, width, 3), np.uint8)
    arr[:, : width // 2] = left
    arr[:, width // 2 :] = right
    return Image.fromarray(arr)


def save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def close(a, b, tol=40):
    return np.all(np.abs(np.asarray(a, int) - np.asarray(b, int)) <= tol)


# --------------------------------------------------------------------------- formats and modes


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".webp", ".tif", ".gif"])
def test_formats_round_trip(tmp_path, suffix):
    path = save(halves(), tmp_path / f"img{suffix}")
    img = load_image(path)
    assert img.shape == (20, 40, 3) and img.dtype == np.uint8
    assert close(img[10, 5], RED) and close(img[10, 35], BLUE)


@pytest.mark.parametrize("orientation, shape, top_left_colour", [
    (1, (20, 40, 3), RED),   # as stored
    (3, (20, 40, 3), BLUE),  # rotated 180: the blue half comes to the left
    (6, (40, 20, 3), RED),   # rotate 90 clockwise: the left (red) half goes to the top
    (8, (40, 20, 3), BLUE),  # rotate 90 counter-clockwise: the right (blue) half goes to the top
])
def test_exif_orientation_is_applied(tmp_path, orientation, shape, top_left_colour):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = save(halves(), tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    img = load_image(path)
    assert img.shape == shape
    assert close(img[2, 2], top_left_colour)


def test_rgba_is_composited_on_white(tmp_path):
    arr = np.zeros((10, 10, 4), np.uint8)
    arr[:, :5] = (255, 0, 0, 255)  # opaque red
    arr[:, 5:] = (0, 0, 255, 0)  # fully transparent blue
    path = save(Image.fromarray(arr, "RGBA"), tmp_path / "rgba.png")
    img = load_image(path)
    assert img.shape == (10, 10, 3)
    assert tuple(img[0, 0]) == RED and tuple(img[0, 9]) == WHITE


def test_greyscale_and_greyscale_with_alpha(tmp_path):
    grey = np.tile(np.arange(0, 250, 25, dtype=np.uint8), (10, 1))
    img = load_image(save(Image.fromarray(grey, "L"), tmp_path / "grey.png"))
    assert img.shape == (10, 10, 3)
    assert np.array_equal(img[..., 0], grey) and np.array_equal(img[..., 1], grey)
    la = Image.fromarray(np.dstack([grey, np.full_like(grey, 255)]), "LA")
    img = load_image(save(la, tmp_path / "grey_alpha.png"))
    assert np.array_equal(img[..., 2], grey)


def test_palette_with_and_without_transparency(tmp_path):
    pal = halves().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    img = load_image(save(pal, tmp_path / "pal.png"))
    assert close(img[10, 5], RED, 5) and close(img[10, 35], BLUE, 5)
    transparent_index = pal.getpixel((35, 10))
    pal.info["transparency"] = transparent_index
    img = load_image(save(pal, tmp_path / "pal_t.png", transparency=transparent_index))
    assert close(img[10, 5], RED, 5) and tuple(img[10, 35]) == WHITE


def test_sixteen_bit_full_range_and_low_range(tmp_path):
    ramp = np.linspace(0, 65535, 32).astype(np.uint16).reshape(4, 8)
    img = load_image(save(Image.fromarray(ramp), tmp_path / "deep.png"))
    assert img.dtype == np.uint8 and img.shape == (4, 8, 3)
    assert img[0, 0, 0] == 0 and img[-1, -1, 0] == 255
    assert np.all(np.diff(img[..., 0].reshape(-1).astype(int)) >= 0)  # order kept
    # A 16-bit file is scaled over 0..65535 whatever values it happens to use: one using only 0..248
    # is nearly black (as every viewer shows it), not stretched to look like an 8-bit picture.
    low = np.arange(32, dtype=np.uint16).reshape(4, 8) * 8
    img = load_image(save(Image.fromarray(low), tmp_path / "low.png"))
    assert np.array_equal(img[..., 0], np.rint(low * 255 / 65535).astype(np.uint8))
    assert img.max() == 1


def test_cmyk_jpeg(tmp_path):
    cmyk = halves().convert("CMYK")
    path = save(cmyk, tmp_path / "print.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    img = load_image(path)
    assert img.shape == (20, 40, 3)
    assert close(img[10, 5], RED, 60) and close(img[10, 35], BLUE, 60)


def test_bytes_and_arrays(tmp_path):
    buf = io.BytesIO()
    halves().save(buf, format="PNG")
    assert load_image(buf.getvalue()).shape == (20, 40, 3)
    assert load_image(np.zeros((5, 6), np.uint8)).shape == (5, 6, 3)
    assert load_image(np.zeros((5, 6, 4), np.uint8)).shape == (5, 6, 3)
    floats = load_image(np.full((3, 3, 3), 1.0))
    assert floats.dtype == np.uint8 and floats.max() == 255
    with pytest.raises(ImageError, match="H x W x 3"):
        load_image(np.zeros((5, 6, 2), np.uint8))


# --------------------------------------------------------------------------- refusing bad files


def test_oversized_image_is_refused(tmp_path):
    pillow_cap = Image.MAX_IMAGE_PIXELS
    path = save(Image.new("RGB", (100, 100)), tmp_path / "big.png")
    assert load_image(path, max_pixels=10_000).shape == (100, 100, 3)
    for cap in (9_999, 4_000):  # just over the cap and far over it
        with pytest.raises(ImageError, match="big.png: is 100x100 pixels"):
            load_image(path, max_pixels=cap)
    assert Image.MAX_IMAGE_PIXELS == pillow_cap  # Pillow's own limit is never touched


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files_are_refused_with_their_name(tmp_path, fmt):
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format=fmt)
    data = buf.getvalue()
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=f"cut.{fmt.lower()}") as err:
        load_image(path)
    assert "truncated" in str(err.value) or "corrupt" in str(err.value)


def test_garbage_missing_and_folder(tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(ImageError, match="junk.jpg"):
        load_image(junk)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError):
        load_image(empty)
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)
    assert issubclass(ImageError, ValueError)


# --------------------------------------------------------------------------- boxes


def test_iou_and_iou_matrix_agree():
    a = [(0, 0, 10, 10), (5, 5, 15, 15), (20, 20, 20, 30)]
    b = [(0, 0, 10, 10), (5, 0, 15, 10)]
    m = iou_matrix(np.array(a), np.array(b))
    assert m.shape == (3, 2)
    for i, ba in enumerate(a):
        for j, bb in enumerate(b):
            assert m[i, j] == pytest.approx(iou(ba, bb))
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert iou((20, 20, 20, 30), (20, 20, 20, 30)) == 0.0  # empty boxes never overlap


def test_clip_and_validity():
    assert clip_box((-3.2, 2, 120.4, 50), width=100, height=80) == (0, 2, 100, 50)
    assert not box_is_valid(clip_box((120, 10, 150, 20), width=100, height=80))
    assert not box_is_valid((5, 5, 5, 9)) and not box_is_valid((0, 0, np.nan, 3))


def test_crop_box_pads_at_the_edge_and_refuses_empty_boxes():
    img = np.zeros((60, 80, 3), np.uint8)
    img[:, :40] = 200
    crop = crop_box(img, (0, 0, 20, 40), size=None, margin=0.25)
    assert crop.shape[0] == crop.shape[1] == 60  # square, grown by the margin, edge-padded
    assert crop_box(img, (70, 50, 80, 60), size=32).shape == (32, 32, 3)
    with pytest.raises(ValueError, match="empty"):
        crop_box(img, (10, 10, 10, 20))
