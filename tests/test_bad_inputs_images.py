"""Bad input never costs a batch: a corpus of tiny crafted files, one test per case.

Every file is built here (a PNG header that claims 100000 x 100000 pixels, a FIFO, a JSON file
nested 100,000 deep, ...). Each test names the exact outcome: which error (always a
:class:`maskedu.MaskeduError`), which words it says, and, for the dataset loaders, which images
survive the load and what the :class:`LoadReport` says about the rest.
"""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from maskedu.annotations import (
    REASON_MALFORMED_BOX,
    check_box,
    compare_with_kaggle,
    csv_column_quirk,
    load_annotations,
    load_class_folders,
    load_dataset,
    load_voc,
)
from maskedu.common import MaskeduError, ParameterTypeError
from maskedu.imaging import (
    REASON_NOT_REGULAR,
    REASON_TOO_LARGE,
    REASON_UNREADABLE,
    ImageError,
    load_image,
)

KAGGLE_DIR = Path("Medical mask") / "Medical mask" / "Medical Mask"
HUGE = 100_000  # the crafted header's width and height: 10 gigapixels, far past Pillow's own limit


# --------------------------------------------------------------------------- the corpus


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that is all header: a valid IHDR (8-bit RGB) claiming ``width`` x ``height``, an empty IDAT, IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"") + png_chunk(b"IEND", b"")


def write_png(path: Path, width: int = 40, height: int = 30, colour=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), colour).save(path)
    return path


def write_truncated(path: Path) -> Path:
    """A PNG of noise (which does not compress) cut in half: its pixel data ends early."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(buf, format="PNG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def write_bomb(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_header_only(HUGE, HUGE))
    return path


def voc_xml(filename: str, objects, size=(40, 30)) -> str:
    parts = [f"<annotation><filename>{filename}</filename><size><width>{size[0]}</width><height>{size[1]}</height></size>"]
    for name, (x1, y1, x2, y2) in objects:
        parts.append(
            f"<object><name>{name}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
            f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        )
    return "".join(parts) + "</annotation>"


def kaggle_json(image_name: str, annos) -> str:
    return json.dumps({"FileName": image_name, "Annotations": [{"BoundingBox": list(b), "classname": c} for b, c in annos]})


def runs_within(seconds: float, fn, *args):
    """Run ``fn(*args)`` in a daemon thread; return ("returned", value), ("raised", exc) or ("blocked", None)."""
    box: dict = {}

    def target():
        try:
            box["returned"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - the test inspects whatever came out
            box["raised"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        return "blocked", None
    return ("raised", box["raised"]) if "raised" in box else ("returned", box["returned"])


def unblock_fifo(path: Path) -> None:
    """Give a reader stuck on a FIFO its end of file (open the writing end, close it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # no reader waiting: nothing is stuck
    os.close(fd)


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes (os.mkfifo) need a POSIX system")


# --------------------------------------------------------------------------- item 3: a header that claims a huge image


def test_header_claiming_ten_gigapixels_is_refused_from_the_header(tmp_path):
    bomb = write_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 100
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageError, match=r"bomb\.png: is 100000x100000 pixels, more than the cap") as err:
            load_image(bomb)
    assert isinstance(err.value, MaskeduError) and err.value.reason == REASON_TOO_LARGE
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    with pytest.raises(ImageError, match="100000x100000") as err:  # the same file as bytes
        load_image(bomb.read_bytes())
    assert err.value.reason == REASON_TOO_LARGE


def test_image_between_pillows_limit_and_twice_it_is_refused_without_a_warning(tmp_path):
    side = int((Image.MAX_IMAGE_PIXELS * 1.5) ** 0.5)  # Pillow would only warn about this one
    path = tmp_path / "large.png"
    path.write_bytes(png_header_only(side, side))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageError, match=f"is {side}x{side} pixels") as err:
            load_image(path)
    assert err.value.reason == REASON_TOO_LARGE
    assert caught == []


