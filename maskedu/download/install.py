"""The Kaggle datasets maskedu knows, and installing one: download, check, unpack, swap into place.

:data:`DATASETS` lists each dataset's slug and the layout its archive must have. :func:`download_dataset`
fetches one with the ``kaggle`` client (in a child process, :mod:`.client`) and installs it with
:func:`install_archive`, which also takes a zip fetched by hand. Installing follows
:mod:`maskedu.files`: under a lock beside the target, unpacked into a hidden folder, the layout checked
(:func:`check_layout`), a completion marker written last, and only then renamed into place. An
interrupted download or extraction never leaves a folder that looks finished.
"""

from __future__ import annotations

import json
import logging
import lzma
import os
import shutil
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from .. import common, files
from ..dataset import KAGGLE_ANNOTATIONS_DIR as ANNOTATIONS_DIR, KAGGLE_CSV as TRAIN_CSV
from ..dataset import KAGGLE_CSV_HEADER as TRAIN_CSV_COLUMNS, KAGGLE_IMAGES_DIR as IMAGES_DIR
from .archive import _FREE_SPACE_MARGIN, MAX_ARCHIVE_RATIO, MAX_MEMBERS, MAX_UNCOMPRESSED_BYTES, _extract, _open_zip, _plan
from .client import fetch_archive
from .credentials import _read_json, _scan_credentials, credentials_help
from .errors import ArchiveError, CredentialsError, DownloadError

__all__ = ["KaggleDataset", "DATASETS", "known_dataset", "check_layout", "dataset_path", "is_installed",
           "installed_path", "install_archive", "download_dataset"]

log = logging.getLogger(__name__)

#: Written last, inside the installed folder: its presence is what "finished" means.
MARKER_NAME = ".maskedu-download.json"


@dataclass(frozen=True)
class KaggleDataset:
    """A Kaggle dataset maskedu can download: its slug, the layout its archive must have, what it holds.

    >>> known_dataset("andrewmvd/face-mask-detection").folder
    'face-mask-detection'
    """

    slug: str
    layout: str  # "kaggle" (train.csv + one JSON per image) or "voc" (images/ + annotations/*.xml)
    about: str

    @property
    def folder(self) -> str:
        """The folder it is installed into, inside the data folder."""
        return self.slug.split("/")[1]

    @property
    def url(self) -> str:
        return f"https://www.kaggle.com/datasets/{self.slug}"


#: The paper's dataset: it is what ``maskedu download`` fetches when no ``--dataset`` is given.
KAGGLE_SLUG = "wobotintelligence/face-mask-detection-dataset"

DATASETS: dict[str, KaggleDataset] = {
    d.slug: d
    for d in (
        KaggleDataset(KAGGLE_SLUG, "kaggle", "the paper's set: 6,024 images, 20 classes, train.csv and one JSON per image"),
        KaggleDataset("andrewmvd/face-mask-detection", "voc",
                      "853 street and crowd photos in PASCAL VOC (images/*.png, annotations/*.xml), three classes: "
                      "with_mask, without_mask, mask_weared_incorrect"),
    )
}


def known_dataset(slug: str) -> KaggleDataset:
    """The registry entry for ``slug``; a :class:`maskedu.ParameterError` listing the known ones otherwise."""
    if isinstance(slug, KaggleDataset):
        return slug
    if slug in DATASETS:
        return DATASETS[slug]
    known = "\n".join(f"  {d.slug}: {d.about}" for d in DATASETS.values())
    raise common.ParameterError(
        f"maskedu does not know the Kaggle dataset {slug!r}. The known ones are:\n{known}\n"
        "Another dataset: download it yourself and point MASKEDU_DATASET (or get_dataset(path)) at its folder."
    )


def _wobot_problems(root: Path) -> list[str]:
    problems = []
    csv_path = root / TRAIN_CSV
    if not csv_path.is_file():
        problems.append(f"no {TRAIN_CSV}")
    else:
        with open(csv_path, encoding="utf-8-sig", errors="replace") as f:
            header = tuple(c.strip().lower() for c in f.readline().strip().split(","))
        if len(header) != len(TRAIN_CSV_COLUMNS) or header[0] != "name" or header[-1] != "classname":
            problems.append(f"{TRAIN_CSV} has the header {','.join(header)!r}, expected {','.join(TRAIN_CSV_COLUMNS)!r}")
    return problems + _folder_problems(root, ((IMAGES_DIR, "images", None), (ANNOTATIONS_DIR, "annotations", None)))


def _folder_problems(root: Path, folders) -> list[str]:
    problems = []
    for sub, what, suffix in folders:
        folder = root / sub
        if not folder.is_dir():
            problems.append(f"no folder '{sub}'")
        elif not any(p.is_file() and (suffix is None or p.suffix.lower() == suffix) for p in folder.iterdir()):
            problems.append(f"the {what} folder '{sub}' has no {suffix or ''} files".replace("  ", " "))
    return problems


