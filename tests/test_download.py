"""The Kaggle download, with the Kaggle client faked at its API boundary (``maskedu.download.client._kaggle_client``).

The real client runs in a child process; :func:`use_client` puts a fake in its place, in this process.

The fake writes a real zip, built here in the real Kaggle layout, where the client would write it; the
archive checks, the extraction, the completion marker and the credential handling all run for real.
"""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import traceback
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from maskedu import common
from maskedu import download as dl
from maskedu.download import archive as dl_archive
from maskedu.download import client as dl_client
from maskedu.download import credentials as dl_credentials

SECRET = "k3y-5ecr3t-0123456789abcdef"
SUB = "Medical mask/Medical mask/Medical Mask"
CSV_TEXT = "name,x1,x2,y1,y2,classname\n2756.png,10,12,60,70,face_with_mask\n1801.jpg,20,15,70,80,face_no_mask\n"


# --------------------------------------------------------------------------- building archives


def _image_bytes(fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)).save(buf, format=fmt)
    return buf.getvalue()


def _annotation(name: str, box: list[int], classname: str) -> bytes:
    record = {
        "FileName": name,
        "NumOfAnno": 1,
        "Annotations": [{"isProtected": False, "ID": 1, "BoundingBox": box, "classname": classname, "Confidence": 1, "Attributes": {}}],
    }
    return json.dumps(record).encode()


def kaggle_entries() -> dict[str, bytes]:
    """A tiny archive in the exact Kaggle layout: train.csv, images/, annotations/<image>.json."""
    return {
        "train.csv": CSV_TEXT.encode(),
        f"{SUB}/images/2756.png": _image_bytes("PNG", 0),
        f"{SUB}/images/1801.jpg": _image_bytes("JPEG", 1),
        f"{SUB}/images/0001.jpg": _image_bytes("JPEG", 2),  # an unannotated (test-split) image
        f"{SUB}/annotations/2756.png.json": _annotation("2756.png", [10, 12, 60, 70], "face_with_mask"),
        f"{SUB}/annotations/1801.jpg.json": _annotation("1801.jpg", [20, 15, 70, 80], "face_no_mask"),
    }


def build_zip(entries: dict[str, bytes] | None = None, *, extra: list[tuple[zipfile.ZipInfo, bytes]] = (), compression=zipfile.ZIP_DEFLATED) -> bytes:
    entries = kaggle_entries() if entries is None else entries
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for info, data in extra:
            zf.writestr(info, data)
    return buf.getvalue()


def symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


class FakeKaggle:
    """Stands in for ``KaggleApi``: writes ``payload`` where the real client writes the dataset's zip."""

    def __init__(self, payload: bytes | None = None, error: BaseException | None = None):
        self.payload = build_zip() if payload is None else payload
        self.error = error
        self.calls: list[dict] = []

    def dataset_download_files(self, dataset, path=None, force=False, quiet=True, unzip=False, licenses=()):
        self.calls.append(dict(dataset=dataset, path=path, force=force, quiet=quiet, unzip=unzip))
        if self.error is not None:
            raise self.error
        Path(path, "face-mask-detection-dataset.zip").write_bytes(self.payload)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    """HOME, KAGGLE_CONFIG_DIR and XDG_CONFIG_HOME point at empty folders; no KAGGLE_* variables."""
    for name in list(os.environ):
        if name.startswith("KAGGLE_"):
            monkeypatch.delenv(name)
    dirs = {k: tmp_path / k for k in ("home", "kaggle-config", "xdg")}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("HOME", str(dirs["home"]))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(dirs["kaggle-config"]))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(dirs["xdg"]))
    monkeypatch.delenv("MASKEDU_FAST", raising=False)
    monkeypatch.delenv("MASKEDU_DATASET", raising=False)
    return dirs


@pytest.fixture
def credentials(no_credentials, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "student")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    return no_credentials


def use_client(monkeypatch, factory) -> None:
    """Replace the client boundary with ``factory(credentials)``, run in this process (not in a child)."""
    monkeypatch.setattr(dl_client, "_CLIENT_IN_CHILD", False)
    monkeypatch.setattr(dl_client, "_kaggle_client", factory)


@pytest.fixture
def fake(monkeypatch):
    """Install a FakeKaggle at the client boundary; ``fake.payload``/``fake.error`` can be changed per test."""
    client = FakeKaggle()
    use_client(monkeypatch, lambda creds: client)
    return client


def data_entries() -> list[str]:
    """What the data folder holds, but the (empty) lock files of maskedu.files.install_lock."""
    return sorted(p.name for p in common.data_dir().iterdir() if not p.name.endswith(".lock"))


def forbid_client(monkeypatch):
    def boom(creds):
        raise AssertionError("the Kaggle client must not be used here")

    use_client(monkeypatch, boom)


# --------------------------------------------------------------------------- a good archive


def test_good_archive_installs_in_the_kaggle_layout(credentials, fake):
    root = dl.download_dataset(quiet=True)
    assert root == common.data_dir() / "face-mask-detection-dataset"
    assert fake.calls == [dict(dataset=dl.KAGGLE_SLUG, path=fake.calls[0]["path"], force=False, quiet=True, unzip=False)]
    for name, data in kaggle_entries().items():
        assert (root / name).read_bytes() == data
    assert dl.check_layout(root) == []
    marker = json.loads((root / dl.MARKER_NAME).read_text())
    assert marker["slug"] == dl.KAGGLE_SLUG and marker["files"] == 6
    assert dl.is_installed()
    # Only the dataset is left: the download folder and the temporary folder are gone.
    assert data_entries() == ["face-mask-detection-dataset"]


