"""Every notebook, in fast strict mode, on each shared folder of real photos chosen with ``MASKEDU_DATASET`` (issue 19).

``../shared/scenes`` is PASCAL VOC (crowd scenes, every face annotated: faces are cropped from the boxes);
``../shared/realfaces`` is class folders (``with_mask/``, ``without_mask/``: faces are cropped through the
detector). Each folder's notebooks run in order, 01 to 07, in their own data folder, as a student runs the
course: notebook 03 trains the models 04, 05 and 07 load. Fast mode keeps an even spread of the folder's photos
(``maskedu.download.choose.FAST_IMAGES``) and the banner says so.

Each executed notebook must run without an error (strict mode: no claim its own run contradicts), print nothing
on stderr and no "nan", name the chosen folder in its data banner, and leave every exercise unanswered.
A missing folder skips with the reason, or fails under ``CI=true``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from notebook_outputs import exercise_start, output_texts
from shared_photos import shared_folder

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from maskedu.cli import run_notebooks  # noqa: E402
from maskedu.download.choose import FAST_IMAGES  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
FOLDERS = ("scenes", "realfaces")

NAN = re.compile(r"\bnan\b|\b0/0\b", re.IGNORECASE)
CORRECT = re.compile(r"\bCorrect\b")
SAMPLE_BANNER = re.compile(r"built-in SAMPLE dataset")


def _shared(name: str) -> Path:
    """``../shared/<name>``; skip where absent, fail under CI=true."""
    return shared_folder(name)


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory) -> dict[str, Path]:
    """One data folder per shared folder, kept across its notebooks (03's models are 04's, 05's and 07's)."""
    return {name: tmp_path_factory.mktemp(f"data-{name}") for name in FOLDERS}


def problems_in(nb) -> list[str]:
    """What a student must not see in an executed notebook: an error, stderr text, a nan, an exercise marked
    correct before it was answered, or the sample's banner when a folder was chosen."""
    first_exercise = exercise_start(nb)
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                found.append(f"cell {i}: text on stderr: {out.get('text', '')[:200]!r}")
            for text in output_texts(out):
                if out.get("output_type") == "error":
                    found.append(f"cell {i}: {text[:300]}")
                elif NAN.search(text):
                    found.append(f"cell {i}: {NAN.search(text).group(0)!r} in {text[:200]!r}")
                if SAMPLE_BANNER.search(text):
                    found.append(f"cell {i}: the sample's banner, though MASKEDU_DATASET chose a folder")
                if i > first_exercise and CORRECT.search(text):
                    found.append(f"cell {i}: an exercise says 'Correct' before anyone answered it")
    return found


def all_text(nb) -> str:
    return "\n".join(t for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) for t in output_texts(o))


def test_the_checks_catch_what_they_look_for():
    """problems_in flags each problem in a made-up executed notebook, and nothing in a clean one."""
    v4 = nbformat.v4
    clean = v4.new_notebook(cells=[v4.new_code_cell("x", outputs=[v4.new_output("stream", name="stdout", text="ok 3/4")])])
    assert problems_in(clean) == []
    bad = v4.new_notebook(cells=[
        v4.new_code_cell("a", outputs=[v4.new_output("stream", name="stderr", text="Warning: ...")]),
        v4.new_code_cell("b", outputs=[v4.new_output("execute_result", data={"text/plain": "accuracy nan"})]),
        v4.new_code_cell("c", outputs=[v4.new_output("display_data", data={"text/html": "Data: the built-in SAMPLE dataset"})]),
        v4.new_code_cell("d", outputs=[v4.new_output("error", ename="ValueError", evalue="boom", traceback=[])]),
        v4.new_markdown_cell("## Exercises"),
        v4.new_code_cell("e", outputs=[v4.new_output("stream", name="stdout", text="Correct!")]),
    ])
    assert [p.split(":")[0] for p in problems_in(bad)] == ["cell 0", "cell 1", "cell 2", "cell 3", "cell 5"]


@pytest.mark.slow
@pytest.mark.parametrize("notebook", [p.name for p in NOTEBOOKS])
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.realfaces) if n == "realfaces" else n for n in FOLDERS])
def test_notebook_runs_in_fast_strict_mode_on_a_shared_folder(name, notebook, data_dirs, monkeypatch):
    folder = _shared(name)  # a missing folder skips, or fails under CI=true
    data = data_dirs[name]
    for var, value in {"MASKEDU_FAST": "1", "MASKEDU_STRICT": "1", "MASKEDU_DATASET": str(folder),
                       "MASKEDU_DATA": str(data), "MASKEDU_NO_PROGRESS": "1"}.items():
        monkeypatch.setenv(var, value)  # the kernel nbclient starts inherits them
    out = data / "executed"
    try:
        run_notebooks([REPO / "notebooks" / notebook], out, timeout=600)
    except Exception as exc:  # the executed copy holds the failing cell's output
        pytest.fail(f"{notebook} failed on {folder}: {type(exc).__name__}: {str(exc)[-3000:]}")
    nb = nbformat.read(out / notebook, as_version=4)
    assert problems_in(nb) == [], f"{notebook} on {folder} (executed copy {out / notebook})"
    text = all_text(nb)
    if "get_dataset()" in "".join(c.source for c in nb.cells if c.cell_type == "code"):
        assert f"Data: {folder.name} ({FAST_IMAGES} images" in text, "the banner does not name the chosen folder"
        assert re.search(rf"Fast mode \(MASKEDU_FAST=1\) uses {FAST_IMAGES} of its \d+ images", text), \
            "the banner does not say that fast mode keeps a part of the folder"
    if notebook.startswith("01_") and name == "scenes":  # annotated boxes: notebook 01's claim is checked, box by box
        assert re.search(r"Claim: nothing is dropped silently[^\n]* holds \(annotation files=[1-9]", text), \
            "notebook 01 did not check 'nothing is dropped silently' on the VOC files"


def test_a_missing_shared_folder_skips_with_the_reason_or_fails_under_ci(monkeypatch):
    monkeypatch.setattr("maskedu.scenes.scenes_dir", lambda: None)  # as on a fresh machine
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: CI must have"):
        _shared("scenes")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="absent"):
        _shared("scenes")
