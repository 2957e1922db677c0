"""The shared helpers: fast mode, data folder, parameter checks, lazy package exports, exercise mechanism."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import maskedu
from maskedu import common
from maskedu.exercises import Incorrect, Question


def test_budget_follows_fast_mode(monkeypatch):
    monkeypatch.setenv("MASKEDU_FAST", "1")
    assert common.is_fast() and common.budget(30, fast=2) == 2
    monkeypatch.setenv("MASKEDU_FAST", "0")
    assert not common.is_fast() and common.budget(30, fast=2) == 30


def test_artifact_path_keeps_fast_copies_apart(monkeypatch, tmp_path):
    monkeypatch.setenv("MASKEDU_DATA", str(tmp_path))
    monkeypatch.setenv("MASKEDU_FAST", "0")
    normal = common.artifact_path("models/resnet.keras")
    monkeypatch.setenv("MASKEDU_FAST", "1")
    fast = common.artifact_path("models/resnet.keras")
    assert normal == tmp_path / "models" / "resnet.keras"
    assert fast == tmp_path / "models" / "resnet-fast.keras"
    assert fast.parent.is_dir()


def test_setup_seeds_numpy_and_reports(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MASKEDU_DATA", str(tmp_path))
    cfg = common.setup(seed=3, fast=True)
    a = np.random.rand(3)
    common.setup(seed=3, fast=True, verbose=False)
    assert np.array_equal(a, np.random.rand(3))
    assert cfg.fast and cfg.data_dir == tmp_path.resolve()
    assert "FAST mode" in capsys.readouterr().out


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: common.check_int("pixels", 0, minimum=1), ValueError, "pixels must be at least 1"),
        (lambda: common.check_int("pixels", 2.5), TypeError, "whole number"),
        (lambda: common.check_int("pixels", True), TypeError, "whole number"),
        (lambda: common.check_number("temperature", -1.0, minimum=0, strict_minimum=True), ValueError, "greater than 0"),
        (lambda: common.check_number("temperature", float("nan")), ValueError, "finite"),
        (lambda: common.check_choice("fitness", "prob", ["margin", "probability"]), ValueError, "'margin', 'probability'"),
    ],
)
def test_parameter_checks_name_the_problem(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_parameter_checks_pass_good_values():
    assert common.check_int("n", 4.0, minimum=1) == 4
    assert common.check_number("t", 2, minimum=0) == 2.0
    assert common.check_choice("f", "margin", ["margin"]) == "margin"


def test_import_maskedu_does_not_start_tensorflow():
    code = "import sys, maskedu; maskedu.CLASS_NAMES; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_lazy_exports_resolve_and_unknown_names_fail():
    assert maskedu.iou((0, 0, 2, 2), (0, 0, 2, 2)) == 1.0
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        maskedu.nope  # noqa: B018


def _check_square(answer):
    if not isinstance(answer, int):
        raise Incorrect(f"answer with a whole number, not a {type(answer).__name__}")
    if answer != 16:
        raise Incorrect(f"{answer} is not 4 squared")


def test_question_gives_specific_feedback(capsys):
    q = Question("q1", _check_square, hint="4 * 4", solution="answer = 16")
    assert q.check(16).correct
    wrong = q.check(15)
    assert not wrong.correct and "15 is not 4 squared" in wrong.message
    assert "not a str" in q.check("16").message
    assert "Pass your answer" in q.check().message
    q.hint()
    q.solution()
    out = capsys.readouterr().out
    assert "Correct" in out and "Incorrect" in out and "4 * 4" in out and "answer = 16" in out


def test_question_reports_a_crashing_checker_as_feedback():
    q = Question("q", lambda a: a["missing"], hint="", solution="")
    result = q.check({}, display=False)
    assert not result.correct and "KeyError" in result.message


@pytest.mark.slow  # a fresh Python importing TensorFlow: over 10 s on 2 cores
def test_import_tensorflow_writes_nothing_to_stderr():
    """absl's and cudart_stub's start-up lines go straight to file descriptor 2 unless import_tensorflow hides them."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    code = ("import sys; from maskedu.common import import_tensorflow; tf = import_tensorflow(); "
            "import keras; keras.layers.Dense(2)(tf.zeros((1, 3))); print('imported', tf.__version__)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("imported")
    assert run.stderr == ""


def test_progress_in_a_notebook_ends_as_one_summary_line(monkeypatch):
    """A saved widget keeps the text it was created with ("0%"): the finished bar replaces itself with a line."""
    from unittest import mock

    import maskedu.common as common

    monkeypatch.delenv("MASKEDU_NO_PROGRESS", raising=False)
    updates = []

    class Handle:
        def update(self, obj, raw=False):
            updates.append(obj)

    with mock.patch.object(common, "in_notebook", lambda: True), \
            mock.patch("IPython.display.display", lambda *a, **k: Handle()):
        common._notebook_bar.cache_clear()
        try:
            assert list(common.progress(range(5), desc="Cropping faces")) == list(range(5))
            bar = common.progress(total=4, desc="stopped")
            bar.update(1)
            bar.close()
        finally:
            common._notebook_bar.cache_clear()
    assert [u["text/plain"].split(" in ")[0] for u in updates] == ["Cropping faces: 5/5", "stopped: 1/4"]
    assert updates[1]["text/plain"].endswith("(stopped early)")
    assert all("%" not in u["text/plain"] for u in updates)