def test_class_folders_drop_the_huge_header_and_keep_the_rest(tmp_path):
    write_png(tmp_path / "with_mask" / "a.png")
    write_bomb(tmp_path / "with_mask" / "bomb.png")
    write_png(tmp_path / "without_mask" / "b.png")
    for load in (load_class_folders, load_dataset):
        ds = load(tmp_path)
        assert sorted(r.name for r in ds) == ["a.png", "b.png"]
        assert ds.report.dropped == [("with_mask/bomb.png", REASON_TOO_LARGE)]
        assert ds.report.images_kept == 2
        assert any("bomb.png" in n and "100000x100000" in n for n in ds.report.notes)


def test_voc_drops_the_huge_header_and_keeps_the_rest(tmp_path):
    write_png(tmp_path / "images" / "a.png")
    write_bomb(tmp_path / "images" / "bomb.png")
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "a.xml").write_text(voc_xml("a.png", [("with_mask", (1, 2, 20, 25))]))
    (tmp_path / "annotations" / "bomb.xml").write_text(voc_xml("bomb.png", [("without_mask", (1, 2, 20, 25))]))
    for load in (load_voc, load_dataset):
        ds = load(tmp_path)
        assert [r.name for r in ds] == ["a.png"] and ds[0].boxes[0].xyxy == (1, 2, 20, 25)
        assert ds.report.dropped == [("bomb.png", REASON_TOO_LARGE)]


def test_kaggle_layout_drops_the_huge_header_and_keeps_the_rest(tmp_path):
    base = tmp_path / KAGGLE_DIR
    write_png(base / "images" / "1.png")
    write_bomb(base / "images" / "2.png")
    (base / "annotations").mkdir(parents=True)
    (base / "annotations" / "1.png.json").write_text(kaggle_json("1.png", [((1, 2, 20, 25), "face_with_mask")]))
    (base / "annotations" / "2.png.json").write_text(kaggle_json("2.png", [((1, 2, 20, 25), "face_no_mask")]))
    ds = load_annotations(tmp_path)
    assert [r.name for r in ds] == ["1.png"]
    assert ds.report.dropped == [("2.png (1 box)", REASON_TOO_LARGE)]


# --------------------------------------------------------------------------- special files


@needs_fifo
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    try:
        outcome, value = runs_within(10, load_image, fifo)
    finally:
        unblock_fifo(fifo)
    assert outcome == "raised", "load_image blocked on a FIFO"
    assert isinstance(value, ImageError) and value.reason == REASON_NOT_REGULAR
    assert "pipe.png: is a FIFO (named pipe), not an image file" in str(value)


@needs_fifo
def test_class_folders_drop_a_fifo_without_blocking(tmp_path):
    write_png(tmp_path / "with_mask" / "a.png")
    os.mkfifo(tmp_path / "with_mask" / "pipe.png")
    write_png(tmp_path / "without_mask" / "b.png")
    try:
        outcome, ds = runs_within(30, load_class_folders, tmp_path)
    finally:
        unblock_fifo(tmp_path / "with_mask" / "pipe.png")
    assert outcome == "returned", f"load_class_folders {outcome}: {ds!r}"
    assert sorted(r.name for r in ds) == ["a.png", "b.png"]
    assert ds.report.dropped == [("with_mask/pipe.png", REASON_NOT_REGULAR)]


