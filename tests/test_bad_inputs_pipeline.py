"""Bad input never costs a batch or finished work, and a broken model never gives a silent answer.

Real things only: a tiny Keras model (some with NaN weights), real photos (skimage's astronaut and
matplotlib's grace_hopper, which show one real face each), empty and corrupt files, MTCNN's own weights,
scipy's differential evolution and a real unwritable cache folder (a regular file where the folder goes).
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import data as skdata

pytest.importorskip("keras")

import maskedu  # noqa: E402
from maskedu.annotations import Dataset, FaceBox, ImageRecord, LoadReport  # noqa: E402
from maskedu.detect import ImageResult, detect_masks  # noqa: E402
from maskedu.imaging import ImageError  # noqa: E402
from maskedu.model import ModelError, build_resnet, get_model, load_model, save_model  # noqa: E402

GRACE = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
ASTRONAUT_FACE = (182, 64, 265, 171)


@pytest.fixture(scope="module")
def model():
    return build_resnet(widths=(8,), blocks=(1,), stem_filters=8)


@pytest.fixture(scope="module")
def nan_model():
    """The same tiny network with its logits layer's weights set to NaN: every output is NaN."""
    m = build_resnet(widths=(8,), blocks=(1,), stem_filters=8, name="nan_resnet")
    layer = m.get_layer("logits")
    layer.set_weights([np.full_like(w, np.nan) for w in layer.get_weights()])
    return m


@pytest.fixture(scope="module")
def face50():
    """The astronaut's face as a 50 x 50 crop, what the classifier and the attack take."""
    img = Image.fromarray(skdata.astronaut()).crop(ASTRONAUT_FACE).resize((50, 50))
    return np.asarray(img, dtype=np.uint8)


