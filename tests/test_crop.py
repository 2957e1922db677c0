"""maskedu.crop: the real MTCNN on real photos, matching, the cache, every image kind, fallback and origins.

Real photos: the astronaut (scikit-image) and Grace Hopper (matplotlib) ship with the installed
packages; coffee (scikit-image) has no face. The sample dataset comes from the ``sample_root`` fixture.
"""

from __future__ import annotations

import math
import os
import time
import warnings

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import data as skdata

from maskedu.annotations import CLASS_NAMES, Dataset, FaceBox, ImageRecord, LoadReport
from maskedu.crop import (
    Crops,
    Detection,
    FaceDetector,
    KEYPOINT_NAMES,
    crop_faces,
    fallback_box,
    largest_face,
    match_detections,
)
from maskedu.imaging import iou, load_image

ASTRONAUT_FACE = (182, 64, 265, 171)  # MTCNN's box on skimage's astronaut (full resolution)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()  # one MTCNN for the whole module: loading the weights takes seconds


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()


@pytest.fixture(scope="module")
def hopper() -> np.ndarray:
    return load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@pytest.fixture()
def photos(tmp_path, astronaut, hopper):
    """Real photos written to disk: two faces, one photo with no face, one corrupt file."""
    paths = {
        "astronaut": tmp_path / "astronaut.png",
        "hopper": tmp_path / "hopper.jpg",
        "coffee": tmp_path / "coffee.jpg",
        "broken": tmp_path / "broken.jpg",
    }
    Image.fromarray(astronaut).save(paths["astronaut"])
    Image.fromarray(hopper).save(paths["hopper"], quality=92)
    Image.fromarray(skdata.coffee()).save(paths["coffee"], quality=92)
    good = paths["hopper"].read_bytes()
    paths["broken"].write_bytes(good[: len(good) // 3])
    return paths


def folders_dataset(root, items) -> Dataset:
    """A class-folder Dataset (built directly: the loader has its own tests)."""
    return Dataset(root=root, layout="folders", images=[ImageRecord(path=p, label=lab) for p, lab in items],
                   class_map={c: c for c in CLASS_NAMES}, report=LoadReport())


def kaggle_dataset(root, items) -> Dataset:
    records = [ImageRecord(path=p, boxes=[FaceBox(*b, label=lab, raw_label=raw) for b, lab, raw in boxes]) for p, boxes in items]
    return Dataset(root=root, layout="kaggle", images=records, class_map={}, report=LoadReport())


# --------------------------------------------------------------------------- the detector


def test_detector_finds_the_astronaut_with_five_keypoints(detector, astronaut):
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert isinstance(face, Detection) and face.score > 0.99 and face.attempt == 1
    assert iou(face.box, ASTRONAUT_FACE) > 0.8
    assert all(isinstance(v, int) for v in face.box)
    assert set(face.keypoints) == set(KEYPOINT_NAMES)
    kp = face.keypoints
    x1, y1, x2, y2 = face.box
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in kp.values())
    assert kp["left_eye"][0] < kp["right_eye"][0]  # image-left eye first
    assert max(kp["left_eye"][1], kp["right_eye"][1]) < kp["nose"][1] < min(kp["mouth_left"][1], kp["mouth_right"][1])


def test_no_face_in_coffee_even_with_the_second_and_close_up_looks(detector):
    result = detector.detect_full(skdata.coffee())
    assert result.detections == [] and result.attempts == 3


def test_large_photo_is_shrunk_and_boxes_scaled_back(detector, astronaut):
    big = np.asarray(Image.fromarray(astronaut).resize((1536, 1536), Image.Resampling.BILINEAR))
    result = detector.detect_full(big)
    assert result.scale == pytest.approx(800 / 1536)
    expected = tuple(3 * v for v in ASTRONAUT_FACE)
    assert iou(result.best.box, expected) > 0.75
    kp = result.best.keypoints["nose"]
    assert expected[0] < kp[0] < expected[2] and expected[1] < kp[1] < expected[3]


def test_small_close_up_is_enlarged(detector, hopper):
    small = np.asarray(Image.fromarray(hopper[60:420, 80:440]).resize((72, 72), Image.Resampling.BILINEAR))
    result = detector.detect_full(small)
    assert result.scale > 1 and result.found
    x1, y1, x2, y2 = result.best.box
    assert 0 <= x1 < x2 <= 72 and 0 <= y1 < y2 <= 72


def test_face_cut_by_the_border_is_clipped(detector, astronaut):
    cut = np.ascontiguousarray(astronaut[:, 215:])  # the left part of the face is outside the photo
    faces = detector.detect(cut)
    assert faces, "MTCNN should still find the half face"
    face = faces[0]
    assert face.box[0] == 0 and face.clipped and face.raw_box[0] < 0


def test_batched_detection_matches_one_by_one(detector, astronaut, hopper):
    # similar sizes share a batch on one grey canvas; the boxes must not move
    images = [astronaut, hopper, np.ascontiguousarray(astronaut[40:500, 20:480]), skdata.coffee()]
    together = detector.detect_many(images)
    assert [len(r.detections) for r in together] == [1, 1, 1, 0]
    for image, r in zip(images[:3], together[:3]):
        alone = detector.detect(image)
        # a grey canvas shifts MTCNN's pyramid by a rounding: the same face, a pixel or two apart
        assert iou(alone[0].box, r.best.box) > 0.85 and abs(alone[0].score - r.best.score) < 0.02
    assert together[3].attempts == 3 and all(r.seconds > 0 for r in together)
    assert detector.detect_many([]) == []
    tiny = detector.detect_full(np.zeros((2, 3, 3), np.uint8))  # too small for MTCNN's 12-pixel window
    assert tiny.detections == [] and tiny.attempts == 3


def test_batches_in_parallel_threads_find_exactly_what_one_thread_finds(detector, astronaut, hopper):
    # small batches so that several run at once; every look (first, second, close-up) is exercised
    images = [astronaut, hopper, np.ascontiguousarray(astronaut[::2, ::2]), np.ascontiguousarray(hopper[::3, ::3]),
              skdata.coffee(), np.ascontiguousarray(astronaut[100:200, 150:300])]
    one = FaceDetector(batch_size=1, threads=1)
    four = FaceDetector(batch_size=1, threads=4)
    assert one.mtcnn is four.mtcnn  # one shared MTCNN, called from several threads at once
    t0 = time.perf_counter()
    parallel = four.detect_many(images)
    wall = time.perf_counter() - t0
    serial = one.detect_many(images)
    assert [len(r.detections) for r in parallel] == [len(r.detections) for r in serial]
    assert sum(len(r.detections) for r in serial) >= 4
    for a, b in zip(parallel, serial):
        assert a.attempts == b.attempts
        for x, y in zip(a.detections, b.detections):
            assert x.box == y.box and x.score == y.score and x.attempt == y.attempt
    # the seconds given to each photo share the wall time out; they do not count overlapping work twice
    assert 0 < sum(r.seconds for r in parallel) <= wall * 1.05
    with pytest.raises(ValueError, match="threads"):
        FaceDetector(threads=0)
    assert FaceDetector.paper().threads == 1


def test_run_pnet_is_mtcnns_pnet_stage_and_leaves_out_only_the_first_levels(detector, hopper):
    import tensorflow as tf
    from mtcnn.utils.images import build_scale_pyramid

    from maskedu.crop import run_pnet

    image = detector.prepare(hopper)[0]
    batch = tf.constant((image[None].astype(np.float32) - 127.5) / 128.0)
    stage = detector.mtcnn.stages[0]
    settings = dict(threshold_pnet=0.6, min_face_size=20, scale_factor=0.709)
    ours = run_pnet(stage, batch, **settings)
    theirs = stage(images_normalized=batch, images_oshapes=np.stack([image.shape]), **settings)
    assert len(ours) > 0 and np.array_equal(ours, theirs)
    # leaving out levels removes proposals of small faces only: every box kept is at least as big as the
    # smallest face the kept levels look for
    levels = build_scale_pyramid(image.shape[1], image.shape[0], min_face_size=20, scale_factor=0.709)
    fewer = run_pnet(stage, batch, skip_levels=3, **settings)
    assert 0 < len(fewer) < len(ours)
    sides = np.maximum(fewer[:, 3] - fewer[:, 1], fewer[:, 4] - fewer[:, 2])
    assert sides.min() >= 0.5 * 12 / levels[3]
    # asked to leave out more levels than there are, it still runs the last one
    last = run_pnet(stage, batch, skip_levels=len(levels) - 1, **settings)
    assert np.array_equal(run_pnet(stage, batch, skip_levels=99, **settings), last)


def test_levels_to_skip_keeps_every_level_that_can_find_a_face_that_big():
    d = FaceDetector()
    assert d.levels_to_skip(0) == d.levels_to_skip(20) == d.levels_to_skip(float("nan")) == 0
    for smallest in (21, 28.3, 40, 56, 57, 80, 200, 1000):
        k = d.levels_to_skip(smallest)
        largest = [d.min_face_size / d.scale_factor ** (j + 1) for j in range(k + 1)]
        assert all(v < smallest for v in largest[:k])  # every level left out finds only smaller faces
        assert largest[k] >= smallest  # and the first level kept can find one that big
    # the close-up look: a box below sqrt(0.5) x 0.4 x the shorter side cannot reach IoU 0.5 with an eligible
    # one; 0.7 of that is kept, for the later networks that can enlarge a proposal
    assert d.close_up_smallest_face((100, 200), 2.0) == pytest.approx(0.7 * np.sqrt(0.5) * 0.4 * 100 * 2.0)
    assert d.levels_to_skip(d.close_up_smallest_face((300, 300), 1.0)) >= 2


def test_close_up_look_leaves_out_small_face_levels_alike_in_compiled_and_eager_mtcnn(detector, hopper):
    close = _masked_close_up(hopper, detector.detect(hopper)[0], "cloth", 0.5, 0.6)
    look = detector.close_up_look(close)
    assert look.found
    # the eager networks go through the same stages when levels are left out (detect_faces cannot)
    eager = FaceDetector(compiled=False).close_up_look(close)
    assert eager.found and np.allclose(eager.detection.raw_box, look.detection.raw_box, atol=0.05)
    assert abs(eager.detection.score - look.detection.score) < 1e-4


def test_negative_and_outside_boxes_are_clipped_or_reported(detector):
    keypoints = np.arange(10, dtype=float)
    rows = np.array([
        [0, -5.5, 10, 30, 40.2, 0.99, *keypoints],  # partly outside: clipped
        [0, 120, 10, 150, 40, 0.95, *keypoints],  # wholly right of a 100-wide image: degenerate
        [0, 20, 20, 20, 60, 0.9, *keypoints],  # zero width: degenerate
    ])
    degenerate = []
    found = detector._to_detections(rows, scale=0.5, border=0, width=100, height=100, attempt=1, degenerate=degenerate)
    assert len(found) == 1 and found[0].box == (0, 20, 60, 81) and found[0].clipped
    assert len(degenerate) == 2 and degenerate[0][0] == 240.0


def test_detector_validates_its_parameters():
    with pytest.raises(ValueError, match="three numbers"):
        FaceDetector(thresholds=(0.6, 0.7))
    with pytest.raises(ValueError, match="at most 1"):
        FaceDetector(retry_thresholds=(0.6, 0.7, 1.5))
    with pytest.raises(ValueError, match="min_side"):
        FaceDetector(max_side=100, min_side=200)
    with pytest.raises(TypeError, match="whole number"):
        FaceDetector(min_face_size=20.5)
    assert FaceDetector.paper().config()["max_side"] is None


# --------------------------------------------------------------------------- matching


def test_hungarian_matching_beats_greedy():
    # Greedy would give detection 0 to annotation 0 (IoU 0.6) and leave annotation 1 unmatched.
    det = [(0, 0, 10, 10), (4, 0, 14, 10)]
    ann = [(2, 0, 12, 10), (0, 0, 9, 10)]
    m = match_detections(det, ann, min_iou=0.3)
    assert {(d, a) for d, a, _ in m.pairs} == {(0, 1), (1, 0)}
    assert m.unmatched_detections == [] and m.missed_annotations == []


def test_matching_threshold_and_empty_inputs():
    m = match_detections([(0, 0, 10, 10)], [(8, 8, 20, 20)], min_iou=0.3)
    assert m.pairs == [] and m.unmatched_detections == [0] and m.missed_annotations == [0]
    m = match_detections([], [(0, 0, 5, 5)])
    assert m.missed_annotations == [0] and m.pairs == []
    m = match_detections(np.zeros((0, 4)), [])
    assert m.pairs == [] and m.missed_annotations == [] and m.unmatched_detections == []


# --------------------------------------------------------------------------- crop_faces: class folders


def test_class_folders_origins_no_face_and_unreadable(tmp_path, photos, detector):
    ds = folders_dataset(tmp_path, [(photos["astronaut"], "without_mask"), (photos["hopper"], "without_mask"),
                                    (photos["coffee"], "with_mask"), (photos["broken"], "with_mask")])
    crops = crop_faces(ds, detector=detector, cache=False, verbose=False)
    assert len(crops) == 2 and crops.images.shape == (2, 50, 50, 3) and crops.images.dtype == np.uint8
    assert list(crops.origin) == ["detector", "detector"]
    assert crops.labels.tolist() == [1, 1] and crops.labels.dtype == np.int64
    assert np.all(crops.scores > 0.9) and np.all(np.isnan(crops.ious))
    rep = crops.report
    assert [os.path.basename(p) for p, _ in rep.no_face] == ["coffee.jpg"]
    assert [os.path.basename(p) for p, _ in rep.unreadable] == ["broken.jpg"]
    assert rep.images == 4 and rep.found_rate()["without_mask"] == 1.0 and rep.found_rate()["with_mask"] == 0.0
    assert "broken.jpg" in str(rep) and "coffee.jpg" in str(rep)

    for kind in ("center", "whole"):
        fb = crop_faces(ds, detector=detector, cache=False, verbose=False, fallback=kind)
        assert len(fb) == 3 and list(fb.origin) == ["detector", "detector", "fallback"]
        assert fb.labels[2] == 0 and math.isnan(fb.scores[2])  # the fallback crop carries its folder's label
        h, w = skdata.coffee().shape[:2]
        assert tuple(fb.boxes[2]) == fallback_box(w, h, kind)
        assert fb.report.found_rate()["with_mask"] == 0.0  # the fallback is never counted as found
    assert fallback_box(200, 100, "center") == (50, 0, 150, 100)


def test_class_folders_keep_the_photos_subject_not_a_small_more_confident_face(tmp_path, detector, astronaut, hopper):
    """Grace Hopper with a small astronaut in the corner: MTCNN scores the small face higher (as it does for
    passers-by behind masked subjects in real photos), but the photo's label is about its subject."""
    import cv2

    (x1, y1, x2, y2) = detector.detect(astronaut)[0].box
    small = cv2.resize(astronaut[max(0, y1 - 30):y2 + 30, max(0, x1 - 30):x2 + 30], (50, 60))
    photo = hopper.copy()
    photo[10:70, 10:60] = small
    path = tmp_path / "two.png"
    Image.fromarray(photo).save(path)
    found = detector.detect(photo)
    assert len(found) == 2
    subject = max(found, key=lambda d: d.box[2] - d.box[0])
    passer_by = min(found, key=lambda d: d.box[2] - d.box[0])
    assert passer_by.score > subject.score  # the premise: the small face is the most confident one
    assert largest_face(found) is subject and largest_face([]) is None

    ds = folders_dataset(tmp_path, [(path, "without_mask")])
    kept = crop_faces(ds, detector=detector, cache=False, verbose=False)  # keep="largest"
    assert len(kept) == 1 and tuple(kept.boxes[0]) == tuple(subject.box)
    confident = crop_faces(ds, detector=detector, cache=False, verbose=False, keep="confident")
    assert len(confident) == 1 and tuple(confident.boxes[0]) == tuple(passer_by.box)
    assert not np.array_equal(kept.images, confident.images)
    with pytest.raises(ValueError, match="keep"):
        crop_faces(ds, detector=detector, cache=False, verbose=False, keep="biggest")


def test_crops_come_from_full_resolution_with_margin(tmp_path, photos, detector):
    ds = folders_dataset(tmp_path, [(photos["astronaut"], "without_mask")])
    tight = crop_faces(ds, detector=detector, cache=False, verbose=False, size=64, margin=0.0)
    loose = crop_faces(ds, detector=detector, cache=False, verbose=False, size=64, margin=0.5)
    assert tight.images.shape == (1, 64, 64, 3)
    assert tuple(tight.boxes[0]) == tuple(loose.boxes[0])  # the box is the detection; the margin only widens the crop
    assert not np.array_equal(tight.images, loose.images)
    sub = tight.subset([0])
    assert len(sub) == 1 and len(tight.subset(np.array([False]))) == 0


# --------------------------------------------------------------------------- crop_faces: annotated layout


def test_annotated_matching_missed_and_unmatched(tmp_path, photos, detector):
    ds = kaggle_dataset(tmp_path, [
        (photos["astronaut"], [((180, 60, 268, 175), "with_mask", "face_with_mask"),
                               ((380, 400, 440, 470), "without_mask", "face_no_mask"),
                               ((10, 10, 60, 60), None, "hat")]),
        (photos["hopper"], [((5, 5, 40, 40), "without_mask", "face_no_mask")]),  # wrong box: hopper's face is unmatched
    ])
    crops = crop_faces(ds, detector=detector, cache=False, verbose=False)
    assert len(crops) == 1 and crops.labels.tolist() == [0] and crops.origin.tolist() == ["detector"]
    assert crops.ious[0] > 0.7 and crops.scores[0] > 0.99
    rep = crops.report
    assert {(os.path.basename(p), lab) for p, _, lab in rep.missed} == {
        ("astronaut.png", "without_mask"), ("astronaut.png", None), ("hopper.jpg", "without_mask")}
    assert len(rep.unmatched) == 1 and os.path.basename(rep.unmatched[0][0]) == "hopper.jpg"
    assert rep.found_rate() == {"with_mask": 1.0, "without_mask": 0.0}

    ann = crop_faces(ds, source="annotations", cache=False, verbose=False)
    assert len(ann) == 4 and set(ann.origin) == {"annotation"} and np.isnan(ann.scores).all()
    assert ann.labels.tolist() == [0, 1, -1, 1]  # -1: a class the class map leaves out
    assert tuple(ann.boxes[0]) == (180, 60, 268, 175)


def test_parameters_are_checked_with_helpful_messages(tmp_path, photos):
    folders = folders_dataset(tmp_path, [(photos["astronaut"], "without_mask")])
    kaggle = kaggle_dataset(tmp_path, [(photos["astronaut"], [((180, 60, 268, 175), "with_mask", "x")])])
    with pytest.raises(ValueError, match="source='annotations' needs annotated boxes"):
        crop_faces(folders, source="annotations")
    with pytest.raises(ValueError, match="fallback only applies to class folders"):
        crop_faces(kaggle, fallback="whole")
    with pytest.raises(ValueError, match="fallback='middle' is not one of"):
        crop_faces(folders, fallback="middle")
    with pytest.raises(ValueError, match="size must be at least"):
        crop_faces(folders, size=0)
    with pytest.raises(TypeError, match="FaceDetector"):
        crop_faces(folders, detector="mtcnn")
    with pytest.raises(TypeError, match="Dataset or a folder"):
        crop_faces([photos["astronaut"]])


# --------------------------------------------------------------------------- every image kind


def test_every_image_kind_goes_through(tmp_path, hopper, detector):
    base = Image.fromarray(hopper)
    kinds = {}
    kinds["rgba.png"] = base.convert("RGBA")
    kinds["palette.png"] = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    kinds["grey.jpg"] = base.convert("L")
    kinds["cmyk.jpg"] = base.convert("CMYK")
    kinds["deep16.png"] = Image.fromarray((np.asarray(base.convert("L"), np.uint16) * 257))
    paths = []
    for name, img in kinds.items():
        img.save(tmp_path / name)
        paths.append(tmp_path / name)
    # EXIF: stored lying on its side, tagged "rotate 90 clockwise to display" (orientation 6)
    exif = Image.Exif()
    exif[0x0112] = 6
    base.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "exif.jpg", exif=exif.tobytes())
    paths.append(tmp_path / "exif.jpg")
    ds = folders_dataset(tmp_path, [(p, "without_mask") for p in paths])
    crops = crop_faces(ds, detector=detector, cache=False, verbose=False)
    assert crops.report.unreadable == [] and crops.report.no_face == []
    assert len(crops) == len(paths)
    reference = detector.detect(hopper)[0].box
    for path, box in zip(crops.paths, crops.boxes):
        assert iou(box, reference) > 0.6, f"{path}: {box} vs {reference}"


