"""One split, kept: the sample is split by person, the model carries its split, and held_out() returns only
faces the model never trained on (by content hash, photo id and person), for the sample in fast mode."""

from __future__ import annotations

import json

import numpy as np
import pytest

from maskedu import model as M
from maskedu.annotations import load_annotations
from maskedu.common import MaskeduError
from maskedu.crop import crop_faces, image_hashes
from maskedu.sample import SOURCES_NAME, make_sample_dataset, read_sources


# Every test here trains or crops a real sample (tens of seconds on two cores): the slow tier.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample24(tmp_path_factory):
    return make_sample_dataset(tmp_path_factory.mktemp("split") / "sample", n_images=24, seed=0)


@pytest.fixture(scope="module")
def crops24(sample24):
    return crop_faces(load_annotations(sample24), source="annotations", verbose=False)


@pytest.fixture(scope="module")
def trained24(crops24):
    return M.train(M.build_resnet(), crops24, epochs=1, verbose=False, live_plot=False)


def test_sample_records_the_person_of_every_face(sample24):
    sources = read_sources(sample24)
    assert sources is not None and json.loads((sample24 / SOURCES_NAME).read_text())["version"] >= 2
    ds = load_annotations(sample24)
    faces = {r.name: [b for b in r.boxes if b.label is not None] for r in ds.images if r.boxes}
    assert set(faces) <= set(sources)
    for name, boxes in faces.items():
        recorded = {tuple(f["box"]) for f in sources[name]}
        assert all(f["source"] for f in sources[name])
        for b in boxes:  # every annotated face box is one the sample recorded a person for
            assert tuple(int(v) for v in b.xyxy) in recorded


def test_crops_group_by_person_and_hash_by_pixels(crops24):
    groups = crops24.groups()
    labelled = crops24.labels >= 0
    assert all(g.startswith("person:") for g in groups[labelled])
    assert len(set(groups[labelled])) < labelled.sum()  # the same people come back in several photos
    hashes = crops24.hashes()
    assert len(hashes) == len(crops24) and all(len(h) == 20 for h in hashes)
    same = crops24.subset([0, 0])
    assert same.hashes()[0] == same.hashes()[1] and hashes[0] != hashes[1]
    assert crops24.photo_ids()[0].startswith("images/")


def test_no_person_and_no_face_on_both_sides(crops24, trained24):
    split, groups, hashes = trained24.split, crops24.groups(), crops24.hashes()
    seen = np.concatenate([split.train, split.validation])
    assert len(split.test) > 0 and len(split.train) > 0
    assert not set(groups[seen]) & set(groups[split.test])
    assert not set(hashes[seen]) & set(hashes[split.test])


def test_held_out_faces_were_never_trained_on(crops24, trained24):
    """What notebook 03 evaluates and notebooks 04/05 attack: held_out(crops, model)."""
    test = M.held_out(crops24, trained24.model)
    split = trained24.split
    seen = np.concatenate([split.train, split.validation])
    assert len(test) == len(split.test)
    # by content hash: the evaluated/attacked crops are exactly the test part, none of them a training face
    assert sorted(test.hashes()) == sorted(crops24.hashes()[split.test])
    assert np.array_equal(np.sort(image_hashes(trained24.test_images)), np.sort(test.hashes()))
    assert not set(test.hashes()) & set(crops24.hashes()[seen])
    # by photo id and face: no (photo, box) of a training face is held out
    trained = {(p, tuple(b)) for p, b in zip(crops24.photo_ids()[seen], crops24.boxes[seen].tolist())}
    assert not {(p, tuple(b)) for p, b in zip(test.photo_ids(), test.boxes.tolist())} & trained
    # by person
    assert not set(test.groups()) & set(crops24.groups()[seen])


def test_saved_model_carries_its_split(crops24, trained24, tmp_path, capsys):
    path = M.save_model(trained24.model, tmp_path / "m.keras")
    split_file = M.split_path(path)
    assert split_file.name == "m.split.json" and split_file.is_file()
    doc = json.loads(split_file.read_text())
    assert doc["grouping"] == "person" and doc["sizes"] == trained24.record.sizes()
    loaded = M.get_model(crops24, path=path)
    assert "Loaded the trained model" in capsys.readouterr().out
    assert sorted(M.held_out(crops24, loaded).hashes()) == sorted(M.held_out(crops24, trained24.model).hashes())
    assert sorted(M.held_out(crops24, path=path).hashes()) == sorted(M.held_out(crops24, path=split_file).hashes())
    # a model object that was never trained nor loaded with its split cannot say what it saw
    with pytest.raises(M.SplitMismatchError, match="Retrain"):
        M.held_out(crops24, M.build_resnet())
    with pytest.raises(M.SplitMismatchError, match="no split file"):
        M.held_out(crops24, path=tmp_path / "other.keras")


def test_detector_crops_of_the_same_photos_are_placed_by_person(sample24, crops24, trained24):
    detected = crop_faces(load_annotations(sample24), verbose=False)
    test = M.held_out(detected, trained24.model)
    seen = np.concatenate([trained24.split.train, trained24.split.validation])
    assert len(test) < (detected.labels >= 0).sum()
    assert not set(test.groups()) & set(crops24.groups()[seen])


