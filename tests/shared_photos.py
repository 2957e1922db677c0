"""The shared real photos beside the checkout, for the tests that use them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_folder(name: str) -> Path:
    """``../shared/<name>`` (``realfaces`` or ``scenes``; ``$MASKEDU_REALFACES``/``$MASKEDU_SCENES`` move them).

    Where it is absent a test skips with the reason; under ``CI=true`` it fails instead, since CI has them.
    """
    from maskedu.common import realfaces_dir as find_realfaces
    from maskedu.scenes import scenes_dir as find_scenes

    path = {"realfaces": find_realfaces, "scenes": find_scenes}[name]()
    if path is None:
        what = {"realfaces": "the shared development photos", "scenes": "the shared annotated crowd scenes"}[name]
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"../shared/{name} is absent, and CI=true: CI must have {what}")
        pytest.skip(f"../shared/{name} is absent on this machine (it holds {what}; not shipped with the project)")
    return path
