"""Installing a folder so that it appears whole or not at all, one installer at a time.

The Kaggle download (:mod:`maskedu.download`) and the sample builder (:mod:`maskedu.sample`) both make a
folder under the data folder that must never look finished while it is half written. They share this
recipe:

1. :func:`install_lock` takes a lock beside the target (``.<name>.lock``, via ``filelock``), so two
   notebooks started at once do the work once: the second waits, then finds the folder finished.
2. :func:`clean_leftovers` removes hidden build folders left by processes that died, and puts back a
   finished folder set aside by a re-install that was killed between its two renames.
3. :func:`building` gives a hidden sibling folder (same file system, so the rename is atomic) to build
   in, and removes it whatever happens; :func:`swap_into_place` renames the finished folder into place.

>>> import tempfile
>>> target = Path(tempfile.mkdtemp()) / "thing"
>>> with install_lock(target), building(target) as tmp:
...     _ = (tmp / "done.txt").write_text("ok")
...     swap_into_place(tmp, target)
>>> sorted(p.name for p in target.iterdir())
['done.txt']
"""

from __future__ import annotations

import os
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from filelock import FileLock, Timeout

__all__ = ["install_lock", "building", "swap_into_place", "clean_leftovers", "hidden_sibling"]

#: A build folder untouched for this long is stale even when a process with its pid runs (pids are reused).
STALE_SECONDS = 86400


def hidden_sibling(target: Path, tag: str) -> Path:
    """``<parent>/.<name>.<tag>``: where temporary files of ``target`` live (hidden, same file system)."""
    return target.with_name(f".{target.name}.{tag}")


@contextmanager
def install_lock(target: str | os.PathLike, *, quiet: bool = True) -> Iterator[None]:
    """Hold the lock that serialises installs of ``target`` across processes (re-entrant in a process).

    Says so (unless ``quiet``) when another process holds it and this one waits.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(hidden_sibling(target, "lock"), is_singleton=True)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not quiet:
            print(f"Another process is installing {target}; waiting for it to finish ...", flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours, left by an earlier call of this process that was interrupted
    if os.name == "nt":  # os.kill would end the process on Windows: only age makes a leftover stale there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


def _build_name(target: Path, tag: str) -> Path:
    return target.with_name(f"{hidden_sibling(target, tag).name}-{os.getpid()}-{os.urandom(4).hex()}")


def clean_leftovers(target: str | os.PathLike, *, restorable: Callable[[Path], bool] | None = None) -> None:
    """Remove the build folders of ``target`` left by dead processes (or older than a day).

    A finished copy set aside by a re-install that died between its two renames is renamed back to
    ``target`` when ``target`` is missing and ``restorable(copy)`` says it is finished.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return
    for tag in ("partial", "old"):
        for path in target.parent.glob(hidden_sibling(target, tag).name + "-*"):
            match = re.search(r"-(\d+)-[^-]+$", path.name)
            pid = int(match.group(1)) if match else -1
            try:
                stale = time.time() - path.stat().st_mtime > STALE_SECONDS
            except OSError:
                continue
            if pid > 0 and _pid_alive(pid) and not stale:
                continue
            if tag == "old" and restorable is not None and not target.exists() and restorable(path):
                os.replace(path, target)
                continue
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def building(target: str | os.PathLike) -> Iterator[Path]:
    """A fresh hidden folder beside ``target`` to build in; removed on leaving, whatever happened.

    Call :func:`swap_into_place` on it (or on a folder inside it) once the build is complete.
    """
    target = Path(target)
    tmp = _build_name(target, "partial")
    tmp.mkdir(parents=True)
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def swap_into_place(ready: str | os.PathLike, target: str | os.PathLike) -> None:
    """Rename the finished folder ``ready`` to ``target``, replacing what is there (put back if that fails)."""
    ready, target = Path(ready), Path(target)
    old = None
    if target.exists() or target.is_symlink():
        old = _build_name(target, "old")
        os.replace(target, old)
    try:
        os.replace(ready, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
