"""The adversarial mask pattern: detectors, decoys, rendering, fitness, the search and wearing it."""

from __future__ import annotations

import numpy as np
import pytest

from maskedu import pattern as P
from maskedu.crop import Face
from maskedu.imaging import iou

ASTRONAUT_FACE = (182, 64, 265, 171)  # where the face is (MTCNN's box, checked by eye)


def _well_formed(found: P.Detections, image: np.ndarray) -> None:
    h, w = image.shape[:2]
    assert found.boxes.dtype == np.int64 and found.boxes.shape == (len(found), 4)
    assert found.scores.shape == (len(found),)
    assert np.all(found.boxes[:, 2] > found.boxes[:, 0]) and np.all(found.boxes[:, 3] > found.boxes[:, 1])
    assert found.boxes[:, [0, 2]].min() >= 0 and found.boxes[:, [0, 2]].max() <= w
    assert found.boxes[:, [1, 3]].min() >= 0 and found.boxes[:, [1, 3]].max() <= h
    assert np.all(np.diff(found.scores) <= 0), "best first"


@pytest.mark.parametrize("name", ["hog", "mtcnn"])
def test_both_detectors_find_the_astronauts_face(name):
    image = P.demo_face("astronaut")
    detector = P.get_detector(name)
    found = detector.detect(image)
    _well_formed(found, image)
    assert len(found) == 1
    assert iou(found.boxes[0], ASTRONAUT_FACE) > 0.5
    assert found.scores[0] >= detector.threshold
    near = detector.candidates(image)  # the near misses include the face and more
    _well_formed(near, image)
    assert len(near) >= len(found) and near.scores.min() >= detector.floor
    # nothing on a blank canvas
    assert len(detector.detect(np.zeros((200, 200, 3), np.uint8))) == 0


def test_hog_grey_and_colour_agree_on_faces():
    image = P.demo_face("grace_hopper")
    grey = P.HogDetector().detect(image)
    colour = P.HogDetector(grey=False).detect(image)
    assert len(grey) == len(colour) == 1
    assert iou(grey.boxes[0], colour.boxes[0]) > 0.8


def test_unknown_detector_and_bad_detector_parameters():
    with pytest.raises(ValueError, match="unknown detector 'yolo'.*hog.*mtcnn"):
        P.get_detector("yolo")
    with pytest.raises(ValueError, match="upsample"):
        P.HogDetector(upsample=-1)
    with pytest.raises(ValueError, match="floor"):
        P.HogDetector(threshold=0.0, floor=0.5)
    det = P.HogDetector()
    assert P.get_detector(det) is det


@pytest.mark.parametrize("kind", P.DECOYS)
def test_decoys_are_tiles_with_alpha(kind):
    d = P.make_decoy(kind, 96)
    assert d.rgb.shape == (96, 96, 3) and d.rgb.dtype == np.uint8
    assert d.alpha.shape == (96, 96) and d.alpha.dtype == np.float32
    assert 0.0 <= d.alpha.min() and d.alpha.max() <= 1.0 and d.alpha.mean() > 0.05
    assert d.preview().shape == (96, 96, 3)
    with pytest.raises(ValueError, match="decoy"):
        P.make_decoy("skull")


def test_hog_decoy_is_seen_as_a_face_by_hog():
    # the HOG picture of a face, alone on a black canvas, is detected by the HOG detector: why it is a decoy
    space = P.PatternSpace(decoy="hog", n_copies=1)
    state = np.array([[240.0, 160.0, 0.0, 1.0]])
    assert len(P.get_detector("hog").detect(space.render(state))) == 1