def test_second_call_does_nothing_without_network_or_credentials(credentials, fake, monkeypatch, capsys):
    root = dl.download_dataset(quiet=True)
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name)
    forbid_client(monkeypatch)
    assert dl.download_dataset() == root
    assert "already" in capsys.readouterr().out
    assert len(fake.calls) == 1


def test_the_dataset_is_locked_against_a_second_installer_while_downloading(credentials, monkeypatch):
    from filelock import FileLock, Timeout

    lock_file = common.data_dir() / ".face-mask-detection-dataset.lock"
    seen = []

    class Probe(FakeKaggle):
        def dataset_download_files(self, dataset, path=None, **kw):
            other = FileLock(lock_file, thread_local=False)  # what another process would do
            with pytest.raises(Timeout):
                other.acquire(timeout=0.05)
            seen.append("locked")
            super().dataset_download_files(dataset, path=path, **kw)

    use_client(monkeypatch, lambda creds: Probe())
    dl.download_dataset(quiet=True)
    assert seen == ["locked"]
    with FileLock(lock_file).acquire(timeout=0):  # released afterwards
        pass


def test_force_downloads_and_replaces_the_dataset(credentials, fake):
    root = dl.download_dataset(quiet=True)
    entries = kaggle_entries()
    entries[f"{SUB}/images/9999.png"] = _image_bytes("PNG", 9)
    fake.payload = build_zip(entries)
    assert dl.download_dataset(force=True, quiet=True) == root
    assert len(fake.calls) == 2 and fake.calls[1]["force"] is True
    assert (root / SUB / "images" / "9999.png").is_file()
    assert data_entries() == ["face-mask-detection-dataset"]


def test_dest_is_the_folder_that_receives_the_dataset(credentials, fake, tmp_path):
    root = dl.download_dataset(tmp_path / "elsewhere", quiet=True)
    assert root == (tmp_path / "elsewhere" / "face-mask-detection-dataset").resolve()
    assert dl.is_installed(tmp_path / "elsewhere") and not dl.is_installed()


def test_an_archive_wrapped_in_one_top_folder_is_unwrapped(credentials, fake):
    fake.payload = build_zip({f"face-mask/{k}": v for k, v in kaggle_entries().items()})
    root = dl.download_dataset(quiet=True)
    assert (root / "train.csv").is_file() and dl.check_layout(root) == []
    assert data_entries() == ["face-mask-detection-dataset"]


def test_install_archive_installs_a_zip_downloaded_by_hand(no_credentials, tmp_path, monkeypatch):
    forbid_client(monkeypatch)
    archive = tmp_path / "archive.zip"
    archive.write_bytes(build_zip())
    root = dl.install_archive(archive, quiet=True)
    assert dl.is_installed() and (root / "train.csv").read_text() == CSV_TEXT
    assert archive.is_file()  # the user's own file is left alone
    assert dl.check_archive(archive).files == 6


# --------------------------------------------------------------------------- refused archives leave nothing


UNSAFE = {
    "parent": "../evil.txt",
    "nested-parent": f"{SUB}/../../../../evil.txt",
    "absolute": "/tmp/maskedu-evil.txt",
    "drive-letter": "C:/evil.txt",
    "backslash": "..\\evil.txt",
}


@pytest.mark.parametrize("name", list(UNSAFE.values()), ids=list(UNSAFE))
def test_unsafe_entry_is_refused_and_leaves_nothing(credentials, fake, name, tmp_path):
    entries = kaggle_entries()
    entries[name] = b"gotcha"
    fake.payload = build_zip(entries)
    with pytest.raises(dl.ArchiveError, match="Refused") as info:
        dl.download_dataset(quiet=True)
    assert repr(name)[1:-1] in str(info.value) or name in str(info.value)
    assert data_entries() == []
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/maskedu-evil.txt").exists()
    assert not dl.is_installed()


def test_symlink_entry_is_refused_and_leaves_nothing(credentials, fake):
    fake.payload = build_zip(extra=[(symlink_info(f"{SUB}/images/link.png"), b"/etc/passwd")])
    with pytest.raises(dl.ArchiveError, match="symbolic link"):
        dl.download_dataset(quiet=True)
    assert data_entries() == []