@needs_fifo
def test_annotation_fifos_are_reported_not_read(tmp_path):
    write_png(tmp_path / "images" / "a.png")
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "a.xml").write_text(voc_xml("a.png", [("with_mask", (1, 2, 20, 25))]))
    os.mkfifo(tmp_path / "annotations" / "b.xml")
    try:
        outcome, ds = runs_within(30, load_voc, tmp_path)
    finally:
        unblock_fifo(tmp_path / "annotations" / "b.xml")
    assert outcome == "returned", f"load_voc {outcome}: {ds!r}"
    assert [r.name for r in ds] == ["a.png"]
    assert ds.report.dropped == [("annotations/b.xml", REASON_NOT_REGULAR)]
    base = tmp_path / "kaggle" / KAGGLE_DIR
    write_png(base / "images" / "1.png")
    (base / "annotations").mkdir(parents=True)
    (base / "annotations" / "1.png.json").write_text(kaggle_json("1.png", [((1, 2, 20, 25), "face_with_mask")]))
    os.mkfifo(base / "annotations" / "2.png.json")
    try:
        outcome, ds = runs_within(30, load_annotations, tmp_path / "kaggle")
    finally:
        unblock_fifo(base / "annotations" / "2.png.json")
    assert outcome == "returned", f"load_annotations {outcome}: {ds!r}"
    assert [r.name for r in ds] == ["1.png"]
    assert ds.report.dropped == [("annotations/2.png.json", REASON_NOT_REGULAR)]


@pytest.mark.skipif(not os.path.exists("/dev/zero") or not stat.S_ISCHR(os.stat("/dev/zero").st_mode), reason="no /dev/zero")
def test_device_is_refused_without_reading_it():
    outcome, value = runs_within(10, load_image, "/dev/zero")
    assert outcome == "raised", "load_image kept reading /dev/zero"
    assert isinstance(value, ImageError) and value.reason == REASON_NOT_REGULAR
    assert "/dev/zero: is a character device, not an image file" in str(value)


def test_folder_and_missing_file(tmp_path):
    with pytest.raises(ImageError, match="is a folder, not an image") as err:
        load_image(tmp_path)
    assert err.value.reason == REASON_NOT_REGULAR
    with pytest.raises(ImageError, match="nope.png: file not found") as err:
        load_image(tmp_path / "nope.png")
    assert isinstance(err.value, MaskeduError)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="permissions do not bind root")
def test_unreadable_file_names_the_file(tmp_path):
    path = write_png(tmp_path / "secret.png")
    path.chmod(0)
    try:
        with pytest.raises(ImageError, match="secret.png: cannot be opened") as err:
            load_image(path)
    finally:
        path.chmod(0o600)
    assert err.value.reason == REASON_UNREADABLE


def test_a_source_of_the_wrong_type_is_a_maskedu_error():
    for bad in (12, None, 3.5, ["a.png"]):
        with pytest.raises(ParameterTypeError, match="load_image"):
            load_image(bad)


# --------------------------------------------------------------------------- broken files


@pytest.mark.parametrize("name, data, fragment", [
    ("empty.png", b"", "not an image Pillow can read"),
    ("text.jpg", b"this is not an image at all" * 10, "not an image Pillow can read"),
    ("signature.png", b"\x89PNG\r\n\x1a\n", "not an image Pillow can read"),
    ("bad_crc.png", png_header_only(4, 4)[:29] + b"\0\0\0\0" + png_header_only(4, 4)[33:], "not an image Pillow can read"),
    ("no_pixels.png", png_header_only(4, 4), "could not be decoded"),
    ("cut.jpg", None, "could not be decoded"),
])
def test_broken_files_are_refused_with_their_name(tmp_path, name, data, fragment):
    if data is None:
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, format="JPEG")
        data = buf.getvalue()[:300]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageError, match=f"{name}: .*{fragment}") as err:
        load_image(path)
    assert err.value.reason == REASON_UNREADABLE and isinstance(err.value, MaskeduError)


# --------------------------------------------------------------------------- item 6d: a JSON annotation nested 100,000 deep


def test_json_nested_100000_deep_is_dropped_with_its_name(tmp_path):
    base = tmp_path / KAGGLE_DIR
    write_png(base / "images" / "1.png")
    write_png(base / "images" / "2.png")
    (base / "annotations").mkdir(parents=True)
    (base / "annotations" / "1.png.json").write_text(kaggle_json("1.png", [((1, 2, 20, 25), "face_with_mask")]))
    (base / "annotations" / "2.png.json").write_text('{"Annotations": ' + "[" * 100_000 + "]" * 100_000 + "}")
    ds = load_annotations(tmp_path)
    assert [r.name for r in ds] == ["1.png"]
    assert ds.report.dropped == [("annotations/2.png.json", "malformed JSON file")]
    assert any(n.startswith("annotations/2.png.json: nested too deeply") for n in ds.report.notes)


