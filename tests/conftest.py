"""Shared fixtures: the sample dataset (built once per session), the shared real photos, quiet TensorFlow."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("MASKEDU_NO_PROGRESS", "1")

from pathlib import Path

import pytest
from shared_photos import shared_folder


@pytest.fixture(scope="session")
def realfaces_dir() -> Path:
    """``../shared/realfaces``: skips with the reason where absent, fails under CI=true."""
    return shared_folder("realfaces")


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory) -> Path:
    """A small sample dataset in the exact Kaggle layout, built once for the whole test session."""
    from maskedu.sample import make_sample_dataset

    dest = tmp_path_factory.mktemp("sample") / "sample"
    return make_sample_dataset(dest, n_images=12, seed=0)


@pytest.fixture
def no_kaggle(tmp_path, monkeypatch) -> Path:
    """A home folder and config folder with no Kaggle credentials anywhere (no KAGGLE_* variable either)."""
    for name in [n for n in os.environ if n.startswith("KAGGLE_")]:
        monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path, monkeypatch):
    """Each test writes its data (crops, models, caches) to its own temporary folder, never to data/."""
    monkeypatch.setenv("MASKEDU_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("MASKEDU_DATASET", raising=False)  # a developer's own data choice never reaches a test
    monkeypatch.delenv("MASKEDU_CLASSES", raising=False)  # nor their choice of three classes
    monkeypatch.delenv("MASKEDU_SHARED_DATA", raising=False)  # nor a hub's shared read-only data layer


@pytest.fixture(autouse=True)
def _not_strict(monkeypatch):
    """Unit tests judge claims on data made to contradict them: strict mode (``make test`` sets it for the
    notebooks) is off here unless a test turns it on to test it."""
    monkeypatch.delenv("MASKEDU_STRICT", raising=False)
