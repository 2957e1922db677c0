"""Shared helpers every stage uses: fast mode, where data lives, seeds, validation, progress bars.

A notebook starts with one call::

    import maskedu
    cfg = maskedu.setup()          # seeds, quiet TensorFlow, fast-mode flag, data folder
    cfg.fast                       # True under `make test` (MASKEDU_FAST=1)
    cfg.data_dir                   # .../data

Everything here is dependency-light (no TensorFlow import) so ``import maskedu`` stays fast.
"""

from __future__ import annotations

import functools
import os
import warnings
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, TypeVar

import numpy as np

__all__ = [
    "MaskeduError",
    "ParameterError",
    "ParameterTypeError",
    "DataFolderError",
    "Settings",
    "setup",
    "is_fast",
    "budget",
    "data_dir",
    "artifact_path",
    "find_artifact",
    "through_layers",
    "shared_data_dirs",
    "in_shared_layer",
    "SharedDataWarning",
    "realfaces_dir",
    "repo_root",
    "set_seed",
    "progress",
    "check_choice",
    "check_int",
    "check_number",
    "in_notebook",
    "import_tensorflow",
]

FAST_ENV = "MASKEDU_FAST"
DATA_ENV = "MASKEDU_DATA"
SHARED_DATA_ENV = "MASKEDU_SHARED_DATA"


T = TypeVar("T")


# --------------------------------------------------------------------------- errors


class MaskeduError(Exception):
    """The base of every error maskedu raises on purpose: ``except maskedu.MaskeduError`` catches them all.

    Each subclass also derives from the built-in error it refines (``ValueError``, ``OSError``, ...), so
    code that catches those keeps working.

    >>> issubclass(ParameterError, MaskeduError) and issubclass(ParameterError, ValueError)
    True
    """


class ParameterError(MaskeduError, ValueError):
    """A parameter with a value out of range or not among the choices; the message names it."""


class ParameterTypeError(MaskeduError, TypeError):
    """A parameter of the wrong type; the message names it and what it should be."""


class DataFolderError(MaskeduError, OSError):
    """The data folder (``$MASKEDU_DATA`` or ``data/``) cannot be used; the message says what to do."""


# --------------------------------------------------------------------------- modes and paths


def is_fast() -> bool:
    """True when ``MASKEDU_FAST`` is set to 1/true/yes: tests and nbval shrink data, epochs and budgets."""
    return os.environ.get(FAST_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def budget(normal: T, *, fast: T) -> T:
    """Pick a size by mode: ``EPOCHS = budget(30, fast=2)`` gives 2 under fast mode, else 30."""
    return fast if is_fast() else normal


def repo_root() -> Path | None:
    """The checkout this package lives in (the folder holding ``pyproject.toml``), or None when installed."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file() and (here / "maskedu").is_dir():
        return here
    return None


_WRITABLE_DATA_DIRS: set[Path] = set()


def data_dir(create: bool = True) -> Path:
    """Where datasets, crops and models go.

    ``$MASKEDU_DATA`` if set, else ``data/`` in the checkout, else ``./data`` in the working folder.
    With ``create`` the folder is made and checked writable (once per process); a folder that cannot
    be used raises :class:`DataFolderError`, saying why and to set ``MASKEDU_DATA``.
    """
    env = os.environ.get(DATA_ENV)
    if env:
        path = Path(env).expanduser()
    elif (root := repo_root()) is not None:
        path = root / "data"
    else:
        path = Path.cwd() / "data"
    if create:
        _make_data_dir(path, named_by_env=bool(env))
    return path.resolve()


def _make_data_dir(path: Path, *, named_by_env: bool) -> None:
    """Create ``path`` and check that files can be written in it, or raise a DataFolderError."""

    def refuse(reason: str) -> DataFolderError:
        what = f"{DATA_ENV}={path}" if named_by_env else f"The data folder {path}"
        return DataFolderError(
            f"{what} cannot be used{' as the data folder' if named_by_env else ''}: {reason}. "
            f"To fix it, set {DATA_ENV} to a folder you can write to (for example  export {DATA_ENV}=~/maskedu-data)"
            + (f", or unset {DATA_ENV} to use data/ in the checkout." if named_by_env else ".")
        )

    try:
        in_the_way = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    except OSError as exc:  # a parent we may not even look into
        raise refuse(f"it cannot be reached ({exc.strerror or exc})") from None
    if in_the_way is not None:
        raise refuse("it is a file, not a folder" if in_the_way == path else f"{in_the_way} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise refuse(f"it cannot be created ({exc.strerror or exc})") from None
    resolved = path.resolve()
    if resolved in _WRITABLE_DATA_DIRS:
        return
    if not os.access(resolved, os.W_OK | os.X_OK):
        raise refuse("you cannot write to it (permissions)")
    try:  # os.access says yes to root everywhere: a real attempt catches a read-only mount
        import tempfile

        with tempfile.TemporaryFile(dir=resolved):
            pass
    except OSError as exc:
        raise refuse(f"cannot write to it ({exc.strerror or exc})") from None
    _WRITABLE_DATA_DIRS.add(resolved)


def _artifact_name(name: str, fast: bool | None) -> Path:
    """``name`` as a relative path, with ``-fast`` before the suffix in fast mode."""
    fast = is_fast() if fast is None else fast
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise ParameterError(f"artifact names are relative to the data folder (such as 'models/resnet.keras'), got {name!r}.")
    return rel.with_name(f"{rel.stem}-fast{rel.suffix}") if fast else rel


def artifact_path(name: str, *, fast: bool | None = None) -> Path:
    """Path under the data folder for a stage's output; fast mode gets its own copy.

    ``artifact_path("models/resnet.keras")`` is ``data/models/resnet.keras`` normally and
    ``data/models/resnet-fast.keras`` under fast mode, so a quick test run never overwrites (or is
    mistaken for) the real thing. Parent folders are created. This is where a stage *writes*, always in
    the writable data folder; :func:`find_artifact` is where it *reads* (shared layers too).
    """
    path = data_dir() / _artifact_name(name, fast)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- the shared read-only layers


class SharedDataWarning(UserWarning):
    """Something in a shared data layer (``$MASKEDU_SHARED_DATA``) is left out: a missing layer, or a stale
    or partial artifact in one. The work is then done (once) in the user's own data folder."""


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, SharedDataWarning, stacklevel=3)


