"""Worn patterns: wear conditions, the transformation-averaged fitness, held-out evaluation, printing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from maskedu import pattern as P
from maskedu import worn as W


@pytest.fixture(scope="module")
def faces():
    """Three faces with MTCNN's landmarks: the astronaut, Grace Hopper and the astronaut mirrored."""
    astronaut, grace = P.demo_face("astronaut"), P.demo_face("grace_hopper")
    return W.prepare_faces([astronaut, grace, astronaut[:, ::-1]], names=["astronaut", "grace_hopper", "mirrored"])


def test_faces_have_landmarks_and_distinct_pixel_hashes(faces):
    assert [f.name for f in faces] == ["astronaut", "grace_hopper", "mirrored"]
    assert len({f.digest for f in faces}) == 3
    assert faces[0].digest == W.pixel_hash(P.demo_face("astronaut"))
    with pytest.raises(W.FaceNotFoundError, match="no face"):
        W.prepare_faces([np.zeros((120, 120, 3), np.uint8)])
    with pytest.warns(UserWarning, match="left out"):
        kept = W.prepare_faces([faces[0], np.zeros((120, 120, 3), np.uint8)], skip_missing=True)
    assert kept == [faces[0]]


def test_condition_set_is_reproducible_from_its_seed(faces):
    a = W.sample_conditions(9, seed=3, faces=faces)
    b = W.sample_conditions(9, seed=3, faces=faces)
    c = W.sample_conditions(9, seed=4, faces=faces)
    assert a.conditions == b.conditions and a.conditions != c.conditions
    assert [x.face for x in a] == [0, 1, 2] * 3
    assert all(150 <= x.face_width <= 450 and -10 <= x.rotation <= 10 and 0 <= x.blur <= 1.5 for x in a)
    pattern = P.PatternSpace(decoy="hog", n_copies=4).render(np.array([[100, 100, 0, 1], [300, 150, 10, 1], [380, 220, -5, 0.8], [200, 200, 0, 1]], float))
    img_a, box_a = a.wear(pattern, 4)
    img_b, box_b = b.wear(pattern, 4)
    assert np.array_equal(img_a, img_b) and box_a == box_b
    assert not np.array_equal(img_a, c.wear(pattern, 4)[0])
    # the held-out grid: every face at every width
    grid = W.sample_conditions(6, seed=0, faces=faces, widths=(150, 450))
    assert sorted((x.face, x.face_width) for x in grid) == [(f, w) for f in range(3) for w in (150, 450)]
    with pytest.raises(ValueError, match="width_range"):
        W.sample_conditions(3, seed=0, faces=faces, width_range=(450, 150))