def test_numbers_too_large_for_a_float_are_malformed_boxes(tmp_path):
    base = tmp_path / KAGGLE_DIR
    write_png(base / "images" / "1.png")
    (base / "annotations").mkdir(parents=True)
    boxes = [((1, 2, 20, 25), "face_with_mask"), ((1, 2, 10 ** 400, 25), "face_no_mask")]
    (base / "annotations" / "1.png.json").write_text(kaggle_json("1.png", boxes))
    ds = load_annotations(tmp_path)
    assert [b.xyxy for b in ds[0].boxes] == [(1, 2, 20, 25)]
    assert ds.report.dropped == [("1.png.json[1]", REASON_MALFORMED_BOX)]
    assert check_box((0, 0, 10 ** 400, 5), 40, 30).reason == REASON_MALFORMED_BOX


def test_malformed_json_boxes_beside_a_csv_row_are_dropped_not_fatal(tmp_path):
    base = tmp_path / KAGGLE_DIR
    write_png(base / "images" / "1.png")
    (base / "annotations").mkdir(parents=True)
    boxes = [(("a", 1, 2, 3), "face_with_mask"), (([[1]], 2, 3, 4), "face_with_mask"),
             ((1, 2, 10 ** 400, 25), "face_no_mask"), ((1, 2, 20, 25), "face_with_mask")]
    (base / "annotations" / "1.png.json").write_text(kaggle_json("1.png", boxes))
    (tmp_path / "train.csv").write_text("name,x1,x2,y1,y2,classname\n1.png,1,2,20,25,face_with_mask\n")
    ds = load_annotations(tmp_path)
    assert [b.xyxy for b in ds[0].boxes] == [(1, 2, 20, 25)]
    assert ds.report.dropped == [(f"1.png.json[{i}]", REASON_MALFORMED_BOX) for i in range(3)]


def test_one_unreadable_csv_row_costs_only_that_row(tmp_path):
    base = tmp_path / KAGGLE_DIR
    for name in ("1.png", "2.png", "3.png"):
        write_png(base / "images" / name)
    (base / "annotations").mkdir(parents=True)
    (tmp_path / "train.csv").write_bytes(
        b"name,x1,x2,y1,y2,classname\n"
        b"1.png,1,2,20,25,face_with_mask\n"
        b"2.png,1,2,20,25," + b"x" * 200_000 + b"\n"  # longer than the csv module's field limit
        b"3.png,1,2,20,25,face_no_mask\xff\n"  # a byte that is not UTF-8
        b"2.png,3,4,30,28,face_no_mask\n"
    )
    ds = load_annotations(tmp_path)
    assert [(r.name, [b.xyxy for b in r.boxes]) for r in ds] == [
        ("1.png", [(1, 2, 20, 25)]), ("2.png", [(3, 4, 30, 28)]), ("3.png", [(1, 2, 20, 25)])]
    assert ds.report.dropped == [("train.csv line 3", "malformed CSV row (the csv module cannot read it)")]
    assert ds[2].boxes[0].raw_label == "face_no_mask\ufffd"
    assert any("train.csv line 3: field larger than field limit" in n for n in ds.report.notes)
    assert any("not valid UTF-8" in n for n in ds.report.notes)
    assert "3" in compare_with_kaggle(ds)  # reads train.csv again, past the same row
    assert csv_column_quirk(tmp_path, line=4).row[0] == "3.png"
    with pytest.raises(ValueError, match="line 3 is not a data row"):
        csv_column_quirk(tmp_path, line=3)


