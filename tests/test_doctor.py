"""`maskedu doctor`: each check's status in real situations, and secrets never reach the output."""

from __future__ import annotations

import io
import json

import pytest

from maskedu import cli, doctor
from maskedu.doctor import Check, format_check, report, run_checks

SECRET = "KGAT_0123456789abcdefDOCTORSECRET"


def _by_name(checks):
    return {c.name: c for c in checks}


def _text(checks) -> str:
    buf = io.StringIO()
    report(checks, file=buf)
    return buf.getvalue()


def test_fresh_machine_without_data_or_credentials(no_kaggle):
    checks = _by_name(run_checks(tensorflow=False))
    assert checks["Python"].status == "ok"
    assert checks["packages"].status == "ok" and "tensorflow" in checks["packages"].detail
    assert checks["Kaggle credentials"].status == "warn"
    assert "sample" in checks["Kaggle credentials"].fix
    for name in ("dataset", "crops", "model"):
        assert checks[name].status == "warn", checks[name]
        assert "notebook" in checks[name].fix  # says what to run
    assert checks["widgets extension"].status == "ok"
    assert "@jupyter-widgets/jupyterlab-manager" in checks["widgets extension"].detail


def test_token_in_environment_is_found_but_never_printed(no_kaggle, monkeypatch):
    monkeypatch.setenv("KAGGLE_API_TOKEN", SECRET)
    checks = run_checks(tensorflow=False)
    kaggle = _by_name(checks)["Kaggle credentials"]
    assert kaggle.status == "ok"
    assert "KAGGLE_API_TOKEN" in kaggle.detail
    text = _text(checks)
    assert SECRET not in text and SECRET[-12:] not in text


def test_kaggle_json_is_found_but_key_never_printed(no_kaggle, tmp_path, monkeypatch):
    config = tmp_path / "kcfg"
    config.mkdir()
    (config / "kaggle.json").write_text(json.dumps({"username": "student42", "key": SECRET}))
    (config / "kaggle.json").chmod(0o600)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config))
    checks = run_checks(tensorflow=False)
    kaggle = _by_name(checks)["Kaggle credentials"]
    assert kaggle.status == "ok", kaggle
    assert "kaggle.json" in kaggle.detail
    assert SECRET not in _text(checks)


def test_dataset_crops_and_model_in_place(no_kaggle, tmp_path):
    data = tmp_path / "data"  # MASKEDU_DATA (tests/conftest.py)
    _kaggle_folder(data, finished=True)
    (data / "crops").mkdir()
    (data / "crops" / "crops-abc.npz").write_bytes(b"x")
    (data / "models").mkdir()
    (data / "models" / "resnet.keras").write_bytes(b"x" * 2000)
    checks = _by_name(run_checks(tensorflow=False))
    assert checks["dataset"].status == "ok" and "face-mask-detection-dataset" in checks["dataset"].detail
    assert checks["crops"].status == "ok" and "1 cached" in checks["crops"].detail
    assert checks["model"].status == "ok" and "resnet.keras" in checks["model"].detail


def _kaggle_folder(data, *, finished: bool):
    from maskedu import download as dl

    root = data / dl.DATASET_DIRNAME
    root.mkdir(parents=True)
    (root / "train.csv").write_text("name,x1,x2,y1,y2,classname\n")
    if finished:
        (root / dl.MARKER_NAME).write_text(json.dumps({"slug": dl.KAGGLE_SLUG}))
    return root


def test_a_kaggle_folder_without_its_completion_marker_is_not_ok(no_kaggle, tmp_path, monkeypatch):
    """get_dataset ignores such a folder (an interrupted or hand-made copy), so doctor must not call it ok."""
    from maskedu import download as dl

    monkeypatch.delenv("MASKEDU_FAST", raising=False)
    data = tmp_path / "data"
    root = _kaggle_folder(data, finished=False)
    assert not dl.is_installed()
    check = _by_name(run_checks(tensorflow=False))["dataset"]
    assert check.status == "warn", check
    assert str(root) in check.detail and "completion marker" in check.detail
    assert "get_dataset() uses the built-in sample" in check.detail
    assert "install_archive" in check.fix and "maskedu download --force" in check.fix


def test_a_finished_kaggle_download_in_fast_mode_says_the_sample_is_used(no_kaggle, tmp_path, monkeypatch):
    monkeypatch.setenv("MASKEDU_FAST", "1")
    _kaggle_folder(tmp_path / "data", finished=True)
    check = _by_name(run_checks(tensorflow=False))["dataset"]
    assert check.status == "ok" and "fast mode" in check.detail and "prefer='kaggle'" in check.detail


