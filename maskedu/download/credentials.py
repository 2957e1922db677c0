"""Kaggle credentials: where the ``kaggle`` client finds them, and keeping their values out of every text shown.

:func:`find_credentials` looks where the client looks (an access token in ``KAGGLE_API_TOKEN`` or
``~/.kaggle/access_token``; ``KAGGLE_USERNAME``/``KAGGLE_KEY``; ``kaggle.json`` in ``$KAGGLE_CONFIG_DIR``
or ``~/.kaggle``; a ``kaggle auth login``) without importing it (importing ``kaggle`` logs in at once and
may ``exit(1)``), and never reads a secret into a message: it returns only the kind and the place, and
notes near misses (an empty token file, half a key) for :func:`credentials_help`. :func:`redact` replaces
every credential value on this machine (and its base64 forms) with ``***``.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import CredentialsWarning

__all__ = ["Credentials", "find_credentials", "credentials_help", "kaggle_config_dir", "redact", "secret_values"]

KAGGLE_URL_TEMPLATE = "https://www.kaggle.com/datasets/{slug}"


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


def credentials_help(notes: list[str] | None = None, slug: str = "wobotintelligence/face-mask-detection-dataset") -> str:
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
        f"  3. Open {KAGGLE_URL_TEMPLATE.format(slug=slug)} once and accept its terms if asked.",
        "Offline: maskedu.get_dataset() uses the built-in sample (maskedu.make_sample_dataset), and",
        "maskedu.download.install_archive('archive.zip') installs a zip downloaded by hand from the page above.",
    ]
    if notes:
        lines.insert(1, "Noticed: " + "; ".join(notes) + ".")
    lines.insert(1, "Looked in: " + ", ".join(looked) + ".")
    return "\n".join(lines)


# --------------------------------------------------------------------------- keeping secrets out of text


def secret_values() -> set[str]:
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


def redact(text: str, secrets: set[str] | None = None) -> str:
    secrets = secret_values() if secrets is None else secrets
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