def test_voc_size_that_is_not_a_finite_number_is_ignored(tmp_path):
    write_png(tmp_path / "images" / "a.png")
    (tmp_path / "annotations").mkdir()
    for i, size in enumerate([("1e999", "30"), ("nan", "30"), ("40", "inf")]):
        (tmp_path / "annotations" / f"a{i}.xml").write_text(voc_xml("a.png", [("with_mask", (1, 2, 20, 25))], size=size))
    ds = load_voc(tmp_path)
    assert [r.name for r in ds] == ["a.png"] and (ds[0].width, ds[0].height) == (40, 30)
    assert ds.report.dropped == [("a1.xml", "another XML file already annotates this image"),
                                 ("a2.xml", "another XML file already annotates this image")]


# --------------------------------------------------------------------------- no process-wide state is changed

STATE_PROBE = r"""
import json, sys, threading, types, warnings
import numpy, PIL
from PIL import Image, ImageFile

ImageFile.LOAD_TRUNCATED_IMAGES = True   # a user's own choice, which the package must leave alone
Image.MAX_IMAGE_PIXELS = 123_456_789
writes = []

class Watched(types.ModuleType):
    def __setattr__(self, name, value):
        if name in ("MAX_IMAGE_PIXELS", "LOAD_TRUNCATED_IMAGES"):
            writes.append(f"{self.__name__}.{name} = {value!r}")
        super().__setattr__(name, value)

Image.__class__ = Watched
ImageFile.__class__ = Watched
filter_calls = []
for fn in ("simplefilter", "filterwarnings", "resetwarnings"):
    real = getattr(warnings, fn)
    def spy(*a, _real=real, _fn=fn, **k):
        filter_calls.append(_fn)
        return _real(*a, **k)
    setattr(warnings, fn, spy)
real_enter = warnings.catch_warnings.__enter__
def enter(self):
    filter_calls.append("catch_warnings")
    return real_enter(self)
warnings.catch_warnings.__enter__ = enter

before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, list(warnings.filters))
import maskedu.imaging as imaging, maskedu.annotations as annotations
paths = sys.argv[1:]

def load_all():
    for p in paths:
        for cap in (imaging.MAX_PIXELS, 50):
            try:
                imaging.load_image(p, max_pixels=cap)
            except imaging.ImageError:
                pass
        try:
            annotations.image_size(p)
        except imaging.ImageError:
            pass

load_all()
threads = [threading.Thread(target=load_all) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
after = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES, list(warnings.filters))
print(json.dumps({"unchanged": before == after, "before": repr(before[:2]), "after": repr(after[:2]),
                  "writes": writes, "filter_calls": filter_calls}))
"""


def test_importing_and_loading_change_no_process_wide_state(tmp_path):
    good = write_png(tmp_path / "good.png")
    cut = write_truncated(tmp_path / "cut.png")
    large = tmp_path / "large.png"
    large.write_bytes(png_header_only(12_000, 12_000))  # 144 MP: over Pillow's 89 MP warning limit
    bomb = write_bomb(tmp_path / "bomb.png")
    script = tmp_path / "probe.py"
    script.write_text(textwrap.dedent(STATE_PROBE))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, str(script), str(good), str(cut), str(large), str(bomb)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["writes"] == [], result
    assert result["filter_calls"] == [], result
    assert result["unchanged"], result


def test_a_user_setting_for_truncated_files_is_respected_and_ours_is_pillows_default(tmp_path):
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # Pillow's default, untouched: truncated files raise
    cut = write_truncated(tmp_path / "cut.png")
    with pytest.raises(ImageError, match="cut.png: could not be decoded") as err:
        load_image(cut)
    assert err.value.reason == REASON_UNREADABLE


# --------------------------------------------------------------------------- every image kind converts faithfully