def test_truncated_archive_is_refused_and_leaves_nothing(credentials, fake):
    whole = build_zip()
    fake.payload = whole[: len(whole) // 2]
    with pytest.raises(dl.ArchiveError, match="not a complete zip archive"):
        dl.download_dataset(quiet=True)
    assert data_entries() == []
    fake.payload = whole  # the refused zip was deleted, so the next call fetches a fresh one
    assert dl.is_installed() is False
    dl.download_dataset(quiet=True)
    assert dl.is_installed() and len(fake.calls) == 2


def test_corrupt_member_fails_its_crc_and_leaves_nothing(credentials, fake):
    payload = bytearray(build_zip(compression=zipfile.ZIP_STORED))
    start = payload.find(b"name,x1,x2")
    payload[start + 5] ^= 0xFF  # flip one byte of train.csv's data; the directory stays intact
    fake.payload = bytes(payload)
    with pytest.raises(dl.ArchiveError, match="damaged"):
        dl.download_dataset(quiet=True)
    assert data_entries() == []


def test_size_cap_and_zip_bomb_are_refused(tmp_path, no_credentials):
    archive = tmp_path / "a.zip"
    archive.write_bytes(build_zip())
    with pytest.raises(dl.ArchiveError, match="max_bytes"):
        dl.install_archive(archive, max_bytes=1000, quiet=True)
    with pytest.raises(dl.ArchiveError, match="entries"):
        dl.check_archive(archive, max_members=3)
    entries = kaggle_entries()
    entries["zeros.bin"] = bytes(4 * 2**20)  # 4 MiB of zeros deflate about 1000-fold
    archive.write_bytes(build_zip(entries))
    with pytest.raises(dl.ArchiveError, match="zip bomb"):
        dl.install_archive(archive, quiet=True)
    assert data_entries() == []


def test_a_dest_that_is_a_file_is_refused_clearly(credentials, fake, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    archive = tmp_path / "a.zip"
    archive.write_bytes(build_zip())
    for dest in (blocker, blocker / "sub"):
        with pytest.raises(dl.DownloadError, match=rf"cannot be installed in .*: {blocker} is a file, not a folder"):
            dl.download_dataset(dest, quiet=True)
        with pytest.raises(dl.DownloadError, match=rf"{blocker} is a file, not a folder"):
            dl.install_archive(archive, dest, quiet=True)
    assert blocker.read_text() == "mine" and fake.calls == []


def test_archive_without_the_kaggle_layout_is_refused_clearly(credentials, fake):
    fake.payload = build_zip({"readme.txt": b"hello", "photos/a.jpg": _image_bytes("JPEG", 3)})
    with pytest.raises(dl.ArchiveError, match="does not look like the Kaggle dataset") as info:
        dl.download_dataset(quiet=True)
    assert "no train.csv" in str(info.value) and "readme.txt" in str(info.value)
    assert data_entries() == []


def test_an_unreadable_compression_method_is_refused_before_unpacking(tmp_path, no_credentials):
    payload = bytearray(build_zip(compression=zipfile.ZIP_STORED))
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # local and central headers
        start = 0
        while (start := payload.find(signature, start)) >= 0:
            payload[start + offset : start + offset + 2] = (9).to_bytes(2, "little")  # Deflate64
            start += 4
    archive = tmp_path / "a.zip"
    archive.write_bytes(bytes(payload))
    with pytest.raises(dl.ArchiveError, match="compression method 9"):
        dl.install_archive(archive, quiet=True)
    assert data_entries() == []


def test_file_and_folder_of_the_same_name_are_refused(tmp_path, no_credentials):
    archive = tmp_path / "a.zip"
    entries = kaggle_entries()
    entries["train.csv/x"] = b"1"
    archive.write_bytes(build_zip(entries))
    with pytest.raises(dl.ArchiveError, match="both a file and a folder"):
        dl.check_archive(archive)


# --------------------------------------------------------------------------- interruptions


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, OSError])
def test_interrupted_extraction_leaves_no_dataset_and_the_next_call_completes(credentials, fake, monkeypatch, interruption):
    real = dl_archive._extract_member
    count = {"n": 0}

    def flaky(zf, info, target):
        count["n"] += 1
        if count["n"] == 3:
            raise interruption("disk unplugged")
        return real(zf, info, target)

    monkeypatch.setattr(dl_archive, "_extract_member", flaky)
    expected = KeyboardInterrupt if interruption is KeyboardInterrupt else dl.DownloadError
    with pytest.raises(expected):
        dl.download_dataset(quiet=True)
    assert not dl.is_installed()
    left = data_entries()
    assert "face-mask-detection-dataset" not in left
    assert not any(".partial" in name for name in left)
    # The next call completes the work.
    monkeypatch.setattr(dl_archive, "_extract_member", real)
    root = dl.download_dataset(quiet=True)
    assert dl.is_installed() and dl.check_layout(root) == []
    assert data_entries() == ["face-mask-detection-dataset"]


def test_leftovers_of_a_killed_process_never_look_finished_and_are_cleaned(credentials, fake):
    data = common.data_dir()
    # What a process killed mid-extraction leaves behind (pid 999999999 does not exist).
    dead = data / ".face-mask-detection-dataset.partial-999999999-abc123"
    (dead / SUB / "images").mkdir(parents=True)
    (dead / "train.csv").write_text(CSV_TEXT)
    assert not dl.is_installed()
    dl.download_dataset(quiet=True)
    assert data_entries() == ["face-mask-detection-dataset"]


def test_a_dataset_swapped_out_by_a_crashed_reinstall_is_restored_without_downloading(credentials, fake, monkeypatch):
    root = dl.download_dataset(quiet=True)
    # A process killed between the two renames of download_dataset(force=True) leaves the old copy aside.
    os.replace(root, root.with_name(".face-mask-detection-dataset.old-999999999-abcd1234"))
    assert not dl.is_installed()
    forbid_client(monkeypatch)
    assert dl.download_dataset(quiet=True) == root
    assert dl.is_installed() and data_entries() == ["face-mask-detection-dataset"]


