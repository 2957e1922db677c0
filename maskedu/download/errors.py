"""The errors of the Kaggle download: one base class, :class:`DownloadError`, under :class:`maskedu.MaskeduError`."""

from __future__ import annotations

from .. import common

__all__ = ["DownloadError", "CredentialsError", "ArchiveError", "CredentialsWarning"]


class DownloadError(common.MaskeduError, RuntimeError):
    """The Kaggle dataset could not be fetched or installed; the message says why and what to do."""


class CredentialsError(DownloadError):
    """No usable Kaggle credentials; the message says how to get a token and the offline alternative."""


class ArchiveError(DownloadError):
    """The archive was refused (corrupt, truncated, unsafe, too big, or not the expected dataset)."""


class CredentialsWarning(UserWarning):
    """A credentials file other users of this machine can read."""
