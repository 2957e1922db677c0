"""The dataset loaders on hand-written edge cases, and box handling checked by property-based tests."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from maskedu.annotations import (
    CLASS_NAMES,
    DEFAULT_CLASS_MAP,
    KAGGLE_CLASS_NAMES,
    LoadReport,
    REASON_EMPTY,
    REASON_INVERTED,
    REASON_MALFORMED_BOX,
    REASON_OUTSIDE,
    LayoutError,
    check_box,
    check_class_map,
    csv_column_quirk,
    detect_layout,
    find_kaggle_layout,
    image_size,
    load_annotations,
    load_class_folders,
    load_dataset,
    load_voc,
)

KAGGLE_DIR = Path("Medical mask") / "Medical mask" / "Medical Mask"
HEADER = "name,x1,x2,y1,y2,classname"


# --------------------------------------------------------------------------- tiny datasets written by hand


def write_image(path: Path, width: int = 100, height: int = 80, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(path.name))
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path, format=fmt)
    return path


def write_json(folder: Path, image_name: str, annos, file_name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "FileName": file_name or image_name,
        "NumOfAnno": len(annos),
        "Annotations": [
            {"isProtected": False, "ID": 924868908868875000 + i, "BoundingBox": list(box), "classname": cls, "Confidence": 1, "Attributes": {}}
            for i, (box, cls) in enumerate(annos)
        ],
    }
    path = folder / f"{image_name}.json"
    path.write_text(json.dumps(payload))
    return path


def csv_line(name, box, cls):
    """A train.csv row as Kaggle writes it: the values in x1, y1, x2, y2 order under the x1,x2,y1,y2 header."""
    x1, y1, x2, y2 = box
    return f"{name},{x1},{y1},{x2},{y2},{cls}"


def kaggle_dataset(root: Path, images: dict, *, csv: bool = True, json_files: bool = True, extra_csv=(), sub=KAGGLE_DIR):
    """``images``: name -> (width, height, [(box, class), ...]). Writes the Kaggle layout under ``root``."""
    base = root / sub
    (base / "images").mkdir(parents=True, exist_ok=True)
    (base / "annotations").mkdir(parents=True, exist_ok=True)
    lines = [HEADER]
    for name, (w, h, annos) in images.items():
        if w is not None:
            write_image(base / "images" / name, w, h)
        if json_files and annos is not None:
            write_json(base / "annotations", name, annos)
        if csv and annos is not None:
            lines += [csv_line(name, box, cls) for box, cls in annos]
    lines += list(extra_csv)
    if csv:
        (root / "train.csv").write_text("\n".join(lines) + "\n")
    return root


# --------------------------------------------------------------------------- properties of box handling

coord = st.floats(min_value=-500, max_value=1500, allow_nan=False, allow_infinity=False)
side = st.integers(min_value=1, max_value=1200)


@settings(max_examples=300, deadline=None)
@given(x1=coord, y1=coord, x2=coord, y2=coord, w=side, h=side)
def test_kept_boxes_lie_inside_the_image_and_are_never_inverted(x1, y1, x2, y2, w, h):
    verdict = check_box((x1, y1, x2, y2), w, h)
    if verdict.ok:
        bx1, by1, bx2, by2 = verdict.box
        assert all(isinstance(v, int) for v in verdict.box)
        assert 0 <= bx1 < bx2 <= w and 0 <= by1 < by2 <= h
        # the kept box covers the part of the original inside the image
        assert bx1 <= max(x1, 0) and by1 <= max(y1, 0) and bx2 >= min(x2, w) and by2 >= min(y2, h)
        assert verdict.clipped == (x1 < 0 or y1 < 0 or x2 > w or y2 > h)
        assert verdict.reason is None
    else:
        assert verdict.reason in {REASON_INVERTED, REASON_EMPTY, REASON_OUTSIDE}


@settings(max_examples=200, deadline=None)
@given(x1=coord, y1=coord, x2=coord, y2=coord, w=side, h=side)
def test_degenerate_boxes_are_refused_for_the_right_reason(x1, y1, x2, y2, w, h):
    verdict = check_box((x1, y1, x2, y2), w, h)
    if x2 < x1 or y2 < y1:
        assert verdict.reason == REASON_INVERTED
    elif x2 == x1 or y2 == y1:
        assert verdict.reason == REASON_EMPTY
    elif min(x2, w) > max(x1, 0) and min(y2, h) > max(y1, 0):
        assert verdict.ok, "a box overlapping the image with positive area must be kept"
    else:
        assert verdict.reason == REASON_OUTSIDE


@settings(max_examples=100, deadline=None)
@given(w=side, h=side, data=st.data())
def test_boxes_inside_the_image_pass_unchanged(w, h, data):
    x1 = data.draw(st.integers(0, w - 1))
    y1 = data.draw(st.integers(0, h - 1))
    x2 = data.draw(st.integers(x1 + 1, w))
    y2 = data.draw(st.integers(y1 + 1, h))
    assert check_box((x1, y1, x2, y2), w, h).box == (x1, y1, x2, y2)
    assert not check_box((x1, y1, x2, y2), w, h).clipped


@pytest.mark.parametrize("box", [(1, 2, 3), ("a", 1, 2, 3), (0, 0, float("nan"), 5), (0, 0, float("inf"), 5), None])
def test_malformed_boxes_are_refused(box):
    assert check_box(box, 10, 10).reason == REASON_MALFORMED_BOX


# --------------------------------------------------------------------------- class maps


def test_default_class_map_covers_the_20_kaggle_classes():
    assert set(DEFAULT_CLASS_MAP) == set(KAGGLE_CLASS_NAMES) and len(KAGGLE_CLASS_NAMES) == 20
    assert DEFAULT_CLASS_MAP["face_with_mask"] == "with_mask" and DEFAULT_CLASS_MAP["face_no_mask"] == "without_mask"
    assert sum(v is not None for v in DEFAULT_CLASS_MAP.values()) == 2


def test_class_map_values_are_validated():
    with pytest.raises(ValueError, match="values must be 'with_mask', 'without_mask'"):
        check_class_map({"face_with_mask": "mask"})
    with pytest.raises(TypeError, match="class_map must be a dict"):
        check_class_map(["face_with_mask"])
    assert check_class_map(None) == DEFAULT_CLASS_MAP and check_class_map(None) is not DEFAULT_CLASS_MAP


# --------------------------------------------------------------------------- the Kaggle layout

GOOD = {
    "1801.jpg": (100, 80, [((10, 5, 40, 60), "face_with_mask"), ((50, 10, 90, 70), "face_no_mask"), ((1, 2, 9, 8), "hat")]),
    "1802.png": (120, 90, [((20, 30, 60, 85), "face_no_mask")]),
}


def test_loads_the_kaggle_layout_and_reads_the_csv_by_position(tmp_path):
    ds = load_annotations(kaggle_dataset(tmp_path, GOOD))
    assert ds.layout == "kaggle" and len(ds) == 2
    boxes = {r.name: [b.xyxy for b in r.boxes] for r in ds}
    assert boxes["1801.jpg"] == [(10, 5, 40, 60), (50, 10, 90, 70), (1, 2, 9, 8)]
    assert ds.class_counts() == Counter({"without_mask": 2, "with_mask": 1})
    assert ds.raw_class_counts()["hat"] == 1 and ds.report.raw_class_counts == ds.raw_class_counts()
    hat = [b for r in ds for b in r.boxes if b.raw_label == "hat"][0]
    assert hat.label is None
    assert ds[0].width == 100 and ds[0].height == 80
    assert ds.report.dropped == [] and ds.report.images_kept == 2 and ds.report.boxes_kept == 4
    assert any("values are x1,y1,x2,y2" in n and "4 of 4" in n for n in ds.report.notes)


def test_csv_only_dataset_is_read_by_position(tmp_path):
    ds = load_annotations(kaggle_dataset(tmp_path, GOOD, json_files=False))
    assert [b.xyxy for b in ds[0].boxes] == [(10, 5, 40, 60), (50, 10, 90, 70), (1, 2, 9, 8)]
    assert any("no JSON annotation files" in n for n in ds.report.notes)


def test_a_csv_that_follows_its_header_is_detected(tmp_path):
    kaggle_dataset(tmp_path, GOOD)
    lines = [HEADER] + [f"{n},{b[0]},{b[2]},{b[1]},{b[3]},{c}" for n, (_, _, a) in GOOD.items() for b, c in a]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    ds = load_annotations(tmp_path)
    assert ds.report.dropped == []
    assert any("header order" in n for n in ds.report.notes)
    forced = load_annotations(tmp_path, csv_order="position")
    assert forced.report.dropped_by_reason["CSV row disagrees with the image's JSON (the JSON boxes were kept)"] == 4


def test_json_only_and_csv_only_images_are_both_loaded_and_noted(tmp_path):
    kaggle_dataset(tmp_path, GOOD)
    base = tmp_path / KAGGLE_DIR
    write_image(base / "images" / "2000.jpg")
    write_json(base / "annotations", "2000.jpg", [((5, 5, 30, 30), "face_with_mask")])
    write_image(base / "images" / "2001.jpg")
    with open(tmp_path / "train.csv", "a") as f:
        f.write(csv_line("2001.jpg", (6, 7, 30, 40), "face_no_mask") + "\n")
    ds = load_annotations(tmp_path)
    names = {r.name: r for r in ds}
    assert names["2000.jpg"].boxes[0].xyxy == (5, 5, 30, 30)
    assert names["2001.jpg"].boxes[0].xyxy == (6, 7, 30, 40)
    notes = "\n".join(ds.report.notes)
    assert "JSON file but no train.csv row: 1 image" in notes
    assert "train.csv rows but no JSON file: 1 image" in notes


def test_missing_image_inverted_and_outside_boxes_are_reported(tmp_path):
    images = {
        "1801.jpg": (100, 80, [((10, 5, 40, 60), "face_with_mask"), ((40, 10, 20, 70), "face_no_mask")]),
        "1802.jpg": (100, 80, [((-5, -3, 30, 95), "face_no_mask"), ((150, 10, 190, 40), "face_with_mask")]),
        "1803.jpg": (100, 80, [((0, 0, 0, 10), "face_no_mask")]),
        "1804.jpg": (None, None, [((5, 5, 20, 20), "face_with_mask")]),  # no image on disk
    }
    ds = load_annotations(kaggle_dataset(tmp_path, images))
    reasons = ds.report.dropped_by_reason
    assert reasons[REASON_INVERTED] == 1
    assert reasons[REASON_OUTSIDE] == 1
    assert reasons[REASON_EMPTY] == 1
    assert reasons["image file missing"] == 1
    assert reasons["image has no usable box"] == 1  # 1803.jpg lost its only box
    assert ds.report.boxes_clipped == 1
    clipped = {r.name: r for r in ds}["1802.jpg"].boxes[0]
    assert clipped.xyxy == (0, 0, 30, 80)
    summary = ds.report.summary()
    assert "image file missing" in summary and "1804.jpg" in summary and "clipped" in summary
    # every annotation is either kept or listed with its reason
    assert ds.report.boxes_kept + sum(reasons[r] for r in (REASON_INVERTED, REASON_OUTSIDE, REASON_EMPTY)) + 1 == 6


def test_unknown_class_is_kept_unmapped_and_unknown_class_map_keys_reported(tmp_path):
    images = {"1801.jpg": (100, 80, [((10, 5, 40, 60), "face_with_mask"), ((50, 10, 90, 70), "alien_mask")])}
    ds = load_annotations(kaggle_dataset(tmp_path, images), class_map={**DEFAULT_CLASS_MAP, "face_with_mask_incorect": "without_mask"})
    assert ds.raw_class_counts()["alien_mask"] == 1
    assert [b.label for b in ds[0].boxes] == ["with_mask", None]
    notes = "\n".join(ds.report.notes)
    assert "alien_mask" in notes and "kept with label None" in notes
    assert "'face_with_mask_incorect' matches no class" in notes and "did you mean 'face_with_mask_incorrect'" in notes


def test_class_map_changes_the_labels(tmp_path):
    root = kaggle_dataset(tmp_path, GOOD)
    ds = load_annotations(root, class_map={"face_with_mask": "without_mask", "face_no_mask": "with_mask", "hat": "with_mask"})
    assert ds.class_counts() == Counter({"with_mask": 3, "without_mask": 1})
    assert ds.class_map["hat"] == "with_mask" and ds.class_map["turban"] is None
    again = load_annotations(root).remap({**DEFAULT_CLASS_MAP, "hat": "without_mask"})
    assert again.class_counts() == Counter({"without_mask": 3, "with_mask": 1})
    assert again.filter(raw_labels="hat").raw_class_counts() == Counter({"hat": 1})
    assert len(again.filter(labels=["with_mask"])) == 1


def test_malformed_json_falls_back_to_the_csv(tmp_path):
    root = kaggle_dataset(tmp_path, GOOD)
    (root / KAGGLE_DIR / "annotations" / "1802.png.json").write_text("{not json")
    ds = load_annotations(root)
    assert ds.report.dropped_by_reason["malformed JSON file"] == 1
    assert {r.name: [b.xyxy for b in r.boxes] for r in ds}["1802.png"] == [(20, 30, 60, 85)]
    assert any("read from train.csv instead: 1 image" in n for n in ds.report.notes)


def test_malformed_json_entries_and_csv_rows_are_reported(tmp_path):
    root = kaggle_dataset(tmp_path, GOOD, extra_csv=["1801.jpg,1,2,3", "1801.jpg,a,b,c,d,hat"])
    ann = root / KAGGLE_DIR / "annotations"
    (ann / "1801.jpg.json").write_text(json.dumps({"FileName": "1801.jpg", "Annotations": [
        {"BoundingBox": [10, 5, 40, 60], "classname": "face_with_mask"}, {"classname": "hat"}, {"BoundingBox": [1, 2], "classname": "hat"}]}))
    ds = load_annotations(root)
    reasons = ds.report.dropped_by_reason
    assert reasons["malformed CSV row (not 6 fields)"] == 1
    assert reasons["malformed CSV row (a coordinate is not a number)"] == 1
    assert reasons["malformed annotation entry (no BoundingBox or classname)"] == 1
    assert reasons[REASON_MALFORMED_BOX] == 1
    # the CSV's rows for 1801.jpg that the JSON lacks are reported as disagreements
    assert reasons["CSV row disagrees with the image's JSON (the JSON boxes were kept)"] == 2


def test_empty_csv_and_header_only_csv(tmp_path):
    root = kaggle_dataset(tmp_path, GOOD)
    (root / "train.csv").write_text("")
    ds = load_annotations(root)
    assert len(ds) == 2 and any("is empty" in n for n in ds.report.notes)
    (root / "train.csv").write_text(HEADER + "\n")
    assert len(load_annotations(root)) == 2


def test_test_split_images_are_counted_not_loaded(tmp_path):
    root = kaggle_dataset(tmp_path, GOOD)
    for i in range(3):
        write_image(root / KAGGLE_DIR / "images" / f"000{i}.jpg")
    (root / KAGGLE_DIR / "images" / "notes.txt").write_text("hello")
    ds = load_annotations(root)
    assert len(ds) == 2
    assert any("the Kaggle test split): 3 images" in n for n in ds.report.notes)
    assert ds.report.dropped_by_reason["not an image file"] == 1


def test_layout_found_when_nested_differently(tmp_path):
    root = kaggle_dataset(tmp_path, GOOD, sub=Path("archive") / "Medical Mask")
    assert find_kaggle_layout(root).images_dir == root / "archive" / "Medical Mask" / "images"
    assert len(load_annotations(root)) == 2
    assert detect_layout(root) == "kaggle"


def test_json_named_by_stem_and_filename_disagreement(tmp_path):
    base = tmp_path / KAGGLE_DIR
    write_image(base / "images" / "3000.jpg")
    write_json(base / "annotations", "3000", [((5, 5, 30, 30), "face_no_mask")], file_name="9999.jpg")
    ds = load_annotations(tmp_path)
    assert ds[0].name == "3000.jpg" and ds.class_counts()["without_mask"] == 1
    assert any("FileName" in n for n in ds.report.notes)
    assert any("no train.csv" in n for n in ds.report.notes)


def test_exif_rotation_swaps_the_size(tmp_path):
    img = Image.new("RGB", (60, 40))
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(tmp_path / "r.jpg", exif=exif)
    assert image_size(tmp_path / "r.jpg") == (40, 60)


def test_not_a_kaggle_folder_gives_a_clear_error(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(LayoutError, match="not in the Kaggle layout"):
        load_annotations(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_annotations(tmp_path / "nope")


def test_column_quirk_is_shown_on_one_row(tmp_path):
    quirk = csv_column_quirk(kaggle_dataset(tmp_path, GOOD), line=2)
    assert quirk.line == 2 and quirk.header == tuple(HEADER.split(","))
    assert quirk.by_position == (10, 5, 40, 60) and quirk.json_box == (10, 5, 40, 60)
    assert quirk.by_header == (10, 40, 5, 60)
    assert "read by position" in quirk.verdict
    text = str(quirk)
    assert "1801.jpg,10,5,40,60,face_with_mask" in text and "JSON BoundingBox" in text


# --------------------------------------------------------------------------- class folders


def folders(root: Path, spec: dict[str, int]) -> Path:
    for folder, n in spec.items():
        for i in range(n):
            write_image(root / folder / f"{i}.png", 40 + i, 50)
    return root


@pytest.mark.parametrize("names", [("with_mask", "without_mask"), ("WithMask", "WithoutMask"), ("mask", "no_mask"), ("with-mask", "without-mask")])
def test_class_folders_accept_common_spellings(tmp_path, names):
    ds = load_class_folders(folders(tmp_path, {names[0]: 3, names[1]: 2}))
    assert ds.layout == "folders" and not ds.annotated
    assert ds.class_counts() == Counter({"with_mask": 3, "without_mask": 2})
    assert ds[0].width == 40 and ds[0].height == 50
    assert detect_layout(tmp_path) == "folders"


def test_class_folders_report_strangers(tmp_path):
    root = folders(tmp_path, {"with_mask": 2, "without_mask": 2, "cats": 1, "mask_weared_incorrect": 1})
    (root / "with_mask" / "readme.txt").write_text("x")
    (root / "without_mask" / "broken.jpg").write_bytes(b"not really a jpeg")
    (root / "LICENSE").write_text("x")
    ds = load_class_folders(root)
    reasons = ds.report.dropped_by_reason
    assert len(ds) == 4
    assert reasons["not an image file"] == 1
    assert reasons["unreadable image"] == 1
    assert reasons["folder is not a class in class_map"] == 1
    assert reasons["folder's class maps to None in class_map"] == 1
    assert reasons["file outside the class folders"] == 1
    assert "cats/ (1 file" in ds.report.summary()


def test_class_folders_with_a_custom_map_and_a_nested_root(tmp_path):
    folders(tmp_path / "train", {"yes": 2, "no": 1})
    with pytest.raises(LayoutError, match="no class folders"):
        load_class_folders(tmp_path)
    ds = load_class_folders(tmp_path / "train", class_map={"yes": "with_mask", "no": "without_mask"})
    assert ds.class_counts() == Counter({"with_mask": 2, "without_mask": 1})
    with pytest.raises(ValueError, match="values must be"):
        load_class_folders(tmp_path / "train", class_map={"yes": "masked"})


@pytest.mark.realfaces
def test_class_folders_on_the_shared_photos(realfaces_dir):
    ds = load_dataset(realfaces_dir)
    assert ds.layout == "folders"
    assert ds.class_counts()["with_mask"] > 0 and ds.class_counts()["without_mask"] > 0
    assert len(ds) + len(ds.report.dropped) >= 600 - 5


# --------------------------------------------------------------------------- PASCAL VOC


def voc_xml(filename: str, size: tuple[int, int], objects) -> str:
    objs = "".join(
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated><occluded>0</occluded>"
        f"<difficult>0</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for name, b in objects
    )
    return (
        f"<annotation><folder>images</folder><filename>{filename}</filename><size><width>{size[0]}</width>"
        f"<height>{size[1]}</height><depth>3</depth></size><segmented>0</segmented>{objs}</annotation>"
    )


def test_voc_loader_copes_with_real_world_quirks(tmp_path):
    img, ann = tmp_path / "images", tmp_path / "annotations"
    ann.mkdir(parents=True)
    write_image(img / "maksssksksss0.png", 100, 80)
    (ann / "maksssksksss0.xml").write_text(voc_xml("maksssksksss0.png", (100, 80), [
        ("with_mask", (10, 10, 40, 50)), ("without_mask", (60, 20, 101, 81)), ("mask_weared_incorrect", (5, 5, 9, 9))]))
    write_image(img / "maksssksksss1.png", 100, 80)
    (ann / "maksssksksss1.xml").write_text(voc_xml("maksssksksss1.jpg", (100, 80), [("without_mask", (1, 1, 30, 30))]))
    write_image(img / "maksssksksss2.png", 100, 80)
    (ann / "maksssksksss2.xml").write_text("<annotation><filename>maksssksksss2.png</filename><object>")
    (ann / "maksssksksss3.xml").write_text(voc_xml("maksssksksss3.png", (100, 80), [("with_mask", (1, 1, 30, 30))]))
    write_image(img / "maksssksksss4.png", 100, 80)
    (ann / "maksssksksss4.xml").write_text(voc_xml("maksssksksss4.png", (100, 80), [("with_mask", (50, 10, 20, 30)), ("with_mask", (1, 1, 20, 20))]))

    assert detect_layout(tmp_path) == "voc"
    ds = load_dataset(tmp_path)
    assert ds.layout == "voc"
    by_name = {r.name: r for r in ds}
    assert set(by_name) == {"maksssksksss0.png", "maksssksksss1.png", "maksssksksss4.png"}
    assert by_name["maksssksksss0.png"].boxes[1].xyxy == (60, 20, 100, 80)
    assert [b.label for b in by_name["maksssksksss0.png"].boxes] == ["with_mask", "without_mask", None]
    assert ds.report.boxes_clipped == 1
    reasons = ds.report.dropped_by_reason
    assert reasons["malformed XML file"] == 1
    assert reasons["image file missing"] == 1
    assert reasons[REASON_INVERTED] == 1
    notes = "\n".join(ds.report.notes)
    assert "maksssksksss1.xml: <filename> 'maksssksksss1.jpg', used maksssksksss1.png" in notes
    assert "by the XML file's own name" in notes
    assert "clipped to the image: 1 box" in notes and "by up to 1 px" in notes
    assert "no XML annotation: 1 image (maksssksksss2.png)" in notes
    assert ds.raw_class_counts()["mask_weared_incorrect"] == 1


def test_unknown_layout_lists_the_known_ones(tmp_path):
    (tmp_path / "random").mkdir()
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(LayoutError) as err:
        load_dataset(tmp_path)
    message = str(err.value)
    assert "could not recognise the layout" in message
    assert "kaggle" in message and "voc" in message and "folders" in message and "file.txt" in message


def test_the_sample_dataset_passes_the_same_validation(sample_root):
    ds = load_dataset(sample_root)
    assert ds.layout == "kaggle" and len(ds) > 0
    assert not [r for r in ds.report.dropped_by_reason if r != "not an image file"], ds.report.summary()
    assert set(ds.class_counts()) <= set(CLASS_NAMES) and sum(ds.class_counts().values()) > 0
    quirk = csv_column_quirk(sample_root)
    assert quirk.json_box == quirk.by_position


def test_csv_without_a_header_keeps_its_first_row(tmp_path):
    root = kaggle_dataset(tmp_path, GOOD, json_files=False)
    lines = (root / "train.csv").read_text().splitlines()[1:]
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    ds = load_annotations(root)
    assert ds.report.boxes_kept == 4
    assert any("no header line" in n for n in ds.report.notes)


def test_image_names_differing_in_case_are_matched_and_noted(tmp_path):
    root = kaggle_dataset(tmp_path, GOOD, json_files=False)
    (root / "train.csv").write_text((root / "train.csv").read_text().replace("1802.png", "1802.PNG"))
    ds = load_annotations(root)
    assert len(ds) == 2 and ds.report.dropped == []
    assert any("ignoring case: 1 image (1802.PNG -> 1802.png)" in n for n in ds.report.notes)
    assert not any("test split" in n for n in ds.report.notes)


def test_nested_voc_and_class_map_passed_through_load_dataset(tmp_path):
    img, ann = tmp_path / "archive" / "images", tmp_path / "archive" / "annotations"
    ann.mkdir(parents=True)
    write_image(img / "a.png", 50, 40)
    (ann / "a.xml").write_text(voc_xml("a.png", (50, 40), [("mask_weared_incorrect", (1, 1, 20, 20)), ("with_mask", (20, 5, 40, 30))]))
    ds = load_dataset(tmp_path, class_map={"with_mask": "with_mask", "without_mask": "without_mask", "mask_weared_incorrect": "without_mask"})
    assert ds.layout == "voc" and ds.class_counts() == Counter({"with_mask": 1, "without_mask": 1})
    assert not any("<size>" in n for n in ds.report.notes)  # the XML size agrees with the file
    with pytest.raises(ValueError, match="not mapped classes"):
        ds.filter(labels=["mask"])
    with pytest.raises(ValueError, match="needs labels"):
        ds.filter()


def test_column_quirk_prefers_a_row_where_the_header_reading_looks_plausible(tmp_path):
    images = {
        "1801.jpg": (100, 80, [((30, 5, 60, 20), "face_with_mask")]),   # header reading (30, 60, 5, 20): inverted
        "1802.jpg": (100, 80, [((10, 30, 25, 60), "face_no_mask")]),   # header reading (10, 25, 30, 60): a box
    }
    root = kaggle_dataset(tmp_path, images)
    quirk = csv_column_quirk(root)
    assert quirk.line == 3 and quirk.by_header == (10, 25, 30, 60) and quirk.json_box == (10, 30, 25, 60)
    assert csv_column_quirk(root, line=2).by_header == (30, 60, 5, 20)
    with pytest.raises(ValueError, match="no readable data row"):
        csv_column_quirk(root, line=40)


def test_report_and_dataset_render_briefly_in_a_notebook(tmp_path):
    notes = [f"note {i}" for i in range(14)]
    report = LoadReport(images_kept=3, boxes_kept=5, boxes_clipped=1, notes=list(notes))
    for i in range(40):
        report.drop(f"{i}.jpg", "image file missing" if i % 2 else f"reason {i}")
    text = repr(report)
    assert text.startswith("LoadReport(kept 3 images, 5 boxes, 1 clipped; dropped 40 items: 20 × image file missing")
    assert "and 18 other reasons; 14 notes)" in text and "7.jpg" not in text
    page = report._repr_html_()
    assert page.count("<tr>") == 1 + 21 and "note 9" in page and "note 10" not in page and "4 more notes" in page
    assert "1.jpg, 3.jpg, 5.jpg" in page and "7.jpg" not in page       # three examples per reason
    root = kaggle_dataset(tmp_path, {"1.jpg": (100, 80, [((10, 10, 50, 60), "face_with_mask"), ((1, 1, 9, 9), "hat")])})
    ds = load_annotations(root)
    assert "faces: 1 with_mask, 0 without_mask, 1 of other classes" in ds._repr_html_()
    assert "LoadReport(kept 1 image, 2 boxes, 0 clipped; dropped nothing" in ds._repr_html_()
    assert str(ds.report) == ds.report.summary() != repr(ds.report)
