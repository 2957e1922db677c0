"""No Kaggle secret reaches stdout, stderr, a log or a file, whatever the environment holds.

Each test runs a download in a fresh Python process (the kaggle client logs in once per process, when
it is imported) with ``VERBOSE=1`` and a fake secret, using the real kaggle client. The network is cut
by a proxy on a closed local port, so the download fails with a clear error; every byte the process
wrote (its stdout and stderr, read from the pipes, and every file under its home and data folders)
is then searched for the secret and its base64 forms.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOKEN = "KGAT_fake0123456789abcdefLEAKCHECK"
USERNAME = "student-leakcheck"
KEY = "fa4e0123456789abcdefLEAKCHECKKEY"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: connections are refused


def _forms(secret: str, username: str | None = None) -> list[bytes]:
    raw = [secret.encode()]
    if username:
        raw.append(f"{username}:{secret}".encode())
    forms = []
    for value in raw:
        forms += [value, base64.b64encode(value), base64.urlsafe_b64encode(value)]
        forms.append(base64.b64encode(value).rstrip(b"="))
    forms.append(secret[-16:].encode())  # a tail of it: redaction must not leave half a secret
    return forms


def _run(tmp_path: Path, env_extra: dict[str, str], code: list[str]) -> subprocess.CompletedProcess:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    port = _closed_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAGGLE_", "VERBOSE"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        MASKEDU_DATA=str(tmp_path / "data"),
        VERBOSE="1",
        VERBOSE_OUTPUT="1",
        HTTPS_PROXY=f"http://127.0.0.1:{port}",
        HTTP_PROXY=f"http://127.0.0.1:{port}",
        https_proxy=f"http://127.0.0.1:{port}",
        http_proxy=f"http://127.0.0.1:{port}",
        NO_PROXY="",
        no_proxy="",
        PYTHONPATH=str(REPO),
        MASKEDU_NO_PROGRESS="0",
    )
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, *code], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=240,
    )


def _written_files(tmp_path: Path, skip: set[Path]) -> list[Path]:
    return [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink() and p not in skip]


def _assert_no_secret(result: subprocess.CompletedProcess, tmp_path: Path, forms: list[bytes], skip: set[Path]) -> None:
    streams = {"stdout": result.stdout, "stderr": result.stderr}
    for path in _written_files(tmp_path, skip):
        streams[str(path)] = path.read_bytes()
    for where, data in streams.items():
        for form in forms:
            assert form not in data, f"a form of the secret ({form[:6]!r}...) is in {where}"


def _private(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


CLI = ["-m", "maskedu", "download"]
API = ["-c", "import maskedu.download as d; d.download_dataset()"]


@pytest.mark.parametrize("code", [CLI, API], ids=["cli", "python"])
def test_an_access_token_in_the_environment_never_leaks_with_verbose_on(tmp_path, code):
    result = _run(tmp_path, {"KAGGLE_API_TOKEN": TOKEN}, code)
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 1, err
    assert "Could not reach Kaggle" in err or "Could not reach Kaggle" in result.stdout.decode(errors="replace")
    _assert_no_secret(result, tmp_path, _forms(TOKEN), skip=set())


def test_a_legacy_key_in_the_environment_never_leaks_with_verbose_on(tmp_path):
    result = _run(tmp_path, {"KAGGLE_USERNAME": USERNAME, "KAGGLE_KEY": KEY}, CLI)
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 1, err
    assert "Could not reach Kaggle" in err
    _assert_no_secret(result, tmp_path, _forms(KEY, USERNAME), skip=set())


@pytest.mark.parametrize("kind", ["access_token file", "kaggle.json"])
def test_a_secret_in_a_file_never_leaks_with_verbose_on(tmp_path, kind):
    home = tmp_path / "home"
    if kind == "access_token file":
        secret_file = _private(home / ".kaggle" / "access_token", TOKEN + "\n")
        forms = _forms(TOKEN)
    else:
        secret_file = _private(home / ".kaggle" / "kaggle.json", json.dumps({"username": USERNAME, "key": KEY}))
        forms = _forms(KEY, USERNAME)
    result = _run(tmp_path, {}, CLI)
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 1, err
    assert "Could not reach Kaggle" in err
    _assert_no_secret(result, tmp_path, forms, skip={secret_file})  # the user's own file holds it, of course


FAKE_CLIENT = """
import logging, os
log = logging.getLogger("kaggle.api.kaggle_api_extended")

class KaggleApi:
    args = []

    def authenticate(self):
        pass

    def dataset_download_files(self, dataset, path=None, **kw):
        secret = os.environ["KAGGLE_KEY"]
        log.warning("request with key %s", secret)
        try:
            raise ValueError(f"token {secret} rejected")
        except ValueError:
            log.exception("inner failure")
        print(f"Authorization: Bearer {secret}", flush=True)
        raise RuntimeError(f"401 Client Error: Unauthorized; Authorization: Bearer {secret}")
