"""The one boundary with the ``kaggle`` client: it runs in a child process whose output is redacted.

Why a child process: importing ``kaggle`` logs in at once (in some versions it calls ``exit(1)`` without
credentials, which would kill a notebook cell), and with ``VERBOSE=1`` its SDK ``print()``s every request,
token included (no log filter can catch that). The child gets an environment without those switches, and
all it writes passes through :class:`_RedactingRelay` before it is shown. :func:`fetch_archive` is what
the rest of the package calls.
"""

from __future__ import annotations

import codecs
import json
import os
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .credentials import Credentials, _read_json, credentials_help, redact, secret_values
from .errors import CredentialsError, DownloadError

__all__ = ["fetch_archive"]


#: Environment switches that make the kaggle client print requests (its Authorization header and the
#: token itself) or send them to another server. They never reach the client.
_CLIENT_SWITCHES = ("VERBOSE", "VERBOSE_OUTPUT", "KAGGLE_API_ENVIRONMENT")

#: The real client runs in a child process (:func:`_run_client_in_child`). Tests that replace
#: :func:`_kaggle_client` with a fake set this to False so that the fake runs in this process.
_CLIENT_IN_CHILD = True


@contextmanager
def _without_switches() -> Iterator[None]:
    """Remove :data:`_CLIENT_SWITCHES` from ``os.environ`` for a while (the client reads them at import)."""
    saved = {name: os.environ.pop(name) for name in _CLIENT_SWITCHES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _kaggle_client(credentials: Credentials) -> Any:
    """The one place that touches the ``kaggle`` package: an authenticated ``KaggleApi``.

    Importing ``kaggle`` logs in at once, so the import happens without :data:`_CLIENT_SWITCHES`.
    Tests replace this function with a fake whose ``dataset_download_files(slug, path=..., force=...,
    quiet=..., unzip=False)`` writes an archive into ``path``.
    """
    try:
        with _without_switches():
            from kaggle.api.kaggle_api_extended import KaggleApi
    except SystemExit:  # old clients exit(1) at import time when they find no credentials
        raise CredentialsError(
            f"The kaggle package refused the {credentials}.\n" + credentials_help()
        ) from None
    except ImportError:
        raise DownloadError("The kaggle package is not installed: run  pip install 'kaggle>=1.7'") from None
    api = KaggleApi()
    # With "--verbose" in its args (VERBOSE=1 when kaggle was first imported) the client prints every
    # request, Authorization header included. (An instance attribute: the class stays as the CLI expects.)
    api.args = [a for a in api.args if a not in ("--verbose", "-v", "--local", "--staging", "--admin")]
    # KaggleApi reads KAGGLE_CONFIG_DIR once, when it is first imported: point it at the folder we checked.
    api.config_dir = str(credentials.config_dir)
    api.config = str(credentials.config_dir / "kaggle.json")
    try:
        api.authenticate()
    except SystemExit:
        raise CredentialsError(
            f"Kaggle did not accept the {credentials} (an expired or revoked token?).\n"
            "Generate a new one at https://www.kaggle.com/settings (API section)."
        ) from None
    return api


def _is_network_error(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    network = {
        "ConnectionError", "Timeout", "ConnectTimeout", "ReadTimeout", "TimeoutError", "MaxRetryError",
        "NewConnectionError", "ProtocolError", "ChunkedEncodingError", "SSLError", "ProxyError", "gaierror",
        "RemoteDisconnected", "IncompleteRead", "NameResolutionError",
    }
    return bool(names & network)


def _describe_failure(exc: BaseException, credentials: Credentials, slug: str) -> str:
    """A clear, secret-free sentence for a failure inside the Kaggle client."""
    detail = redact(" ".join(str(exc).split()))[:300] or "(no message)"
    detail = f"{type(exc).__name__}: {detail}"
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status in (401, 403):
        return (
            f"Kaggle refused the download (HTTP {status}). Check the {credentials} (it may be expired) and open "
            f"https://www.kaggle.com/datasets/{slug} once to accept the dataset's terms.\nDetails: {detail}"
        )
    if status == 404:
        return f"Kaggle does not know the dataset {slug} (HTTP 404).\nDetails: {detail}"
    if status is not None:
        return f"Kaggle answered HTTP {status}; try again later.\nDetails: {detail}"
    if _is_network_error(exc):
        return (
            "Could not reach Kaggle (network error). Check the internet connection or proxy settings; "
            "offline, maskedu.get_dataset() uses the built-in sample.\n"
            f"Details: {detail}"
        )
    return f"The Kaggle client failed while downloading {slug}.\nDetails: {detail}"


def _client_download(credentials: Credentials, slug: str, download_dir: Path, *, force: bool, quiet: bool) -> None:
    """Have the Kaggle client write the dataset's zip into ``download_dir``; failures become DownloadErrors."""
    failure: DownloadError | None = None
    try:  # what the client logs or prints goes to the child's stderr/stdout, which reach us redacted
        client = _kaggle_client(credentials)
        client.dataset_download_files(slug, path=str(download_dir), force=force, quiet=quiet, unzip=False)
    except DownloadError as exc:
        failure = type(exc)(redact(str(exc)))
    except (Exception, SystemExit) as exc:
        failure = DownloadError(_describe_failure(exc, credentials, slug))
    if failure is not None:
        # Raised outside the except block: no chained client traceback (which might quote a secret).
        raise failure


class _RedactingRelay:
    """Copies a child's output to a stream, replacing every secret with ``***`` on the way.

    A secret split across two reads is caught: the end of a read that could begin a secret is held
    back until the next one.
    """

    def __init__(self, source, target, secrets: set[str]):
        self.source, self.target = source, target
        self.secrets = sorted({s.encode() for s in secrets}, key=len, reverse=True)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = b""

    def _held_back(self, data: bytes) -> int:
        for keep in range(min(len(data), max((len(s) for s in self.secrets), default=1) - 1), 0, -1):
            tail = data[-keep:]
            if any(s.startswith(tail) for s in self.secrets):
                return keep
        return 0

    def _emit(self, data: bytes, final: bool = False) -> None:
        text = self.decoder.decode(data, final=final)
        if text and self.target is not None:
            try:
                self.target.write(text)
                self.target.flush()
            except (OSError, ValueError):  # a closed stream: the output is dropped, never the secret shown
                pass

    def run(self) -> None:
        while chunk := self.source.read1(65536):
            data = self.pending + chunk
            for secret in self.secrets:
                data = data.replace(secret, b"***")
            keep = self._held_back(data)
            self.pending = data[len(data) - keep:] if keep else b""
            self._emit(data[: len(data) - keep])
        self._emit(self.pending, final=True)
        self.pending = b""


def _client_environment() -> dict[str, str]:
    """The child's environment: this one without the client's print switches, with maskedu importable."""
    env = {k: v for k, v in os.environ.items() if k not in _CLIENT_SWITCHES}
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run_client_in_child(credentials: Credentials, slug: str, download_dir: Path, *, force: bool, quiet: bool) -> None:
    """Run :func:`_client_download` in a fresh Python process whose output passes through the redactor.

    The kaggle client logs in when it is imported and its SDK ``print()``s requests (no log filter can
    catch that), so it never runs in this process: the child gets an environment without
    :data:`_CLIENT_SWITCHES`, and everything it writes to its stdout and stderr reaches ours only
    through :class:`_RedactingRelay`. Its result comes back as JSON in a temporary file.
    """
    secrets = secret_values()
    request = {
        "method": credentials.method, "source": credentials.source, "config_dir": str(credentials.config_dir),
        "slug": slug, "path": str(download_dir), "force": bool(force), "quiet": bool(quiet),
    }
    fd, result_name = tempfile.mkstemp(prefix="maskedu-kaggle-", suffix=".json")
    os.close(fd)
    result_path = Path(result_name)
    code = "import sys; from maskedu.download.client import _client_main; sys.exit(_client_main(sys.argv[1], sys.argv[2]))"
    try:
        proc = subprocess.Popen(
            # -P: the working folder is not put on sys.path, so a stray kaggle.py there cannot stand in for the client
            [sys.executable, "-P", "-c", code, json.dumps(request), str(result_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_client_environment(),
        )
    except OSError as exc:
        result_path.unlink(missing_ok=True)
        raise DownloadError(f"Could not start a Python process for the Kaggle client: {exc}") from None
    relays = [
        threading.Thread(target=_RedactingRelay(proc.stdout, sys.stdout, secrets).run, daemon=True),
        threading.Thread(target=_RedactingRelay(proc.stderr, sys.stderr, secrets).run, daemon=True),
    ]
    for relay in relays:
        relay.start()
    try:
        status = proc.wait()
    except BaseException:  # an interrupt: stop the child (a partial zip stays for the next call to resume)
        proc.kill()
        proc.wait()
        raise
    finally:
        for relay in relays:
            relay.join(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
        try:
            result = _read_json(result_path)
        finally:
            result_path.unlink(missing_ok=True)
    if result and result.get("ok"):
        return
    if result and result.get("error"):
        kind = CredentialsError if result["error"] == "CredentialsError" else DownloadError
        raise kind(redact(str(result.get("message") or "(no message)"), secrets))
    raise DownloadError(f"The Kaggle client stopped unexpectedly (exit status {status}) while downloading {slug}.")


def _client_main(request_json: str, result_file: str) -> int:
    """The child process of :func:`_run_client_in_child`: download, then write the outcome to ``result_file``."""
    for name in _CLIENT_SWITCHES:  # already absent from a child's environment; never trust that alone
        os.environ.pop(name, None)
    request = json.loads(request_json)
    credentials = Credentials(method=request["method"], source=request["source"], config_dir=Path(request["config_dir"]))
    try:
        _client_download(credentials, request["slug"], Path(request["path"]), force=request["force"], quiet=request["quiet"])
        outcome: dict[str, Any] = {"ok": True}
    except DownloadError as exc:
        outcome = {"error": type(exc).__name__, "message": redact(str(exc))}
    Path(result_file).write_text(json.dumps(outcome), encoding="utf-8")
    return 0


def fetch_archive(credentials: Credentials, slug: str, download_dir: Path, *, force: bool, quiet: bool) -> Path:
    """Run the Kaggle client (the only network step) and return the zip it wrote into ``download_dir``."""
    if _CLIENT_IN_CHILD:
        _run_client_in_child(credentials, slug, download_dir, force=force, quiet=quiet)
    else:
        _client_download(credentials, slug, download_dir, force=force, quiet=quiet)
    archive = download_dir / f"{slug.split('/')[1]}.zip"
    if not archive.is_file():
        zips = sorted(download_dir.glob("*.zip"))
        if len(zips) != 1:
            raise DownloadError(
                f"The Kaggle client finished but left {'no' if not zips else len(zips)} zip archives in {download_dir}."
            )
        archive = zips[0]
    return archive