INT_DTYPES = [np.uint8, np.uint16, np.uint32, np.int8, np.int16, np.int32]
FLOAT_DTYPES = [np.float16, np.float32, np.float64]


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_integer_arrays_are_scaled_over_their_own_range(dtype):
    info = np.iinfo(dtype)
    arr = np.array([[info.min, info.max, (int(info.min) + int(info.max)) // 2 + 1]], dtype=dtype)
    out = load_image(arr)
    assert out.dtype == np.uint8 and out.shape == (1, 3, 3)
    assert out[0, :, 0].tolist() == [0, 255, 128]


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_64_bit_integer_arrays_hold_8_bit_values(dtype):
    arr = np.array([[0, 128, 255]], dtype=dtype)
    assert load_image(arr)[0, :, 1].tolist() == [0, 128, 255]
    with pytest.raises(ImageError, match="256"):
        load_image(np.array([[0, 256]], dtype=dtype))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_float_arrays_in_0_1_are_scaled_and_others_refused(dtype):
    out = load_image(np.array([[0.0, 0.5, 1.0]], dtype=dtype))
    assert out[0, :, 2].tolist() == [0, 128, 255]
    for bad, words in ((2.0, "from 0 to 2"), (-0.5, "from -0.5 to 0"), (np.nan, "NaN"), (np.inf, "infinite")):
        with pytest.raises(ImageError, match=words):
            load_image(np.array([[0.0, bad]], dtype=dtype))


def test_bool_and_odd_dtypes():
    assert load_image(np.array([[False, True]]))[0, :, 0].tolist() == [0, 255]
    for arr in (np.zeros((2, 2), complex), np.array([["a", "b"]]), np.zeros((2, 2), object), np.zeros((0, 3, 3), np.uint8)):
        with pytest.raises(ImageError):
            load_image(arr)


def test_sixteen_bit_png_and_tiff_are_scaled_over_65535(tmp_path):
    data = np.array([[0, 257 * 100, 65535, 248]], np.uint16)
    for suffix in (".png", ".tif"):
        path = tmp_path / f"deep{suffix}"
        Image.fromarray(data).save(path)
        assert Image.open(path).mode == "I;16"
        assert load_image(path)[0, :, 0].tolist() == [0, 100, 255, 1]


def test_mode_i_images_are_16_bit_and_mode_f_images_are_0_to_1(tmp_path):
    pgm = tmp_path / "deep.pgm"
    pgm.write_bytes(b"P5\n3 1\n65535\n" + np.array([0, 257 * 40, 65535], ">u2").tobytes())
    assert Image.open(pgm).mode == "I"
    assert load_image(pgm)[0, :, 0].tolist() == [0, 40, 255]
    wide = tmp_path / "wide.tif"
    Image.fromarray(np.array([[0, -7, 70_000]], np.int32)).save(wide)
    with pytest.raises(ImageError, match=r"wide\.tif: .*-7 to 70000"):
        load_image(wide)
    unit = tmp_path / "unit.tif"
    Image.fromarray(np.array([[0.0, 0.25, 1.0]], np.float32)).save(unit)
    assert load_image(unit)[0, :, 0].tolist() == [0, 64, 255]
    hot = tmp_path / "hot.tif"
    Image.fromarray(np.array([[0.0, 7.0]], np.float32)).save(hot)
    with pytest.raises(ImageError, match=r"hot\.tif: .*from 0 to 7"):
        load_image(hot)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "I;16", "I", "F"])
def test_pil_images_of_every_mode_keep_black_and_white(mode):
    """Black stays black and white stays white: no mode is clipped to one end."""
    rgb = Image.fromarray(np.array([[[0, 0, 0], [255, 255, 255]]], np.uint8))
    if mode in ("I;16",):
        img = Image.fromarray(np.array([[0, 65535]], np.uint16))
    elif mode == "I":
        img = Image.fromarray(np.array([[0, 65535]], np.int32))
    elif mode == "F":
        img = Image.fromarray(np.array([[0.0, 1.0]], np.float32))
    elif mode == "PA":
        img = rgb.convert("P").convert("PA")
    else:
        img = rgb.convert(mode)
    assert img.mode == mode
    out = load_image(img)
    assert out.shape == (1, 2, 3) and out.dtype == np.uint8
    assert out[0, 0].max() <= 2 and out[0, 1].min() >= 253, out.tolist()


# --------------------------------------------------------------------------- property-based: arrays of every dtype and shape

ANY_DTYPE = st.one_of(
    hnp.integer_dtypes(endianness="="), hnp.unsigned_integer_dtypes(endianness="="),
    hnp.floating_dtypes(endianness="="), hnp.boolean_dtypes(), hnp.complex_number_dtypes(endianness="="),
    st.just(np.dtype("U3")), st.just(np.dtype("M8[s]")),
)


def expected_uint8(arr: np.ndarray) -> np.ndarray | None:
    """What load_image's documented scaling gives for one channel, or None where it must refuse."""
    kind = arr.dtype.kind
    if kind == "b":
        return arr.astype(np.uint8) * 255
    if kind in "iu" and arr.dtype.itemsize == 8:
        return arr.astype(np.uint8) if arr.size and arr.min() >= 0 and arr.max() <= 255 else None
    if kind in "iu":
        info = np.iinfo(arr.dtype)
        return np.rint((arr.astype(np.float64) - info.min) * 255.0 / (int(info.max) - int(info.min))).astype(np.uint8)
    if kind == "f":
        a = arr.astype(np.float64)
        if not np.isfinite(a).all() or (a.size and (a.min() < 0 or a.max() > 1)):
            return None
        return np.rint(a * 255.0).astype(np.uint8)
    return None


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(ANY_DTYPE, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)))
def test_load_image_on_any_array(arr):
    try:
        out = load_image(arr)
    except ImageError as exc:
        assert isinstance(exc, MaskeduError) and str(exc)
        return
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and out.flags.c_contiguous
    assert arr.ndim in (2, 3) and out.shape[:2] == arr.shape[:2] and min(arr.shape[:2]) >= 1
    first = arr if arr.ndim == 2 else arr[:, :, 0]
    want = expected_uint8(first)
    assert want is not None, f"{arr.dtype} {arr!r} should have been refused"
    assert np.array_equal(out[:, :, 0], want)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(INT_DTYPES + FLOAT_DTYPES + [np.bool_]), st.integers(1, 4), st.integers(1, 4), st.sampled_from([None, 1, 3, 4]))
