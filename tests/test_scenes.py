"""maskedu.scenes: matching detections to annotated faces, found rates by face size, and the scene benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from shared_photos import shared_folder

from maskedu.common import MaskeduError
from maskedu.scenes import (
    SIZE_BINS, SceneScores, face_side, match_faces, plot_found_by_size, score_scene, score_scenes,
    show_scene, size_bin,
)

ROOT = Path(__file__).resolve().parents[1]
JSON_KEYS = {"scenes", "faces", "recall", "recall_32up", "recall_by_side", "label_accuracy_found",
             "unmatched_detections", "baseline_recall", "baseline_recall_32up", "s_per_scene", "baseline_s_per_scene"}


@pytest.fixture(scope="module")
def shared_scenes() -> Path:
    return shared_folder("scenes")


# ---------------------------------------------------------------------------------------------- matching


def test_match_is_greedy_best_overlap_first_not_best_total():
    # detection 0 overlaps face 0 a lot and face 1 a little; detection 1 overlaps only face 0, a little less.
    # Greedy gives face 0 to detection 0 (its best overlap) and leaves detection 1 and face 1 unmatched,
    # where a best-total assignment (Hungarian) would pair both.
    faces = [(0, 0, 10, 10), (4, 0, 14, 10)]
    dets = [(1, 0, 11, 10), (-2, 0, 8, 10)]
    from maskedu.imaging import iou_matrix

    o = iou_matrix(dets, faces)
    assert o[0, 0] > o[1, 0] >= 0.4 and o[0, 1] >= 0.4 and o[1, 1] < 0.4  # the case is what it claims
    m = match_faces(dets, faces)
    assert [p[:2] for p in m.pairs] == [(0, 0)]
    assert m.unmatched_detections == [1] and m.missed_faces == [1]


def test_match_is_one_to_one_and_needs_iou_04():
    face = (0, 0, 100, 100)
    twice = match_faces([(0, 0, 100, 100), (2, 2, 100, 100)], [face])
    assert [p[:2] for p in twice.pairs] == [(0, 0)] and twice.unmatched_detections == [1]
    assert match_faces([(0, 0, 100, 40)], [face]).pairs == [(0, 0, 0.4)]  # IoU 0.40 exactly counts ...
    assert match_faces([(0, 0, 100, 41)], [face]).pairs[0][:2] == (0, 0)
    assert match_faces([(0, 0, 100, 39)], [face]).missed_faces == [0]  # ... 0.39 does not
    assert match_faces([(0, 0, 100, 39)], [face], min_iou=0.3).pairs[0][:2] == (0, 0)


def test_match_of_nothing():
    assert match_faces([], [(0, 0, 5, 5)]).missed_faces == [0]
    assert match_faces([(0, 0, 5, 5)], []).unmatched_detections == [0]


@pytest.mark.parametrize("bad, why", [([(0, 0, 1)], "N x 4"), ([(0, 0, np.nan, 3)], "NaN"), ("abc", "numbers")])
def test_match_rejects_bad_boxes(bad, why):
    with pytest.raises(MaskeduError, match=why):
        match_faces(bad, [(0, 0, 5, 5)])


def test_face_size_is_the_shorter_side_and_bins_are_half_open():
    assert face_side((10, 20, 40, 100)) == 30
    assert [size_bin(s) for s in (0, 15.99, 16, 31.9, 32, 63.9, 64, 500)] == \
        ["<16", "<16", "16-32", "16-32", "32-64", "32-64", "64+", "64+"]
    assert list(SIZE_BINS) == ["<16", "16-32", "32-64", "64+"]
    with pytest.raises(MaskeduError, match="0 or more"):
        size_bin(-1)


# ---------------------------------------------------------------------------------------------- scoring


def _crowd_scores() -> SceneScores:
    faces = [(0, 0, 10, 12), (20, 0, 45, 25), (50, 0, 100, 40), (200, 0, 300, 100), (400, 0, 470, 80)]
    classes = ["with_mask", "without_mask", "with_mask", "mask_weared_incorrect", "with_mask"]
    labels = ["with_mask", "without_mask", "with_mask", None, "with_mask"]
    dets = [(21, 0, 45, 25), (50, 0, 100, 40), (200, 0, 300, 100), (400, 0, 470, 80), (600, 0, 650, 50)]
    predicted = ["with_mask", "without_mask", "without_mask", "with_mask", "without_mask"]
    return score_scene(faces, classes, dets, predicted=predicted, labels=labels, seconds=0.5)


def test_score_scene_counts_by_size_class_and_label():
    s = _crowd_scores()
    assert s.faces == 5 and s.scenes == 1 and s.unmatched_detections == 1
    assert s.found.tolist() == [False, True, True, True, True]
    assert s.recall() == 0.8 and s.recall(32) == 1.0
    assert s.recall_by_side() == {"<16": 0.0, "16-32": 1.0, "32-64": 1.0, "64+": 1.0}
    assert s.faces_by_side() == {"<16": 1, "16-32": 1, "32-64": 1, "64+": 2}
    assert s.recall_by_class() == {"mask_weared_incorrect": 1.0, "with_mask": 2 / 3, "without_mask": 1.0}
    # found faces the classifier knows: without_mask->with_mask (wrong), with_mask->without_mask (wrong),
    # with_mask->with_mask (right); the mask worn incorrectly counts for finding only
    assert s.label_accuracy_found() == pytest.approx(1 / 3)
    assert s.s_per_scene() == 0.5


def test_scores_add_up_and_empty_rates_are_nan():
    s = _crowd_scores() + score_scene([(0, 0, 20, 20)], ["with_mask"], [])
    assert s.scenes == 2 and s.faces == 6 and s.recall() == pytest.approx(4 / 6)
    assert s.seconds == [0.5]
    empty = score_scene([], [], [(0, 0, 5, 5)])
    assert np.isnan(empty.recall()) and empty.unmatched_detections == 1
    assert np.isnan(empty.label_accuracy_found())
    assert empty.summary()["recall"] is None  # NaN prints as JSON null
    json.dumps(s.summary("x"))


def test_score_scene_rejects_mismatched_lists():
    with pytest.raises(MaskeduError, match="one per box"):
        score_scene([(0, 0, 5, 5)], [], [])
    with pytest.raises(MaskeduError, match="one per detection"):
        score_scene([(0, 0, 5, 5)], ["with_mask"], [(0, 0, 5, 5)], predicted=[])


def _write_voc(root: Path, scenes: dict[str, tuple[np.ndarray, list[tuple[tuple[int, int, int, int], str]]]]) -> Path:
    from PIL import Image

    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for name, (image, faces) in scenes.items():
        Image.fromarray(image).save(root / "images" / f"{name}.png")
        objects = "".join(f"<object><name>{c}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
                          f"<ymax>{b[3]}</ymax></bndbox></object>" for b, c in faces)
        h, w = image.shape[:2]
        (root / "annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.png</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size>{objects}</annotation>")
    return root


def test_score_scenes_reads_a_voc_dataset_and_what_detect_masks_returned(tmp_path):
    from maskedu.annotations import load_voc
    from maskedu.detect import FaceResult, ImageResult

    blank = np.full((120, 200, 3), 90, np.uint8)
    root = _write_voc(tmp_path / "voc", {
        "a": (blank, [((10, 10, 50, 50), "with_mask"), ((100, 10, 110, 22), "mask_weared_incorrect")]),
        "b": (blank, [((60, 40, 130, 110), "without_mask")]),
    })
    ds = load_voc(root)
    assert [r.path.stem for r in ds.images] == ["a", "b"]
    face = lambda box, label: FaceResult(box=box, label=label, confidence=0.9, probs=(0.9, 0.1), score=0.99)  # noqa: E731
    results = [ImageResult("a", [face((11, 10, 50, 51), "with_mask"), face((100, 10, 110, 22), "without_mask")], 200, 120, 0.2),
               ImageResult("b", [face((0, 0, 20, 20), "with_mask")], 200, 120, 0.4)]
    s = score_scenes(ds, results)
    assert s.found.tolist() == [True, True, False]
    assert s.classes.tolist() == ["with_mask", "mask_weared_incorrect", "without_mask"]
    assert s.labels.tolist() == ["with_mask", None, "without_mask"]
    assert s.label_accuracy_found() == 1.0 and s.unmatched_detections == 1
    assert s.seconds == [0.2, 0.4]
    # plain boxes work too (no labels: label accuracy is NaN)
    boxes = score_scenes(ds, [[(11, 10, 50, 51)], []])
    assert boxes.found.tolist() == [True, False, False] and np.isnan(boxes.label_accuracy_found())
    # ... and a class map can give the third class a label the classifier knows
    third = score_scenes(ds, results, class_map={**ds.class_map, "mask_weared_incorrect": "without_mask"})
    assert third.label_accuracy_found() == 1.0 and third.labels.tolist()[1] == "without_mask"
    with pytest.raises(MaskeduError, match="one per photo"):
        score_scenes(ds, results[:1])


def test_found_by_size_plot_shows_each_rate():
    from matplotlib.figure import Figure

    s = _crowd_scores()
    fig = plot_found_by_size({"detect_masks": s, "paper's way": score_scene([(0, 0, 20, 20)], ["with_mask"], [])})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights[:4] == [0.0, 100.0, 100.0, 100.0]  # the first series, bin by bin
    assert "1 faces" in ax.get_xticklabels()[0].get_text()
    with pytest.raises(MaskeduError, match="SceneScores"):
        plot_found_by_size({"x": [1, 2]})


def test_show_scene_draws_found_missed_and_stray_boxes():
    from matplotlib.figure import Figure

    image = np.full((100, 200, 3), 200, np.uint8)
    fig = show_scene(image, [(10, 10, 40, 40), (100, 10, 130, 40)], [(10, 10, 40, 41), (150, 50, 190, 90)])
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.patches) == 4
    assert "1 of 2 annotated faces found" in ax.get_title() and "1 other detections" in ax.get_title()


# ---------------------------------------------------------------------------------------------- real scenes


@pytest.mark.slow
def test_a_real_crowd_scene(shared_scenes):
    from maskedu.annotations import load_voc
    from maskedu.crop import FaceDetector

    ds = load_voc(shared_scenes)
    rec = max(sorted(ds.images, key=lambda r: r.path.name)[:40], key=lambda r: len(r.boxes))  # a crowd
    assert len(rec.boxes) >= 5
    perfect = score_scenes([rec], [[b.xyxy for b in rec.boxes]])
    assert perfect.recall() == 1.0 and perfect.unmatched_detections == 0
    found = score_scenes([rec], [FaceDetector().detect(rec.path)])
    assert 0 < found.recall() and found.faces == len(rec.boxes)
    assert found.faces_by_side() == perfect.faces_by_side()


@pytest.mark.slow
def test_crowd_setting_finds_more_faces_in_real_crowds(shared_scenes):
    from maskedu.annotations import load_voc
    from maskedu.detect import detect_masks
    from maskedu.model import build_resnet

    ds = load_voc(shared_scenes)
    recs = sorted(ds.images, key=lambda r: r.path.name)[:30]
    model = build_resnet(widths=(8,), blocks=(1,), stem_filters=8)
    plain = score_scenes(recs, detect_masks([r.path for r in recs], model))
    crowd = score_scenes(recs, detect_masks([r.path for r in recs], model, crowd=True))
    assert crowd.faces == plain.faces
    assert crowd.found.sum() > plain.found.sum(), (crowd.recall(), plain.recall())
    with pytest.raises(ValueError, match="not both"):
        detect_masks(recs[0].path, model, crowd=True, detector=object())


# ---------------------------------------------------------------------------------------------- the benchmark


def _bench(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MASKEDU_FAST="1", MASKEDU_NO_PROGRESS="1", TF_CPP_MIN_LOG_LEVEL="3",
               MASKEDU_DATA=str(tmp_path / "data"))
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scene_recall.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_benchmark_says_what_is_wrong_with_a_missing_folder(tmp_path):
    done = _bench(str(tmp_path / "nowhere"), tmp_path=tmp_path)
    assert done.returncode == 2 and "is not a folder" in done.stderr


@pytest.mark.slow
def test_benchmark_scores_a_small_crowd(tmp_path):
    """Two real faces (the astronaut, Grace Hopper) shrunk into a grey 'crowd' at several sizes."""
    import cv2
    from matplotlib import cbook
    from skimage import data as skdata

    from maskedu.crop import FaceDetector
    from maskedu.imaging import load_image

    canvas = np.full((300, 420, 3), 127, np.uint8)
    faces = []
    x = 0
    for photo, width in ((skdata.astronaut(), 160), (load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), 120),
                         (skdata.astronaut(), 100)):
        box = FaceDetector().detect(photo)[0].box
        scale = width / photo.shape[1]
        small = cv2.resize(photo, (width, round(photo.shape[0] * scale)), interpolation=cv2.INTER_AREA)[:300]
        canvas[: small.shape[0], x : x + width] = small
        faces.append((tuple(int(round(v * scale)) + (x if i % 2 == 0 else 0) for i, v in enumerate(box)), "without_mask"))
        x += width + 10
    root = _write_voc(tmp_path / "voc", {"crowd": (canvas, faces)})
    done = _bench(str(root), "--limit", "1", tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result) == JSON_KEYS
    assert result["scenes"] == 1 and result["faces"] == 3
    assert result["recall"] > 0 and result["baseline_recall"] > 0
    assert result["label_accuracy_found"] is None  # no trained model in this data folder: not reported
    assert set(result["recall_by_side"]) == set(SIZE_BINS)
    assert "32 px and up" in done.stdout and "unmatched detections" in done.stdout