@pytest.fixture()
def mixed_folder(tmp_path):
    """Two real photos, an empty file and a corrupt one, named so that sorting interleaves them."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(skdata.astronaut()).save(folder / "a_astronaut.png")
    (folder / "b_empty.jpg").write_bytes(b"")
    Image.open(GRACE).convert("RGB").save(folder / "c_grace.jpg")
    (folder / "d_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    return folder


# --------------------------------------------------------------------------- item 2: one bad image, one batch


def _detect_recording(items, model):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = detect_masks(items, model)
    return results, [w for w in caught if "detect_masks" in str(w.message)]


def _check_mixed(results, caught):
    names = [Path(r.source).name for r in results]
    assert names == ["a_astronaut.png", "b_empty.jpg", "c_grace.jpg", "d_corrupt.png"]
    assert all(isinstance(r, ImageResult) for r in results)
    good, empty, grace, corrupt = results
    for r in (good, grace):
        assert r.error is None and r.ok
        assert len(r.faces) == 1 and r.faces[0].score > 0.9 and r.width > 0 and r.height > 0
    for r, what in ((empty, "b_empty.jpg"), (corrupt, "d_corrupt.png")):
        assert not r.ok and r.faces == [] and len(r) == 0
        assert isinstance(r.error, str) and what in r.error
    assert len(caught) == 1, [str(w.message) for w in caught]
    text = str(caught[0].message)
    assert "2 of 4" in text and "b_empty.jpg" in text and "d_corrupt.png" in text


def test_a_bad_file_in_a_list_costs_only_its_own_result(mixed_folder, model):
    items = sorted(mixed_folder.iterdir())
    _check_mixed(*_detect_recording(items, model))


def test_a_bad_file_in_a_folder_costs_only_its_own_result(mixed_folder, model):
    _check_mixed(*_detect_recording(mixed_folder, model))


def test_bad_files_in_another_batch_are_reported_in_the_same_single_warning(mixed_folder, model):
    items = sorted(mixed_folder.iterdir())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = detect_masks(items, model, batch_size=1)  # every file its own batch
    _check_mixed(results, [w for w in caught if "detect_masks" in str(w.message)])


def test_a_single_bad_input_still_raises(mixed_folder, model):
    with pytest.raises(ImageError, match="b_empty.jpg"):
        detect_masks(mixed_folder / "b_empty.jpg", model)
    with pytest.raises(ImageError, match="d_corrupt.png"):
        detect_masks(mixed_folder / "d_corrupt.png", model)


def test_a_batch_of_good_photos_warns_nothing(mixed_folder, model):
    good = [mixed_folder / "a_astronaut.png", mixed_folder / "c_grace.jpg"]
    results, caught = _detect_recording(good, model)
    assert caught == [] and [len(r) for r in results] == [1, 1] and all(r.ok for r in results)


# --------------------------------------------------------------------------- item 5a: an unwritable cache


def _annotated_dataset(tmp_path) -> Dataset:
    path = tmp_path / "astronaut.png"
    Image.fromarray(skdata.astronaut()).save(path)
    record = ImageRecord(path=path, boxes=[FaceBox(*ASTRONAUT_FACE, label="without_mask", raw_label="without_mask")])
    return Dataset(root=tmp_path, layout="kaggle", images=[record], class_map={}, report=LoadReport())


def test_an_unwritable_crop_cache_is_a_warning_and_the_crops_come_back(tmp_path, monkeypatch):
    from maskedu.crop import crop_faces

    data = tmp_path / "data"
    data.mkdir()
    (data / "crops").write_text("a file where the cache folder should be")
    monkeypatch.setenv("MASKEDU_DATA", str(data))
    ds = _annotated_dataset(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        crops = crop_faces(ds, source="annotations", verbose=False)
    assert len(crops) == 1 and crops.images.shape == (1, 50, 50, 3) and crops.labels.tolist() == [1]
    msgs = [str(w.message) for w in caught if "cache" in str(w.message)]
    assert len(msgs) == 1, msgs
    assert str(data / "crops") in msgs[0] and ("exists" in msgs[0] or "directory" in msgs[0])
    assert (data / "crops").is_file()  # nothing was deleted or replaced


def test_a_cache_file_that_cannot_be_replaced_leaves_no_half_written_file(tmp_path, monkeypatch):
    from maskedu.crop import crop_faces

    data = tmp_path / "data"
    monkeypatch.setenv("MASKEDU_DATA", str(data))
    ds = _annotated_dataset(tmp_path)
    first = crop_faces(ds, source="annotations", verbose=False)
    (cache,) = (data / "crops").glob("*.npz")
    cache.unlink()
    cache.mkdir()  # a folder where the cache file goes: it can be neither read nor replaced
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = crop_faces(ds, source="annotations", verbose=False)
    assert np.array_equal(again.images, first.images)
    msgs = [str(w.message) for w in caught]
    assert any("could not be saved" in m and str(cache) in m for m in msgs), msgs
    assert sorted(p.name for p in (data / "crops").iterdir()) == [cache.name]  # no temporary file left


def test_a_data_folder_that_is_a_file_is_a_warning_and_the_crops_come_back(tmp_path, monkeypatch):
    from maskedu.crop import crop_faces

    data = tmp_path / "data"
    data.write_text("a file where the data folder should be")
    monkeypatch.setenv("MASKEDU_DATA", str(data))
    ds = _annotated_dataset(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        crops = crop_faces(ds, source="annotations", verbose=False)
    assert len(crops) == 1
    msgs = [str(w.message) for w in caught if "cache" in str(w.message)]
    assert len(msgs) == 1 and str(data) in msgs[0], msgs


# --------------------------------------------------------------------------- item 6: no silent wrong answers


def test_one_pixel_attack_on_a_nan_model_raises_naming_the_output(nan_model, face50):
    from maskedu.attack import one_pixel_attack, sparse_attack

    for label in (0, 1):  # label 1 used to come back "already misclassified", label 0 ran its whole budget
        with pytest.raises(ModelError, match="(?i)nan"):
            one_pixel_attack(nan_model, face50, label, popsize=10, maxiter=2, seed=0)
    with pytest.raises(ModelError, match="(?i)nan"):
        sparse_attack(nan_model, face50, 0, pixels=2, budget=50, batch=10, seed=0)


def test_one_pixel_attack_stops_when_candidates_score_nan(model, face50):
    """Finite on the clean face, NaN on every changed one: the first candidate batch raises."""
    from maskedu.attack import one_pixel_attack
    from maskedu.model import make_predict_fn

    predict = make_predict_fn(model)

    def nan_when_changed(batch):
        probs = predict(batch).astype(np.float64)
        changed = (batch != face50).any(axis=(1, 2, 3))
        probs[changed] = np.nan
        return probs

    label = int(np.argmax(predict(face50[None])[0]))
    with pytest.raises(ModelError, match="(?i)nan scores for 10 of 10 images.*attack stops"):
        one_pixel_attack(nan_when_changed, face50, label, popsize=10, maxiter=2, seed=0)


def test_annealing_from_a_nan_start_raises_instead_of_returning_the_start():
    from maskedu.anneal import random_search, simulated_annealing
    from maskedu.common import ParameterError

    def fitness(x):
        return float("nan") if x == 0 else -abs(x - 3.0)

    def step(x, rng):
        return x + float(rng.choice([-1.0, 1.0]))

    with pytest.raises(ParameterError, match="(?i)fitness.*nan.*initial state"):
        simulated_annealing(fitness, 0.0, step, max_iters=50, seed=0)
    with pytest.raises(ParameterError, match="(?i)fitness.*nan.*candidate at iteration"):
        # climbing towards 0 from 2 reaches the NaN at 0 within a few steps
        simulated_annealing(lambda x: float("nan") if x == 0 else -abs(x), 2.0, step, max_iters=200, seed=0)
    with pytest.raises(ParameterError, match="(?i)fitness.*inf"):
        simulated_annealing(lambda x: float("inf"), 1.0, step, max_iters=5, seed=0)
    with pytest.raises(ParameterError, match="(?i)fitness.*nan"):
        random_search(fitness, lambda rng: float(rng.integers(0, 2)), max_iters=50, seed=0)
    ok = simulated_annealing(lambda x: -abs(x - 3.0), 0.0, step, max_iters=200, seed=0)
    assert ok.best_state == 3.0  # finite fitness: unchanged behaviour


def test_detect_masks_with_three_outputs_and_two_class_names_raises_clearly(face50):
    three = build_resnet(n_classes=3, widths=(8,), blocks=(1,), stem_filters=8, name="three_classes")
    astronaut = skdata.astronaut()
    with pytest.raises(ModelError, match="3 class scores.*2 names"):
        detect_masks(astronaut, three, class_names=("with_mask", "without_mask"))
    assert len(detect_masks(astronaut, three, class_names=("a", "b", "c"))) == 1
    # without class_names the model's own three (maskedu's classes=3) label it
    assert detect_masks(astronaut, three)[0].label in ("with_mask", "without_mask", "mask_worn_incorrectly")


def test_detect_masks_with_a_nan_model_raises_instead_of_labelling(nan_model):
    with pytest.raises(ModelError, match="(?i)nan"):
        detect_masks(skdata.astronaut(), nan_model)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", "half", "other zip"])
def test_a_corrupt_model_file_is_a_clear_error_naming_it(tmp_path, model, capsys, content):
    path = tmp_path / "models" / "resnet.keras"
    save_model(model, path)
    if content == "half":
        data = path.read_bytes()
        content = data[: len(data) // 2]
    if content == "other zip":  # a real zip archive that holds no model
        import io
        import zipfile

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("notes.txt", "no model in here")
        content = buf.getvalue()
    path.write_bytes(content)
    with pytest.raises(ModelError, match="resnet.keras") as info:
        get_model(path=path, verbose=True)
    assert "retrain=True" in str(info.value) and "File not found" not in str(info.value)
    assert "Loaded" not in capsys.readouterr().out
    with pytest.raises(ModelError, match="resnet.keras"):
        load_model(path)
    assert maskedu.ModelError is ModelError


def test_a_good_model_file_still_loads(tmp_path, model):
    path = save_model(model, tmp_path / "resnet.keras")
    loaded = load_model(path)
    x = np.zeros((2, 50, 50, 3), np.uint8)
    assert np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


# --------------------------------------------------------------------------- process-wide state


@pytest.mark.slow
def test_detect_masks_leaves_warnings_filters_and_pil_settings_as_they_were(tmp_path, model):
    folder = tmp_path / "many"
    folder.mkdir()
    astro = Image.fromarray(skdata.astronaut())
    for i in range(24):  # decoded two at a time: a loader changing process-wide settings races (most runs catch it)
        astro.save(folder / f"{i:02d}.png")
    (folder / "zz_empty.jpg").write_bytes(b"")
    detect_masks(folder / "00.png", model)  # first use imports MTCNN and friends, whose imports may add filters
    with warnings.catch_warnings(record=True) as caught:  # the one warning about the empty file goes here
        warnings.simplefilter("always")
        before, pixels = list(warnings.filters), Image.MAX_IMAGE_PIXELS
        results = detect_masks(folder, model)
        after = list(warnings.filters)  # compared here: leaving the block would restore the filters anyway
    assert len(results) == 25 and sum(r.ok for r in results) == 24 and len(caught) == 1
    assert after == before
    assert Image.MAX_IMAGE_PIXELS == pixels


def test_sobol_starts_in_threads_leave_warnings_filters_as_they_were():
    """Six threads drawing Sobol starting populations (12 is not a power of two, which scipy warns about).

    Python switches threads every microsecond here, so a ``catch_warnings`` block in one thread overlaps
    another's: with one, a filter stays behind in every run tried.
    """
    import sys

    from maskedu.attack import _initial_population, candidate_bounds

    bounds = candidate_bounds(50, 50, 1)
    _initial_population("sobol", 12, bounds, np.random.default_rng(0))  # scipy's own imports add filters once
    before = list(warnings.filters)
    populations = {}

    def run(seed):
        rng = np.random.default_rng(seed)
        populations[seed] = [_initial_population("sobol", 12, bounds, rng) for _ in range(500)]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=run, args=(s,)) for s in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert list(warnings.filters) == before
    assert all(len(p) == 500 and p[0].shape == (12, 5) for p in populations.values())
    # the same points as scipy's Sobol sequence drawn directly: nothing changed but the warning
    from scipy.stats import qmc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unit = qmc.Sobol(d=5, rng=np.random.default_rng(0)).random(12)
    lo, hi = np.array(bounds).T
    assert np.array_equal(populations[0][0], lo + np.clip(unit, 0.0, np.nextafter(1.0, 0.0)) * (hi - lo))
