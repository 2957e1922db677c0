"""The shared figure helpers draw what they are given and refuse bad input clearly."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from maskedu import plotting
from maskedu.annotations import DEFAULT_CLASS_MAP, Dataset, FaceBox, ImageRecord, LoadReport


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _rects(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


@pytest.fixture
def dataset(tmp_path):
    records = []
    for i in range(5):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((40, 60, 3), 40 * i, np.uint8)).save(path)
        boxes = [FaceBox(5, 5, 25, 30, "with_mask", "face_with_mask"), FaceBox(30, 5, 55, 35, None, "hat")] if i % 2 else [
            FaceBox(10, 10, 30, 30, "without_mask", "face_no_mask")]
        records.append(ImageRecord(path, boxes, None, 60, 40))
    return Dataset(tmp_path, "kaggle", records, dict(DEFAULT_CLASS_MAP), LoadReport())


def test_show_boxes_draws_each_box_in_its_class_colour():
    img = np.zeros((60, 80, 3), np.uint8)
    fig = plotting.show_boxes(img, [(10, 10, 40, 50), FaceBox(45, 5, 70, 30, "without_mask", "face_no_mask")], None)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    rects = _rects(ax)
    assert len(rects) == 2
    assert rects[0].get_xy() == (10, 10) and rects[0].get_width() == 30 and rects[0].get_height() == 40
    assert matplotlib.colors.to_hex(rects[1].get_edgecolor()) == plotting.CLASS_COLOURS["without_mask"]
    assert [t.get_text() for t in ax.texts] == ["without_mask"]


def test_show_boxes_labels_must_match_boxes():
    with pytest.raises(ValueError, match="one label per box"):
        plotting.show_boxes(np.zeros((10, 10, 3), np.uint8), [(1, 1, 5, 5)], ["a", "b"])
    with pytest.raises(ValueError, match=r"\(x1, y1, x2, y2\)"):
        plotting.show_boxes(np.zeros((10, 10, 3), np.uint8), [(1, 1, 5)])


def test_show_boxes_on_a_record_and_into_a_given_axes(dataset):
    fig, axes = plt.subplots(1, 2)
    out = plotting.show_boxes(dataset[1], ax=axes[1])
    assert out is fig and len(_rects(axes[1])) == 2 and not _rects(axes[0])
    assert [t.get_text() for t in axes[1].texts] == ["with_mask", "hat"]
    raw = plotting.show_record(dataset[1], raw=True)
    assert [t.get_text() for t in raw.axes[0].texts] == ["face_with_mask", "hat"]


def test_image_grid_and_dataset_grid(dataset):
    fig = plotting.image_grid([r.path for r in dataset], titles=list("abcde"), ncols=2)
    visible = [a for a in fig.axes if a.get_visible()]
    assert len(fig.axes) == 6 and len(visible) == 5
    assert [a.get_title() for a in visible] == list("abcde")
    fig = plotting.dataset_grid(dataset, n=4, ncols=2, seed=1)
    shown = [a for a in fig.axes if a.get_visible()]
    assert len(shown) == 4 and all(_rects(a) for a in shown)
    with pytest.raises(ValueError, match="one per image"):
        plotting.image_grid([np.zeros((5, 5, 3), np.uint8)], titles=["a", "b"])
    with pytest.raises(ValueError, match="at least one image"):
        plotting.image_grid([])


def test_class_bar_chart_counts_and_reference():
    fig = plotting.class_bar_chart({"with_mask": 12, "without_mask": 30})
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == [30, 12]  # sorted, largest first
    assert [t.get_text() for t in ax.get_xticklabels()] == ["without_mask", "with_mask"]
    fig = plotting.class_bar_chart({"with_mask": 12, "without_mask": 30}, reference={"with_mask": 4180, "without_mask": 1569}, names=("ours", "paper"))
    ax = fig.axes[0]
    assert len(ax.patches) == 4 and [t.get_text() for t in ax.get_legend().get_texts()] == ["ours", "paper"]
    many = plotting.class_bar_chart({f"class{i}": i + 1 for i in range(20)}, class_map={"class3": "with_mask"})
    assert len(many.axes[0].patches) == 20 and many.axes[0].patches[0].get_width() == 20  # horizontal
    with pytest.raises(TypeError, match="mapping"):
        plotting.class_bar_chart([1, 2])


def test_size_histogram_marks_the_threshold():
    fig = plotting.size_histogram([20, 35, 50, 80, 400], threshold=50)
    ax = fig.axes[0]
    assert any("40% below 50 px" in t.get_text() for t in ax.texts)
    assert sum(p.get_height() for p in ax.patches) == 5
    with pytest.raises(ValueError, match="no sizes"):
        plotting.size_histogram([])
    with pytest.raises(ValueError, match="positive"):
        plotting.size_histogram([0, 5])


def test_colours_are_stable():
    assert plotting.colour_for("with_mask") == "#0072b2" and plotting.colour_for(None) == "#9e9e9e"
    assert plotting.colour_for("hat") == plotting.colour_for("hat")


def test_show_column_quirk_draws_both_readings(tmp_path):
    import json

    from maskedu.annotations import csv_column_quirk

    base = tmp_path / "Medical mask" / "Medical mask" / "Medical Mask"
    (base / "annotations").mkdir(parents=True)
    (base / "images").mkdir()
    Image.fromarray(np.zeros((80, 100, 3), np.uint8)).save(base / "images" / "1801.jpg")
    (base / "annotations" / "1801.jpg.json").write_text(
        json.dumps({"FileName": "1801.jpg", "Annotations": [{"BoundingBox": [10, 5, 40, 60], "classname": "face_with_mask"}]})
    )
    (tmp_path / "train.csv").write_text("name,x1,x2,y1,y2,classname\n1801.jpg,10,5,40,60,face_with_mask\n")
    quirk = csv_column_quirk(tmp_path)
    assert quirk.image_path == base / "images" / "1801.jpg"
    fig = plotting.show_column_quirk(quirk)
    left, right = fig.axes
    # header reading (10, 40, 5, 60) is inverted: nothing drawn but the dashed JSON box
    assert len(_rects(left)) == 1 and "inverted" in left.get_title()
    assert len(_rects(right)) == 2
    assert {r.get_xy() for r in _rects(right)} == {(10, 5)}
    with pytest.raises(ValueError, match="one colour per box"):
        plotting.show_boxes(np.zeros((10, 10, 3), np.uint8), [(1, 1, 5, 5)], colors=["red", "blue"])


def test_show_boxes_is_the_one_box_drawer_keypoints_and_line_styles():
    fig = plotting.show_boxes(np.zeros((60, 80, 3), np.uint8), [(10, 10, 40, 50), (45, 5, 70, 30)], ["0.99", ""],
                              colors=["#ffeb3b", "#0072b2"], linestyles=["-", "--"],
                              keypoints=[{"left_eye": (20, 20), "right_eye": (30, 20), "nose": (25, 30)}, None])
    ax = fig.axes[0]
    assert [r.get_linestyle() for r in _rects(ax)] == ["-", "--"]
    assert len(ax.collections) == 1 and len(ax.collections[0].get_offsets()) == 3  # one face's three points
    assert [t.get_text() for t in ax.texts] == ["0.99"]
    with pytest.raises(ValueError, match="1 linestyles for 2 boxes"):
        plotting.show_boxes(np.zeros((60, 80, 3), np.uint8), [(1, 1, 5, 5), (2, 2, 6, 6)], linestyles=["-"])


def test_figures_are_built_without_pyplot_so_they_show_once(dataset):
    figs = [plotting.show_boxes(np.zeros((10, 10, 3), np.uint8), [(1, 1, 5, 5)]),
            plotting.image_grid([r.path for r in dataset], ncols=2)]
    assert all(isinstance(f, Figure) for f in figs) and plt.get_fignums() == []
