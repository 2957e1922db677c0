"""Notebook 01's "nothing is dropped silently" checked on PASCAL VOC data (real PNG files, real XML files), also
when fast mode keeps only some images of a chosen folder."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from maskedu import claims
from maskedu import download as dl
from maskedu.annotations import load_dataset


def _voc(root: Path, n: int = 6) -> Path:
    """``n`` photos of two faces each; one XML with a malformed object, one whose image is missing, one broken."""
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for i in range(n):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (80, 100, 3), dtype=np.uint8)).save(
            root / "images" / f"p{i}.png")
        objects = [("with_mask", (5, 5, 30, 35)), ("without_mask", (50, 10, 80, 45))]
        body = "".join(f"<object><name>{c}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{x}</xmax>"
                       f"<ymax>{y}</ymax></bndbox></object>" for c, (a, b, x, y) in objects)
        if i == 1:
            body += "<object><name>with_mask</name></object>"  # no bndbox: the loader drops this object
        (root / "annotations" / f"p{i}.xml").write_text(f"<annotation><filename>p{i}.png</filename>{body}</annotation>")
    (root / "images" / "p2.png").unlink()  # its XML's image is missing
    (root / "annotations" / "p3.xml").write_text("<annotation><filename>p3.png")  # malformed
    return root


def test_voc_data_is_counted_object_by_object(tmp_path):
    ds = load_dataset(_voc(tmp_path / "voc"))
    c = claims.check_nothing_dropped_silently(ds, display=False)
    assert c.holds, c
    assert c.figures["annotation files"] == 6 and c.figures["boxes in them"] == 5 * 2 + 1  # p3 unreadable, p1 one more
    assert c.figures["kept"] == sum(len(r.boxes) for r in ds.images) == 8
    assert c.figures["listed as dropped"] == 3  # p1's malformed object, p2's two boxes
    lost = copy.deepcopy(ds)
    lost.images[0].boxes.pop()  # a box lost without a word
    c = claims.check_nothing_dropped_silently(lost, display=False)
    assert c.contradicted and c.figures["unaccounted for"] == 1 and "p0.xml" in c.detail
    silent = copy.deepcopy(ds)
    silent.report.dropped.clear()  # the same damage, not reported: p1's object, p2's image, p3's file
    assert claims.check_nothing_dropped_silently(silent, display=False).figures["unaccounted for"] == 3
    gone = dataclasses.replace(ds, images=ds.images[1:])  # an image lost outside fast mode
    c = claims.check_nothing_dropped_silently(gone, display=False)
    assert c.contradicted and "images fast mode left out" not in c.figures


def test_fast_mode_leaves_images_out_in_the_open(tmp_path, monkeypatch):
    root = _voc(tmp_path / "voc", n=12)
    monkeypatch.setattr(dl.choose, "FAST_IMAGES", 4)
    monkeypatch.setenv("MASKEDU_FAST", "1")
    ds = dl.get_dataset(root, verbose=False)
    assert len(ds) == 4
    c = claims.check_nothing_dropped_silently(ds, display=False)
    assert c.holds, c
    assert c.figures["images fast mode left out"] == ds.report.images_kept - 4 > 0
    fewer = dataclasses.replace(ds, images=ds.images[1:])  # not what fast mode keeps: the missing one is lost
    assert claims.check_nothing_dropped_silently(fewer, display=False).contradicted


def test_class_folders_have_nothing_to_count(tmp_path):
    for i, label in enumerate(("with_mask", "without_mask")):
        (tmp_path / "f" / label).mkdir(parents=True)
        Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "f" / label / f"{i}.png")
    c = claims.check_nothing_dropped_silently(load_dataset(tmp_path / "f"), display=False)
    assert c.verdict == claims.TOO_LITTLE
