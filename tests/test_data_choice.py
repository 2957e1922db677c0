"""One setting picks the data: MASKEDU_DATASET=<folder> / get_dataset(path), in any layout; forget() deletes what was derived.

The folders are built here (real PNG files, real VOC XML); the notebook runs on ../shared are marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskedu import common
from maskedu import download as dl
from maskedu.annotations import LayoutError



def _png(path: Path, seed: int, size=(100, 120)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)


def _voc_folder(root: Path) -> Path:
    """Two photos in PASCAL VOC: a with_mask face, a without_mask face and one mask_weared_incorrect."""
    objects = {"a": [("with_mask", (10, 12, 40, 50)), ("mask_weared_incorrect", (60, 10, 90, 45))],
               "b": [("without_mask", (20, 15, 50, 60))]}
    for i, (stem, objs) in enumerate(objects.items()):
        _png(root / "images" / f"{stem}.png", i)
        boxes = "".join(f"<object><name>{n}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>"
                        f"<ymax>{y2}</ymax></bndbox></object>" for n, (x1, y1, x2, y2) in objs)
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"{stem}.xml").write_text(f"<annotation><filename>{stem}.png</filename>{boxes}</annotation>")
    return root


def _class_folders(root: Path) -> Path:
    for i, name in enumerate(["with_mask/1.png", "with_mask/2.png", "without_mask/3.png", "mask_weared_incorrect/4.png"]):
        _png(root / name, i, size=(60, 50))
    return root


@pytest.fixture(autouse=True)
def _no_choice(monkeypatch, no_kaggle):
    """No MASKEDU_DATASET, no Kaggle credentials, normal mode, unless a test sets them."""
    monkeypatch.delenv("MASKEDU_DATASET", raising=False)
    monkeypatch.delenv("MASKEDU_FAST", raising=False)


def test_maskedu_dataset_runs_the_course_on_a_voc_folder_and_says_what_is_left_out(tmp_path, monkeypatch, capsys):
    root = _voc_folder(tmp_path / "street")
    monkeypatch.setenv("MASKEDU_DATASET", str(root))
    ds = dl.get_dataset()
    out = capsys.readouterr().out
    assert ds.layout == "voc" and ds.source == "folder" and len(ds) == 2
    assert dict(ds.class_counts()) == {"with_mask": 1, "without_mask": 1}
    assert "Data: street (2 images, PASCAL VOC)" in out
    assert f"Chosen by MASKEDU_DATASET={root}" in out
    assert "Left out: 1 faces of other classes (mask_weared_incorrect: 1)" in out


def test_get_dataset_path_reads_class_folders_and_counts_the_photos_left_out(tmp_path, capsys):
    ds = dl.get_dataset(_class_folders(tmp_path / "mine"))
    out = capsys.readouterr().out
    assert ds.layout == "folders" and dict(ds.class_counts()) == {"with_mask": 2, "without_mask": 1}
    assert "Data: mine (3 images, class folders)" in out
    assert "Left out: 1 photos of other classes (mask_weared_incorrect: 1)" in out


def test_an_explicit_path_wins_over_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKEDU_DATASET", str(_voc_folder(tmp_path / "street")))
    assert dl.get_dataset(_class_folders(tmp_path / "mine"), verbose=False).layout == "folders"


def test_a_folder_of_no_known_layout_names_what_it_holds_and_who_chose_it(tmp_path, monkeypatch):
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "notes.txt").write_text("hello")
    monkeypatch.setenv("MASKEDU_DATASET", str(odd))
    with pytest.raises(LayoutError, match=r"(?s)MASKEDU_DATASET=.*could not recognise.*notes\.txt.*Known layouts"):
        dl.get_dataset(verbose=False)


def test_a_missing_folder_or_a_clash_of_arguments_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKEDU_DATASET", str(tmp_path / "nowhere"))
    with pytest.raises(common.ParameterError, match=r"MASKEDU_DATASET=.*nowhere.*not there.*unset MASKEDU_DATASET"):
        dl.get_dataset(verbose=False)
    with pytest.raises(common.ParameterError, match="not both"):
        dl.get_dataset(tmp_path, dataset=dl.KAGGLE_SLUG)
    with pytest.raises(common.ParameterError, match="cannot be combined"):
        dl.get_dataset(tmp_path, prefer="sample")
    with pytest.raises(common.ParameterError, match="does not know the Kaggle dataset 'x/y'"):
        dl.get_dataset(dataset="x/y")


def test_a_known_slug_in_the_setting_needs_its_download(monkeypatch):
    monkeypatch.setenv("MASKEDU_DATASET", "andrewmvd/face-mask-detection")
    with pytest.raises(dl.CredentialsError, match="andrewmvd/face-mask-detection"):
        dl.get_dataset(verbose=False)


# --------------------------------------------------------------------------- forget


def _split_file(model: Path, photos: list[str]) -> None:
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(b"not really a model")
    faces = [[p, "0" * 20, 0, f"photo:{p}", "train"] for p in photos]
    model.with_suffix(".split.json").write_text(json.dumps({"format": 1, "faces": faces}))


def test_forget_deletes_the_crops_and_models_derived_from_a_folder_and_nothing_else(tmp_path, capsys):
    from maskedu.crop import crop_faces

    mine = _voc_folder(tmp_path / "street")
    other = _voc_folder(tmp_path / "elsewhere")
    crop_faces(dl.get_dataset(mine, verbose=False), source="annotations", verbose=False)  # real crop caches
    crop_faces(dl.get_dataset(other, verbose=False), source="annotations", size=32, verbose=False)
    data = common.data_dir()
    caches = sorted((data / "crops").glob("*.npz"))
    assert len(caches) == 2
    _split_file(data / "models" / "resnet.keras", ["images/a.png", "images/b.png"])  # trained on street's photos
    _split_file(data / "models" / "resnet-paper.keras", ["images/1801.jpg"])  # on other photos
    (tmp_path / "elsewhere" / "images" / "a.png").unlink()  # so that elsewhere's photo ids differ from street's

    listed = dl.forget(mine, dry_run=True)
    assert all(p.exists() for p in listed) and len(listed) == 3
    gone = dl.forget(mine)
    assert gone == listed
    assert sorted(p.name for p in (data / "models").iterdir()) == ["resnet-paper.keras", "resnet-paper.split.json"]
    left = sorted((data / "crops").glob("*.npz"))
    assert len(left) == 1 and left[0] in caches
    assert all(p.exists() for p in (mine / "images").iterdir())  # the photos themselves are untouched
    assert len(list((mine / "images").iterdir())) == 2


def test_the_forget_command(tmp_path, monkeypatch, capsys):
    from maskedu import cli

    mine = _voc_folder(tmp_path / "street")
    _split_file(common.data_dir() / "models" / "resnet.keras", ["images/a.png"])
    assert cli.main(["forget", "--dataset", str(mine), "--dry-run"]) == 0
    assert "would delete 2 files" in capsys.readouterr().out
    monkeypatch.setenv("MASKEDU_DATASET", str(mine))
    assert cli.main(["forget"]) == 0
    assert "deleted 2 files" in capsys.readouterr().out
    assert not (common.data_dir() / "models" / "resnet.keras").exists()
    monkeypatch.delenv("MASKEDU_DATASET")
    assert cli.main(["forget"]) == 1
    assert "needs the dataset's folder" in capsys.readouterr().err


def test_derived_data_of_a_chosen_folder_has_its_own_key_and_forget_deletes_it(tmp_path, monkeypatch):
    assert dl.derived_key() == ""  # the default data: the sample's or Kaggle's models stay where they were
    mine = _voc_folder(tmp_path / "street")
    monkeypatch.setenv("MASKEDU_DATASET", str(mine))
    key = dl.derived_key()
    assert key == dl.dataset_key(mine) and key.startswith("street-")
    monkeypatch.setenv("MASKEDU_DATASET", str(tmp_path / "street" / ".." / "street"))
    assert dl.derived_key() == key  # the same folder, however it is written
    keyed = common.data_dir() / "models" / key
    _split_file(keyed / "resnet.keras", ["images/zzz.png"])
    assert keyed in dl.forget(mine) and not keyed.exists()


def test_fast_mode_keeps_an_even_spread_of_a_chosen_folder(tmp_path, monkeypatch, capsys):
    root = tmp_path / "many"
    for i in range(60):
        _png(root / ("with_mask" if i < 40 else "without_mask") / f"{i:02d}.png", i, size=(20, 16))
    monkeypatch.setattr(dl.choose, "FAST_IMAGES", 10)
    monkeypatch.setenv("MASKEDU_FAST", "1")
    ds = dl.get_dataset(root)
    assert len(ds) == 10 and set(ds.class_counts()) == {"with_mask", "without_mask"}
    assert "Fast mode (MASKEDU_FAST=1) uses 10 of its 60 images" in capsys.readouterr().out
    monkeypatch.delenv("MASKEDU_FAST")
    assert len(dl.get_dataset(root, verbose=False)) == 60