def shared_data_dirs() -> list[Path]:
    """The read-only shared data layers named by ``$MASKEDU_SHARED_DATA``, in the order given.

    One folder, or several separated by ``os.pathsep`` (``:`` on Linux), that an instructor filled once
    (``MASKEDU_DATA=/srv/maskedu-cache maskedu course precompute``): datasets, the sample, crops and models
    every student reads instead of rebuilding. maskedu never writes, locks or copies anything there. A named
    folder that does not exist is left out with a :class:`SharedDataWarning`; the writable data folder is
    never its own layer.

    >>> import os
    >>> os.environ.get("MASKEDU_SHARED_DATA") is not None or shared_data_dirs() == []
    True
    """
    given = os.environ.get(SHARED_DATA_ENV, "")
    own = data_dir(create=False)
    layers: list[Path] = []
    for part in given.split(os.pathsep):
        if not part.strip():
            continue
        path = Path(part.strip()).expanduser()
        if not path.is_dir():
            _warn_once(f"{SHARED_DATA_ENV} names {path}, which is not a folder (or cannot be read): it is left out, "
                       "so what it would hold is built in your own data folder. Fix the path or mount it.")
            continue
        path = path.resolve()
        if path != own and path not in layers:
            layers.append(path)
    return layers


def in_shared_layer(path: str | os.PathLike) -> bool:
    """True when ``path`` lies in one of the shared read-only layers (:func:`shared_data_dirs`): never write there."""
    path = Path(os.path.realpath(Path(path).expanduser()))
    return any(path == layer or path.is_relative_to(layer) for layer in shared_data_dirs())


def through_layers(path: str | os.PathLike) -> Path:
    """The file to read for ``path``: ``path`` itself when it exists or lies outside the data folder; else, for a
    path in the data folder, the same file in the first shared layer that holds it (``path`` when none does).

    So ``SplitRecord.load(split_path(model_path()))`` reads the split of a model a student loaded from a shared
    layer. Only for reading: writes go to ``path``.

    >>> through_layers("/no/such/file.json")
    PosixPath('/no/such/file.json')
    """
    path = Path(path)
    if path.exists():
        return path
    try:
        rel = Path(os.path.abspath(path.expanduser())).relative_to(data_dir(create=False))
    except ValueError:
        return path
    return next((layer / rel for layer in shared_data_dirs() if (layer / rel).exists()), path)


