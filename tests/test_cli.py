"""The ``maskedu`` command refuses nonsense: one line on stderr, a non-zero exit status, nothing done."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from maskedu import cli, common

REPO = Path(__file__).resolve().parent.parent


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_demo_only_with_a_number_no_notebook_has_is_refused_before_any_work(capsys):
    status, out, err = _run(capsys, "demo", "--only", "99")
    assert status == 2
    line = _one_line(err)
    assert line.startswith("maskedu demo: error: --only 99 matches no notebook; the notebooks are 01, 02")
    assert out == ""
    assert not (common.data_dir(create=False) / "sample").exists()  # the sample was not even built


def test_demo_only_without_a_value_is_refused(capsys):
    status, _, err = _run(capsys, "demo", "--only")
    assert status == 2
    assert _one_line(err) == "maskedu demo: error: argument --only: expected at least one argument (see maskedu demo --help)"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "--n-images", "0"], "argument --n-images: must be a whole number from 1 to 20000, got '0'"),
        (["sample", "--n-images", "-3"], "argument --n-images: must be a whole number from 1 to 20000, got '-3'"),
        (["sample", "--n-images", "20001"], "argument --n-images: must be a whole number from 1 to 20000, got '20001'"),
        (["sample", "--n-images", "two"], "argument --n-images: must be a whole number from 1 to 20000, got 'two'"),
        (["sample", "--seed", "-1"], "argument --seed: must be a whole number of at least 0, got '-1'"),
    ],
)
def test_sample_numbers_out_of_range_are_refused(capsys, argv, message):
    status, out, err = _run(capsys, *argv)
    assert status == 2
    assert _one_line(err) == f"maskedu sample: error: {message} (see maskedu sample --help)"
    assert out == "" and not (common.data_dir(create=False) / "sample").exists()


def test_sample_dest_that_is_a_file_is_refused(capsys, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    for dest in (target, target / "sub"):
        status, _, err = _run(capsys, "sample", str(dest))
        assert status == 2
        assert _one_line(err) == (
            f"maskedu sample: error: argument dest: {target} is a file, not a folder (see maskedu sample --help)"
        )
    assert target.read_text() == "mine"


def test_download_dest_that_is_a_file_is_refused(capsys, tmp_path, no_kaggle):
    target = tmp_path / "file"
    target.write_bytes(b"x")
    status, _, err = _run(capsys, "download", "--dest", str(target))
    assert status == 2
    assert _one_line(err) == (
        f"maskedu download: error: argument --dest: {target} is a file, not a folder (see maskedu download --help)"
    )


def test_a_library_error_is_one_line_and_status_1(capsys, no_kaggle):
    status, out, err = _run(capsys, "download")
    assert status == 1
    line = _one_line(err)
    assert line.startswith("maskedu download: error: No Kaggle credentials were found")
    assert "KAGGLE_API_TOKEN" in line  # the steps are kept, on the same line


def test_unknown_or_missing_command_is_one_line(capsys):
    status, _, err = _run(capsys)
    assert status == 2
    assert _one_line(err).startswith("maskedu: error: the following arguments are required: command")
    status, _, err = _run(capsys, "bake")
    assert status == 2
    assert _one_line(err).startswith("maskedu: error: argument command: invalid choice: 'bake'")


def test_a_failing_notebook_is_one_line_and_status_1(capsys, monkeypatch):
    import maskedu.sample

    def fail(notebooks, out_dir, **kw):
        raise RuntimeError("cell 3 raised ZeroDivisionError\nlong traceback ...")

    monkeypatch.setattr(maskedu.sample, "make_sample_dataset", lambda dest, **kw: Path(dest))
    monkeypatch.setattr(cli, "run_notebooks", fail)
    status, _, err = _run(capsys, "demo", "--only", "01")
    assert status == 1
    assert _one_line(err) == (
        "maskedu demo: error: a notebook failed (RuntimeError: cell 3 raised ZeroDivisionError); "
        f"the executed copies are in {common.data_dir() / 'executed'}"
    )
    from nbclient.exceptions import CellExecutionError

    def cell_error(notebooks, out_dir, **kw):
        raise CellExecutionError("An error occurred while executing the following cell:\n1/0\n...", "ZeroDivisionError", "division by zero")

    monkeypatch.setattr(cli, "run_notebooks", cell_error)
    status, _, err = _run(capsys, "demo", "--only", "02")
    assert status == 1
    assert _one_line(err).startswith("maskedu demo: error: a notebook failed (ZeroDivisionError: division by zero);")


def test_valid_sample_arguments_still_work(capsys, tmp_path):
    status, out, err = _run(capsys, "sample", str(tmp_path / "s"), "--n-images", "2", "--seed", "3")
    assert status == 0, err
    assert f"sample dataset ready in {tmp_path / 's'}" in out
    assert (tmp_path / "s" / "train.csv").is_file()


def test_the_command_line_itself_gives_one_line_and_the_status(tmp_path):
    env = dict(os.environ, MASKEDU_DATA=str(tmp_path / "data"), PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-m", "maskedu", "sample", "--n-images", "0"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "maskedu sample: error: argument --n-images: must be a whole number from 1 to 20000, got '0' "
        "(see maskedu sample --help)\n"
    )
    assert result.stdout == "" and not (tmp_path / "data" / "sample").exists()
