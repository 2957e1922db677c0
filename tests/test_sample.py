"""The embedded sample dataset: exact Kaggle layout, real faces MTCNN finds, deterministic, idempotent."""

from __future__ import annotations

import csv
import os
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from maskedu import sample
from maskedu.imaging import box_is_valid, iou_matrix, load_image
from maskedu.sample import ANNOTATIONS_SUBDIR, IMAGES_SUBDIR, MARKER_NAME, make_sample_dataset

KAGGLE_CLASSES = {
    "face_with_mask", "face_no_mask", "face_with_mask_incorrect", "mask_colorful", "mask_surgical",
    "face_other_covering", "scarf_bandana", "eyeglasses", "helmet", "face_shield", "sunglasses", "hood",
    "hat", "goggles", "hair_net", "hijab_niqab", "other", "gas_mask", "balaclava_ski_mask", "turban",
}
ANNOTATION_KEYS = {"isProtected", "ID", "BoundingBox", "classname", "Confidence", "Attributes"}


@pytest.fixture(scope="module")
def sample40(tmp_path_factory) -> Path:
    """A larger sample (32 scenes, ~55 faces) for the statistics: recall and class balance."""
    return make_sample_dataset(tmp_path_factory.mktemp("s40") / "sample", n_images=32, seed=1)


def _annotations(root: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((root / ANNOTATIONS_SUBDIR).glob("*.json"))}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != MARKER_NAME}


# --------------------------------------------------------------------------- layout


def test_layout_is_exactly_kaggles(sample_root):
    assert sorted(p.name for p in sample_root.iterdir() if not p.name.startswith(".")) == ["Medical mask", "train.csv"]
    assert [p.name for p in (sample_root / "Medical mask").iterdir()] == ["Medical mask"]
    assert [p.name for p in (sample_root / "Medical mask" / "Medical mask").iterdir()] == ["Medical Mask"]
    assert sorted(p.name for p in (sample_root / IMAGES_SUBDIR).parent.iterdir()) == ["annotations", "images"]

    images = sorted((sample_root / IMAGES_SUBDIR).iterdir())
    names = [p.name for p in images]
    assert all(re.fullmatch(r"\d+\.(jpg|png)", n) for n in names), names
    assert {Path(n).suffix for n in names} == {".jpg", ".png"}, "expected a mix of JPEG and PNG like the real set"
    annotated = [n for n in names if int(Path(n).stem) >= 1801]
    unannotated = [n for n in names if int(Path(n).stem) < 1800]
    assert len(annotated) == 12 and 1 <= len(unannotated) <= 3
    assert min(int(Path(n).stem) for n in annotated) == 1801
    assert sorted(p.name for p in (sample_root / ANNOTATIONS_SUBDIR).iterdir()) == sorted(f"{n}.json" for n in annotated)


def test_json_annotations_match_images(sample_root):
    docs = _annotations(sample_root)
    assert docs
    for json_name, doc in docs.items():
        assert list(doc) == ["FileName", "NumOfAnno", "Annotations"]
        assert json_name == f"{doc['FileName']}.json"
        assert doc["NumOfAnno"] == len(doc["Annotations"]) >= 1
        img = load_image(sample_root / IMAGES_SUBDIR / doc["FileName"])
        h, w = img.shape[:2]
        ids = set()
        for a in doc["Annotations"]:
            assert set(a) == ANNOTATION_KEYS
            assert a["isProtected"] is False and a["Confidence"] == 1 and a["Attributes"] == {}
            assert isinstance(a["ID"], int) and a["ID"] not in ids
            ids.add(a["ID"])
            assert a["classname"] in KAGGLE_CLASSES
            x1, y1, x2, y2 = a["BoundingBox"]
            assert all(isinstance(v, int) for v in a["BoundingBox"])
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (doc["FileName"], a["BoundingBox"], (w, h))
            assert (x2 - x1) >= 20 and (y2 - y1) >= 20