def test_a_folder_maskedu_did_not_finish_is_replaced_only_with_force(credentials, fake):
    target = common.data_dir() / "face-mask-detection-dataset"
    (target / SUB).mkdir(parents=True)
    (target / "train.csv").write_text(CSV_TEXT)
    with pytest.raises(dl.DownloadError, match="force=True"):
        dl.download_dataset(quiet=True)
    assert fake.calls == []  # refused before any network traffic
    dl.download_dataset(force=True, quiet=True)
    assert dl.is_installed() and data_entries() == ["face-mask-detection-dataset"]


# --------------------------------------------------------------------------- credentials


def test_missing_credentials_give_the_steps_and_the_offline_way(no_credentials, monkeypatch):
    forbid_client(monkeypatch)
    with pytest.raises(dl.CredentialsError) as info:
        dl.download_dataset()
    message = str(info.value)
    assert isinstance(info.value, dl.DownloadError) and isinstance(info.value, RuntimeError)
    for needle in ("No Kaggle credentials", "Generate New Token", "KAGGLE_API_TOKEN", "kaggle.json", "chmod 600",
                   "get_dataset()", "sample", "install_archive"):
        assert needle in message
    assert len(message.splitlines()) <= 14
    assert data_entries() == []
    assert dl.find_credentials() is None


def test_half_credentials_are_named_in_the_message(no_credentials, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "student")
    (no_credentials["kaggle-config"] / "kaggle.json").write_text("{not json")
    with pytest.raises(dl.CredentialsError) as info:
        dl.download_dataset()
    assert "KAGGLE_KEY is not set" in str(info.value) and "not valid JSON" in str(info.value)


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _set_source(kind: str, dirs: dict, monkeypatch) -> None:
    if kind == "env key":
        monkeypatch.setenv("KAGGLE_USERNAME", "student")
        monkeypatch.setenv("KAGGLE_KEY", SECRET)
    elif kind == "kaggle.json":
        _write_private(dirs["kaggle-config"] / "kaggle.json", json.dumps({"username": "student", "key": SECRET}))
    elif kind == "token env":
        monkeypatch.setenv("KAGGLE_API_TOKEN", SECRET)
    elif kind == "token env file":
        _write_private(dirs["home"] / "my-token", SECRET)
        monkeypatch.setenv("KAGGLE_API_TOKEN", str(dirs["home"] / "my-token"))
    elif kind == "token file":
        _write_private(dirs["home"] / ".kaggle" / "access_token", SECRET + "\n")
    elif kind == "oauth":
        _write_private(dirs["home"] / ".kaggle" / "credentials.json", json.dumps({"refresh_token": SECRET, "username": "s"}))


SOURCES = {
    "env key": "API key", "kaggle.json": "API key", "token env": "access token", "token env file": "access token",
    "token file": "access token", "oauth": "OAuth login",
}


@pytest.mark.parametrize("kind", list(SOURCES))
def test_credentials_are_found_where_the_client_looks_without_exposing_the_key(kind, no_credentials, monkeypatch):
    _set_source(kind, no_credentials, monkeypatch)
    creds = dl.find_credentials()
    assert creds is not None and creds.method == SOURCES[kind]
    for text in (str(creds), repr(creds)):
        assert SECRET not in text


def test_kaggle_json_is_found_in_the_xdg_folder_when_no_kaggle_config_dir(no_credentials, monkeypatch):
    monkeypatch.delenv("KAGGLE_CONFIG_DIR")
    _write_private(no_credentials["xdg"] / "kaggle" / "kaggle.json", json.dumps({"username": "s", "key": SECRET}))
    assert dl.find_credentials().source == str(no_credentials["xdg"] / "kaggle" / "kaggle.json")
    # Once ~/.kaggle exists the client reads it instead, and so do we.
    _write_private(no_credentials["home"] / ".kaggle" / "kaggle.json", json.dumps({"username": "s", "key": SECRET}))
    assert dl.find_credentials().source == str(no_credentials["home"] / ".kaggle" / "kaggle.json")


@pytest.mark.parametrize("kind", list(SOURCES))
def test_the_key_never_appears_in_output_logs_or_errors(kind, no_credentials, monkeypatch, capsys, caplog):
    """The client's error quotes the key: the DownloadError does not. (What a client logs or prints in its
    child process is redacted on the way: tests/test_secrets.py.)"""
    _set_source(kind, no_credentials, monkeypatch)
    client = FakeKaggle(error=RuntimeError(f"401 Client Error: Unauthorized; Authorization: Bearer {SECRET}"))
    use_client(monkeypatch, lambda creds: client)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(dl.DownloadError) as info:
        dl.download_dataset()
    exc = info.value
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc)), caplog.text]
    texts += [r.getMessage() for r in caplog.records]
    out, err = capsys.readouterr()
    texts += [out, err]
    assert "Unauthorized" in str(exc) and "***" in str(exc)
    for text in texts:
        assert SECRET not in text
    assert exc.__cause__ is None and exc.__context__ is None


