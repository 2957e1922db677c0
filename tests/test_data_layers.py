"""The layered data folder: a shared read-only layer (``MASKEDU_SHARED_DATA``) under each user's own (``MASKEDU_DATA``).

An instructor precomputes the sample, its crops and a model once; a student's notebook calls find them there
without copying or retraining, and whatever the student makes lands in their own folder. The shared layer is
made read-only twice over: by permissions (folders 555, files 444, which a non-root run obeys) and by a guard
that refuses every write, rename, removal or lock under it (tests run as root here, where permissions do not
stop a write); and its listing with sizes and modification times is compared before and after.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest

from maskedu import common

# --------------------------------------------------------------------------- helpers: a read-only layer

_GUARDED: list[Path] = []
_WRITE_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.chmod", "os.chown", "os.utime", "os.truncate",
                 "os.link", "os.symlink", "shutil.rmtree", "shutil.move", "shutil.copyfile", "shutil.copytree"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _under_guard(arg) -> bool:
    if isinstance(arg, int) or arg is None:
        return False
    try:
        path = Path(os.path.realpath(os.fsdecode(arg)))
    except (TypeError, ValueError):
        return False
    return any(path == root or path.is_relative_to(root) for root in _GUARDED)


def _audit(event: str, args: tuple) -> None:
    if not _GUARDED:
        return
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None))[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (isinstance(flags, int) and flags & _WRITE_FLAGS)
        paths = [path] if writes else []
    elif event in _WRITE_EVENTS:
        paths = list(args[:2]) if event in {"os.rename", "shutil.move", "shutil.copyfile", "shutil.copytree", "os.link"} else [args[0]]
        if event in {"shutil.copyfile", "shutil.copytree"}:
            paths = paths[1:]  # copying out of the layer reads it: only the destination counts
    else:
        return
    for p in paths:
        if _under_guard(p):
            raise PermissionError(13, f"read-only shared layer (test guard): {event}", os.fsdecode(p))


sys.addaudithook(_audit)  # audit hooks cannot be removed: it does nothing while no folder is guarded


@contextmanager
def unwritable(root: Path):
    """While inside, any write, creation, rename, removal or lock under ``root`` raises PermissionError, as on a
    read-only mount (and for root, whom file permissions do not stop)."""
    _GUARDED.append(Path(os.path.realpath(root)))
    try:
        yield
    finally:
        _GUARDED.pop()


def make_read_only(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            os.chmod(Path(dirpath) / name, 0o444)
    for dirpath, dirnames, filenames in sorted(os.walk(root), reverse=True):
        os.chmod(dirpath, 0o555)


def make_writable(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(Path(dirpath) / name, 0o644)


def listing(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` with its size, modification time (ns) and mode: any write changes it."""
    out = {}
    for p in [root, *root.rglob("*")]:
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode))
    return out


def own_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --------------------------------------------------------------------------- the shared layer an instructor builds


@pytest.fixture(scope="module")
def shared_layer(tmp_path_factory) -> Path:
    """What ``maskedu course precompute LAYER --modes fast`` builds (the sample, its crops by MTCNN and by the
    annotations, a model of each recipe), then made read-only."""
    from maskedu.course import precompute

    root = tmp_path_factory.mktemp("hub") / "maskedu-cache"
    own = tmp_path_factory.mktemp("instructor-own")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MASKEDU_DATA", str(own))  # precompute writes into its destination only
        mp.delenv("MASKEDU_DATASET", raising=False)
        fast = os.environ.get("MASKEDU_FAST")
        made = precompute(root, modes=("fast",), verbose=False)
        assert os.environ.get("MASKEDU_FAST") == fast and os.environ["MASKEDU_DATA"] == str(own)  # put back
    assert own_files(own) == [] and made and all(p.is_relative_to(root) for p in made)
    assert sorted(p.name for p in root.iterdir()) == ["crops", "models", "sample-fast"]  # no lock left behind
    make_read_only(root)
    yield root
    make_writable(root)