def test_train_csv_has_the_header_quirk(sample_root):
    with open(sample_root / "train.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["name", "x1", "x2", "y1", "y2", "classname"]
    from_csv = Counter((r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4]), r[5]) for r in rows[1:])
    from_json = Counter(
        (doc["FileName"], *a["BoundingBox"], a["classname"]) for doc in _annotations(sample_root).values() for a in doc["Annotations"]
    )
    # the values run x1, y1, x2, y2 although the header says x1, x2, y1, y2 -- exactly as in the real file
    assert from_csv == from_json
    header_reading = Counter((n, a, c, b, d, k) for (n, a, b, c, d, k) in from_csv)
    assert header_reading != from_json


def test_marker_records_parameters(sample_root):
    info = sample.read_sample_info(sample_root)
    assert info["n_images"] == 12 and info["seed"] == 0 and info["version"] == sample.SAMPLE_VERSION
    docs = _annotations(sample_root)
    faces = [a for d in docs.values() for a in d["Annotations"] if a["classname"].startswith("face_")]
    assert info["n_faces"] == len(faces)
    assert info["n_masked"] == sum(a["classname"] == "face_with_mask" for a in faces)


# --------------------------------------------------------------------------- content


@pytest.mark.slow
def test_class_balance_and_scene_variety(sample40):
    docs = _annotations(sample40)
    classes = Counter(a["classname"] for d in docs.values() for a in d["Annotations"])
    masked, bare = classes["face_with_mask"], classes["face_no_mask"]
    assert masked + bare >= 40
    assert 0.35 <= masked / (masked + bare) <= 0.65, classes
    assert classes["mask_surgical"] + classes["mask_colorful"] >= 1, "the real set's mask-type boxes appear too"
    faces_per_scene = Counter(sum(a["classname"].startswith("face_") for a in d["Annotations"]) for d in docs.values())
    assert faces_per_scene[1] >= 5 and faces_per_scene[2] + faces_per_scene[3] >= 5, faces_per_scene
    widths = [a["BoundingBox"][2] - a["BoundingBox"][0] for d in docs.values() for a in d["Annotations"] if a["classname"].startswith("face_")]
    assert max(widths) >= 2 * min(widths), "faces should come at varied scales"
    sizes = {load_image(sample40 / IMAGES_SUBDIR / d["FileName"]).shape[:2] for d in docs.values()}
    assert len(sizes) >= 3


@pytest.mark.slow
def test_mtcnn_finds_the_unmasked_faces(sample40):
    from mtcnn import MTCNN

    detector = MTCNN()  # default settings, real weights from the wheel
    found = Counter()
    total = Counter()
    for doc in _annotations(sample40).values():
        image = load_image(sample40 / IMAGES_SUBDIR / doc["FileName"])
        dets = np.array([[x, y, x + w, y + h] for x, y, w, h in (d["box"] for d in detector.detect_faces(image))]).reshape(-1, 4)
        for a in doc["Annotations"]:
            if a["classname"] not in ("face_no_mask", "face_with_mask"):
                continue
            total[a["classname"]] += 1
            if len(dets) and iou_matrix(np.array([a["BoundingBox"]]), dets).max() >= 0.4:
                found[a["classname"]] += 1
    recall_bare = found["face_no_mask"] / total["face_no_mask"]
    recall_masked = found["face_with_mask"] / total["face_with_mask"]
    print(f"MTCNN recall on the sample: unmasked {recall_bare:.1%} of {total['face_no_mask']}, masked {recall_masked:.1%} of {total['face_with_mask']}")
    assert total["face_no_mask"] >= 15
    assert recall_bare >= 0.9
    # masks hide the mouth landmarks MTCNN relies on, so it misses more of them -- but not all
    assert recall_masked >= 0.2