@pytest.mark.parametrize("kind", ["kaggle.json", "token file"])
def test_a_credentials_file_other_users_can_read_warns(kind, no_credentials, monkeypatch):
    _set_source(kind, no_credentials, monkeypatch)
    path = {"kaggle.json": no_credentials["kaggle-config"] / "kaggle.json",
            "token file": no_credentials["home"] / ".kaggle" / "access_token"}[kind]
    path.chmod(0o644)
    with pytest.warns(dl.CredentialsWarning, match="chmod 600") as record:
        assert dl.find_credentials() is not None
    assert all(SECRET not in str(w.message) and str(path) in str(w.message) for w in record)
    path.chmod(0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dl.find_credentials() is not None


# --------------------------------------------------------------------------- client failures


def test_network_error_gives_a_clear_download_error(credentials, fake):
    import requests

    fake.error = requests.exceptions.ConnectionError("HTTPSConnectionPool(host='api.kaggle.com'): Failed to resolve")
    with pytest.raises(dl.DownloadError, match="Could not reach Kaggle") as info:
        dl.download_dataset(quiet=True)
    assert not isinstance(info.value, dl.CredentialsError)
    assert "Details: ConnectionError" in str(info.value)
    assert info.value.__context__ is None  # no deep client traceback chained to it
    assert data_entries() == []


def test_http_401_says_to_check_credentials_and_terms(credentials, fake):
    import requests

    response = requests.Response()
    response.status_code = 401
    fake.error = requests.exceptions.HTTPError("401 Client Error", response=response)
    with pytest.raises(dl.DownloadError, match="HTTP 401") as info:
        dl.download_dataset(quiet=True)
    assert "accept the dataset's terms" in str(info.value)


@pytest.mark.parametrize("status, needle", [(404, "does not know the dataset"), (503, "try again later")])
def test_other_http_errors_are_explained(credentials, fake, status, needle):
    import requests

    response = requests.Response()
    response.status_code = status
    fake.error = requests.exceptions.HTTPError(f"{status} Server Error", response=response)
    with pytest.raises(dl.DownloadError, match=needle):
        dl.download_dataset(quiet=True)


def test_progress_and_messages_when_not_quiet(credentials, fake, monkeypatch, capsys):
    monkeypatch.setenv("MASKEDU_NO_PROGRESS", "0")
    monkeypatch.setattr(dl_archive, "_PROGRESS_DELAY", 0)
    dl.download_dataset()
    out, err = capsys.readouterr()
    assert "Downloading wobotintelligence/face-mask-detection-dataset with the Kaggle API key" in out
    assert "Installed 6 files" in out
    assert "unpacking" in err  # the tqdm bar over the extraction 
    assert fake.calls[0]["quiet"] is False


def test_client_that_writes_no_archive_is_reported(credentials, monkeypatch):
    class Silent:
        def dataset_download_files(self, *a, **kw):
            pass

    use_client(monkeypatch, lambda creds: Silent())
    with pytest.raises(dl.DownloadError, match="no zip archives"):
        dl.download_dataset(quiet=True)
    assert data_entries() == []


def test_the_real_client_boundary_authenticates_offline_with_a_legacy_key(credentials):
    """The real kaggle package: the boundary returns a client with the method download_dataset calls."""
    import inspect

    api = dl_client._kaggle_client(dl.find_credentials())
    params = inspect.signature(api.dataset_download_files).parameters
    assert {"dataset", "path", "force", "quiet", "unzip"} <= set(params)
    assert api.config_dir == str(credentials["kaggle-config"])


def test_the_real_client_never_runs_verbose_which_would_print_the_authorization_header(credentials, monkeypatch):
    from kaggle.api.kaggle_api_extended import KaggleApi

    monkeypatch.setattr(KaggleApi, "args", ["--verbose"])  # what VERBOSE=1 at import time gives
    api = dl_client._kaggle_client(dl.find_credentials())
    assert "--verbose" not in api.args and KaggleApi.args == ["--verbose"]


def test_the_basic_auth_form_of_the_key_is_redacted_too(credentials):
    import base64

    header = "Authorization: Basic " + base64.b64encode(f"student:{SECRET}".encode()).decode()
    assert dl_credentials.redact(header) == "Authorization: Basic ***"


# --------------------------------------------------------------------------- zip bombs made of many small members


def _zeros_zip(path: Path, members: int, size: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(members):
            zf.writestr(f"{SUB}/images/{i:05d}.png", bytes(size))
    return path


def test_a_bomb_of_many_one_mib_members_is_refused_as_a_whole(tmp_path, no_credentials):
    """The reported attack, scaled down: members of exactly 1 MiB of zeros, each under the per-member rule."""
    archive = _zeros_zip(tmp_path / "bomb.zip", 40, 2**20)
    assert archive.stat().st_size < 100_000  # 40 MiB unpacked from a few dozen kB
    with pytest.raises(dl.ArchiveError, match="zip bomb") as info:
        dl.check_archive(archive)
    assert "the whole archive" in str(info.value)
    with pytest.raises(dl.ArchiveError, match="zip bomb"):
        dl.install_archive(archive, quiet=True)
    assert data_entries() == []


def test_hundreds_of_small_high_ratio_members_are_refused_with_the_default_limits(tmp_path, no_credentials):
    archive = _zeros_zip(tmp_path / "bomb.zip", 300, 32 * 2**10)  # 9.4 MiB from about 50 kB
    with pytest.raises(dl.ArchiveError, match="zip bomb"):
        dl.check_archive(archive)


def test_the_whole_archive_ratio_limit_is_a_parameter(tmp_path, no_credentials):
    archive = tmp_path / "a.zip"
    entries = kaggle_entries()
    for i in range(4):  # 2.4 MB of text that deflates hundreds of times, in members under 1 MiB
        entries[f"notes-{i}.txt"] = b"mask " * 120_000
    archive.write_bytes(build_zip(entries))
    ratio = 2_400_000 / archive.stat().st_size  # about 20: the noise images barely compress
    assert 5 < ratio < dl.MAX_ARCHIVE_RATIO
    assert dl.check_archive(archive).total_bytes > 2_400_000
    with pytest.raises(dl.ArchiveError, match="max_ratio=5"):
        dl.check_archive(archive, max_ratio=5)


def test_image_datasets_pass_the_ratio_checks(tmp_path, no_credentials, sample_root):
    """JPEG and PNG barely compress: the built-in sample (Kaggle layout, PNG and JPEG photos) and noise images pass."""
    archive = tmp_path / "sample.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(sample_root.rglob("*")):
            zf.write(path, path.relative_to(sample_root.parent).as_posix())
        for i in range(40):
            zf.writestr(f"extra/{i}.jpg", _image_bytes("JPEG", 100 + i))
            zf.writestr(f"extra/{i}.png", _image_bytes("PNG", 200 + i))
    summary = dl.check_archive(archive)
    assert summary.total_bytes > 2**20  # big enough for the whole-archive rule to apply
    assert summary.total_bytes < 3 * archive.stat().st_size


_KINDS = {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "link": stat.S_IFLNK, "fifo": stat.S_IFIFO, "none": 0}
_METHODS = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
member = st.tuples(
    st.one_of(st.sampled_from(["train.csv", "a/b.png", "a", "a/", "../x", "/abs", "C:x", "a\\b", "./a/./c", "\x00n"]),
              st.text(min_size=0, max_size=12)),
    st.sampled_from(["zeros", "noise", "text"]),
    st.integers(0, 300_000),
    st.sampled_from(list(_KINDS)),
    st.sampled_from(_METHODS),
    st.booleans(),  # the "encrypted" flag
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(member, max_size=8),
    st.integers(1, 2_000_000),
    st.integers(1, 12),
    st.sampled_from([None, "truncate", "flip"]),
    st.integers(0, 10**9),
)
@pytest.mark.slow
def test_check_archive_raises_only_its_documented_errors(tmp_path_factory, members, max_bytes, max_members, damage, where):
    rng = np.random.default_rng(where)
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as zf:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we generate on purpose
        for name, content, size, kind, method, encrypted in members:
            data = {"zeros": bytes(size), "noise": rng.bytes(size), "text": (b"name,x1\n" * size)[:size]}[content]
            info = zipfile.ZipInfo(name or "x")
            info.compress_type = method
            info.external_attr = (_KINDS[kind] | 0o644) << 16
            try:
                zf.writestr(info, data)
            except ValueError:  # zipfile refuses some names itself (a duplicate of a folder, ...)
                continue
            if encrypted:
                zf.infolist()[-1].flag_bits |= 0x1
    data = bytearray(buf.getvalue())
    if damage == "truncate":
        data = data[: where % (len(data) + 1)]
    elif damage == "flip" and data:
        data[where % len(data)] ^= 0xFF
    archive = tmp_path_factory.mktemp("prop") / "a.zip"
    archive.write_bytes(bytes(data))
    try:
        summary = dl.check_archive(archive, max_bytes=max_bytes, max_members=max_members)
    except dl.ArchiveError as exc:
        assert str(exc) and isinstance(exc, dl.DownloadError)
        return
    assert summary.total_bytes <= max_bytes
    assert summary.total_bytes <= max(dl_archive._RATIO_MIN_BYTES, dl.MAX_ARCHIVE_RATIO * archive.stat().st_size)
    dest = archive.parent / "dest"
    try:  # unpacking what was accepted fails only with the library's errors too (a bad CRC, no Kaggle layout)
        dl.install_archive(archive, dest, quiet=True, max_bytes=max_bytes, max_members=max_members)
    except dl.DownloadError as exc:
        assert str(exc)
    left = sorted(p.name for p in dest.iterdir() if not p.name.endswith(".lock"))  # the lock's empty file stays
    assert left in ([], [dl.DATASET_DIRNAME])  # no leftovers


# --------------------------------------------------------------------------- entry names, property-based


name_parts = st.sampled_from(["..", ".", "", "a", "Medical mask", "C:", "x\\..", "ok.png", "\x00", " "])


@settings(max_examples=200, deadline=None)
@given(st.lists(name_parts, min_size=1, max_size=6), st.booleans())
def test_an_accepted_entry_name_always_stays_inside_the_destination(parts, absolute):
    name = ("/" if absolute else "") + "/".join(parts)
    try:
        safe = dl_archive._safe_parts(name)
    except ValueError:
        return
    base = Path("/srv/dest")
    target = base.joinpath(*safe)
    assert safe and all(p not in ("", ".", "..") and "/" not in p and "\\" not in p for p in safe)
    assert os.path.normpath(target).startswith(str(base) + os.sep)


# --------------------------------------------------------------------------- get_dataset


@pytest.fixture
def sample_calls(monkeypatch, sample_root):
    """Records get_dataset's calls to make_sample_dataset; each call gets a copy of the session's real sample.

    The real ``make_sample_dataset`` is exercised end to end in the fast-mode test below; the other
    get_dataset tests only need *a* real sample at the requested place, so they reuse the one built once
    per session (conftest's ``sample_root``) instead of building their own.
    """
    import shutil

    import maskedu.sample

    calls = []

    def spy(dest, **kw):
        calls.append((Path(dest), {k: v for k, v in kw.items() if k != "verbose"}))
        if not Path(dest).exists():
            shutil.copytree(sample_root, dest)
        return Path(dest)

    monkeypatch.setattr(maskedu.sample, "make_sample_dataset", spy)
    return calls


def test_get_dataset_validates_prefer():
    with pytest.raises(ValueError, match="prefer"):
        dl.get_dataset(prefer="kagle")


def test_get_dataset_uses_the_installed_kaggle_data(credentials, fake, monkeypatch, capsys):
    dl.download_dataset(quiet=True)
    forbid_client(monkeypatch)
    ds = dl.get_dataset()
    assert ds.source == "kaggle" and len(ds) == 2
    assert sorted(ds.class_counts().elements()) == ["with_mask", "without_mask"]
    out = capsys.readouterr().out
    assert "Kaggle dataset" in out and "Found the finished Kaggle download" in out


def test_get_dataset_downloads_when_credentials_exist(credentials, fake, capsys):
    ds = dl.get_dataset()
    assert ds.source == "kaggle" and len(fake.calls) == 1 and dl.is_installed()
    assert "Downloaded it just now" in capsys.readouterr().out


def test_get_dataset_without_credentials_uses_the_sample_and_says_so(no_credentials, monkeypatch, capsys, sample_calls):
    forbid_client(monkeypatch)
    ds = dl.get_dataset()
    assert ds.source == "sample" and len(ds) > 0 and sum(ds.class_counts().values()) > 0
    assert sample_calls == [(common.data_dir() / "sample", {})]
    assert Path(ds.root).resolve() == (common.data_dir() / "sample").resolve()
    out = capsys.readouterr().out
    assert "SAMPLE" in out and "No Kaggle credentials" in out


def test_get_dataset_falls_back_to_the_sample_with_the_reason_and_no_key(credentials, fake, capsys, caplog, monkeypatch, sample_calls):
    monkeypatch.setenv("MASKEDU_FAST", "0")
    fake.error = RuntimeError(f"boom with {SECRET}")
    ds = dl.get_dataset()
    assert ds.source == "sample"
    out = capsys.readouterr().out
    assert "The Kaggle download failed" in out and "boom with ***" in out and SECRET not in out
    assert "boom with ***" in caplog.text and SECRET not in caplog.text
    assert any("data source: sample" in n for n in ds.report.notes)
    assert len(fake.calls) == 1 and sample_calls[0][0] == common.data_dir() / "sample"


def test_get_dataset_prefer_sample_ignores_an_installed_kaggle_dataset(credentials, fake, sample_calls, capsys):
    dl.download_dataset(quiet=True)
    ds = dl.get_dataset(prefer="sample", verbose=False)
    assert ds.source == "sample" and len(sample_calls) == 1
    assert capsys.readouterr().out == ""  # verbose=False: no banner


def test_get_dataset_says_why_an_unfinished_kaggle_folder_is_not_used(no_credentials, sample_calls, capsys):
    (common.data_dir() / "face-mask-detection-dataset" / SUB).mkdir(parents=True)
    ds = dl.get_dataset()
    assert ds.source == "sample"
    assert "was not installed by maskedu" in capsys.readouterr().out


def test_get_dataset_in_fast_mode_uses_the_small_sample_and_no_network(credentials, monkeypatch, capsys, sample_calls):
    monkeypatch.setenv("MASKEDU_FAST", "1")
    forbid_client(monkeypatch)
    ds = dl.get_dataset()
    assert ds.source == "sample"
    assert sample_calls == [(common.data_dir() / "sample-fast", {"n_images": 16})]
    assert "Fast mode" in capsys.readouterr().out


@pytest.mark.slow
def test_get_dataset_builds_the_real_fast_sample_end_to_end(no_credentials, monkeypatch, capsys):
    """No stand-ins: the real make_sample_dataset writes data/sample-fast, load_annotations reads it."""
    from maskedu.sample import read_sample_info

    monkeypatch.setenv("MASKEDU_FAST", "1")
    ds = dl.get_dataset()
    root = common.data_dir() / "sample-fast"
    assert ds.source == "sample" and Path(ds.root).resolve() == root.resolve()
    assert read_sample_info(root)["n_images"] == 16
    assert len(ds) == 16 and set(ds.class_counts()) == {"with_mask", "without_mask"}
    assert dl.check_layout(root) == []  # the sample passes the same layout check as a Kaggle download
    out = capsys.readouterr().out
    assert "SAMPLE" in out and "(16 images" in out


def test_get_dataset_prefer_kaggle_raises_without_credentials(no_credentials):
    with pytest.raises(dl.CredentialsError):
        dl.get_dataset(prefer="kaggle", verbose=False)


def test_get_dataset_banner_is_html_in_jupyter(credentials, fake, monkeypatch):
    dl.download_dataset(quiet=True)
    shown = []
    monkeypatch.setattr(common, "in_notebook", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    dl.get_dataset()
    assert len(shown) == 1 and "<div" in shown[0].data and "Kaggle dataset" in shown[0].data


# --------------------------------------------------------------------------- the second Kaggle dataset (PASCAL VOC)


VOC_SLUG = "andrewmvd/face-mask-detection"


def voc_xml(name: str, objects: list[tuple[str, list[int]]]) -> bytes:
    boxes = "".join(
        f"<object><name>{label}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax>"
        "</bndbox></object>"
        for label, (x1, y1, x2, y2) in objects
    )
    return (f"<annotation><filename>{name}</filename><size><width>120</width><height>100</height><depth>3</depth>"
            f"</size>{boxes}</annotation>").encode()


def voc_entries() -> dict[str, bytes]:
    """A tiny archive in andrewmvd's layout: images/*.png beside annotations/*.xml, three classes."""
    return {
        "images/maksssksksss0.png": _image_bytes("PNG", 3),
        "images/maksssksksss1.png": _image_bytes("PNG", 4),
        "annotations/maksssksksss0.xml": voc_xml("maksssksksss0.png", [("with_mask", [10, 12, 40, 50]),
                                                                          ("mask_weared_incorrect", [60, 10, 90, 45])]),
        "annotations/maksssksksss1.xml": voc_xml("maksssksksss1.png", [("without_mask", [20, 15, 50, 60])]),
    }


class FakeVocKaggle(FakeKaggle):
    """Writes the zip under the dataset's own name, as the real client does."""

    def dataset_download_files(self, dataset, path=None, force=False, quiet=True, unzip=False, licenses=()):
        self.calls.append(dict(dataset=dataset, path=path, force=force, quiet=quiet, unzip=unzip))
        Path(path, dataset.split("/")[1] + ".zip").write_bytes(self.payload)


@pytest.fixture
def voc_fake(monkeypatch):
    client = FakeVocKaggle(build_zip(voc_entries()))
    use_client(monkeypatch, lambda creds: client)
    return client


def test_the_voc_dataset_downloads_into_its_own_folder(credentials, voc_fake, monkeypatch):
    root = dl.download_dataset(dataset=VOC_SLUG, quiet=True)
    assert root == common.data_dir() / "face-mask-detection"
    assert voc_fake.calls[0]["dataset"] == VOC_SLUG
    assert sorted(p.name for p in (root / "images").iterdir()) == ["maksssksksss0.png", "maksssksksss1.png"]
    assert dl.is_installed(dataset=VOC_SLUG) and not dl.is_installed()  # the paper's set is another folder
    assert dl.check_layout(root, VOC_SLUG) == []
    assert data_entries() == ["face-mask-detection"]
    # a second call finds it, without the client
    forbid_client(monkeypatch)
    assert dl.download_dataset(dataset=VOC_SLUG, quiet=True) == root


def test_the_voc_dataset_is_checked_for_its_own_layout(credentials, voc_fake):
    voc_fake.payload = build_zip()  # the Wobot archive under the VOC set's name
    with pytest.raises(dl.ArchiveError, match=r"does not look like the Kaggle dataset andrewmvd/face-mask-detection.*no folder 'images'"):
        dl.download_dataset(dataset=VOC_SLUG, quiet=True)
    assert data_entries() == []
    entries = voc_entries()
    entries = {k: v for k, v in entries.items() if not k.startswith("annotations/")}
    entries["annotations/readme.txt"] = b"no xml here"
    voc_fake.payload = build_zip(entries)
    with pytest.raises(dl.ArchiveError, match="annotations folder 'annotations' has no .xml files"):
        dl.download_dataset(dataset=VOC_SLUG, quiet=True)


def test_the_voc_dataset_is_unsafe_archive_proof_too(credentials, voc_fake):
    voc_fake.payload = build_zip(voc_entries(), extra=[(symlink_info("images/link.png"), b"/etc/passwd")])
    with pytest.raises(dl.ArchiveError, match="symbolic link"):
        dl.download_dataset(dataset=VOC_SLUG, quiet=True)
    assert data_entries() == [] and not dl.is_installed(dataset=VOC_SLUG)


def test_an_unknown_dataset_is_refused_with_the_known_ones(credentials, fake):
    with pytest.raises(common.ParameterError, match=r"(?s)does not know the Kaggle dataset 'someone/faces'.*"
                       r"wobotintelligence/face-mask-detection-dataset.*andrewmvd/face-mask-detection"):
        dl.download_dataset(dataset="someone/faces", quiet=True)
    assert fake.calls == []


def test_install_archive_takes_a_voc_zip_downloaded_by_hand(no_credentials, tmp_path):
    archive = tmp_path / "archive.zip"
    archive.write_bytes(build_zip({f"face-mask-detection/{k}": v for k, v in voc_entries().items()}))
    root = dl.install_archive(archive, dataset=VOC_SLUG, quiet=True)
    assert (root / "annotations" / "maksssksksss1.xml").is_file() and dl.is_installed(dataset=VOC_SLUG)


def test_cli_download_dataset_uses_the_same_safe_install(credentials, voc_fake, capsys):
    from maskedu import cli

    assert cli.main(["download", "--dataset", VOC_SLUG]) == 0
    assert "dataset ready in" in capsys.readouterr().out
    assert dl.is_installed(dataset=VOC_SLUG)
    assert cli.main(["download", "--dataset", "someone/faces"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'someone/faces'" in err and VOC_SLUG in err


def test_get_dataset_of_the_voc_set_leaves_the_third_class_out_and_says_so(credentials, voc_fake, capsys):
    ds = dl.get_dataset(dataset=VOC_SLUG)
    out = capsys.readouterr().out
    assert ds.layout == "voc" and len(ds) == 2 and ds.source == VOC_SLUG
    assert dict(ds.class_counts()) == {"with_mask": 1, "without_mask": 1}
    assert f"Data: {VOC_SLUG} (2 images, PASCAL VOC)" in out
    assert "Left out: 1 faces of other classes (mask_weared_incorrect: 1)" in out