@pytest.fixture
def student(tmp_path, monkeypatch, shared_layer) -> Path:
    """A student's own empty data folder, with the shared layer under it, in fast mode."""
    own = tmp_path / "student-data"
    monkeypatch.setenv("MASKEDU_DATA", str(own))
    monkeypatch.setenv(common.SHARED_DATA_ENV, str(shared_layer))
    monkeypatch.setenv("MASKEDU_FAST", "1")
    return own


@pytest.fixture
def no_training(monkeypatch) -> list:
    """Training raises (and is counted): a test using this proves the model came from a file."""
    import maskedu.model

    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("training ran: the precomputed model was not used")

    monkeypatch.setattr(maskedu.model, "train", refuse)
    return calls


# --------------------------------------------------------------------------- tests


def test_the_guard_refuses_writes(tmp_path):
    """The guard itself works: a test relying on it could otherwise never fail."""
    layer = tmp_path / "layer"
    (layer / "sub").mkdir(parents=True)
    (layer / "sub" / "f.txt").write_text("x")
    with unwritable(layer):
        assert (layer / "sub" / "f.txt").read_text() == "x"  # reading is fine
        for attempt in (lambda: (layer / "new.txt").write_text("x"), lambda: (layer / "sub" / "f.txt").open("a"),
                        lambda: (layer / "d").mkdir(), lambda: os.replace(layer / "sub" / "f.txt", layer / "g.txt"),
                        lambda: (layer / "sub" / "f.txt").unlink(), lambda: shutil.rmtree(layer / "sub"),
                        lambda: os.open(layer / ".x.lock", os.O_RDWR | os.O_CREAT)):
            with pytest.raises(PermissionError):
                attempt()
        (tmp_path / "elsewhere.txt").write_text("fine")
    assert sorted(p.name for p in layer.rglob("*")) == ["f.txt", "sub"]


@pytest.mark.slow
def test_notebook_calls_read_the_shared_layer_without_copying_or_training(student, shared_layer, no_training):
    from maskedu import get_dataset, get_model
    from maskedu.crop import get_crops
    from maskedu.model import SplitRecord, held_out, load_model, model_path, split_path

    before = listing(shared_layer)
    with unwritable(shared_layer), warnings.catch_warnings():
        warnings.simplefilter("error", common.SharedDataWarning)  # nothing in the layer is stale
        ds = get_dataset(verbose=False)                                      # notebook 01
        crops = get_crops(ds, source="annotations", verbose=False)          # notebooks 02-03
        by_mtcnn = get_crops(ds, verbose=False)                              # notebook 02
        model = get_model(crops, verbose=False)                              # notebooks 04-07
        get_model(crops, recipe="paper", verbose=False)                      # notebooks 04-05
        test = held_out(crops, model)
        default_split_test = held_out(crops)                                  # the default model's split, found there too
        train_part = SplitRecord.load(split_path(model_path())).parts_of(crops) == "train"  # notebook 07's line
        load_model(model_path())                                              # a path in the data folder reads through
    assert Path(ds.root).parent == shared_layer and Path(ds.root).name == "sample-fast"
    assert crops.report.from_cache and by_mtcnn.report.from_cache
    assert no_training == []
    assert len(test) == len(default_split_test) > 0 and 0 < train_part.sum() < len(crops)
    assert own_files(student) == [], "nothing may be copied into the student's folder"
    assert listing(shared_layer) == before


