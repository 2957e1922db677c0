"""01 · Getting the data: the Kaggle download, done safely, and :func:`get_dataset`.

One line gives a notebook its data::

    import maskedu
    ds = maskedu.get_dataset()     # Kaggle data if present, else download it, else the built-in sample

and a banner says which data is used and why. Underneath:

* :func:`find_credentials` looks for Kaggle credentials where the ``kaggle`` client looks (an access token
  in ``KAGGLE_API_TOKEN`` or ``~/.kaggle/access_token``; ``KAGGLE_USERNAME``/``KAGGLE_KEY``;
  ``kaggle.json`` in ``$KAGGLE_CONFIG_DIR`` or ``~/.kaggle``; a ``kaggle auth login``), without ever
  reading the secret into a message. :func:`credentials_help` says how to get a token.
* :func:`download_dataset` fetches ``wobotintelligence/face-mask-detection-dataset`` with the ``kaggle``
  package and installs it with :func:`install_archive`.
* :func:`install_archive` installs a zip you fetched yourself (for example from the dataset's web page):
  it checks the archive first (:func:`check_archive`: zip structure, no absolute paths, no ``..``, no
  links, caps on the unpacked size and on the compression ratio of each member and of the whole archive),
  unpacks it into a hidden temporary folder, checks the layout
  (:func:`check_layout`), writes a completion marker last and renames the folder into place. An
  interrupted download or extraction never leaves a folder that looks finished, and a second call finds
  the finished dataset and does nothing.

Why the ``kaggle`` package runs only in a child process of :func:`download_dataset`: importing it logs in
at once (in some versions it calls ``exit(1)`` without credentials, which would kill a notebook cell), and
with ``VERBOSE=1`` its SDK ``print()``s every request, token included. The child gets an environment
without those switches, and all it writes passes through a redactor before it is shown.
"""

from __future__ import annotations

import base64
import codecs
import html
import json
import logging
import lzma
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from . import common

__all__ = [
    "KAGGLE_SLUG",
    "KAGGLE_URL",
    "DATASET_DIRNAME",
    "DownloadError",
    "CredentialsError",
    "ArchiveError",
    "CredentialsWarning",
    "Credentials",
    "ArchiveSummary",
    "find_credentials",
    "credentials_help",
    "download_dataset",
    "install_archive",
    "check_archive",
    "check_layout",
    "is_installed",
    "dataset_path",
    "get_dataset",
]

log = logging.getLogger(__name__)

#: The Kaggle dataset the paper uses (6,024 images, 20 classes, ``train.csv`` plus one JSON per image).
KAGGLE_SLUG = "wobotintelligence/face-mask-detection-dataset"
KAGGLE_URL = f"https://www.kaggle.com/datasets/{KAGGLE_SLUG}"
#: Name of the folder the dataset is installed into, inside the destination folder (``data/`` by default).
DATASET_DIRNAME = KAGGLE_SLUG.split("/")[1]
#: Written last, inside the installed folder: its presence is what "finished" means.
MARKER_NAME = ".maskedu-download.json"

#: The Kaggle layout, relative to the dataset folder.
TRAIN_CSV = "train.csv"
IMAGES_DIR = "Medical mask/Medical mask/Medical Mask/images"
ANNOTATIONS_DIR = "Medical mask/Medical mask/Medical Mask/annotations"
TRAIN_CSV_COLUMNS = ("name", "x1", "x2", "y1", "y2", "classname")

#: Archive limits. The real archive unpacks to a few GB in about 10,000 files.
MAX_UNCOMPRESSED_BYTES = 10 * 2**30
MAX_MEMBERS = 100_000
#: A member over 1 MiB that unpacks more than this many times its packed size is treated as a zip bomb.
MAX_COMPRESSION_RATIO = 200
#: An archive unpacking to over 1 MiB and more than this many times its size on disk is a zip bomb too
#: (many small members each under the per-member rule). JPEG and PNG images barely compress (about 1x).
MAX_ARCHIVE_RATIO = 50
_RATIO_MIN_BYTES = 2**20
_FREE_SPACE_MARGIN = 64 * 2**20
_CHUNK = 2**20
_PROGRESS_DELAY = 0.5  # seconds before the unpacking bar appears (none for a tiny archive)


# --------------------------------------------------------------------------- errors


class DownloadError(common.MaskeduError, RuntimeError):
    """The Kaggle dataset could not be fetched or installed; the message says why and what to do."""


class CredentialsError(DownloadError):
    """No usable Kaggle credentials; the message says how to get a token and the offline alternative."""


class ArchiveError(DownloadError):
    """The archive was refused (corrupt, truncated, unsafe, too big, or not the expected dataset)."""


class CredentialsWarning(UserWarning):
    """A credentials file other users of this machine can read."""


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class Credentials:
    """Where usable Kaggle credentials were found. It holds no secret, only its kind and location.

    >>> Credentials(method="API key", source="~/.kaggle/kaggle.json", config_dir=Path("~/.kaggle"))
    Credentials(method='API key', source='~/.kaggle/kaggle.json', config_dir=PosixPath('~/.kaggle'))
    """

    method: str  # "access token", "API key" or "OAuth login"
    source: str  # where it was found: an environment variable's name or a file path
    config_dir: Path  # the folder the kaggle client reads kaggle.json from

    def __str__(self) -> str:
        return f"Kaggle {self.method} from {self.source}"