def test_a_data_folder_that_is_a_file_fails_with_what_to_do(no_kaggle, tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    monkeypatch.setenv("MASKEDU_DATA", str(blocker / "data"))
    check = _by_name(run_checks(tensorflow=False))["data folder"]
    assert check.status == "fail"
    assert check.detail == f"MASKEDU_DATA={blocker / 'data'} cannot be used as the data folder: {blocker} is a file, not a folder."
    assert check.fix == "set MASKEDU_DATA to a folder you can write to"
    assert not (blocker / "data").exists()


def test_a_data_folder_not_made_yet_is_fine_and_not_created(no_kaggle, tmp_path, monkeypatch):
    monkeypatch.setenv("MASKEDU_DATA", str(tmp_path / "later" / "data"))
    check = _by_name(run_checks(tensorflow=False))["data folder"]
    assert check.status == "ok" and "created when a notebook first runs" in check.detail
    assert not (tmp_path / "later").exists()


def test_sample_only_and_fast_model_only_are_warnings(no_kaggle, tmp_path):
    data = tmp_path / "data"
    (data / "sample").mkdir(parents=True)
    (data / "sample" / "train.csv").write_text("name\n")
    (data / "models").mkdir()
    (data / "models" / "resnet-fast.keras").write_bytes(b"x")
    checks = _by_name(run_checks(tensorflow=False))
    assert checks["dataset"].status == "warn" and "sample" in checks["dataset"].detail
    assert "maskedu download" in checks["dataset"].fix
    assert checks["model"].status == "warn" and "fast" in checks["model"].detail


def test_missing_widgets_extension_fails_with_a_fix(no_kaggle, tmp_path, monkeypatch):
    import jupyter_core.paths

    monkeypatch.setattr(jupyter_core.paths, "jupyter_path", lambda *parts: [str(tmp_path / "nowhere")])
    check = doctor.check_widgets_extension()
    assert check.status == "fail" and "pip install" in check.fix
    assert report([check], file=io.StringIO()) == 1


def test_missing_package_fails_and_report_exit_status(no_kaggle, monkeypatch):
    monkeypatch.setitem(doctor.PACKAGES, "surely-not-installed-pkg", "surely_not")
    checks = run_checks(tensorflow=False)
    missing = _by_name(checks)["package surely-not-installed-pkg"]
    assert missing.status == "fail" and "make install" in missing.fix
    assert _by_name(checks)["packages"].status == "fail"
    buf = io.StringIO()
    assert report(checks, file=buf) == 1
    assert "fix first: packages, package surely-not-installed-pkg" in buf.getvalue()


def test_one_line_per_check_with_what_to_do():
    line = format_check(Check("model", "warn", "no model", "run notebook 03"))
    assert line == "warn  model: no model -> run notebook 03"
    assert "\n" not in line
    with pytest.raises(ValueError, match="status must be one of"):
        Check("x", "bad", "y")


def test_cli_doctor(no_kaggle, capsys):
    assert cli.main(["doctor", "--no-tensorflow"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].startswith("maskedu doctor:")
    names = [ln.split(":")[0].split(None, 1)[1] for ln in lines[1:-1]]
    assert names == ["Python", "packages", "Kaggle credentials", "data folder", "shared data", "dataset", "crops", "model",
                     "widgets extension"]
    assert lines[-1] == "all essentials are in place"


@pytest.mark.slow
def test_gpu_check_reports_tensorflow():
    check = doctor.check_gpu()
    assert check.status in {"ok", "info"}, check
    assert "TensorFlow" in check.detail
    if check.status == "info":
        assert "CPU" in check.detail and check.fix


def test_the_dataset_chosen_by_maskedu_dataset_is_what_doctor_checks(no_kaggle, tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    (mine / "with_mask").mkdir(parents=True)
    (mine / "without_mask").mkdir()
    monkeypatch.setenv("MASKEDU_DATASET", str(mine))
    check = _by_name(run_checks(tensorflow=False))["dataset"]
    assert check.status == "ok" and "folders layout" in check.detail and "maskedu forget" in check.detail
    monkeypatch.setenv("MASKEDU_DATASET", str(tmp_path))  # holds only mine/: no known layout
    check = _by_name(run_checks(tensorflow=False))["dataset"]
    assert check.status == "fail" and "could not recognise" in check.detail and "mine/" in check.detail
    monkeypatch.setenv("MASKEDU_DATASET", "andrewmvd/face-mask-detection")
    check = _by_name(run_checks(tensorflow=False))["dataset"]
    assert check.status == "fail" and "maskedu download --dataset andrewmvd/face-mask-detection" in check.fix