@pytest.mark.slow
def test_a_students_own_work_lands_in_their_folder_and_forget_spares_the_layer(student, shared_layer, capsys):
    from maskedu import forget, get_dataset, get_model
    from maskedu.crop import get_crops
    from maskedu.model import model_path, split_path

    before = listing(shared_layer)
    with unwritable(shared_layer):
        ds = get_dataset(verbose=False)
        crops = get_crops(ds, source="annotations", size=40, verbose=False)  # not in the layer: made now
        assert not crops.report.from_cache
        model = get_model(crops, verbose=True)                             # the layer's model is for 50-pixel crops
        said = capsys.readouterr().out
        assert "cannot be used as it is" in said and str(shared_layer) in said and str(student) in said
        assert model_path().is_file() and split_path(model_path()).is_file() and model_path().is_relative_to(student)
        mine = own_files(student)
        assert any(f.startswith("crops/") for f in mine) and any(f.startswith("models/") for f in mine)
        gone = forget(ds.root)                                              # deletes what derives from it: the student's
    assert gone and all(Path(p).is_relative_to(student) for p in gone)
    assert own_files(student) == []
    assert listing(shared_layer) == before


def test_own_folder_first_then_layers_in_order(tmp_path, monkeypatch):
    own, first, second = tmp_path / "own", tmp_path / "first", tmp_path / "second"
    for layer in (first, second):
        (layer / "models").mkdir(parents=True)
        (layer / "models" / "m-fast.keras").write_text(layer.name)
    (second / "models" / "only-second.keras").write_text("2")
    monkeypatch.setenv("MASKEDU_DATA", str(own))
    monkeypatch.setenv(common.SHARED_DATA_ENV, os.pathsep.join([str(first), str(second)]))
    assert common.shared_data_dirs() == [first.resolve(), second.resolve()]
    assert common.find_artifact("models/m.keras", fast=True).read_text() == "first"
    assert common.find_artifact("models/only-second.keras", fast=False).read_text() == "2"
    assert common.find_artifact("models/m.keras", fast=False) is None  # the normal-mode name is not in any layer
    common.artifact_path("models/m.keras", fast=True).write_text("own")  # a write lands in the own folder ...
    assert common.find_artifact("models/m.keras", fast=True).read_text() == "own"  # ... and is read first
    assert common.in_shared_layer(second / "models" / "only-second.keras")
    assert not common.in_shared_layer(own / "models" / "m-fast.keras")


def test_a_missing_layer_is_left_out_with_a_warning(tmp_path, monkeypatch):
    there = tmp_path / "there"
    there.mkdir()
    monkeypatch.setenv(common.SHARED_DATA_ENV, os.pathsep.join([str(tmp_path / "not-mounted"), str(there)]))
    with pytest.warns(common.SharedDataWarning, match="not-mounted.*not a folder"):
        assert common.shared_data_dirs() == [there.resolve()]


def test_the_own_folder_is_never_its_own_shared_layer(tmp_path, monkeypatch):
    monkeypatch.setenv(common.SHARED_DATA_ENV, os.environ["MASKEDU_DATA"])
    common.data_dir()
    assert common.shared_data_dirs() == []


def test_artifact_names_stay_inside_the_data_folder():
    with pytest.raises(common.ParameterError, match="relative to the data folder"):
        common.find_artifact("../elsewhere/model.keras")