# --------------------------------------------------------------------------- the cache


@pytest.mark.slow
def test_cache_reuse_invalidation_and_corruption(tmp_path, photos, detector):
    ds = folders_dataset(tmp_path, [(photos["astronaut"], "without_mask"), (photos["coffee"], "with_mask")])
    first = crop_faces(ds, detector=detector, verbose=False)
    assert not first.report.from_cache
    files = list((tmp_path / "data" / "crops").glob("*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as z:  # loads without pickle: only plain arrays inside
        assert all(z[k].dtype != object for k in z.files)

    again = crop_faces(ds, detector=detector, verbose=False)
    assert again.report.from_cache and again.report.seconds < first.report.seconds
    for name in ("images", "labels", "paths", "boxes", "origin"):
        assert np.array_equal(getattr(again, name), getattr(first, name))
    assert again.report.no_face == first.report.no_face

    # a changed parameter recomputes
    assert not crop_faces(ds, detector=detector, verbose=False, margin=0.3).report.from_cache
    assert not crop_faces(ds, detector=detector, verbose=False, fallback="center").report.from_cache
    assert not crop_faces(ds, detector=FaceDetector(thresholds=(0.6, 0.7, 0.9)), verbose=False).report.from_cache
    assert crop_faces(ds, detector=detector, verbose=False, margin=0.3).report.from_cache

    # a changed file recomputes
    Image.fromarray(skdata.chelsea()).save(photos["coffee"], quality=90)
    changed = crop_faces(ds, detector=detector, verbose=False)
    assert not changed.report.from_cache

    # a corrupt cache file is rebuilt, not trusted
    for f in (tmp_path / "data" / "crops").glob("*.npz"):
        f.write_bytes(b"PK\x03\x04 garbage")
    with pytest.warns(UserWarning, match="unreadable"):
        rebuilt = crop_faces(ds, detector=detector, verbose=False)
    assert not rebuilt.report.from_cache and np.array_equal(rebuilt.images, changed.images)
    assert crop_faces(ds, detector=detector, verbose=False).report.from_cache


def test_cache_file_with_wrong_content_is_rejected(tmp_path, photos, detector):
    ds = folders_dataset(tmp_path, [(photos["astronaut"], "without_mask")])
    crops = crop_faces(ds, detector=detector, verbose=False)
    (path,) = (tmp_path / "data" / "crops").glob("*.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["labels"] = np.zeros(5, np.int64)  # wrong length: must not be trusted
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="labels"):
        Crops.load(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = crop_faces(ds, detector=detector, verbose=False)
    assert any("rebuilding" in str(w.message) for w in caught)
    assert np.array_equal(again.labels, crops.labels)


# --------------------------------------------------------------------------- the sample dataset


@pytest.mark.slow  # more than five seconds on two cores
def test_sample_dataset_both_sources(sample_root, detector):
    from maskedu.annotations import load_annotations

    ds = load_annotations(sample_root)
    mt = crop_faces(ds, detector=detector, verbose=False)
    ann = crop_faces(ds, source="annotations", verbose=False)
    n_faces = sum(1 for r in ds.images for b in r.boxes)
    assert len(ann) == n_faces
    assert len(mt) + len(mt.report.missed) == n_faces  # every face is either cropped or reported missed
    assert set(mt.origin) <= {"detector"} and set(ann.origin) == {"annotation"}
    assert np.all(mt.ious[~np.isnan(mt.ious)] >= 0.3)
    assert set(np.unique(ann.labels)) <= {-1, 0, 1}
    assert len(mt) > 0, mt.report


# --------------------------------------------------------------------------- the shared real photos


@pytest.mark.realfaces
def test_real_photos_every_image_accounted_for(realfaces_dir, detector):
    from maskedu.crop import take_per_class

    records = []
    for label in CLASS_NAMES:
        files = sorted((realfaces_dir / label).iterdir())[:5]
        records += [(f, label) for f in files]
    ds = take_per_class(folders_dataset(realfaces_dir, records), 4)
    assert len(ds) == 8
    crops = crop_faces(ds, detector=detector, fallback="center", verbose=False)
    rep = crops.report
    assert len(crops) + len(rep.unreadable) == 8  # a crop for every readable photo: detector or fallback
    assert set(crops.origin) <= {"detector", "fallback"}
    assert (crops.origin == "fallback").sum() == len(rep.no_face)
    assert np.isnan(crops.scores[crops.origin == "fallback"]).all()
    assert np.all(crops.scores[crops.origin == "detector"] >= 0.5)
    assert rep.found_rate()["without_mask"] >= 0.75


# --------------------------------------------------------------------------- what the notebook shows


def test_threshold_tradeoff_rates_fall_as_the_threshold_rises(tmp_path, photos, detector):
    from maskedu.crop import background_images, threshold_tradeoff

    ds = folders_dataset(tmp_path, [(photos["astronaut"], "without_mask"), (photos["coffee"], "with_mask")])
    assert [n for n, _ in background_images(crops_per_image=1, whole=False)][0].startswith("brick[")
    assert len(background_images(crops_per_image=1, whole=False)) == 20
    pictures = background_images(crops_per_image=0)[:3]
    curve = threshold_tradeoff(ds, pictures, detector=detector, thresholds=[0.5, 0.7, 0.9], verbose=False)
    assert curve.thresholds.tolist() == [0.5, 0.7, 0.9]
    assert curve.found_rate["without_mask"].tolist() == [1.0, 1.0, 1.0]  # found by the first pass
    assert curve.found_rate["with_mask"].tolist() == [0.0, 0.0, 0.0]  # coffee has no face at any threshold
    assert curve.counts == {"with_mask": 1, "without_mask": 1, "background": 3}
    assert np.all(np.diff(curve.false_positive_rate) <= 0) and curve.current == detector.retry_thresholds[2]
    assert curve.plot(budget=0.02).axes


def test_fallback_leak_and_helpers(tmp_path, photos, detector):
    from maskedu.crop import (fallback_leak, pair_crops, plot_crop_gallery, plot_detections, plot_found_rates,
                              take_per_class)

    import matplotlib.pyplot as plt

    open_before = plt.get_fignums()  # figures another test left open are not this test's
    n = 5
    crops = Crops(images=np.zeros((n, 8, 8, 3), np.uint8), labels=np.array([0, 0, 0, 1, 1]),
                  paths=np.array(["a", "b", "c", "d", "e"]), boxes=np.zeros((n, 4), np.int64),
                  scores=np.full(n, np.nan, np.float32), ious=np.full(n, np.nan, np.float32),
                  origin=np.array(["fallback", "fallback", "detector", "fallback", "detector"]))
    leak = fallback_leak(crops)
    assert leak["fallback"] == {"crops": 3, "with_mask": pytest.approx(2 / 3), "without_mask": pytest.approx(1 / 3)}
    assert leak["detector"]["crops"] == 2 and "annotation" not in leak
    assert crops.origin_counts()["with_mask"] == {"detector": 1, "annotation": 0, "fallback": 2}

    ds = kaggle_dataset(tmp_path, [(photos["astronaut"], [((180, 60, 268, 175), "with_mask", "m"), ((300, 300, 340, 340), "without_mask", "n")])])
    det = crop_faces(ds, detector=detector, cache=False, verbose=False)
    ann = crop_faces(ds, source="annotations", cache=False, verbose=False)
    assert pair_crops(det, ann) == [(0, 0)]

    folders = folders_dataset(tmp_path, [(photos["astronaut"], "without_mask"), (photos["hopper"], "without_mask"), (photos["coffee"], "with_mask")])
    small = take_per_class(folders, 1)
    assert [r.label for r in small.images] == ["without_mask", "with_mask"]
    assert len(take_per_class(folders, 5)) == 3

    result = detector.detect_full(photos["astronaut"])
    fig = plot_detections(photos["astronaut"], result, annotations=ds.images[0].boxes)
    assert len(fig.axes[0].patches) == 1 + 2  # one detection, two annotated boxes
    assert len(fig.axes[0].collections) == 1  # the five keypoints
    assert len(plot_crop_gallery(det, per_class=3).axes) == 3
    fig = plot_found_rates({"a": det.report, "b": det.report})
    assert len(fig.axes[0].patches) == 4
    assert plt.get_fignums() == open_before  # built as matplotlib.figure.Figure: a returned figure shows once


def test_plot_functions_return_a_figure_or_draw_into_the_given_axes(detector, astronaut):
    import matplotlib
    from matplotlib.figure import Figure

    from maskedu.crop import plot_close_up_look, plot_detections, plot_gallery, plot_crop_gallery
    from maskedu.plotting import new_figure

    matplotlib.use("Agg")
    assert plot_gallery is plot_crop_gallery  # the old name, which notebook 02 calls
    look = detector.close_up_look(astronaut)
    fig = plot_close_up_look(look, image=astronaut)
    assert isinstance(fig, Figure) and len(fig.axes) == len(detector.close_up_views) + 1
    assert "accepted" in fig.axes[-1].get_title()
    mine, axes = new_figure((6, 3), 1, 2)
    faces = detector.detect(astronaut)
    assert plot_detections(astronaut, faces, ax=axes[0, 1], title="t") is mine
    assert len(axes[0, 1].patches) == 1 and not axes[0, 0].patches and axes[0, 1].get_title() == "t"


# --------------------------------------------------------------------------- settings, face type, surfaces


def test_detector_settings_come_in_groups_and_as_keywords():
    from maskedu.crop import CloseUpSettings, NetworkSettings, RunSettings, SecondLookSettings, SizeSettings

    d = FaceDetector()
    assert (d.network, d.size, d.second_look, d.close_up, d.run) == (
        NetworkSettings(), SizeSettings(), SecondLookSettings(), CloseUpSettings(), RunSettings())
    by_keyword = FaceDetector(close_up=False, thresholds=(0.6, 0.7, 0.9), threads=1)
    by_group = FaceDetector(close_up=CloseUpSettings(enabled=False), network=NetworkSettings(thresholds=(0.6, 0.7, 0.9)),
                            run=RunSettings(threads=1))
    assert by_keyword.config() == by_group.config() and by_keyword.threads == by_group.threads == 1
    assert by_keyword.config()["close_up_views"] is None and by_keyword.thresholds == (0.6, 0.7, 0.9)
    assert FaceDetector.paper().config()["max_side"] is None and not FaceDetector.paper().compiled
    with pytest.raises(TypeError, match="unexpected keyword 'threshold'"):
        FaceDetector(threshold=0.9)
    with pytest.raises(TypeError, match="both network= and thresholds="):
        FaceDetector(network=NetworkSettings(), thresholds=(0.6, 0.7, 0.8))
    with pytest.raises(TypeError, match="run must be a maskedu.crop.RunSettings"):
        FaceDetector(run={"threads": 2})
    with pytest.raises(ValueError, match="close_up_min_agreement"):
        CloseUpSettings(min_agreement=1.5)


def test_one_face_type_and_keypoint_names_in_one_place():
    import maskedu.detect
    import maskedu.pattern
    from maskedu.crop import Face
    from maskedu.crop.faces import KEYPOINT_NAMES as names

    assert Detection is Face and maskedu.detect.FaceResult is Face and maskedu.pattern.FaceLandmarks is Face
    assert KEYPOINT_NAMES is names
    mirrored = {"left_eye": (40.0, 10.0), "right_eye": (10.0, 12.0), "nose": (25.0, 20.0),
                "mouth_left": (35.0, 30.0), "mouth_right": (15.0, 30.0)}
    face = Face.from_keypoints((0, 0, 50, 40), mirrored, 0.9)
    assert face.left_eye == (10.0, 12.0) and face.mouth_left == (15.0, 30.0)  # image-left first
    half = face.scaled(0.5, (10, 0))
    assert half.box == (-5, 0, 20, 20) and half.nose == (7.5, 10.0)
    labelled = face.with_label("without_mask", (0.25, 0.75), CLASS_NAMES)
    assert labelled.confidence == 0.75 and not labelled.masked and labelled.box == face.box
    with pytest.raises(KeyError, match="no 'nose' landmark"):
        Face((0, 0, 5, 5)).nose


def test_crop_report_renders_briefly():
    from maskedu.crop import CropReport

    report = CropReport(images=900, layout="kaggle", per_class={"with_mask": [10, 7], "without_mask": [4, 4]},
                        missed=[("a.jpg", (0, 0, 5, 5), "with_mask")] * 500)
    text = repr(report)
    assert text.startswith("CropReport(900 images") and "missed=500" in text and "with_mask 70.0%" in text
    assert len(text) < 300 and "a.jpg" not in text  # a summary, not every list
    html = report._repr_html_()
    assert "500" in html and html.count("a.jpg") == 3  # the summary names the first three


def test_progress_is_the_old_name_of_verbose(tmp_path, photos, capsys):
    ds = folders_dataset(tmp_path, [(photos["astronaut"], "without_mask")])
    with pytest.warns(DeprecationWarning, match="crop_faces\\(progress=...\\) is deprecated"):
        crop_faces(ds, source="mtcnn", detector=FaceDetector(close_up=False), cache=False, progress=False,
                   verbose=False)
    assert capsys.readouterr().out == ""
    with pytest.raises(TypeError, match="verbose must be True or False"):
        crop_faces(ds, cache=False, verbose="yes")


def test_crop_stage_imports_run_one_way():
    """faces and mtcnn_internals import nothing of the crop stage; detector imports only those two; no module
    of the stage imports one that imports it back."""
    import ast
    from pathlib import Path

    import maskedu.crop

    folder = Path(maskedu.crop.__file__).parent
    deps = {}
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        deps[path.stem] = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module}
    assert deps["faces"] == set() and deps["mtcnn_internals"] == set()
    assert deps["detector"] == {"faces", "mtcnn_internals"}

    def reaches(a, b, seen=()):
        return any(d == b or (d not in seen and reaches(d, b, seen + (d,))) for d in deps.get(a, ()))

    assert not [m for m in deps if m != "__init__" and reaches(m, m)]


def test_get_crops_uses_get_dataset_and_the_cache(tmp_path, photos, detector, monkeypatch, capsys):
    import maskedu.download
    from maskedu.crop import get_crops

    ds = folders_dataset(tmp_path, [(photos["astronaut"], "without_mask")])
    monkeypatch.setattr(maskedu.download, "get_dataset", lambda verbose=True: ds)  # the real one builds the sample
    first = get_crops(detector=detector)
    assert len(first) == 1 and not first.report.from_cache
    assert "Cropped 1 faces" in capsys.readouterr().out
    again = get_crops(ds, detector=detector, verbose=False)
    assert again.report.from_cache and np.array_equal(again.images, first.images)


# --------------------------------------------------------------------------- compiled MTCNN, close-up look


def test_compiled_mtcnn_finds_the_same_boxes_as_mtcnn_as_installed(detector, astronaut, hopper):
    eager = FaceDetector(compiled=False, close_up=False)
    assert eager.mtcnn is not detector.mtcnn  # the two share weights files, not instances
    for image in (astronaut, hopper, np.ascontiguousarray(astronaut[::2, ::2])):
        a, b = detector.detect_full(image), eager.detect_full(image)
        assert len(a.detections) == len(b.detections) >= 1
        for x, y in zip(a.detections, b.detections):
            assert np.allclose(x.raw_box, y.raw_box, atol=0.05) and abs(x.score - y.score) < 1e-4


def _masked_close_up(image, face, style, top, sides):
    """A tight close-up of a face wearing a drawn mask (the RMFD kind of photo MTCNN misses)."""
    from maskedu.crop import close_up_of
    from maskedu.sample import draw_mask

    return close_up_of(draw_mask(image, face.keypoints, style=style), face, above=top, beside=sides)


@pytest.mark.parametrize("which, style, top, sides", [
    ("astronaut", "cloth", 0.8, 0.6),
    ("hopper", "cloth", 0.5, 0.6),
    ("hopper", "n95", 0.5, 0.9),
])
def test_close_up_look_finds_masked_close_ups_the_first_two_looks_miss(detector, astronaut, hopper, which, style, top, sides):
    image = {"astronaut": astronaut, "hopper": hopper}[which]
    close_up = _masked_close_up(image, detector.detect(image)[0], style, top, sides)
    without = FaceDetector(close_up=False).detect_full(close_up)
    assert not without.found and without.attempts == 2
    result = detector.detect_full(close_up)
    assert result.found and result.attempts == 3
    face = result.best
    assert face.attempt == 3 and detector.close_up_min_agreement <= face.score <= 1
    h, w = close_up.shape[:2]
    # a close-up's face: large, and the eyes (visible above the mask) in the upper half of the box
    assert max(face.width, face.height) >= detector.close_up_min_size * min(h, w)
    x1, y1, x2, y2 = face.box
    for eye in ("left_eye", "right_eye"):
        ex, ey = face.keypoints[eye]
        assert x1 <= ex <= x2 and y1 <= ey <= (y1 + y2) / 2
    assert face.keypoints["left_eye"][0] < face.keypoints["right_eye"][0]


@pytest.mark.slow  # more than five seconds on two cores
def test_close_up_look_adds_no_face_to_face_free_pictures(detector):
    from maskedu.crop import background_images

    pictures = background_images(crops_per_image=2, seed=3)
    results = detector.detect_many([img for _, img in pictures])
    assert all(r.attempts == 3 for r in results)  # every picture went through all three looks
    assert [name for (name, _), r in zip(pictures, results) if r.found] == []


def test_close_up_settings_are_validated_and_part_of_the_cache_key():
    from maskedu.crop import CLOSE_UP_VIEWS, View

    with pytest.raises(TypeError, match="close_up_views"):
        FaceDetector(close_up_views=[(0.3, 0.3, 0.3)])
    with pytest.raises(ValueError, match="close_up_min_agreement"):
        FaceDetector(close_up_min_agreement=1.5)
    with pytest.raises(TypeError, match="compiled"):
        FaceDetector(compiled="yes")
    with pytest.raises(ValueError, match="View.side"):
        View(side=10)
    assert FaceDetector().config() != FaceDetector(close_up_views=CLOSE_UP_VIEWS[:3]).config()
    assert FaceDetector().config() != FaceDetector(close_up=False).config()
    assert FaceDetector().config() == FaceDetector(compiled=False).config()  # same boxes: same cache
    assert "<7 views>" in repr(FaceDetector())


def test_close_up_look_shows_its_views_and_agrees_with_detect(detector, hopper):
    import matplotlib

    matplotlib.use("Agg")
    from maskedu.crop import plot_close_up_look

    close_up = _masked_close_up(hopper, detector.detect(hopper)[0], "cloth", 0.5, 0.6)
    look = detector.close_up_look(close_up)
    assert look.found and look.detection == detector.detect(close_up)[0]
    assert len(look.pictures) == len(look.view_boxes) == len(detector.close_up_views)
    assert len(look.boxes) == len(look.scores) == len(look.view_of) == len(look.agreement) == sum(map(len, look.view_scores))
    assert look.detection.score == pytest.approx(look.agreement.max())
    fig = plot_close_up_look(look, image=close_up)
    assert len(fig.axes) == len(detector.close_up_views) + 1 and "agreement" in fig.axes[-1].get_title()
    # nothing accepted on a face-free picture, and the figure says why
    empty = detector.close_up_look(skdata.coffee())
    assert not empty.found
    assert "nothing accepted" in plot_close_up_look(empty, image=skdata.coffee()).axes[-1].get_title()


def test_close_up_of_validates_its_input(detector, astronaut):
    from maskedu.crop import close_up_of

    face = detector.detect(astronaut)[0]
    assert close_up_of(astronaut, face, width=64).shape[1] == 64
    with pytest.raises(ValueError, match="above"):
        close_up_of(astronaut, face, above=-1)
    flipped = Detection(box=face.box, score=face.score, raw_box=face.raw_box,
                        keypoints={**face.keypoints, "left_eye": face.keypoints["right_eye"], "right_eye": face.keypoints["left_eye"]})
    with pytest.raises(ValueError, match="eyes"):
        close_up_of(astronaut, flipped)