"""


def test_what_a_client_logs_prints_or_raises_reaches_us_redacted(tmp_path):
    """A stand-in kaggle package in the child (first on its path) logs, prints and raises the key."""
    fake = tmp_path / "fake"
    (fake / "kaggle" / "api").mkdir(parents=True)
    (fake / "kaggle" / "__init__.py").write_text("")
    (fake / "kaggle" / "api" / "__init__.py").write_text("")
    (fake / "kaggle" / "api" / "kaggle_api_extended.py").write_text(FAKE_CLIENT)
    env = {"KAGGLE_USERNAME": USERNAME, "KAGGLE_KEY": KEY, "PYTHONPATH": os.pathsep.join([str(REPO), str(fake)])}
    result = _run(tmp_path, env, API)
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 1, err
    assert "request with key ***" in err and "inner failure" in err and "rejected" in err  # shown, redacted
    assert "Authorization: Bearer ***" in result.stdout.decode(errors="replace")
    assert "Unauthorized" in err
    _assert_no_secret(result, tmp_path, _forms(KEY, USERNAME), skip=set(fake.rglob("*")))


# --------------------------------------------------------------------------- the redactor between child and us


class _Chunks:
    """A pipe stand-in that hands out the given chunks, one per read."""

    def __init__(self, chunks: list[bytes]):
        self.chunks = list(chunks)

    def read1(self, n: int = -1) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


def _relay(chunks: list[bytes], secrets: set[str]) -> str:
    import io

    from maskedu.download import client

    out = io.StringIO()
    client._RedactingRelay(_Chunks(chunks), out, secrets).run()
    return out.getvalue()


def test_the_relay_redacts_a_secret_split_across_reads_and_keeps_the_rest():
    text = f"Authorization: Bearer {TOKEN}\nb'{{\"token\": \"{TOKEN}\"}}'\nprogress 50% é\r".encode()
    for cut in range(1, len(text)):
        for second in (cut + 1, cut + 7):
            chunks = [text[:cut], text[cut:second], text[second:]]
            assert _relay(chunks, {TOKEN}) == text.decode().replace(TOKEN, "***"), (cut, second)


def test_the_relay_redacts_the_base64_forms_the_library_knows(monkeypatch):
    from maskedu.download import credentials

    for name in [n for n in os.environ if n.startswith("KAGGLE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KAGGLE_USERNAME", USERNAME)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    basic = base64.b64encode(f"{USERNAME}:{KEY}".encode()).decode()
    plain = base64.b64encode(KEY.encode()).decode()
    shown = _relay([f"Authorization: Basic {basic}\n{plain}\n{KEY}\n".encode()], credentials.secret_values())
    assert shown == "Authorization: Basic ***\n***\n***\n"


def test_the_child_never_sees_the_print_switches(monkeypatch):
    from maskedu.download import client

    monkeypatch.setenv("VERBOSE", "1")
    monkeypatch.setenv("VERBOSE_OUTPUT", "true")
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    env = client._client_environment()
    assert not {"VERBOSE", "VERBOSE_OUTPUT", "KAGGLE_API_ENVIRONMENT"} & set(env)
    assert str(REPO) in env["PYTHONPATH"].split(os.pathsep)  # the child imports this maskedu
    assert os.environ["VERBOSE"] == "1"  # ours is left as it was


def test_whatever_the_child_writes_reaches_us_redacted_and_a_crash_is_a_download_error(tmp_path, monkeypatch, capfd):
    """A stand-in for the child's Python that prints the secret (whole, and in pieces) on both pipes, then dies."""
    from maskedu import download as dl
    from maskedu.download import client

    for name in [n for n in os.environ if n.startswith("KAGGLE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KAGGLE_API_TOKEN", TOKEN)
    leaky = tmp_path / "leaky-python"
    leaky.write_text(
        "#!/bin/sh\n"
        'printf "Authorization: Bearer %s\\n" "$KAGGLE_API_TOKEN"\n'
        'printf "%s" "$KAGGLE_API_TOKEN" | head -c 10; sleep 0.2; printf "%s\\n" "$KAGGLE_API_TOKEN" | tail -c +11\n'
        'printf "token=%s\\n" "$KAGGLE_API_TOKEN" >&2\n'
        "exit 3\n"
    )
    leaky.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(leaky))
    with pytest.raises(dl.DownloadError, match=r"stopped unexpectedly \(exit status 3\)"):
        client._run_client_in_child(dl.find_credentials(), dl.KAGGLE_SLUG, tmp_path, force=False, quiet=True)
    out, err = capfd.readouterr()
    assert out == "Authorization: Bearer ***\n***\n"
    assert err == "token=***\n"