def test_loader_reads_the_sample_without_dropping_anything(sample_root):
    annotations = pytest.importorskip("maskedu.annotations")
    if not hasattr(annotations, "load_annotations"):
        pytest.skip("maskedu.annotations.load_annotations is not written yet")
    ds = annotations.load_annotations(sample_root)
    assert ds.report.dropped == []
    assert len(ds) == 12
    docs = _annotations(sample_root)
    want = Counter(a["classname"] for d in docs.values() for a in d["Annotations"])
    assert ds.class_counts() == Counter({"with_mask": want["face_with_mask"], "without_mask": want["face_no_mask"]})


# --------------------------------------------------------------------------- determinism and reuse


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = _tree(make_sample_dataset(tmp_path / "a", n_images=3, seed=5))
    b = _tree(make_sample_dataset(tmp_path / "b", n_images=3, seed=5))
    c = _tree(make_sample_dataset(tmp_path / "c", n_images=3, seed=6))
    assert a == b
    assert a.keys() != c.keys() or any(a[k] != c[k] for k in a)
    # asking for more images keeps the first ones as they were
    d = _tree(make_sample_dataset(tmp_path / "d", n_images=4, seed=5))
    for name, payload in a.items():
        if "1801" in name or "annotations" in name:
            assert d[name] == payload


def test_finished_dataset_is_reused_and_rebuilt_on_change(tmp_path):
    dest = tmp_path / "s"
    root = make_sample_dataset(dest, n_images=2, seed=0)
    assert root == dest.resolve()
    marker = root / MARKER_NAME
    stamp = marker.stat().st_mtime_ns
    assert make_sample_dataset(dest, n_images=2, seed=0) == root
    assert marker.stat().st_mtime_ns == stamp, "same parameters: reused, not rebuilt"

    make_sample_dataset(dest, n_images=3, seed=0)
    assert sample.read_sample_info(root)["n_images"] == 3
    assert len(_annotations(root)) == 3
    stamp = marker.stat().st_mtime_ns
    make_sample_dataset(dest, n_images=3, seed=0, force=True)
    assert marker.stat().st_mtime_ns != stamp
    hidden = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert hidden == [".s.lock"], "no temporary folders left behind (only the install lock's file)"


def test_interrupted_build_never_looks_finished(tmp_path, monkeypatch):
    dest = tmp_path / "s"
    real = sample._build

    def dies_midway(root, *args, **kwargs):
        (root / IMAGES_SUBDIR).mkdir(parents=True)
        (root / IMAGES_SUBDIR / "1801.jpg").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(sample, "_build", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        make_sample_dataset(dest, n_images=2)
    assert not dest.exists()
    assert not sample.is_sample_dataset(dest)
    monkeypatch.setattr(sample, "_build", real)
    root = make_sample_dataset(dest, n_images=2)
    assert sample.is_sample_dataset(root, n_images=2, seed=0)


def test_a_foreign_folder_is_not_replaced_without_force(tmp_path):
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="force=True"):
        make_sample_dataset(dest, n_images=1)
    assert (dest / "precious.txt").read_text() == "keep me"
    make_sample_dataset(dest, n_images=1, force=True)
    assert not (dest / "precious.txt").exists() and sample.is_sample_dataset(dest)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"n_images": 0}, ValueError, "n_images must be at least 1"),
        ({"n_images": 2.5}, TypeError, "n_images must be a whole number"),
        ({"n_images": "10"}, TypeError, "n_images must be a whole number"),
        ({"seed": -1}, ValueError, "seed must be at least 0"),
        ({"n_unannotated": -2}, ValueError, "n_unannotated"),
        ({"force": "yes"}, TypeError, "force must be True or False"),
    ],
)
def test_bad_parameters_are_refused_clearly(tmp_path, kwargs, error, words):
    with pytest.raises(error, match=words):
        make_sample_dataset(tmp_path / "s", **kwargs)
    assert not (tmp_path / "s").exists()


def test_bad_dest_is_refused(tmp_path):
    with pytest.raises(TypeError, match="dest must be a folder path"):
        make_sample_dataset(None)
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        make_sample_dataset(afile, n_images=1)


# --------------------------------------------------------------------------- the pieces