def check_layout(root: str | os.PathLike, dataset: str = KAGGLE_SLUG) -> list[str]:
    """What keeps ``root`` from being the Kaggle ``dataset``; an empty list means it looks right.

    The paper's (Wobot) layout is ``train.csv`` (header ``name,x1,x2,y1,y2,classname``) beside
    ``Medical mask/Medical mask/Medical Mask/images/`` and ``.../annotations/``; a PASCAL VOC set
    (``andrewmvd/face-mask-detection``) is ``images/`` beside ``annotations/*.xml``.
    """
    spec = known_dataset(dataset)
    root = Path(root)
    if spec.layout == "voc":
        return _folder_problems(root, (("images", "images", None), ("annotations", "annotations", ".xml")))
    return _wobot_problems(root)


def dataset_path(dest: str | os.PathLike | None = None, dataset: str = KAGGLE_SLUG) -> Path:
    """Where ``dataset`` is installed: ``<dest>/<its folder>`` (``dest`` defaults to the data folder)."""
    parent = common.data_dir() if dest is None else Path(dest).expanduser().resolve()
    return parent / known_dataset(dataset).folder


def _marker(root: Path, slug: str) -> dict | None:
    marker = root / MARKER_NAME
    data = _read_json(marker) if marker.is_file() else None
    return data if data and data.get("slug") == slug else None


def installed_path(dataset: str = KAGGLE_SLUG) -> Path | None:
    """The finished download of ``dataset`` in the data folder or, failing that, a shared read-only layer
    (``MASKEDU_SHARED_DATA``, :func:`maskedu.common.find_artifact`); None when there is none. A copy in a
    shared layer without its completion marker is ignored with a warning."""
    spec = known_dataset(dataset)
    return common.find_artifact(spec.folder, fast=False, problem=lambda p: None if _marker(p, spec.slug) is not None
                                else f"no completion marker {MARKER_NAME} (an unfinished or hand-made copy)")


def is_installed(dest: str | os.PathLike | None = None, dataset: str = KAGGLE_SLUG) -> bool:
    """True when a finished download (its completion marker present) of ``dataset`` sits under ``dest``
    (by default: the data folder or a shared layer, :func:`installed_path`)."""
    if dest is None:
        return installed_path(dataset) is not None
    root = dataset_path(dest, dataset)
    return root.is_dir() and _marker(root, known_dataset(dataset).slug) is not None