def kaggle_config_dir() -> Path:
    """The folder the ``kaggle`` client reads ``kaggle.json`` from.

    ``$KAGGLE_CONFIG_DIR`` if set, else ``~/.kaggle``; on Linux, when ``~/.kaggle`` does not exist,
    ``$XDG_CONFIG_HOME/kaggle`` (``~/.config/kaggle``), as kaggle 2.x does.
    """
    env = os.environ.get("KAGGLE_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    home = Path(os.path.expanduser("~")) / ".kaggle"
    if sys.platform.startswith("linux") and not home.exists():
        xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        return Path(xdg) / "kaggle"
    return home


def _token_files() -> list[Path]:
    home = Path(os.path.expanduser("~")) / ".kaggle"
    return [home / "access_token", home / "access_token.txt"]


def _oauth_file() -> Path:
    return Path(os.path.expanduser("~")) / ".kaggle" / "credentials.json"


def _existing_file(value: str | None) -> Path | None:
    """``Path(value)`` when it names an existing file; a long secret is not a path, and must not crash."""
    if not value or len(value) > 4096:
        return None
    try:
        path = Path(value).expanduser()
        return path if path.is_file() else None
    except (OSError, ValueError):
        return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _warn_if_readable(path: Path) -> None:
    """Warn (never print the content) when a credentials file can be read by group or others."""
    if os.name == "nt":
        return
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        warnings.warn(
            f"{path} can be read by other users of this machine (mode {stat.filemode(mode)}); "
            f"protect your Kaggle key with:  chmod 600 '{path}'",
            CredentialsWarning,
            stacklevel=3,
        )


def _in_kaggle_notebook() -> bool:
    return bool(os.environ.get("KAGGLE_KERNEL_RUN_TYPE")) and bool(os.environ.get("KAGGLE_DATA_PROXY_URL"))


def _scan_credentials(warn: bool) -> tuple[Credentials | None, list[str]]:
    """Find credentials in the kaggle client's order; also return notes on near misses (for the help)."""
    notes: list[str] = []
    config_dir = kaggle_config_dir()

    def found(method: str, source: str) -> Credentials:
        return Credentials(method=method, source=source, config_dir=config_dir)

    # 1. An access token (kaggle >= 1.8): inside a Kaggle notebook, KAGGLE_API_TOKEN (value or file), token file.
    if _in_kaggle_notebook():
        path = _existing_file(os.environ.get("KAGGLE_API_V1_TOKEN"))
        if path is not None and _read_text(path):
            return found("access token", f"the file named by KAGGLE_API_V1_TOKEN ({path})"), notes
    token = os.environ.get("KAGGLE_API_TOKEN", "")
    if token.strip():
        path = _existing_file(token)
        if path is None:
            return found("access token", "the environment variable KAGGLE_API_TOKEN"), notes
        if _read_text(path):
            if warn:
                _warn_if_readable(path)
            return found("access token", f"the file named by KAGGLE_API_TOKEN ({path})"), notes
        notes.append(f"KAGGLE_API_TOKEN names the file {path}, which is empty")
    for path in _token_files():
        if path.is_file():
            if _read_text(path):
                if warn:
                    _warn_if_readable(path)
                return found("access token", str(path)), notes
            notes.append(f"{path} is empty")

    # 2. A legacy API key: username and key from kaggle.json, overridden by KAGGLE_USERNAME / KAGGLE_KEY.
    config_file = config_dir / "kaggle.json"
    file_keys: set[str] = set()
    if config_file.is_file():
        data = _read_json(config_file)
        if data is None:
            notes.append(f"{config_file} is not valid JSON (it should look like {{\"username\": ..., \"key\": ...}})")
        else:
            file_keys = {k for k in ("username", "key") if str(data.get(k) or "").strip()}
            missing = {"username", "key"} - file_keys
            if missing:
                notes.append(f"{config_file} has no {' or '.join(sorted(missing))}")
    env_keys = {k for k, var in (("username", "KAGGLE_USERNAME"), ("key", "KAGGLE_KEY")) if os.environ.get(var, "").strip()}
    if {"username", "key"} <= file_keys | env_keys:
        if file_keys and warn:
            _warn_if_readable(config_file)
        if not env_keys:
            source = str(config_file)
        elif not file_keys:
            source = "the environment variables KAGGLE_USERNAME and KAGGLE_KEY"
        else:
            source = f"{config_file} and the environment variables {', '.join(sorted('KAGGLE_' + k.upper() for k in env_keys))}"
        return found("API key", source), notes
    if env_keys and not file_keys:
        missing_var = "KAGGLE_KEY" if "username" in env_keys else "KAGGLE_USERNAME"
        notes.append(f"{missing_var} is not set (it is needed together with the other one)")

    # 3. An OAuth login made with `kaggle auth login`.
    oauth = _oauth_file()
    if oauth.is_file():
        data = _read_json(oauth)
        if data is not None and data.get("refresh_token"):
            if warn:
                _warn_if_readable(oauth)
            return found("OAuth login", str(oauth)), notes
        notes.append(f"{oauth} holds no usable login")
    return None, notes


def find_credentials(*, warn: bool = True) -> Credentials | None:
    """Where the ``kaggle`` client would find credentials, or None when there are none.

    Looks, in the client's order, at ``KAGGLE_API_TOKEN`` and ``~/.kaggle/access_token``, then at
    ``KAGGLE_USERNAME``/``KAGGLE_KEY`` and ``kaggle.json`` (in ``$KAGGLE_CONFIG_DIR`` or ``~/.kaggle``),
    then at a ``kaggle auth login``. The secret itself is never kept, printed or logged. With ``warn``,
    a credentials file that other users can read gets a :class:`CredentialsWarning`.

    >>> creds = find_credentials()
    >>> print(creds or "no Kaggle credentials: get_dataset() will use the built-in sample")  # doctest: +SKIP
    """
    return _scan_credentials(warn)[0]


def credentials_help(notes: list[str] | None = None) -> str:
    """The short how-to shown when no credentials are found (steps, where we looked, the offline way)."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        config_file = kaggle_config_dir() / "kaggle.json"
    else:  # creating ~/.kaggle makes the client read it (it only falls back to ~/.config/kaggle without it)
        config_file = Path(os.path.expanduser("~")) / ".kaggle" / "kaggle.json"
    looked = [
        "KAGGLE_API_TOKEN", "KAGGLE_USERNAME/KAGGLE_KEY", str(kaggle_config_dir() / "kaggle.json"),
        str(_token_files()[0]), str(_oauth_file()),
    ]
    lines = [
        "No Kaggle credentials were found, so the Kaggle dataset cannot be downloaded.",
        "To get them:",
        "  1. Sign in at https://www.kaggle.com, open Settings > API and click 'Generate New Token'.",
        "  2. Either put the token in the environment before starting Jupyter:  export KAGGLE_API_TOKEN=...",
        f"     or save the legacy kaggle.json as {config_file} and run:  chmod 600 '{config_file}'",
        "     (never paste the token into a notebook cell: it would be saved with the notebook).",
        f"  3. Open {KAGGLE_URL} once and accept its terms if asked.",
        "Offline: maskedu.get_dataset() uses the built-in sample (maskedu.make_sample_dataset), and",
        "maskedu.download.install_archive('archive.zip') installs a zip downloaded by hand from the page above.",
    ]
    if notes:
        lines.insert(1, "Noticed: " + "; ".join(notes) + ".")
    lines.insert(1, "Looked in: " + ", ".join(looked) + ".")
    return "\n".join(lines)


# --------------------------------------------------------------------------- keeping secrets out of text


def _secret_values() -> set[str]:
    """Every credential value on this machine the client could use, to redact from any text we show."""
    values = {os.environ.get("KAGGLE_KEY", ""), os.environ.get("KAGGLE_API_TOKEN", "")}
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_API_V1_TOKEN"):
        path = _existing_file(os.environ.get(var))
        if path is not None:
            values.add(_read_text(path))
    for path in _token_files():
        if path.is_file():
            values.add(_read_text(path))
    data = _read_json(kaggle_config_dir() / "kaggle.json") if (kaggle_config_dir() / "kaggle.json").is_file() else None
    username = os.environ.get("KAGGLE_USERNAME") or str((data or {}).get("username") or "")
    key = os.environ.get("KAGGLE_KEY") or str((data or {}).get("key") or "")
    values.add(key)
    if username and key:  # the form it takes in an HTTP Basic Authorization header
        values.add(base64.b64encode(f"{username}:{key}".encode()).decode())
    data = _read_json(_oauth_file()) if _oauth_file().is_file() else None
    if data:
        values.update(str(data.get(k) or "") for k in ("refresh_token", "access_token"))
    values = {v.strip() for v in values if len(v.strip()) >= 6}
    for value in list(values):  # and the base64 forms a request or a debug dump may carry
        encoded = base64.b64encode(value.encode()).decode()
        values.update({encoded, encoded.rstrip("="), base64.urlsafe_b64encode(value.encode()).decode()})
    return values


def _redact(text: str, secrets: set[str] | None = None) -> str:
    secrets = _secret_values() if secrets is None else secrets
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class _RedactingFilter(logging.Filter):
    """Rewrites log records that contain a credential (message, arguments or traceback)."""

    def __init__(self, secrets: set[str]):
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record: leave it to logging's own error handling
            return True
        if record.exc_info:
            message = message + "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        redacted = _redact(message, self.secrets)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        return True


class _RedactingLogs:
    """While the Kaggle client runs, scrub credentials from what its loggers (and the root handlers) emit.

    ``refresh()`` covers loggers and handlers created since (importing ``kaggle`` creates both).
    """

    PREFIXES = ("kaggle", "kagglesdk", "urllib3", "requests")

    def __init__(self) -> None:
        self.filter = _RedactingFilter(_secret_values())
        self.targets: list[logging.Filterer] = []

    def refresh(self) -> None:
        candidates: list[logging.Filterer] = [logging.getLogger(p) for p in self.PREFIXES]
        candidates += [
            logger
            for name, logger in list(logging.root.manager.loggerDict.items())
            if isinstance(logger, logging.Logger) and name.split(".")[0] in self.PREFIXES
        ]
        candidates += list(logging.root.handlers)
        for target in candidates:
            if not any(target is t for t in self.targets):
                target.addFilter(self.filter)
                self.targets.append(target)

    def __enter__(self) -> "_RedactingLogs":
        self.refresh()
        return self

    def __exit__(self, *exc: object) -> None:
        for target in self.targets:
            target.removeFilter(self.filter)
        self.targets.clear()


# --------------------------------------------------------------------------- the Kaggle client boundary


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


def _describe_failure(exc: BaseException, credentials: Credentials) -> str:
    """A clear, secret-free sentence for a failure inside the Kaggle client."""
    detail = _redact(" ".join(str(exc).split()))[:300] or "(no message)"
    detail = f"{type(exc).__name__}: {detail}"
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status in (401, 403):
        return (
            f"Kaggle refused the download (HTTP {status}). Check the {credentials} (it may be expired) and open "
            f"{KAGGLE_URL} once to accept the dataset's terms.\nDetails: {detail}"
        )
    if status == 404:
        return f"Kaggle does not know the dataset {KAGGLE_SLUG} (HTTP 404).\nDetails: {detail}"
    if status is not None:
        return f"Kaggle answered HTTP {status}; try again later.\nDetails: {detail}"
    if _is_network_error(exc):
        return (
            "Could not reach Kaggle (network error). Check the internet connection or proxy settings; "
            "offline, maskedu.get_dataset() uses the built-in sample.\n"
            f"Details: {detail}"
        )
    return f"The Kaggle client failed while downloading {KAGGLE_SLUG}.\nDetails: {detail}"


def _client_download(credentials: Credentials, download_dir: Path, *, force: bool, quiet: bool) -> None:
    """Have the Kaggle client write the dataset's zip into ``download_dir``; failures become DownloadErrors."""
    failure: DownloadError | None = None
    with _RedactingLogs() as redacting:
        try:
            client = _kaggle_client(credentials)
            redacting.refresh()
            client.dataset_download_files(KAGGLE_SLUG, path=str(download_dir), force=force, quiet=quiet, unzip=False)
        except DownloadError as exc:
            failure = type(exc)(_redact(str(exc)))
        except (Exception, SystemExit) as exc:
            failure = DownloadError(_describe_failure(exc, credentials))
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
    package_parent = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run_client_in_child(credentials: Credentials, download_dir: Path, *, force: bool, quiet: bool) -> None:
    """Run :func:`_client_download` in a fresh Python process whose output passes through the redactor.

    The kaggle client logs in when it is imported and its SDK ``print()``s requests (no log filter can
    catch that), so it never runs in this process: the child gets an environment without
    :data:`_CLIENT_SWITCHES`, and everything it writes to its stdout and stderr reaches ours only
    through :class:`_RedactingRelay`. Its result comes back as JSON in a temporary file.
    """
    secrets = _secret_values()
    request = {
        "method": credentials.method, "source": credentials.source, "config_dir": str(credentials.config_dir),
        "path": str(download_dir), "force": bool(force), "quiet": bool(quiet),
    }
    fd, result_name = tempfile.mkstemp(prefix="maskedu-kaggle-", suffix=".json")
    os.close(fd)
    result_path = Path(result_name)
    code = "import sys; from maskedu.download import _client_main; sys.exit(_client_main(sys.argv[1], sys.argv[2]))"
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
        raise kind(_redact(str(result.get("message") or "(no message)"), secrets))
    raise DownloadError(f"The Kaggle client stopped unexpectedly (exit status {status}) while downloading {KAGGLE_SLUG}.")


def _client_main(request_json: str, result_file: str) -> int:
    """The child process of :func:`_run_client_in_child`: download, then write the outcome to ``result_file``."""
    for name in _CLIENT_SWITCHES:  # already absent from a child's environment; never trust that alone
        os.environ.pop(name, None)
    request = json.loads(request_json)
    credentials = Credentials(method=request["method"], source=request["source"], config_dir=Path(request["config_dir"]))
    try:
        _client_download(credentials, Path(request["path"]), force=request["force"], quiet=request["quiet"])
        outcome: dict[str, Any] = {"ok": True}
    except DownloadError as exc:
        outcome = {"error": type(exc).__name__, "message": _redact(str(exc))}
    Path(result_file).write_text(json.dumps(outcome), encoding="utf-8")
    return 0


def _fetch_archive(credentials: Credentials, download_dir: Path, *, force: bool, quiet: bool) -> Path:
    """Run the Kaggle client (the only network step) and return the zip it wrote into ``download_dir``."""
    if _CLIENT_IN_CHILD:
        _run_client_in_child(credentials, download_dir, force=force, quiet=quiet)
    else:
        _client_download(credentials, download_dir, force=force, quiet=quiet)
    archive = download_dir / f"{DATASET_DIRNAME}.zip"
    if not archive.is_file():
        zips = sorted(download_dir.glob("*.zip"))
        if len(zips) != 1:
            raise DownloadError(
                f"The Kaggle client finished but left {'no' if not zips else len(zips)} zip archives in {download_dir}."
            )
        archive = zips[0]
    return archive


# --------------------------------------------------------------------------- archive checks


@dataclass(frozen=True)
class ArchiveSummary:
    """What :func:`check_archive` found: a safe archive's size and contents."""

    path: Path
    files: int
    folders: int
    total_bytes: int
    packed_bytes: int

    def __str__(self) -> str:
        return (
            f"{self.path.name}: {self.files} files in {self.folders} folders, "
            f"{self.total_bytes / 1e6:.1f} MB unpacked ({self.packed_bytes / 1e6:.1f} MB packed)"
        )


_DRIVE = re.compile(r"^[A-Za-z]:")
_READABLE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


def _safe_parts(name: str) -> tuple[str, ...]:
    """The path components of a zip entry name, or an ArchiveError reason when the name is unsafe."""
    if "\x00" in name:
        raise ValueError("contains a NUL character")
    if "\\" in name:
        raise ValueError("contains a backslash (a Windows path separator that could escape the folder)")
    if name.startswith("/"):
        raise ValueError("is an absolute path")
    if _DRIVE.match(name):
        raise ValueError("starts with a drive letter")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise ValueError("contains '..' (it would be written outside the destination)")
    if not parts:
        raise ValueError("has an empty name")
    return parts


def _plan(
    zf: zipfile.ZipFile, archive: Path, *, max_bytes: int, max_members: int, max_ratio: float = MAX_ARCHIVE_RATIO
) -> tuple[list[tuple[zipfile.ZipInfo, tuple[str, ...]]], ArchiveSummary]:
    """Check every entry of an open archive's directory; return what to extract, or raise ArchiveError."""
    infos = zf.infolist()
    if len(infos) > max_members:
        raise ArchiveError(f"Refused {archive.name}: {len(infos)} entries, more than the limit of {max_members}.")
    plan: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    files: set[tuple[str, ...]] = set()
    folders: set[tuple[str, ...]] = set()
    total = packed = 0
    for info in infos:
        try:
            parts = _safe_parts(info.filename)
        except ValueError as exc:
            raise ArchiveError(f"Refused {archive.name}: the entry {info.filename!r} {exc}. Nothing was installed.") from None
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise ArchiveError(f"Refused {archive.name}: the entry {info.filename!r} is a symbolic link. Nothing was installed.")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveError(f"Refused {archive.name}: the entry {info.filename!r} is a special file, not a regular file.")
        if info.compress_type not in _READABLE_METHODS:
            raise ArchiveError(
                f"Refused {archive.name}: the entry {info.filename!r} uses compression method {info.compress_type}, "
                "which Python's zipfile cannot read (Deflate64?). Unpack it with another tool and load the folder "
                "with maskedu.load_annotations(path)."
            )
        if info.flag_bits & 0x1:
            raise ArchiveError(f"Refused {archive.name}: the entry {info.filename!r} is encrypted.")
        if info.is_dir() or kind == stat.S_IFDIR:
            folders.add(parts)
            plan.append((info, parts))
            continue
        if parts in files or parts in folders:
            raise ArchiveError(f"Refused {archive.name}: the entry {info.filename!r} appears twice.")
        if info.file_size > _RATIO_MIN_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise ArchiveError(
                f"Refused {archive.name}: the entry {info.filename!r} unpacks to {info.file_size} bytes from "
                f"{info.compress_size} (a zip bomb?)."
            )
        files.add(parts)
        folders.update(parts[:i] for i in range(1, len(parts)))
        total += info.file_size
        packed += info.compress_size
        if total > max_bytes:
            raise ArchiveError(
                f"Refused {archive.name}: it unpacks to more than max_bytes={max_bytes:,} bytes "
                f"({max_bytes / 2**30:.2f} GiB; pass a larger max_bytes if that is expected)."
            )
        plan.append((info, parts))
    clash = files & folders
    if clash:
        name = "/".join(sorted(clash)[0])
        raise ArchiveError(f"Refused {archive.name}: {name!r} is both a file and a folder.")
    # The whole archive's ratio, against the smaller of the packed sizes and the file's own size
    # (members that share their packed data would otherwise count it many times).
    on_disk = max(1, min(packed, archive.stat().st_size))
    if total > _RATIO_MIN_BYTES and total > max_ratio * on_disk:
        raise ArchiveError(
            f"Refused {archive.name}: the whole archive unpacks to {total:,} bytes from {on_disk:,} "
            f"({total / on_disk:.0f} times, more than max_ratio={max_ratio:g}; a zip bomb?). Nothing was installed."
        )
    summary = ArchiveSummary(path=archive, files=len(files), folders=len(folders), total_bytes=total, packed_bytes=packed)
    return plan, summary


def _open_zip(archive: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(archive)
    except Exception as exc:  # zipfile parses untrusted bytes: any failure (even NotImplementedError) means damage
        size = archive.stat().st_size if archive.exists() else 0
        raise ArchiveError(
            f"Refused {archive.name} ({size} bytes): it is not a complete zip archive ({exc}). "
            "A download that stopped early looks like this; download it again."
        ) from None


def check_archive(
    archive: str | os.PathLike,
    *,
    max_bytes: int = MAX_UNCOMPRESSED_BYTES,
    max_members: int = MAX_MEMBERS,
    max_ratio: float = MAX_ARCHIVE_RATIO,
) -> ArchiveSummary:
    """Check a zip before unpacking it; raise :class:`ArchiveError` saying what is wrong.

    Refuses an archive that is not a complete zip, has an entry with an absolute path, a drive letter,
    a backslash or a ``..`` component, a symbolic link or other special file, an encrypted or duplicated
    entry, more than ``max_members`` entries (100,000) or more than ``max_bytes`` unpacked (10 GiB).
    Zip bombs are refused twice over: a member over 1 MiB may unpack to at most
    :data:`MAX_COMPRESSION_RATIO` (200) times its packed size, and an archive unpacking to over 1 MiB
    to at most ``max_ratio`` (:data:`MAX_ARCHIVE_RATIO`, 50) times its size, so thousands of small
    members of zeros are caught too. Images barely compress, so a real dataset is far below both.
    The CRC of every member is checked while it is unpacked by :func:`install_archive` (the archive is
    read once, not twice).

    >>> check_archive("face-mask-detection-dataset.zip")  # doctest: +SKIP
    ArchiveSummary(... files=10351 ...)
    """
    archive = Path(archive).expanduser()
    if not archive.is_file():
        raise ArchiveError(f"There is no archive at {archive}.")
    with _open_zip(archive) as zf:
        return _plan(zf, archive, max_bytes=max_bytes, max_members=max_members, max_ratio=max_ratio)[1]


# --------------------------------------------------------------------------- layout and installation


def check_layout(root: str | os.PathLike) -> list[str]:
    """What keeps ``root`` from being the Kaggle face-mask dataset; an empty list means it looks right.

    The Kaggle layout is ``train.csv`` (header ``name,x1,x2,y1,y2,classname``) beside
    ``Medical mask/Medical mask/Medical Mask/images/`` and ``.../annotations/``.
    """
    root = Path(root)
    problems = []
    csv_path = root / TRAIN_CSV
    if not csv_path.is_file():
        problems.append(f"no {TRAIN_CSV}")
    else:
        with open(csv_path, encoding="utf-8-sig", errors="replace") as f:
            header = tuple(c.strip().lower() for c in f.readline().strip().split(","))
        if len(header) != len(TRAIN_CSV_COLUMNS) or header[0] != "name" or header[-1] != "classname":
            problems.append(f"{TRAIN_CSV} has the header {','.join(header)!r}, expected {','.join(TRAIN_CSV_COLUMNS)!r}")
    for sub, what in ((IMAGES_DIR, "images"), (ANNOTATIONS_DIR, "annotations")):
        folder = root / sub
        if not folder.is_dir():
            problems.append(f"no folder '{sub}'")
        elif not any(p.is_file() for p in folder.iterdir()):
            problems.append(f"the {what} folder '{sub}' is empty")
    return problems


def dataset_path(dest: str | os.PathLike | None = None) -> Path:
    """Where the dataset is installed: ``<dest>/face-mask-detection-dataset`` (``dest`` defaults to data/)."""
    parent = common.data_dir() if dest is None else Path(dest).expanduser().resolve()
    return parent / DATASET_DIRNAME


def _marker(root: Path) -> dict | None:
    marker = root / MARKER_NAME
    if not marker.is_file():
        return None
    data = _read_json(marker)
    return data if data and data.get("slug") == KAGGLE_SLUG else None


def is_installed(dest: str | os.PathLike | None = None) -> bool:
    """True when a finished download (completion marker present) sits in ``<dest>/face-mask-detection-dataset``."""
    root = dataset_path(dest)
    return root.is_dir() and _marker(root) is not None


def _hidden_sibling(target: Path, tag: str) -> str:
    return f".{target.name}.{tag}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours, left by an earlier call of this process that was interrupted
    if os.name == "nt":  # os.kill would terminate the process on Windows: only a day-old leftover is stale
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _clean_leftovers(target: Path) -> None:
    """Remove temporary folders of interrupted installs (by dead processes); restore a swapped-out dataset."""
    if not target.parent.is_dir():
        return
    for tag in ("partial", "old"):
        for path in target.parent.glob(_hidden_sibling(target, tag) + "-*"):
            match = re.search(r"-(\d+)-[^-]+$", path.name)
            pid = int(match.group(1)) if match else -1
            stale_by_age = time.time() - path.stat().st_mtime > 86400
            if pid > 0 and _pid_alive(pid) and not stale_by_age:
                continue
            if tag == "old" and not target.exists() and _marker(path) is not None:
                os.replace(path, target)  # a crash between the two renames of a forced re-install
                continue
            shutil.rmtree(path, ignore_errors=True)


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> int:
    """Unpack one regular file (refusing to overwrite); the CRC is verified when the member is read to its end."""
    written = 0
    with zf.open(info) as src, open(target, "xb") as out:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > info.file_size:
                raise ArchiveError(f"The entry {info.filename!r} unpacks to more bytes than its header says.")
            out.write(chunk)
    if written != info.file_size:
        raise ArchiveError(f"The entry {info.filename!r} unpacked to {written} bytes, its header says {info.file_size}.")
    return written


def _extract(zf: zipfile.ZipFile, plan, into: Path, total: int, *, quiet: bool) -> None:
    base = into.resolve()
    bar = common.progress(total=total, desc="unpacking", unit="B", unit_scale=True, delay=_PROGRESS_DELAY, disable=True if quiet else None)
    with bar:
        for info, parts in plan:
            target = base.joinpath(*parts)
            if os.path.commonpath([base, target.resolve()]) != str(base):  # belt and braces after _safe_parts
                raise ArchiveError(f"The entry {info.filename!r} would be written outside {into}.")
            if info.is_dir() or stat.S_IFMT(info.external_attr >> 16) == stat.S_IFDIR:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            bar.update(_extract_member(zf, info, target))


def _write_marker(root: Path, summary: ArchiveSummary) -> None:
    from . import __version__

    record = {
        "slug": KAGGLE_SLUG,
        "archive": summary.path.name,
        "files": summary.files,
        "bytes": summary.total_bytes,
        "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "maskedu": __version__,
    }
    tmp = root / (MARKER_NAME + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, root / MARKER_NAME)


def _swap_into_place(ready: Path, target: Path) -> None:
    old = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f"{_hidden_sibling(target, 'old')}-{os.getpid()}-{os.urandom(4).hex()}")
        os.replace(target, old)
    try:
        os.replace(ready, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _refuse_unfinished(target: Path, force: bool) -> None:
    """A folder at the target that maskedu did not finish is replaced only with force=True."""
    if not target.exists() or force or _marker(target) is not None:
        return
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
        return
    raise DownloadError(
        f"{target} exists but is not a download maskedu finished (no {MARKER_NAME} inside).\n"
        "Pass force=True to replace it, or load it as it is with maskedu.load_annotations(path)."
    )


def _make_folder(folder: Path) -> None:
    """Create the folder that receives the dataset, or say clearly why it cannot be (a DownloadError)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        in_the_way = next((p for p in (folder, *folder.parents) if p.is_file()), None)
        reason = f"{in_the_way} is a file, not a folder" if in_the_way else (exc.strerror or str(exc))
        raise DownloadError(f"The dataset cannot be installed in {folder}: {reason}. Choose another dest.") from None


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, flush=True)


_HELD_LOCKS: dict[str, int] = {}


@contextmanager
def _folder_lock(folder: Path, *, quiet: bool) -> Iterator[None]:
    """Serialise installs into one data folder across processes (two notebooks started at once).

    An advisory ``flock`` on the folder itself, so no lock file is left behind; re-entrant within a
    process; a no-op where ``fcntl`` does not exist (Windows).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    key = str(folder)
    if _HELD_LOCKS.get(key):
        _HELD_LOCKS[key] += 1
        try:
            yield
        finally:
            _HELD_LOCKS[key] -= 1
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _say(quiet, f"Another process is installing the dataset in {folder}; waiting for it to finish ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        _HELD_LOCKS[key] = 1
        try:
            yield
        finally:
            _HELD_LOCKS.pop(key, None)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def install_archive(
    archive: str | os.PathLike,
    dest: str | os.PathLike | None = None,
    force: bool = False,
    *,
    quiet: bool = False,
    max_bytes: int = MAX_UNCOMPRESSED_BYTES,
    max_members: int = MAX_MEMBERS,
    max_ratio: float = MAX_ARCHIVE_RATIO,
) -> Path:
    """Check and unpack the Kaggle dataset's zip into ``<dest>/face-mask-detection-dataset``; return that folder.

    Use it for a zip downloaded by hand from the dataset's web page. The archive is checked first
    (:func:`check_archive`, with these limits), unpacked with a progress bar into a hidden temporary folder beside the
    destination (CRCs verified), its layout checked (:func:`check_layout`), a completion marker written
    last, and only then renamed into place. Any failure or interruption removes the temporary folder, so
    nothing half-done ever looks finished. An installed dataset is left alone unless ``force=True``.

    >>> root = install_archive("~/Downloads/archive.zip")  # doctest: +SKIP
    >>> root.name  # doctest: +SKIP
    'face-mask-detection-dataset'
    """
    archive = Path(archive).expanduser()
    target = dataset_path(dest)
    _make_folder(target.parent)
    with _folder_lock(target.parent, quiet=quiet):
        _clean_leftovers(target)
        if not force and is_installed(dest):
            _say(quiet, f"The Kaggle dataset is already installed in {target}; nothing to do (force=True reinstalls it).")
            return target
        if not archive.is_file():
            raise ArchiveError(f"There is no archive at {archive}.")
        summary = _install(
            archive, target, force=force, quiet=quiet, max_bytes=max_bytes, max_members=max_members, max_ratio=max_ratio
        )
    log.info("installed %s (%d files, %d bytes) from %s", target, summary.files, summary.total_bytes, archive)
    _say(quiet, f"Installed {summary.files} files ({summary.total_bytes / 1e6:.1f} MB) in {target}.")
    return target


def _install(
    archive: Path, target: Path, *, force: bool, quiet: bool, max_bytes: int, max_members: int, max_ratio: float
) -> ArchiveSummary:
    """install_archive's work, under the folder lock."""
    _refuse_unfinished(target, force)
    with _open_zip(archive) as zf:
        plan, summary = _plan(zf, archive, max_bytes=max_bytes, max_members=max_members, max_ratio=max_ratio)
        free = shutil.disk_usage(target.parent).free
        if free < summary.total_bytes + _FREE_SPACE_MARGIN:
            raise DownloadError(
                f"Not enough disk space in {target.parent}: the dataset needs {summary.total_bytes / 1e9:.2f} GB, "
                f"{free / 1e9:.2f} GB are free."
            )
        # A hidden sibling (same file system, so the final rename is atomic), created with the usual umask.
        partial = target.with_name(f"{_hidden_sibling(target, 'partial')}-{os.getpid()}-{os.urandom(4).hex()}")
        partial.mkdir()
        try:
            try:
                _extract(zf, plan, partial, summary.total_bytes, quiet=quiet)
            except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError) as exc:
                raise ArchiveError(f"Refused {archive.name}: it is damaged ({exc}). Download it again.") from None
            except OSError as exc:
                raise DownloadError(f"Unpacking {archive.name} into {target.parent} failed: {exc}") from None
            root = partial
            entries = list(partial.iterdir())
            if not (partial / TRAIN_CSV).exists() and len(entries) == 1 and entries[0].is_dir():
                root = entries[0]  # the archive wraps everything in one top-level folder
            problems = check_layout(root)
            if problems:
                found = sorted(p.name for p in root.iterdir())[:8]
                raise ArchiveError(
                    f"Refused {archive.name}: it does not look like the Kaggle dataset {KAGGLE_SLUG}: "
                    + "; ".join(problems)
                    + f". Its top level holds: {', '.join(found) or 'nothing'}. Nothing was installed."
                )
            _write_marker(root, summary)
            _swap_into_place(root, target)
        finally:
            if partial.exists():
                shutil.rmtree(partial, ignore_errors=True)
    return summary


def download_dataset(dest: str | os.PathLike | None = None, force: bool = False, *, quiet: bool = False) -> Path:
    """Download the Kaggle face-mask dataset into ``<dest>/face-mask-detection-dataset``; return that folder.

    ``dest`` defaults to the data folder (``data/``). A finished download is found and reused without
    network or credentials (``force=True`` downloads and installs it again). Raises
    :class:`CredentialsError` (with the steps to get a token) when there are no credentials and
    :class:`DownloadError` with a clear message when Kaggle cannot be reached or the archive is refused.
    The downloaded zip is kept in a hidden folder beside the dataset until it is installed, so an
    interrupted call resumes; the dataset itself appears only once complete (see :func:`install_archive`).

    >>> root = download_dataset()  # doctest: +SKIP
    >>> sorted(p.name for p in root.iterdir())[:2]  # doctest: +SKIP
    ['Medical mask', 'submission.csv']
    """
    target = dataset_path(dest)
    if not force and is_installed(dest):
        _say(quiet, f"The Kaggle dataset is already in {target}; nothing to download (force=True fetches it again).")
        return target
    _make_folder(target.parent)
    with _folder_lock(target.parent, quiet=quiet):
        _clean_leftovers(target)
        if not force and is_installed(dest):  # finished while we waited, or restored from a crashed re-install
            return target
        _download(target, force=force, quiet=quiet)
    return target


def _download(target: Path, *, force: bool, quiet: bool) -> None:
    """download_dataset's work, under the folder lock."""
    _refuse_unfinished(target, force)
    credentials, notes = _scan_credentials(warn=True)
    if credentials is None:
        raise CredentialsError(credentials_help(notes))
    download_dir = target.with_name(_hidden_sibling(target, "download"))
    download_dir.mkdir(exist_ok=True)
    _say(quiet, f"Downloading {KAGGLE_SLUG} with the {credentials} ...")
    try:
        archive = _fetch_archive(credentials, download_dir, force=force, quiet=quiet)
    except BaseException:
        if not any(download_dir.iterdir()):  # keep a partial zip (the client resumes it), not an empty folder
            download_dir.rmdir()
        raise
    try:
        install_archive(archive, target.parent, force=force, quiet=quiet)
    except ArchiveError:
        shutil.rmtree(download_dir, ignore_errors=True)  # a refused archive must be fetched afresh next time
        raise
    shutil.rmtree(download_dir, ignore_errors=True)


# --------------------------------------------------------------------------- get_dataset


def _sample_root(verbose: bool) -> Path:
    from .sample import make_sample_dataset

    if common.is_fast():
        return Path(make_sample_dataset(common.data_dir() / "sample-fast", n_images=16, verbose=verbose))
    return Path(make_sample_dataset(common.data_dir() / "sample", verbose=verbose))


def _banner(source: str, why: str, root: Path, n_images: int) -> None:
    if source == "kaggle":
        title = f"Data: the Kaggle dataset {KAGGLE_SLUG} ({n_images} images)"
        colour = "#2e7d32"
    else:
        title = f"Data: the built-in SAMPLE dataset ({n_images} images in the Kaggle layout), not the Kaggle data"
        colour = "#e65100"
    if common.in_notebook():
        from IPython.display import HTML, display

        display(
            HTML(
                f'<div style="border:2px solid {colour};border-radius:6px;padding:8px 12px;margin:4px 0">'
                f'<b style="color:{colour}">{html.escape(title)}</b><br>'
                f"<span>{html.escape(why).replace(chr(10), '<br>')}</span><br>"
                f"<code>{html.escape(str(root))}</code></div>"
            )
        )
    else:
        rule = "=" * 78
        print(f"{rule}\n{title}\n{why}\nfolder: {root}\n{rule}", flush=True)


def get_dataset(prefer: str | None = None, verbose: bool = True):
    """The dataset every notebook uses, with a banner saying which one and why.

    With ``prefer=None``: the Kaggle dataset if it is installed under the data folder, else a download
    when credentials exist (falling back to the sample, with the reason, if the download fails), else the
    built-in sample (:func:`maskedu.sample.make_sample_dataset`, built once in ``data/sample``). In fast
    mode (``MASKEDU_FAST=1``) the small sample in ``data/sample-fast`` is used unless you ask for Kaggle.
    ``prefer="kaggle"`` insists on Kaggle (errors are raised); ``prefer="sample"`` always uses the sample.
    The returned :class:`~maskedu.annotations.Dataset` has ``source`` set to ``"kaggle"`` or ``"sample"``.

    >>> ds = get_dataset(prefer="sample", verbose=False)  # doctest: +SKIP
    >>> ds.source  # doctest: +SKIP
    'sample'
    """
    common.check_choice("prefer", prefer, (None, "kaggle", "sample"))
    from .annotations import load_annotations

    quiet = not verbose
    source, why = "sample", ""
    target = dataset_path()
    if prefer == "sample":
        why = "You asked for the sample (prefer='sample')."
    elif prefer == "kaggle":
        if is_installed():
            source, why = "kaggle", "Found the finished Kaggle download."
        else:
            download_dataset(quiet=quiet)
            source, why = "kaggle", "Downloaded it just now with your Kaggle credentials."
    elif is_installed() and not common.is_fast():
        source, why = "kaggle", "Found the finished Kaggle download."
    elif common.is_fast():
        why = "Fast mode (MASKEDU_FAST=1) uses the small built-in sample; get_dataset(prefer='kaggle') uses the Kaggle data."
    elif find_credentials(warn=False) is None:
        why = (
            "No Kaggle credentials were found, so this runs offline on scenes built from photos that ship with "
            "installed packages. To use the real data, see print(maskedu.download.credentials_help())."
        )
    else:
        try:
            download_dataset(quiet=quiet)
            source, why = "kaggle", "Downloaded it just now with your Kaggle credentials."
        except DownloadError as exc:
            why = f"The Kaggle download failed, so the built-in sample is used instead. Reason:\n{_redact(str(exc))}"
            log.warning("Kaggle download failed, using the sample: %s", why)
    if source == "sample" and target.is_dir() and not is_installed():
        why += (
            f"\n{target} exists but was not installed by maskedu (no completion marker), so it is not used: "
            "load it yourself with maskedu.load_annotations(path), or install the zip with "
            "maskedu.download.install_archive(zip_path)."
        )
    root = target if source == "kaggle" else _sample_root(verbose)
    dataset = load_annotations(root)
    dataset.source = source
    dataset.report.notes.append(f"data source: {source} ({why.splitlines()[0]})")
    if verbose:
        _banner(source, why, root, len(dataset))
    return dataset