@pytest.mark.slow
def test_partial_or_stale_artifacts_in_a_layer_are_ignored_with_a_warning(tmp_path, monkeypatch, shared_layer):
    """A Kaggle folder without its completion marker, a sample without its marker, a model without its split
    file and an unreadable crop cache: each is skipped with a warning naming it, rebuilt in the student's own
    folder, and left in place."""
    from maskedu import get_dataset
    from maskedu.crop import get_crops
    from maskedu.download import DATASET_DIRNAME, installed_path, is_installed
    from maskedu.model import find_model
    from maskedu.sample import MARKER_NAME

    partial = tmp_path / "partial-layer"
    shutil.copytree(shared_layer / "sample-fast", partial / "sample-fast")
    (partial / "sample-fast" / MARKER_NAME).unlink()
    (partial / DATASET_DIRNAME).mkdir()
    (partial / DATASET_DIRNAME / "train.csv").write_text("name,x1,x2,y1,y2,classname\n")
    (partial / "models").mkdir()
    shutil.copy(shared_layer / "models" / "resnet-fast.keras", partial / "models")  # without its split file
    make_read_only(partial)
    own = tmp_path / "own"
    monkeypatch.setenv("MASKEDU_DATA", str(own))
    monkeypatch.setenv(common.SHARED_DATA_ENV, str(partial))
    monkeypatch.setenv("MASKEDU_FAST", "1")
    before = listing(partial)
    try:
        with unwritable(partial):
            with pytest.warns(common.SharedDataWarning, match="completion marker"):
                assert installed_path() is None and not is_installed()
            with pytest.warns(common.SharedDataWarning, match="split file"):
                assert find_model() is None
            with pytest.warns(common.SharedDataWarning, match="sample-fast.*ignored"):
                ds = get_dataset(verbose=False)
            assert Path(ds.root) == own / "sample-fast"
            crops = get_crops(ds, source="annotations", verbose=False)
            cache = next((own / "crops").glob("*.npz"))
        # the same cache, broken, in a layer: skipped with a warning, recomputed, never removed
        make_writable(partial)
        (partial / "crops").mkdir()
        (partial / "crops" / cache.name).write_bytes(b"not a zip")
        cache.unlink()
        make_read_only(partial)
        before = listing(partial)
        with unwritable(partial):
            with pytest.warns(common.SharedDataWarning, match="unreadable"):
                again = get_crops(ds, source="annotations", verbose=False)
        assert not again.report.from_cache and len(again) == len(crops) and cache.is_file()
        assert listing(partial) == before
    finally:
        make_writable(partial)


def test_doctor_reports_the_layers(tmp_path, monkeypatch):
    from maskedu.doctor import check_shared_data

    monkeypatch.delenv(common.SHARED_DATA_ENV, raising=False)
    assert check_shared_data().status == "info"
    layer = tmp_path / "layer"
    (layer / "crops").mkdir(parents=True)
    (layer / "crops" / "crops-x.npz").write_bytes(b"")
    monkeypatch.setenv(common.SHARED_DATA_ENV, str(layer))
    check = check_shared_data()
    assert check.status == "ok" and str(layer.resolve()) in check.detail and "1 crop cache" in check.detail
    monkeypatch.setenv(common.SHARED_DATA_ENV, os.pathsep.join([str(layer), str(tmp_path / "gone")]))
    check = check_shared_data()
    assert check.status == "warn" and "gone" in check.detail


def test_precompute_refuses_unknown_modes(tmp_path):
    from maskedu.course import precompute

    with pytest.raises(common.ParameterError, match="modes='quick' is not one of the choices"):
        precompute(tmp_path / "layer", modes=("quick",))
    with pytest.raises(common.ParameterError, match="modes is empty"):
        precompute(tmp_path / "layer", modes=())
    assert not (tmp_path / "layer").exists()


def test_a_path_in_the_data_folder_reads_through_the_layers(tmp_path, monkeypatch):
    """``SplitRecord.load(split_path(model_path()))`` (notebook 07) reads the split of a shared model."""
    own, layer = tmp_path / "own", tmp_path / "layer"
    (layer / "models").mkdir(parents=True)
    (layer / "models" / "resnet.split.json").write_text("{}")
    monkeypatch.setenv("MASKEDU_DATA", str(own))
    monkeypatch.setenv(common.SHARED_DATA_ENV, str(layer))
    wanted = common.artifact_path("models/resnet.split.json", fast=False)
    assert common.through_layers(wanted) == layer.resolve() / "models" / "resnet.split.json"
    wanted.write_text("{}")                                                    # the student's own copy wins
    assert common.through_layers(wanted) == wanted
    assert common.through_layers(tmp_path / "elsewhere.json") == tmp_path / "elsewhere.json"
    assert common.through_layers(own / "models" / "none.json") == own / "models" / "none.json"