def test_worn_picture_puts_the_pattern_on_the_face(faces):
    cond = W.WearConditions((faces[0],), (W.WearCondition(face=0, face_width=200),))
    white, black = np.full((320, 480, 3), 255, np.uint8), np.zeros((320, 480, 3), np.uint8)
    a, box = cond.wear(white, 0)
    b, _ = cond.wear(black, 0)
    x1, y1, x2, y2 = box
    assert 190 <= x2 - x1 <= 210  # the face is the width asked for
    changed = np.abs(a.astype(int) - b.astype(int)).sum(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 0.1 * (x2 - x1) * (y2 - y1)  # the mask covers a good part of the face
    assert x1 - 5 <= xs.min() and xs.max() <= x2 + 5 and ys.mean() > (y1 + y2) / 2  # on the lower face
    # where the mask covers the face fully, white prints as paper (235) and black as ink (20): a print's range
    full = np.abs(a.astype(int) - b.astype(int)).min(axis=2).max()
    assert full == W.PRINT_RANGE[1] - W.PRINT_RANGE[0]


def test_eot_fitness_is_the_mean_over_conditions_and_differs_from_the_flat_one(faces):
    space = P.PatternSpace(decoy="hog", n_copies=1)
    state = np.array([[240.0, 160.0, 0.0, 1.4]])  # one big HOG decoy: a face on the flat canvas
    hog = P.get_detector("hog")
    flat = P.make_fitness(space, hog, "count")(state)
    assert flat == 1.0
    conds = W.sample_conditions(2, seed=0, faces=faces[:1], widths=(150, 300))
    eot = W.worn_fitness(space, hog, conds, kind="count")
    assert eot.evaluations_per_call == 2
    singles = [W.worn_fitness(space, hog, W.WearConditions(conds.faces, (c,), margin=conds.margin), kind="count")(state) for c in conds]
    assert eot(state) == pytest.approx(np.mean(singles))
    # worn on a 150 px face, the decoy shrinks to a fraction of HOG's 80 px window: no false face there
    small = [s for s, c in zip(singles, conds) if c.face_width == 150]
    assert small == [0.0]
    assert eot(state) < flat
    with pytest.raises(ValueError, match="goal"):
        W.worn_fitness(space, hog, conds, goal="hide")


def test_evasion_scores_the_wearers_face_lost():
    hog = P.get_detector("hog")
    photo = P.demo_face("astronaut")
    box = tuple(int(v) for v in hog.detect(photo).boxes[0])
    blank = np.full_like(photo, 128)
    # the face found: no evasion; nothing there: full evasion; found, the smooth score is below 0 (how far above the threshold)
    assert W._condition_score(photo, box, hog, "evade", "count", 0.3) == 0.0
    assert W._condition_score(blank, box, hog, "evade", "count", 0.3) == 1.0
    assert W._condition_score(blank, box, hog, "evade", "smooth", 0.3) == pytest.approx(1.0)
    assert W._condition_score(photo, box, hog, "evade", "smooth", 0.3) < 0.0
    # flooding counts only the other faces: the wearer's own face is no false face
    assert W._condition_score(photo, box, hog, "flood", "count", 0.3) == 0.0
    assert W.worn_outcome(photo, box, hog) == (True, 0)
    assert W.worn_outcome(photo, (0, 0, 40, 40), hog) == (False, 1)


class CountingHog(P.HogDetector):
    calls = 0

    def candidates(self, image):
        CountingHog.calls += 1
        return super().candidates(image)


@pytest.mark.slow
def test_search_spends_its_budget_in_detector_evaluations_and_held_out_faces_are_refused(faces):
    conds = W.sample_conditions(3, seed=0, faces=faces[:1], width_range=(150, 200))
    det = CountingHog()
    CountingHog.calls = 0
    result = W.search_worn_pattern(conds, det, "hog", 4, evaluations=20, seed=0)
    # what the search spent, plus one look at the final canvas to report its detections
    assert result.detector_evaluations == CountingHog.calls - 1
    assert 20 - len(conds) < result.detector_evaluations <= 20
    assert result.conditions is conds
    CountingHog.calls = 0
    flat = P.search_pattern(det, "hog", 4, max_iters=W.iterations_for(20), seed=0)
    assert flat.detector_evaluations == CountingHog.calls - 1 == 20
    with pytest.raises(ValueError, match="evaluations="):
        W.search_worn_pattern(conds, det, max_iters=5)
    # the face the search wore (same pixels, even a fresh copy) may not be a test face
    with pytest.raises(W.HeldOutError, match="1 of the 1 test faces.*same pixels"):
        W.evaluate_patterns({"eot": result}, [P.demo_face("astronaut")], widths=(150,), transfer=None)
    with pytest.raises(W.HeldOutError, match="grace_hopper"):
        W.evaluate_patterns({"flat": flat.image}, faces[1:2], widths=(150,), transfer=None, search_faces=[P.demo_face("grace_hopper")])
    # unseen faces: evaluated, the same grid for every arm, paired differences per face
    rand = W.random_pattern(result.space, seed=1)
    report = W.evaluate_patterns({"flat": flat, "eot": result, "random": rand}, faces[1:], widths=(150, 300), transfer=None)
    assert report.faces == ("grace_hopper", "mirrored") and report.n_conditions == 4 and report.detectors == ("hog",)
    for arm in ("flat", "eot", "random"):
        mean, (lo, hi) = report.summary["hog"][arm]["false_faces"]
        assert lo <= mean <= hi
        assert 0.0 <= report.summary["hog"][arm]["own_face_found"][0] <= 1.0
    d = report.per_face["hog"]["eot"]["false_faces"] - report.per_face["hog"]["flat"]["false_faces"]
    assert report.differences["hog"]["eot - flat"]["false_faces"][0] == pytest.approx(d.mean())
    assert len(report.records) == 3 * 4
    widths = report.by_width("hog")
    assert set(widths) == {"flat", "eot", "random"} and all(set(v) == {150, 300} for v in widths.values())
    for arm in widths:  # every face at every width: the mean over widths is the mean over faces
        assert np.mean(list(widths[arm].values())) == pytest.approx(report.mean("hog", arm))
    assert "eot - flat" in report.table()


def test_bootstrap_interval():
    lo, hi = W.bootstrap_interval([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], seed=0)
    assert lo < 4.5 < hi and 1.5 < lo and hi < 7.5
    assert np.isnan(W.bootstrap_interval([3.0])[0])


def test_export_has_the_stated_physical_size(tmp_path):
    pattern = P.PatternSpace(decoy="cartoon", n_copies=3).render(P.PatternSpace(decoy="cartoon", n_copies=3).random_state(seed=0))
    out = W.export_print(pattern, tmp_path / "mask.png", size_cm=(17.5, 9.5), dpi=300)
    assert out.png == tmp_path / "mask.png" and out.pdf == tmp_path / "mask.pdf"
    with Image.open(out.png) as im:
        w, h = im.size
        dpi = im.info["dpi"]
    assert (w, h) == out.pixels == (round(17.5 / 2.54 * 300), round(9.5 / 2.54 * 300))
    assert dpi[0] == pytest.approx(300, abs=0.01) and dpi[1] == pytest.approx(300, abs=0.01)
    assert w / dpi[0] * 2.54 == pytest.approx(17.5, abs=0.01) and h / dpi[1] * 2.54 == pytest.approx(9.5, abs=0.01)
    assert W.pdf_page_size_cm(out.pdf) == pytest.approx((17.5, 9.5), abs=1e-3)
    small = W.export_print(pattern, tmp_path / "small", size_cm=(10, 5), dpi=100)
    assert small.pixels == (394, 197) and W.pdf_page_size_cm(small.pdf) == pytest.approx((10, 5), abs=1e-3)
    with pytest.raises(ValueError, match="size_cm"):
        W.export_print(pattern, tmp_path / "bad", size_cm=(0, 5))


def test_non_printability_is_zero_on_the_palette_and_larger_off_it():
    pal = W.PRINTABLE_PALETTE
    tiles = np.repeat(pal[None, :, :], 8, axis=0)  # every palette colour, 8 pixels each
    assert W.non_printability(tiles) == 0.0
    assert W.non_printability(np.full((4, 4, 3), pal[3], np.uint8)) == 0.0
    grey = W.non_printability(np.full((4, 4, 3), 128, np.uint8))
    assert grey > 0
    neon = W.non_printability(np.full((4, 4, 3), (0, 255, 0), np.uint8))  # pure sRGB green: outside print's gamut
    assert neon > grey
    # half the pixels off the palette: half the off-palette score
    half = np.concatenate([np.full((2, 4, 3), pal[0], np.uint8), np.full((2, 4, 3), (0, 255, 0), np.uint8)])
    assert W.non_printability(half) == pytest.approx(neon / 2)
    assert W.non_printability(np.full((2, 2, 3), 128, np.uint8), palette=[(128, 128, 128)]) == 0.0
    with pytest.raises(ValueError, match="palette"):
        W.non_printability(tiles, palette=[(1, 2)])


@pytest.mark.slow
def test_benchmark_runs_on_a_small_folder_and_prints_the_json_line(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    folder = tmp_path / "faces"
    folder.mkdir()
    astronaut, grace = P.demo_face("astronaut"), P.demo_face("grace_hopper")
    for name, image in (("a.png", astronaut), ("b.png", grace), ("c.png", astronaut[:, ::-1]), ("d.png", grace[:, ::-1])):
        Image.fromarray(np.ascontiguousarray(image)).save(folder / name)
    Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(folder / "0_blank.png")  # no face: skipped and counted
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, MASKEDU_FAST="1", MASKEDU_NO_PROGRESS="1", TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "pattern_worn.py"), "--faces", str(folder), "--search", "1",
                          "--test", "3", "--evals", "12", "--conditions", "2"], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["search_faces"] == 1 and result["test_faces"] == 3 and result["evals"] == 12
    assert result["hog_upsample"] == 1 and "HogDetector(upsample=1" in out.stdout  # the defaults, searches and evaluation
    assert result["decoy"] == "cartoon" and "6 copies of the cartoon decoy" in out.stdout
    assert set(result["false_faces_per_face"]) == {"flat", "eot", "random"} == set(result["own_face_found"])
    assert set(result["transfer_mtcnn"]) == {"false_faces_per_face", "own_face_found"}
    assert result["evals_spent"]["flat"] == 12 and 10 < result["evals_spent"]["eot"] <= 12
    assert "'no face': 1" in out.stdout and "eot - flat" in out.stdout and "by face width" in out.stdout
    assert set(result["false_faces_by_width"]["eot"]) == {"150", "225", "300", "375", "450"}
