"""The benchmark scripts run end to end on a tiny class-folder set and print the JSON line their issues ask for.

These are not speed checks (the scripts measure speed; tests never time anything): they keep the scripts
working on a machine without ``../shared/realfaces``, on a folder of real photos made here: the astronaut
(scikit-image) and Grace Hopper (matplotlib), cut three ways each, bare and with a drawn mask.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import data as skdata

ROOT = Path(__file__).resolve().parents[1]

#: Each test runs a benchmark script in a fresh Python (TensorFlow, MTCNN, training): 15-45 s each on 2 cores.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    from maskedu.crop import FaceDetector
    from maskedu.imaging import load_image
    from maskedu.sample import MASK_STYLES, draw_mask

    root = tmp_path_factory.mktemp("photos")
    (root / "with_mask").mkdir()
    (root / "without_mask").mkdir()
    detector = FaceDetector()
    sources = {"astronaut": skdata.astronaut(), "hopper": load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))}
    k = 0
    for name, photo in sources.items():
        face = detector.detect(photo)[0]
        x1, y1, x2, y2 = face.box
        side = max(x2 - x1, y2 - y1)
        for j, grow in enumerate((0.6, 1.0, 1.6)):  # a close-up, a portrait, a wider shot
            m = int(grow * side)
            cut = (max(0, x1 - m), max(0, y1 - m), min(photo.shape[1], x2 + m), min(photo.shape[0], y2 + m))
            masked = draw_mask(photo, face.keypoints, style=MASK_STYLES[k % len(MASK_STYLES)])
            for folder, image in (("without_mask", photo), ("with_mask", masked)):
                piece = np.ascontiguousarray(image[cut[1]:cut[3], cut[0]:cut[2]])
                if j == 1:
                    piece = np.ascontiguousarray(piece[:, ::-1])
                Image.fromarray(piece).save(root / folder / f"{name}-{j}.{'png' if j == 2 else 'jpg'}")
            k += 1
    return root


def _run(script: str, *args: str, tmp_path: Path, lines: list | None = None) -> dict:
    """Run a benchmark script; return its last line's JSON (and, into ``lines``, everything it printed)."""
    env = dict(os.environ, MASKEDU_FAST="1", MASKEDU_NO_PROGRESS="1", TF_CPP_MIN_LOG_LEVEL="3",
               MASKEDU_DATA=str(tmp_path / "data"))
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    printed = done.stdout.strip().splitlines()
    if lines is not None:
        lines.extend(printed)
    return json.loads(printed[-1])


def test_crop_speed_reports_both_ways_per_class(photo_folder, tmp_path):
    out = _run("crop_speed.py", str(photo_folder), "--no-fp", tmp_path=tmp_path)
    assert out["images"] == 12
    assert out["ratio"] > 0 and out["images_per_s"] > 0 and out["baseline_images_per_s"] > 0
    assert 0 < out["max_s_per_image"] < 60
    for key in ("found_rate", "baseline_found_rate", "fallback_rate"):
        assert set(out[key]) == {"with_mask", "without_mask"}
        for rate in out[key].values():  # a share of the 6 photos of its class (rounded to 4 places)
            assert rate == pytest.approx(round(rate * 6) / 6, abs=1e-4), (key, rate)
    # every bare face here is a clear frontal face: both ways find all of them
    assert out["found_rate"]["without_mask"] == 1.0 == out["baseline_found_rate"]["without_mask"]
    for c in ("with_mask", "without_mask"):  # a photo is found or falls back, never both, never neither
        assert out["found_rate"][c] + out["fallback_rate"][c] == pytest.approx(1.0)


def test_inference_speed_runs_both_ways(photo_folder, tmp_path):
    out = _run("inference_speed.py", str(photo_folder), "--limit", "0", "--model", str(tmp_path / "none.keras"),
               tmp_path=tmp_path)
    assert set(out) == {"images", "images_per_s", "baseline_images_per_s", "ratio", "mean_s_per_image",
                        "first_round_ratio"}
    assert out["images"] == 12 and out["ratio"] > 0 and 0 < out["mean_s_per_image"] < 60
    assert out["first_round_ratio"] > 0


def test_inference_speed_warms_up_on_other_photos_and_alternates_rounds(photo_folder, tmp_path):
    printed: list[str] = []
    out = _run("inference_speed.py", str(photo_folder), "--limit", "2", "--warmup", "1", "--rounds", "3",
               "--model", str(tmp_path / "none.keras"), tmp_path=tmp_path, lines=printed)
    assert out["images"] == 4  # two timed photos from each class folder
    assert any("warm-up on 2 photos (not timed)" in line for line in printed), printed
    rounds = next(line for line in printed if line.startswith("rounds:"))
    ours, paper = rounds.removeprefix("rounds: ours ").split("; paper's way ")
    assert len(ours.split(",")) == 3 and len(paper.split(",")) == 3  # three timed rounds of each way


def test_train_accuracy_trains_tests_and_saves(photo_folder, tmp_path):
    model = tmp_path / "m.keras"
    printed: list[str] = []
    out = _run("train_accuracy.py", "--train", str(photo_folder), "--test", str(photo_folder), "--save", str(model),
               tmp_path=tmp_path, lines=printed)
    assert model.is_file() and out["model_path"] == str(model)
    assert out["train_images"] == 12 and out["test_images"] == 12
    assert out["mflops_per_face"] <= 25 and out["train_s"] > 0
    # the accuracy is the share of the 12 photos not listed as wrong, and the mean of the two classes' recalls
    recall = out["per_class_recall"]
    assert set(recall) == {"with_mask", "without_mask"}
    n_wrong = sum(line.startswith("wrong: ") for line in printed)
    assert out["test_accuracy"] == pytest.approx((12 - n_wrong) / 12, abs=1e-4), printed
    assert out["test_accuracy"] == pytest.approx((recall["with_mask"] + recall["without_mask"]) / 2, abs=1e-4)
    # each photo is answered from a detector crop, a fallback crop or none: the per-kind accuracies add up
    n_none = next((int(line.split()[0]) for line in printed if line.endswith("had no crop at all; they count as wrong")), 0)
    n_fallback = out["test_fallback_images"]
    n_detected = 12 - n_fallback - n_none
    assert (out["test_accuracy_fallback"] is None) == (n_fallback == 0)
    assert (out["test_accuracy_detected"] is None) == (n_detected == 0)
    right = n_detected * (out["test_accuracy_detected"] or 0) + n_fallback * (out["test_accuracy_fallback"] or 0)
    assert right == pytest.approx(12 * out["test_accuracy"], abs=1e-2)