def find_artifact(name: str, *, fast: bool | None = None, problem=None) -> Path | None:
    """Where a stage's finished output ``name`` can be read: the writable data folder first, then each shared layer.

    ``name`` is what :func:`artifact_path` takes (``"models/resnet.keras"``, ``"sample-fast"``, with the
    same ``-fast`` rule). ``problem(path)`` says why a found file or folder cannot be used (``None`` when it
    can: a completion marker present, a split file beside a model, a cache that loads); such a copy is
    skipped, and in a shared layer that is a :class:`SharedDataWarning` naming it and why. Returns None when
    no layer holds a usable copy: then the caller builds it at :func:`artifact_path`. Nothing is created,
    written or locked here.

    >>> find_artifact("models/no-such-model.keras") is None
    True
    """
    rel = _artifact_name(name, fast)
    own = data_dir(create=False)
    for layer in (own, *shared_data_dirs()):
        path = layer / rel
        try:
            if not path.exists():
                continue
        except OSError:
            continue
        why = problem(path) if problem is not None else None
        if why is None:
            return path
        if layer != own:
            _warn_once(f"{path} in the shared data ({SHARED_DATA_ENV}) is ignored: {why} (stale or partial). "
                       "Your own copy is built in your data folder instead; tell the instructor to rebuild the shared one.")
    return None


def shared_dir(name: str, env: str, needs: tuple[str, ...]) -> Path | None:
    """A shared development folder (``../shared/<name>`` beside the checkout, or beside the working folder),
    recognised by its sub-folders ``needs``; ``$<env>`` overrides the location. None where absent."""
    given = os.environ.get(env)
    candidates = [Path(given)] if given else []
    root = repo_root()
    if root is not None:
        candidates.append(root.parent / "shared" / name)
    candidates.append(Path.cwd().parent / "shared" / name)
    for c in candidates:
        if all((c / sub).is_dir() for sub in needs):
            return c.resolve()
    return None


def realfaces_dir() -> Path | None:
    """The shared development photos (``../shared/realfaces`` beside the checkout), or None where absent.

    ``$MASKEDU_REALFACES`` overrides the location.
    """
    return shared_dir("realfaces", "MASKEDU_REALFACES", ("with_mask", "without_mask"))


# --------------------------------------------------------------------------- seeds and setup


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and, if it is already imported, TensorFlow/Keras."""
    random.seed(seed)
    np.random.seed(seed)
    if "keras" in sys.modules or "tensorflow" in sys.modules:
        import keras

        keras.utils.set_random_seed(seed)


@dataclass(frozen=True)
class Settings:
    """What :func:`setup` decided; print it to see the mode and the data folder."""

    fast: bool
    seed: int
    data_dir: Path

    def __str__(self) -> str:
        mode = "FAST mode (small data, tiny budgets)" if self.fast else "normal mode"
        return f"maskedu: {mode} · seed {self.seed} · data in {self.data_dir}"


class _FdToDevnull:
    """Point a file descriptor (2, stderr, by default; 1 is stdout) at /dev/null for a moment: C++ libraries
    write there, around Python's streams."""

    def __init__(self, fd: int = 2):
        self.fd = fd

    def __enter__(self):
        self.saved = None
        try:
            (sys.stdout if self.fd == 1 else sys.stderr).flush()
            self.saved = os.dup(self.fd)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.fd)
            os.close(devnull)
        except (OSError, ValueError):  # no such descriptor to redirect: nothing to quiet
            if self.saved is not None:
                os.close(self.saved)
            self.saved = None
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            os.dup2(self.saved, self.fd)
            os.close(self.saved)
        return False


_StderrToDevnull = _FdToDevnull


def import_tensorflow():
    """Import TensorFlow and Keras without their start-up lines on stderr, and return ``tensorflow``.

    On a machine without a GPU, importing TensorFlow writes "WARNING: All log messages before
    absl::InitializeLog() is called are written to STDERR" and "cudart_stub.cc ... Could not find cuda
    drivers" straight to file descriptor 2, before any logging setting can apply (``TF_CPP_MIN_LOG_LEVEL``
    does not stop them). :func:`setup` calls this so a notebook never shows them; the import is silenced
    only while it runs, and errors still raise. Later imports are free.
    """
    if "tensorflow" in sys.modules and "keras" in sys.modules:
        return sys.modules["tensorflow"]
    import warnings

    # TensorFlow's C++ logging reads this once, during the import; the variable is put back afterwards, so
    # importing through maskedu leaves the environment as it was.
    saved = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with _StderrToDevnull(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import tensorflow
            import keras  # noqa: F401
    finally:
        if saved is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        else:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = saved
    return tensorflow


def setup(seed: int = 0, *, fast: bool | None = None, quiet: bool = True, verbose: bool = True) -> Settings:
    """One call at the top of every notebook.

    Seeds every random generator, imports TensorFlow without its start-up chatter (:func:`import_tensorflow`;
    ``quiet=False`` leaves it alone), reads the fast-mode flag
    (``MASKEDU_FAST``; pass ``fast=True`` to force it) and makes sure the data folder exists.

    >>> cfg = setup(seed=0, verbose=False)
    >>> cfg.seed
    0
    """
    if fast is not None:
        os.environ[FAST_ENV] = "1" if fast else "0"
    if quiet:
        import logging

        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)
        import_tensorflow()  # now, quietly: its start-up lines would otherwise land on the notebook's stderr
    set_seed(seed)
    settings = Settings(fast=is_fast(), seed=seed, data_dir=data_dir())
    if verbose:
        print(settings)
    return settings


