"""01 · Getting the data: the Kaggle download, done safely, and :func:`get_dataset`.

One line gives a notebook its data::

    import maskedu
    ds = maskedu.get_dataset()     # MASKEDU_DATASET's folder if set, else Kaggle data if present or downloadable, else the sample

and a banner says which data is used and why. The modules underneath, one concern each:

* :mod:`.choose`: :func:`get_dataset` (``MASKEDU_DATASET=<folder>`` runs the course on any folder) and
  :func:`forget` (deletes the crops and models derived from a folder).
* :mod:`.install`: the Kaggle datasets maskedu knows (:data:`DATASETS`), :func:`download_dataset` and
  :func:`install_archive` (for a zip fetched by hand), built in a hidden folder and swapped into place
  (:mod:`maskedu.files`), so an interrupted download never looks finished.
* :mod:`.client`: the ``kaggle`` client, run only in a child process whose output is redacted.
* :mod:`.credentials`: :func:`find_credentials` looks where the client looks, never reading a secret into
  a message; :func:`credentials_help` says how to get a token.
* :mod:`.archive`: :func:`check_archive` refuses unsafe, damaged or oversized zips before anything is unpacked.
"""

from __future__ import annotations

from .archive import MAX_ARCHIVE_RATIO, MAX_COMPRESSION_RATIO, MAX_MEMBERS, MAX_UNCOMPRESSED_BYTES, ArchiveSummary, check_archive
from .choose import DATASET_ENV, dataset_key, derived_key, forget, get_dataset
from .credentials import Credentials, credentials_help, find_credentials, kaggle_config_dir
from .errors import ArchiveError, CredentialsError, CredentialsWarning, DownloadError
from .install import (
    ANNOTATIONS_DIR,
    DATASETS,
    IMAGES_DIR,
    KAGGLE_SLUG,
    MARKER_NAME,
    TRAIN_CSV,
    TRAIN_CSV_COLUMNS,
    KaggleDataset,
    check_layout,
    dataset_path,
    download_dataset,
    install_archive,
    installed_path,
    is_installed,
    known_dataset,
)

KAGGLE_URL = DATASETS[KAGGLE_SLUG].url
#: The folder the paper's dataset is installed into, inside the data folder.
DATASET_DIRNAME = DATASETS[KAGGLE_SLUG].folder

__all__ = [
    "KAGGLE_SLUG",
    "KAGGLE_URL",
    "DATASET_DIRNAME",
    "DATASETS",
    "DATASET_ENV",
    "KaggleDataset",
    "known_dataset",
    "DownloadError",
    "CredentialsError",
    "ArchiveError",
    "CredentialsWarning",
    "Credentials",
    "ArchiveSummary",
    "find_credentials",
    "credentials_help",
    "kaggle_config_dir",
    "download_dataset",
    "install_archive",
    "check_archive",
    "check_layout",
    "is_installed",
    "installed_path",
    "dataset_path",
    "get_dataset",
    "dataset_key",
    "derived_key",
    "forget",
    "MARKER_NAME",
    "TRAIN_CSV",
    "TRAIN_CSV_COLUMNS",
    "IMAGES_DIR",
    "ANNOTATIONS_DIR",
    "MAX_UNCOMPRESSED_BYTES",
    "MAX_MEMBERS",
    "MAX_COMPRESSION_RATIO",
    "MAX_ARCHIVE_RATIO",
]