def test_extremes_of_every_dtype_map_to_black_and_white(dtype, h, w, channels):
    if np.dtype(dtype).kind == "f":
        lo, hi = 0.0, 1.0
    elif dtype is np.bool_:
        lo, hi = False, True
    else:
        lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    shape = (h, w) if channels is None else (h, w, channels)
    assert (load_image(np.full(shape, lo, dtype)) == 0).all()
    assert (load_image(np.full(shape, hi, dtype)) == 255).all()


def small_files() -> dict[str, bytes]:
    rgb = np.random.default_rng(1).integers(0, 255, (6, 7, 3), dtype=np.uint8)
    out = {}
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format=fmt)
        out[fmt] = buf.getvalue()
    return out


SMALL_FILES = small_files()


@pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # Pillow's own notes on the damaged TIFFs
@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(SMALL_FILES)), st.data())
def test_load_image_on_damaged_files(fmt, data):
    """Overwrite, cut or extend a real file at random: the result is a picture or an ImageError, nothing else."""
    raw = bytearray(SMALL_FILES[fmt])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at : at + 4] = data.draw(st.binary(min_size=1, max_size=4))
    raw = raw[: data.draw(st.integers(0, len(raw)))] + data.draw(st.binary(max_size=8))
    try:
        out = load_image(bytes(raw), max_pixels=1_000_000)
    except ImageError as exc:
        assert exc.reason in (REASON_UNREADABLE, REASON_TOO_LARGE)
        return
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


# --------------------------------------------------------------------------- property-based: the annotation loaders

