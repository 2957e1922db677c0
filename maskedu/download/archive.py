"""Checking a zip before unpacking it, and unpacking it with every member's size and CRC verified.

:func:`check_archive` refuses an archive that is not a complete zip, has an unsafe entry name (absolute,
drive letter, backslash, ``..``), a link or special file, an encrypted or duplicated entry, too many
entries or too many bytes, or that is a zip bomb (per member and as a whole). :func:`extract` unpacks a
checked archive into a folder.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .. import common
from .errors import ArchiveError

__all__ = ["ArchiveSummary", "check_archive", "MAX_UNCOMPRESSED_BYTES", "MAX_MEMBERS", "MAX_COMPRESSION_RATIO", "MAX_ARCHIVE_RATIO"]

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

