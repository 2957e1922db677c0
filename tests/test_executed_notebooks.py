"""The executed notebooks (``maskedu demo`` writes them to ``$MASKEDU_DATA/executed`` or ``data/executed``) show a
student clean output: no stderr noise, no errors, no "nan", no progress bar frozen at 0%, no figure drawn twice, and
no exercise marked correct before the student has answered it.

``MASKEDU_EXECUTED`` names another folder of executed copies. Where there are none, or a copy no longer matches its
notebook's code, the tests skip and say why.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
from notebook_outputs import exercise_start, output_texts

nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _executed_dir() -> Path:
    # read at collection time: the autouse fixture in conftest.py points MASKEDU_DATA at a temporary folder per test
    if os.environ.get("MASKEDU_EXECUTED"):
        return Path(os.environ["MASKEDU_EXECUTED"]).expanduser()
    if os.environ.get("MASKEDU_DATA"):
        return Path(os.environ["MASKEDU_DATA"]).expanduser() / "executed"
    return ROOT / "data" / "executed"


EXECUTED = _executed_dir()

NAN = re.compile(r"\bnan\b|\b0/0\b", re.IGNORECASE)
BAR_AT_ZERO = re.compile(r"(^|[\s:])0%\|")
CORRECT = re.compile(r"\bCorrect\b")
# get_model's words when the crops a notebook hands it are not the ones the saved model was split from
RETRAINED = re.compile(r"cannot be used as it is")


def _load(name: str):
    path = EXECUTED / name
    if not path.is_file():
        pytest.skip(f"no executed copy of {name} in {EXECUTED} (run `python -m maskedu demo` first)")
    executed = nbformat.read(path, as_version=4)
    source = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    code = lambda nb: [c.source for c in nb.cells if c.cell_type == "code"]  # noqa: E731
    if code(executed) != code(source):
        pytest.skip(f"the executed copy {path} is stale: its code differs from notebooks/{name}; run the demo again")
    return executed


@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_executed_notebook_output_is_clean(name):
    nb = _load(name)
    problems = []
    first_exercise = exercise_start(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        images = []
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream" and out.get("name") == "stderr":
                problems.append(f"cell {i}: text on stderr: {out.get('text', '')[:160]!r}")
            if kind == "error":
                problems.append(f"cell {i}: error {out.get('ename')}: {out.get('evalue', '')[:160]}")
            for text in output_texts(out):
                if NAN.search(text):
                    problems.append(f"cell {i}: 'nan' or '0/0' in the output: {NAN.search(text).group(0)!r} in {text[:160]!r}")
                if BAR_AT_ZERO.search(text):
                    problems.append(f"cell {i}: a progress bar saved at 0%: {text[:160]!r}")
                if name > "03" and RETRAINED.search(text):
                    problems.append(f"cell {i}: a model notebook 03 trained and evaluated was retrained on other crops, "
                                    f"so its held-out faces are not the ones notebook 03 reported: {text[:200]!r}")
                if i > first_exercise and CORRECT.search(text):
                    problems.append(f"cell {i}: an exercise says 'Correct' before anyone answered it: {text[:160]!r}")
            png = out.get("data", {}).get("image/png") if kind in ("display_data", "execute_result") else None
            if png:
                images.append(hashlib.sha256("".join(png).encode()).hexdigest())
        if len(images) != len(set(images)):
            problems.append(f"cell {i}: the same figure is drawn {len(images) - len(set(images)) + 1} times")
    assert not problems, f"{name} (executed copy in {EXECUTED}):\n" + "\n".join(problems)


def test_checks_catch_what_they_look_for():
    """The patterns above match the problems they are for, and not clean text."""
    assert NAN.search("found 0/0 faces (nan%)") and NAN.search("accuracy NaN")
    assert not NAN.search("financial nanny 10/10")
    assert BAR_AT_ZERO.search("Cropping faces:   0%|          | 0/200") and not BAR_AT_ZERO.search("100%|#####| 200/200")
    assert CORRECT.search("Correct! well done") and not CORRECT.search("not attempted yet")
    assert RETRAINED.search("The model at data/models/resnet.keras cannot be used as it is: the split was made from 323")