# Text any dataset could hold: every character XML can carry (no control, surrogate or unassigned ones).
XML_CHARS = st.characters(blacklist_categories=("Cs", "Cc", "Cn"))
COORD = st.one_of(
    st.integers(-50, 120), st.floats(-50, 120, allow_nan=False), st.just(float("nan")), st.just(float("inf")),
    st.just(10 ** 400), st.text(XML_CHARS, max_size=3),
)
CLASS = st.text(XML_CHARS, min_size=1, max_size=12)
FACES = st.lists(st.tuples(st.tuples(COORD, COORD, COORD, COORD), CLASS), min_size=1, max_size=5)


def box_verdict(box) -> tuple[tuple | None, str | None]:
    verdict = check_box(box, 40, 30)
    return verdict.box, verdict.reason


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FACES)
def test_kaggle_json_loader_on_generated_boxes(faces):
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / KAGGLE_DIR
        write_png(base / "images" / "1.png")
        (base / "annotations").mkdir(parents=True)
        annos = [{"BoundingBox": [c if not isinstance(c, float) or np.isfinite(c) else str(c) for c in box], "classname": name}
                 for box, name in faces]
        (base / "annotations" / "1.png.json").write_text(json.dumps({"FileName": "1.png", "Annotations": annos}))
        # A train.csv row for the same image: the loader compares it with every JSON box (and keeps the JSON).
        (Path(tmp) / "train.csv").write_text("name,x1,x2,y1,y2,classname\n1.png,1,2,20,25,face_with_mask\n")
        try:
            ds = load_annotations(tmp)
        except MaskeduError:
            return
        kept = [b for r in ds for b in r.boxes]
        expected, reasons = [], []
        for i, (box, name) in enumerate(faces):
            raw = [c if not isinstance(c, float) or np.isfinite(c) else str(c) for c in box]
            xyxy, reason = box_verdict(raw)
            if xyxy is None:
                reasons.append((f"1.png.json[{i}]", reason))
            else:
                expected.append((xyxy, name.strip()))
        assert [(b.xyxy, b.raw_label) for b in kept] == expected
        for item in reasons:
            assert item in ds.report.dropped


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FACES)
def test_voc_loader_on_generated_boxes(faces):
    from xml.sax.saxutils import escape

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_png(root / "images" / "a.png")
        (root / "annotations").mkdir()
        (root / "annotations" / "a.xml").write_text(
            voc_xml("a.png", [(escape(name), tuple(escape(str(c)) for c in box)) for box, name in faces]), encoding="utf-8")
        try:
            ds = load_voc(root)
        except MaskeduError:
            return
        kept = [b for r in ds for b in r.boxes]
        expected = []
        for i, (box, name) in enumerate(faces):
            xyxy, reason = box_verdict([str(c) for c in box])
            if not name.strip():
                assert (f"a.xml object {i}", "malformed object in XML (no name or bndbox)") in ds.report.dropped
            elif xyxy is None:
                assert (f"a.xml object {i}", reason) in ds.report.dropped
            else:
                expected.append((xyxy, name.strip()))
        assert [(b.xyxy, b.raw_label) for b in kept] == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FACES)
def test_kaggle_csv_loader_on_generated_rows(faces):
    import csv

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_png(root / KAGGLE_DIR / "images" / "1.png")
        (root / KAGGLE_DIR / "annotations").mkdir(parents=True)
        with open(root / "train.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["name", "x1", "x2", "y1", "y2", "classname"])
            for box, name in faces:
                writer.writerow(["1.png", *box, name])
        try:
            ds = load_annotations(root)
        except MaskeduError:
            return
        kept = [b for r in ds for b in r.boxes]
        expected = []
        for i, (box, name) in enumerate(faces):
            item = f"train.csv line {i + 2}"
            try:
                values = [float(str(c)) for c in box]
            except ValueError:
                assert (item, "malformed CSV row (a coordinate is not a number)") in ds.report.dropped
                continue
            xyxy, reason = box_verdict(values)  # read by position: the values are x1, y1, x2, y2
            if xyxy is None:
                assert (item, reason) in ds.report.dropped
            else:
                expected.append((xyxy, name.strip()))
        assert [(b.xyxy, b.raw_label) for b in kept] == expected