def test_other_crops_raise_split_mismatch_and_get_model_retrains(crops24, trained24, tmp_path, capsys,
                                                                  tmp_path_factory):
    other_root = make_sample_dataset(tmp_path_factory.mktemp("other") / "sample", n_images=6, seed=3)
    other = crop_faces(load_annotations(other_root), source="annotations", verbose=False)
    with pytest.raises(M.SplitMismatchError) as info:
        M.held_out(other, trained24.model)
    assert isinstance(info.value, MaskeduError) and "Retrain" in str(info.value)
    # changed crops (one face fewer): get_model retrains, says so, and saves the new split
    path = M.save_model(trained24.model, tmp_path / "m.keras")
    fewer = crops24.subset(np.flatnonzero(crops24.labels >= 0)[1:])
    capsys.readouterr()
    model = M.get_model(fewer, path=path)
    out = capsys.readouterr().out
    assert "Retraining" in out and "1 of its faces are not among them" in out
    assert len(M.SplitRecord.load(M.split_path(path))) == len(fewer)
    assert len(M.held_out(fewer, model)) > 0


def test_paper_recipe_has_its_own_file_and_plain_cross_entropy(monkeypatch, tmp_path):
    monkeypatch.setenv("MASKEDU_DATA", str(tmp_path))
    assert M.RECIPES["paper"]["label_smoothing"] == 0.0
    assert M.model_path("paper").name == "resnet-paper-fast.keras"
    assert M.model_path().name == "resnet-fast.keras"
    assert M.split_path(M.model_path("paper")).name == "resnet-paper-fast.split.json"
    with pytest.raises(ValueError, match="recipe"):
        M.get_model(object(), recipe="mine")


def test_split_record_file_round_trip_and_corruption(trained24, tmp_path):
    f = trained24.record.save(tmp_path / "r.split.json")
    again = M.SplitRecord.load(f)
    assert again == trained24.record
    f.write_text("{not json")
    with pytest.raises(M.SplitMismatchError, match="cannot be read"):
        M.SplitRecord.load(f)


def test_load_model_brings_the_split_along(crops24, trained24, tmp_path):
    path = M.save_model(trained24.model, tmp_path / "m.keras")
    loaded = M.load_model(path)
    assert sorted(M.held_out(crops24, loaded).hashes()) == sorted(M.held_out(crops24, trained24.model).hashes())
    M.split_path(path).unlink()
    with pytest.raises(M.SplitMismatchError, match="carries no record"):
        M.held_out(crops24, M.load_model(path))


def test_check_unseen_fires_for_a_training_face_and_passes_held_out_ones(crops24, trained24):
    """The leak made impossible: evaluate() (and the attacks) refuse a face the model trained or validated on."""
    model, split = trained24.model, trained24.split
    test = M.held_out(crops24, model)
    assert M.check_unseen(model, test) is True
    assert M.check_unseen(model, test.images) is True  # pixels alone: matched by content hash
    assert M.check_unseen(model, test.images[0]) is True  # one image
    assert M.evaluate(model, test).accuracy >= 0  # held-out faces evaluate as before
    face = crops24.images[split.train[0]]
    for given in (crops24.subset(split.train[:1]), face, face.astype(np.float32), (face[None], np.array([0]))):
        with pytest.raises(M.SeenFaceError, match=r"1 of the 1 faces given .*\(1 in its training part"):
            M.check_unseen(model, given)
    mixed = np.concatenate([test.images[:3], crops24.images[split.validation[:1]]])
    with pytest.raises(M.SeenFaceError, match="0 in its training part, 1 in its validation part") as err:
        M.check_unseen(model, mixed)
    assert err.value.indices.tolist() == [3] and isinstance(err.value, MaskeduError)
    # evaluate() refuses training faces unless told they are training faces
    train_faces = crops24.subset(split.train)
    with pytest.raises(M.SeenFaceError, match="held_out"):
        M.evaluate(model, train_faces)
    assert len(M.evaluate(model, train_faces, unseen=False)) == len(split.train)
    with pytest.raises(TypeError, match="unseen"):
        M.evaluate(model, test, unseen="yes")
    # a model with no split cannot be checked: False, never a silent True
    assert M.check_unseen(M.build_resnet(widths=(8,), blocks=(1,), stem_filters=8), face) is False
    with pytest.raises(ValueError, match="shape"):
        M.check_unseen(model, np.zeros((50, 50), np.uint8))


def test_pixel_identical_crops_stay_on_one_side():
    """A photo saved twice under two names: its copies must not straddle the split (check_unseen would fire)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 50, 50, 3), dtype=np.uint8)
    labels = np.array([0, 1] * 20)
    images[20:30] = images[0:10]  # ten faces each with a copy elsewhere
    for seed in range(3):
        r = M.train(M.build_resnet(widths=(8,), blocks=(1,), stem_filters=8), (images, labels), epochs=1,
                    seed=seed, test=0.3, verbose=False, live_plot=False)
        part = {}
        for name in ("train", "validation", "test"):
            for i in getattr(r.split, name):
                part[int(i)] = name
        assert all(part[i] == part[i + 20] for i in range(10)), f"seed {seed}: a copy straddles the split"
        assert any("pixel-identical copy" in n and n.startswith("20 crops") for n in r.notes)
        assert M.check_unseen(r.model, r.test_images) is True
    assert M._join_duplicates(images[:10], None) == (None, 0)  # no copies: the grouping is left alone