def test_rendering_is_deterministic_and_in_memory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    space = P.PatternSpace(decoy="photo", n_copies=6)
    state = space.random_state(seed=3)
    a, b = space.render(state), space.render(state.copy())
    assert a.shape == (320, 480, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not any(tmp_path.iterdir()), "rendering must not write files"
    other = space.render(space.random_state(seed=4))
    assert not np.array_equal(a, other)


@pytest.mark.parametrize("rotation", [-45.0, -20.0, 0.0, 33.0, 45.0])
@pytest.mark.parametrize("corner", [(-1e4, -1e4), (1e4, 1e4), (-1e4, 1e4), (1e4, -1e4)])
def test_every_copy_stays_inside_the_canvas(rotation, corner):
    space = P.PatternSpace(decoy="cartoon", n_copies=1, background=(0, 0, 0))
    scale = space.scale_range[1]
    state = space.clip(np.array([[corner[0], corner[1], rotation, scale]]))
    drawn = space.render(state).astype(np.float64).sum()
    # the same copy in the middle of a canvas big enough for anything: nothing of it may be cut off
    big = P.PatternSpace(decoy=space.decoy, n_copies=1, canvas=(900, 900), background=(0, 0, 0))
    whole = big.render(np.array([[450.0, 450.0, rotation, scale]])).astype(np.float64).sum()
    assert drawn == pytest.approx(whole, rel=0.01)


def test_states_are_clipped_and_moves_are_small():
    space = P.PatternSpace(n_copies=4)
    rng = np.random.default_rng(0)
    state = space.random_state(rng)
    for _ in range(200):
        new = space.neighbour(state, rng)
        assert new.shape == (4, 4)
        changed = np.any(new != state, axis=1)
        assert changed.sum() <= 1, "a move changes one copy"
        assert np.all(new[:, 2] >= -45) and np.all(new[:, 2] <= 45)
        assert np.all(new[:, 3] >= 0.6) and np.all(new[:, 3] <= 1.4)
        state = new
    assert "copy 3" in space.describe(state)
    with pytest.raises(ValueError, match=r"shape \(n_copies, 4\)"):
        space.render(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="finite"):
        space.render(np.full((4, 4), np.nan))


def test_bad_space_parameters_are_explained():
    with pytest.raises(ValueError, match="n_copies"):
        P.PatternSpace(n_copies=0)
    with pytest.raises(ValueError, match="canvas"):
        P.PatternSpace(canvas=(200, 150))  # a 140 px decoy at scale 1.4 cannot fit
    with pytest.raises(ValueError, match="rotation_range"):
        P.PatternSpace(rotation_range=(30, -30))
    with pytest.raises(TypeError, match="decoy"):
        P.PatternSpace(decoy=42)


def test_fitness_count_and_smooth():
    det = P.get_detector("hog")
    space = P.PatternSpace(decoy="photo", n_copies=2)
    apart = space.render(np.array([[120.0, 160.0, 0.0, 1.2], [360.0, 160.0, 0.0, 1.2]]))
    assert P.count_fitness(apart, det) == 2.0
    smooth = P.smooth_fitness(apart, det)
    assert 2.0 <= smooth < 3.0, "the bonus never reaches one detection"
    blank = np.zeros((320, 480, 3), np.uint8)
    assert P.count_fitness(blank, det) == 0.0 == P.smooth_fitness(blank, det)
    # a near miss scores above nothing but below a detection
    hog_space = P.PatternSpace(decoy="hog", n_copies=1)
    tilted = hog_space.render(np.array([[240.0, 160.0, 0.0, 0.8]]))  # a bit too small to be a face
    assert P.count_fitness(tilted, det) == 0.0
    assert 0.0 < P.smooth_fitness(tilted, det) < 1.0
    with pytest.raises(ValueError, match="fitness"):
        P.make_fitness(space, det, "likelihood")


@pytest.mark.slow
def test_search_pattern_small_budget():
    result = P.search_pattern("hog", "photo", 3, max_iters=40, seed=0)
    assert result.method == "annealing" and len(result.history) == 40
    assert result.image.shape == (320, 480, 3)
    assert result.n_detections == int(result.search.best_fitness)  # smooth fitness: count + bonus < 1
    assert result.n_detections >= 1
    again = P.search_pattern("hog", "photo", 3, max_iters=40, seed=0)
    np.testing.assert_array_equal(result.best_state, again.best_state)
    rnd = P.search_pattern("hog", "photo", 3, method="random", fitness="count", max_iters=40, seed=0)
    assert rnd.search.n_evaluations == result.search.n_evaluations == 41
    with pytest.raises(ValueError, match="n_copies"):
        P.search_pattern("hog", "hog", 0)
    with pytest.raises(ValueError, match="t0"):
        P.search_pattern("hog", "hog", 6, t0=-1.0)
    with pytest.raises(ValueError, match="unknown detector"):
        P.search_pattern("viola-jones")
    with pytest.raises(ValueError, match="method"):
        P.search_pattern(method="genetic")


def test_wearing_the_pattern_on_faces():
    image = P.demo_face("astronaut")
    faces = P.find_faces(image)
    assert len(faces) == 1
    face = faces[0]
    assert isinstance(face, Face) and P.FaceLandmarks is Face  # the package's one face type
    assert face.left_eye[0] < face.right_eye[0] and face.nose[1] > face.left_eye[1]
    [as_face] = P.get_detector("mtcnn").detect(image).faces()
    assert iou(as_face.box, face.box) > 0.9 and set(as_face.keypoints) == set(face.keypoints)
    poly = P.mask_polygon(face)
    # the mask covers the nose and the mouth, not the eyes
    ys = poly[:, 1]
    assert ys.min() < face.nose[1] < ys.max() and ys.min() < face.mouth_left[1] < ys.max()
    assert ys.min() > max(face.left_eye[1], face.right_eye[1])
    plain = P.wear_plain_mask(image, face)
    assert plain.shape == image.shape and not np.array_equal(plain, image)
    nose = tuple(int(v) for v in face.nose)
    assert tuple(plain[nose[1], nose[0]]) == (160, 190, 220)
    forehead = (int((face.left_eye[0] + face.right_eye[0]) / 2), int(face.box[1]) + 5)
    assert np.array_equal(plain[forehead[1], forehead[0]], image[forehead[1], forehead[0]])

    space = P.PatternSpace(decoy="photo", n_copies=2)
    pattern = space.render(np.array([[120.0, 160.0, 0.0, 1.2], [360.0, 160.0, 0.0, 1.2]]))
    worn = P.wear_pattern(image, pattern, face)
    assert worn.shape == image.shape and not np.array_equal(worn, plain)

    report = P.evaluate_worn([image], pattern, "hog")
    assert len(report.faces) == 1
    f = report.faces[0]
    assert f.pattern_decoys >= 1, "two face photos printed on a close-up mask are found by HOG"
    assert f.plain_decoys == 0
    plain_rate, pattern_rate = report.face_found_rate
    assert (plain_rate, pattern_rate) == (float(f.plain_face_found), float(f.pattern_face_found))
    assert "decoy detections per image" in report.table()
    assert report.decoys_per_image[1] >= 1.0


def test_evaluate_worn_names_images_without_a_face():
    pattern = np.zeros((320, 480, 3), np.uint8)
    with pytest.warns(UserWarning, match=r"no face in image\(s\) \[0\]"):
        report = P.evaluate_worn([np.full((120, 160, 3), 200, np.uint8)], pattern, "hog")
    assert report.faces == [] and np.isnan(report.decoys_per_image[0])


def test_missing_dlib_is_explained(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "dlib", None)  # what an absent package looks like to `import`
    P._hog_detector.cache_clear()
    try:
        with pytest.raises(ImportError, match="pip install dlib-bin"):
            P.HogDetector()
    finally:
        monkeypatch.undo()
        P._hog_detector.cache_clear()
    assert len(P.HogDetector().detect(P.demo_face("astronaut"))) == 1