def test_sources_are_real_photos_with_landmarks():
    sources = sample.face_sources()
    assert len(sources) >= 3
    for s in sources:
        x1, y1, x2, y2 = s.box
        assert s.image.dtype == np.uint8 and s.image.ndim == 3 and s.score > 0.9
        assert box_is_valid(s.box) and (x2 - x1) >= 40
        # the eyes above the nose above the mouth, all inside the face box
        assert s.keypoints[:2, 1].max() < s.keypoints[2, 1] < s.keypoints[3:, 1].min()
        assert ((s.keypoints >= [x1, y1]) & (s.keypoints <= [x2, y2])).all()
    assert sum(s.frontal for s in sources) >= 2
    assert sample.face_sources()[0] is sources[0], "landmarks are computed once per process"


@pytest.mark.parametrize("style", sample.MASK_STYLES)
def test_draw_mask_covers_nose_and_mouth_not_eyes(style):
    src = next(s for s in sample.face_sources() if s.name == "astronaut")
    kp = src.keypoints
    out, box = sample.draw_mask(src.image, kp, style=style, return_box=True)
    assert out.shape == src.image.shape and out.dtype == np.uint8
    changed = np.abs(out.astype(int) - src.image.astype(int)).sum(axis=2) > 30

    def at(p, r=2):
        x, y = int(round(p[0])), int(round(p[1]))
        return changed[y - r : y + r + 1, x - r : x + r + 1].mean()

    mouth_mid = (kp[3] + kp[4]) / 2
    assert at(mouth_mid) > 0.8 and at(kp[3] * 0.5 + kp[2] * 0.5) > 0.8
    assert at(kp[0]) == 0 and at(kp[1]) == 0
    x1, y1, x2, y2 = box
    assert x1 < kp[3, 0] and x2 > kp[4, 0] and y1 > kp[:2, 1].max() and y2 > mouth_mid[1]


def test_draw_mask_follows_a_tilted_face_and_accepts_mtcnn_dicts():
    src = next(s for s in sample.face_sources() if s.name == "grace_hopper")
    names = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
    # MTCNN's dict, eyes named from the person's point of view: swapped sides are sorted out
    as_dict = {n: src.keypoints[i].tolist() for i, n in enumerate(names)}
    swapped = dict(as_dict, left_eye=as_dict["right_eye"], right_eye=as_dict["left_eye"],
                   mouth_left=as_dict["mouth_right"], mouth_right=as_dict["mouth_left"])
    assert np.array_equal(sample.draw_mask(src.image, as_dict), sample.draw_mask(src.image, swapped))
    # rotate the landmarks: the mask's box moves with them
    _, upright = sample.draw_mask(src.image, src.keypoints, return_box=True)
    c = src.keypoints.mean(axis=0)
    t = np.radians(20)
    R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    _, tilted = sample.draw_mask(src.image, (src.keypoints - c) @ R.T + c, return_box=True)
    assert tilted != upright


def test_draw_mask_refuses_bad_input():
    src = sample.face_sources()[0]
    with pytest.raises(ValueError, match="style"):
        sample.draw_mask(src.image, src.keypoints, style="bandana")
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        sample.draw_mask(src.image, src.keypoints[:3])
    with pytest.raises(ValueError, match="missing"):
        sample.draw_mask(src.image, {"nose": (1, 2)})
    with pytest.raises(ValueError, match="RGB"):
        sample.draw_mask(src.image[:, :, 0], src.keypoints)


def test_leftovers_of_dead_builds_are_cleared_but_live_builds_are_left_alone(tmp_path):
    dead = tmp_path / ".s.partial-999999999-deadbeef"  # no such process
    live = tmp_path / f".s.partial-{os.getppid()}-cafebabe"  # a running process (pytest's parent)
    for d in (dead, live):
        (d / IMAGES_SUBDIR).mkdir(parents=True)
    make_sample_dataset(tmp_path / "s", n_images=1)
    assert not dead.exists()
    assert live.exists()