# --------------------------------------------------------------------------- notebooks and progress


def in_notebook() -> bool:
    """True inside a Jupyter kernel (live plots and widgets), False in a plain script or test."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with ipykernel
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "", disable: bool | None = None, **kwargs: Any):
    """A progress bar: a widget in Jupyter, text elsewhere (``tqdm``); silent when ``disable=True``.

    In a notebook the finished bar is replaced by one line ("Cropping faces: 200/200 in 10.3 s"), so a saved
    notebook never shows a widget frozen at the state it was saved in (a saved widget keeps its first text,
    "0%"). Elsewhere the text bar clears itself when done.
    """
    from tqdm.auto import tqdm

    if disable is None:
        disable = os.environ.get("MASKEDU_NO_PROGRESS", "") == "1"
    if not disable and in_notebook():
        try:
            return _notebook_bar()(iterable, total=total, desc=desc, **kwargs)
        except ImportError:  # no ipywidgets: tqdm.auto falls back to text
            pass
    return tqdm(iterable, total=total, desc=desc, disable=disable, leave=False, **kwargs)


@functools.lru_cache(maxsize=1)
def _notebook_bar():
    from IPython.display import display
    from tqdm.notebook import tqdm as notebook_tqdm

    class NotebookBar(notebook_tqdm):
        """tqdm's widget bar, displayed under a display id and replaced by a summary line when closed."""

        def __init__(self, *args, **kwargs):
            kwargs["display"] = False
            kwargs["leave"] = True
            super().__init__(*args, **kwargs)
            self._handle = None
            if not self.disable and getattr(self, "container", None) is not None:
                self._handle = display(self.container, display_id=True)
                self.displayed = True

        def close(self):
            handle, self._handle = getattr(self, "_handle", None), None
            if self.disable:
                return super().close()
            n, total, elapsed = self.n, self.total, self.format_dict.get("elapsed", 0.0)
            super().close()
            if handle is not None:
                what = f"{n}/{total}" if total else f"{n}"
                end = "" if not total or n >= total else " (stopped early)"
                label = f"{self.desc}: " if self.desc else ""
                handle.update({"text/plain": f"{label}{what} in {elapsed:.1f} s{end}"}, raw=True)

    return NotebookBar


# --------------------------------------------------------------------------- parameter checks


def renamed_flag(value: Any, *, old: str, where: str, new: str = "verbose", stacklevel: int = 3) -> bool:
    """The value of a flag passed under its old name (``progress=``, ``show_progress=``, ``quiet=``), with a
    DeprecationWarning that names the new one. ``quiet`` means the opposite of ``verbose``.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True):
    ...     renamed_flag(True, old="quiet", where="attack_many")
    False
    """
    warnings.warn(f"{where}({old}=...) is deprecated: use {where}({new}=...); {old}= goes away in the next release.",
                  DeprecationWarning, stacklevel=stacklevel)
    return not bool(value) if old == "quiet" else bool(value)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Raise a :class:`ParameterError` (a ValueError) naming the parameter and the allowed values when ``value`` is not one of them."""
    choices = list(choices)
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ParameterError(f"{name}={value!r} is not one of the choices: {allowed}.")
    return value


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Validate an integer parameter (bools and floats with a fraction are refused) and return it as int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise ParameterTypeError(f"{name} must be a whole number, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ParameterError(f"{name} must be at least {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ParameterError(f"{name} must be at most {maximum}, got {value}.")
    return value


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
) -> float:
    """Validate a real-valued parameter (finite, within bounds) and return it as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterTypeError(f"{name} must be a number, got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not np.isfinite(value):
        raise ParameterError(f"{name} must be a finite number, got {value}.")
    if minimum is not None:
        if strict_minimum and value <= minimum:
            raise ParameterError(f"{name} must be greater than {minimum}, got {value}.")
        if not strict_minimum and value < minimum:
            raise ParameterError(f"{name} must be at least {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ParameterError(f"{name} must be at most {maximum}, got {value}.")
    return value
