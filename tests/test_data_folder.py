"""A data folder that cannot be used gets a DataFolderError naming MASKEDU_DATA and what to do.

The tests run as any user, root included, so "cannot be used" is made with files in the way (root
can write anywhere else) and, for a folder that refuses writes, with ``os.access`` saying so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from maskedu import common

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "results.txt"
    path.write_text("keep me")
    return path


def test_maskedu_data_naming_a_file_is_explained(a_file, monkeypatch):
    monkeypatch.setenv("MASKEDU_DATA", str(a_file))
    with pytest.raises(common.DataFolderError) as info:
        common.data_dir()
    message = str(info.value)
    assert message.startswith(f"MASKEDU_DATA={a_file} cannot be used as the data folder: it is a file, not a folder.")
    assert "set MASKEDU_DATA to a folder you can write to" in message
    assert isinstance(info.value, OSError) and isinstance(info.value, common.MaskeduError)
    assert a_file.read_text() == "keep me"


def test_maskedu_data_inside_a_file_is_explained(a_file, monkeypatch):
    monkeypatch.setenv("MASKEDU_DATA", str(a_file / "data"))
    with pytest.raises(common.DataFolderError, match=rf"MASKEDU_DATA={a_file / 'data'} cannot be used .*{a_file} is a file"):
        common.data_dir()


def test_a_folder_that_refuses_writes_is_explained(tmp_path, monkeypatch):
    folder = tmp_path / "readonly"
    folder.mkdir()
    monkeypatch.setenv("MASKEDU_DATA", str(folder))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == folder else real_access(p, mode, **kw))
    with pytest.raises(common.DataFolderError, match=r"MASKEDU_DATA=.* cannot be used .*cannot write to it"):
        common.data_dir()


def test_a_write_that_fails_is_explained_even_when_access_says_yes(tmp_path, monkeypatch):
    """Root passes os.access everywhere; the actual attempt catches a read-only mount."""
    import tempfile

    folder = tmp_path / "mount"
    folder.mkdir()
    monkeypatch.setenv("MASKEDU_DATA", str(folder))

    def read_only(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == folder:
            raise OSError(30, "Read-only file system", str(folder))
        return real(*args, dir=dir, **kwargs)

    real = tempfile.TemporaryFile
    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(common.DataFolderError, match="Read-only file system"):
        common.data_dir()


def test_the_default_folder_failing_says_to_set_maskedu_data(tmp_path, monkeypatch):
    monkeypatch.delenv("MASKEDU_DATA")
    (tmp_path / "data").write_text("a file where data/ should be")
    monkeypatch.setattr(common, "repo_root", lambda: tmp_path)
    with pytest.raises(common.DataFolderError) as info:
        common.data_dir()
    assert str(info.value).startswith(f"The data folder {tmp_path / 'data'} cannot be used: it is a file")
    assert "set MASKEDU_DATA to a folder you can write to" in str(info.value)


def test_setup_raises_the_explained_error_not_a_raw_oserror(a_file, monkeypatch):
    monkeypatch.setenv("MASKEDU_DATA", str(a_file))
    with pytest.raises(common.DataFolderError, match="MASKEDU_DATA="):
        common.setup(verbose=False)


def test_data_dir_without_create_never_raises(a_file, monkeypatch):
    monkeypatch.setenv("MASKEDU_DATA", str(a_file / "data"))
    assert common.data_dir(create=False) == (a_file / "data").resolve()


def test_a_good_folder_is_created_and_checked_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKEDU_DATA", str(tmp_path / "new" / "data"))
    assert common.data_dir() == (tmp_path / "new" / "data").resolve()
    assert sorted(p.name for p in (tmp_path / "new" / "data").iterdir()) == []  # the write probe leaves nothing


def test_the_command_line_says_it_in_one_line(a_file, tmp_path):
    env = dict(os.environ, MASKEDU_DATA=str(a_file), PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "maskedu", "sample", "--n-images", "2"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith(f"maskedu sample: error: MASKEDU_DATA={a_file} cannot be used")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