def _write_marker(root: Path, slug: str, archive: Path, n_files: int, n_bytes: int) -> None:
    from .. import __version__

    record = {"slug": slug, "archive": archive.name, "files": n_files, "bytes": n_bytes,
              "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "maskedu": __version__}
    tmp = root / (MARKER_NAME + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, root / MARKER_NAME)


def _refuse_unfinished(target: Path, slug: str, force: bool) -> None:
    """A folder at the target that maskedu did not finish is replaced only with force=True."""
    if not target.exists() or force or _marker(target, slug) is not None:
        return
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
        return
    raise DownloadError(
        f"{target} exists but is not a download maskedu finished (no {MARKER_NAME} inside).\n"
        "Pass force=True to replace it, or load it as it is with maskedu.load_dataset(path)."
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


def _prepare(target: Path, slug: str) -> None:
    """Under the lock: clean what dead installers left, putting back a finished copy a killed re-install set aside."""
    files.clean_leftovers(target, restorable=lambda old: _marker(old, slug) is not None)


def install_archive(
    archive: str | os.PathLike,
    dest: str | os.PathLike | None = None,
    force: bool = False,
    *,
    dataset: str = KAGGLE_SLUG,
    quiet: bool = False,
    max_bytes: int = MAX_UNCOMPRESSED_BYTES,
    max_members: int = MAX_MEMBERS,
    max_ratio: float = MAX_ARCHIVE_RATIO,
) -> Path:
    """Check and unpack a Kaggle dataset's zip into ``<dest>/<its folder>``; return that folder.

    Use it for a zip downloaded by hand from the dataset's web page. The archive is checked first
    (:func:`~maskedu.download.check_archive`, with these limits), unpacked into a hidden folder beside
    the destination (CRCs verified), its layout checked (:func:`check_layout`), a completion marker
    written last, and only then renamed into place. Any failure or interruption removes the hidden
    folder, so nothing half-done ever looks finished. An installed dataset is left alone unless
    ``force=True``.

    >>> root = install_archive("~/Downloads/archive.zip")  # doctest: +SKIP
    >>> root.name  # doctest: +SKIP
    'face-mask-detection-dataset'
    """
    spec = known_dataset(dataset)
    archive = Path(archive).expanduser()
    target = dataset_path(dest, spec.slug)
    _make_folder(target.parent)
    with files.install_lock(target, quiet=quiet):
        _prepare(target, spec.slug)
        if not force and is_installed(dest, spec.slug):
            _say(quiet, f"The Kaggle dataset is already installed in {target}; nothing to do (force=True reinstalls it).")
            return target
        if not archive.is_file():
            raise ArchiveError(f"There is no archive at {archive}.")
        _refuse_unfinished(target, spec.slug, force)
        n_files, n_bytes = _install(archive, target, spec, quiet=quiet, limits=dict(
            max_bytes=max_bytes, max_members=max_members, max_ratio=max_ratio))
    log.info("installed %s (%d files, %d bytes) from %s", target, n_files, n_bytes, archive)
    _say(quiet, f"Installed {n_files} files ({n_bytes / 1e6:.1f} MB) in {target}.")
    return target


def _install(archive: Path, target: Path, spec: KaggleDataset, *, quiet: bool, limits: dict) -> tuple[int, int]:
    """install_archive's work, under the lock: check, unpack into a hidden folder, check the layout, swap in."""
    with _open_zip(archive) as zf:
        plan, summary = _plan(zf, archive, **limits)
        free = shutil.disk_usage(target.parent).free
        if free < summary.total_bytes + _FREE_SPACE_MARGIN:
            raise DownloadError(
                f"Not enough disk space in {target.parent}: the dataset needs {summary.total_bytes / 1e9:.2f} GB, "
                f"{free / 1e9:.2f} GB are free."
            )
        with files.building(target) as partial:
            try:
                _extract(zf, plan, partial, summary.total_bytes, quiet=quiet)
            except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError) as exc:
                raise ArchiveError(f"Refused {archive.name}: it is damaged ({exc}). Download it again.") from None
            except OSError as exc:
                raise DownloadError(f"Unpacking {archive.name} into {target.parent} failed: {exc}") from None
            root = partial
            entries = list(partial.iterdir())
            if check_layout(partial, spec.slug) and len(entries) == 1 and entries[0].is_dir():
                root = entries[0]  # the archive wraps everything in one top-level folder
            problems = check_layout(root, spec.slug)
            if problems:
                found = sorted(p.name for p in root.iterdir())[:8]
                raise ArchiveError(
                    f"Refused {archive.name}: it does not look like the Kaggle dataset {spec.slug}: "
                    + "; ".join(problems)
                    + f". Its top level holds: {', '.join(found) or 'nothing'}. Nothing was installed."
                )
            _write_marker(root, spec.slug, archive, summary.files, summary.total_bytes)
            files.swap_into_place(root, target)
    return summary.files, summary.total_bytes


def download_dataset(
    dest: str | os.PathLike | None = None, force: bool = False, *, dataset: str = KAGGLE_SLUG, quiet: bool = False
) -> Path:
    """Download a Kaggle face-mask dataset (:data:`DATASETS`) into ``<dest>/<its folder>``; return that folder.

    ``dataset`` defaults to the paper's (``wobotintelligence/face-mask-detection-dataset``);
    ``"andrewmvd/face-mask-detection"`` is the PASCAL VOC crowd set. ``dest`` defaults to the data folder.
    A finished download is found and reused without network or credentials (``force=True`` fetches it
    again). Raises :class:`CredentialsError` (with the steps to get a token) when there are no
    credentials and :class:`DownloadError` with a clear message when Kaggle cannot be reached or the
    archive is refused. The zip is kept in a hidden folder beside the dataset until it is installed, so
    an interrupted call resumes; the dataset itself appears only once complete.

    >>> root = download_dataset(dataset="andrewmvd/face-mask-detection")  # doctest: +SKIP
    >>> sorted(p.name for p in root.iterdir())  # doctest: +SKIP
    ['annotations', 'images']
    """
    spec = known_dataset(dataset)
    target = dataset_path(dest, spec.slug)
    if not force and is_installed(dest, spec.slug):
        target = installed_path(spec.slug) if dest is None else target  # the data folder's or a shared layer's
        _say(quiet, f"The Kaggle dataset is already in {target}; nothing to download (force=True fetches it again).")
        return target
    _make_folder(target.parent)
    with files.install_lock(target, quiet=quiet):
        _prepare(target, spec.slug)
        if not force and is_installed(dest, spec.slug):  # finished while we waited, or restored from a crashed re-install
            return target
        _refuse_unfinished(target, spec.slug, force)
        credentials, notes = _scan_credentials(warn=True)
        if credentials is None:
            raise CredentialsError(credentials_help(notes, spec.slug))
        download_dir = files.hidden_sibling(target, "download")
        download_dir.mkdir(exist_ok=True)
        _say(quiet, f"Downloading {spec.slug} with the {credentials} ...")
        try:
            archive = fetch_archive(credentials, spec.slug, download_dir, force=force, quiet=quiet)
        except BaseException:
            if not any(download_dir.iterdir()):  # keep a partial zip (the client resumes it), not an empty folder
                download_dir.rmdir()
            raise
        try:
            install_archive(archive, target.parent, force=force, dataset=spec.slug, quiet=quiet)
        except ArchiveError:
            shutil.rmtree(download_dir, ignore_errors=True)  # a refused archive must be fetched afresh next time
            raise
        shutil.rmtree(download_dir, ignore_errors=True)
    return target
