"""Every exercise, the same promises: the blank and the untouched stub report "not attempted yet" (never
"Correct"), the worked solution passes its own check, maskedu's own function is refused, multiple choice
takes a letter or the option's text and nothing else, and the notebooks ship their exercise cells blank."""

from __future__ import annotations

import functools
import math
import re
import types
from pathlib import Path

import numpy as np
import pytest

from maskedu.annotations import DEFAULT_CLASS_MAP, Dataset, FaceBox, ImageRecord, LoadReport
from maskedu.exercises import ____, nb01, nb02, nb03, nb04, nb05, nb06, nb07
from maskedu.exercises import _core

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
MODULES = {"01": nb01, "02": nb02, "03": nb03, "04": nb04, "05": nb05, "06": nb06, "07": nb07}
QUESTIONS = [(m.__name__.rsplit(".", 1)[1], name, getattr(m, name))
             for m in MODULES.values() for name in m.__all__ if re.fullmatch(r"q\d", name)]
IDS = [f"{mod}.{name}" for mod, name, _ in QUESTIONS]

#: the questions whose answer is a function the student writes, with the stub's argument names
FUNCTION_QUESTIONS = {
    "nb01.q2": lambda row: None,
    "nb02.q1": lambda a, b: None,
    "nb04.q1": lambda image, candidate: None,
    "nb04.q2": lambda margin: None,
    "nb05.q1": lambda p: None,
    "nb05.q2": lambda records, pixels, fitness: None,
    "nb06.q1": lambda delta, temperature: None,
    "nb07.q1": lambda image, gradient, eps: None,
    "nb07.q3": lambda successes, n: None,
}


def _stub_like(signature_of):
    """A stub as the notebooks ship it: the same parameters, a body that raises NotImplementedError."""
    params = ", ".join(signature_of.__code__.co_varnames[: signature_of.__code__.co_argcount])
    ns: dict = {}
    exec(f"def my_answer({params}):\n    # YOUR CODE\n    raise NotImplementedError\n", ns)
    return ns["my_answer"]


def _dataset() -> Dataset:
    raw = {"with_mask": "face_with_mask", "without_mask": "face_no_mask", None: "hat"}

    def record(name, faces):
        return ImageRecord(Path(name), [FaceBox(5, 5, 5 + w, 5 + h, lab, raw[lab]) for w, h, lab in faces], None, 400, 400)

    return Dataset(Path("."), "kaggle", [
        record("a.jpg", [(20, 70, "with_mask"), (70, 40, "with_mask"), (10, 10, None)]),
        record("b.jpg", [(55, 48, "with_mask"), (55, 20, "with_mask")]),
        record("c.jpg", [(60, 45, "with_mask"), (55, 50, "with_mask"), (60, 30, "without_mask")]),
        record("d.jpg", [(48, 60, "without_mask"), (90, 48, "without_mask")]),
    ], dict(DEFAULT_CLASS_MAP), LoadReport())


@pytest.fixture
def context(monkeypatch):
    """What the notebooks have defined by the time their exercises run: a dataset, a trade-off curve."""
    ds = _dataset()
    nb01.use(ds)
    t = np.round(np.arange(0.5, 0.96, 0.05), 2)
    curve = types.SimpleNamespace(thresholds=t, found_rate={"with_mask": np.linspace(0.95, 0.6, len(t))},
                                  false_positive_rate=np.array([0.10, 0.06, 0.03, 0.02, 0.02, 0.01, 0, 0, 0, 0.0]))
    monkeypatch.setattr(nb02, "_curve", None)
    nb02.use_tradeoff(curve.thresholds, curve.found_rate["with_mask"], curve.false_positive_rate)
    yield dict(ds=ds, curve=curve, np=np, math=math, ____=____, **{f"nb{k}": m for k, m in MODULES.items()})
    nb01._state["dataset"] = None


def _not_attempted(result):
    assert not result and result.attempted is False, result
    assert "not attempted" in result.message, result.message


def test_every_notebook_has_a_code_exercise():
    by_notebook = {key.split(".")[0] for key in FUNCTION_QUESTIONS} | {"nb03"}  # nb03.q1: a Keras model
    assert by_notebook == {f"nb{k}" for k in MODULES}


@pytest.mark.parametrize("mod, name, q", QUESTIONS, ids=IDS)
def test_the_blank_is_not_attempted(mod, name, q, context):
    _not_attempted(q.check(____, display=False))
    _not_attempted(q.check((____, ____), display=False))


@pytest.mark.parametrize("key", sorted(FUNCTION_QUESTIONS))
def test_the_untouched_stub_is_not_attempted(key, context):
    mod, name = key.split(".")
    q = getattr(MODULES[mod[2:]], name)
    stub = _stub_like(FUNCTION_QUESTIONS[key])
    result = q.check(stub, display=False)
    _not_attempted(result)
    assert "my_answer" in result.message

    def returns_the_blank(*args):
        return ____

    _not_attempted(q.check(returns_the_blank, display=False))


@pytest.mark.parametrize("mod, name, q", QUESTIONS, ids=IDS)
def test_the_solution_passes(mod, name, q, context, capsys):
    ns = dict(context)
    if mod == "nb03":
        pytest.importorskip("keras")
    exec(q.solution_text, ns)
    result = q.check(eval(q.answer, ns), display=False)
    assert result.correct and result.attempted, result.message
    capsys.readouterr()
    q.solution()
    assert q.solution_text.splitlines()[0] in capsys.readouterr().out


def test_the_display_of_a_blank_is_neutral(capsys):
    shown = nb04.q3.check(____)
    out = capsys.readouterr().out
    assert not shown and out.startswith("To do:") and "Correct" not in out and "Incorrect" not in out


LIBRARY = {
    "nb02.q1": lambda: __import__("maskedu.imaging", fromlist=["iou"]).iou,
    "nb04.q1": lambda: __import__("maskedu.attack", fromlist=["perturb"]).perturb,
    "nb06.q1": lambda: __import__("maskedu.anneal", fromlist=["acceptance_probability"]).acceptance_probability,
}


@pytest.mark.parametrize("key", sorted(LIBRARY))
def test_the_librarys_own_function_is_refused(key):
    mod, name = key.split(".")
    q = getattr(MODULES[mod[2:]], name)
    lib = LIBRARY[key]()
    wrapped = functools.wraps(lib)(lambda *a: lib(*a))
    calls_it = eval("lambda *args: lib(*args)", {"lib": lib, "__name__": "__main__"})
    for answer in (lib, functools.partial(lib), wrapped, calls_it):
        result = q.check(answer, display=False)
        assert not result and result.attempted, (answer, result.message)
        assert "maskedu's own" in result.message and "yourself" in result.message, result.message


def test_a_notebook_function_that_calls_the_library_through_a_helper_is_refused():
    ns = {"__name__": "__main__"}
    exec("from maskedu.anneal import acceptance_probability\n"
         "def helper(d, t):\n    return acceptance_probability(d, t)\n"
         "def accept_probability(delta, temperature):\n    return helper(delta, temperature)\n", ns)
    result = nb06.q1.check(ns["accept_probability"], display=False)
    assert not result and "maskedu's own" in result.message


def test_any_maskedu_function_is_refused_as_an_answer():
    from maskedu.attack import decode_candidates

    result = nb04.q1.check(decode_candidates, display=False)
    assert not result and "maskedu's own" in result.message
    # a bound method of a maskedu object (like study.rate) is the library's too
    result = nb05.q2.check(_dataset().class_counts, display=False)
    assert not result and "maskedu's own" in result.message


# --------------------------------------------------------------------------- multiple choice

MULTIPLE_CHOICE = [(nb05.q3, nb05.Q3_CHOICES, "b"), (nb06.q2, nb06.FAST_COOLING_CHOICES, "b")]


@pytest.mark.parametrize("q, choices, right", MULTIPLE_CHOICE, ids=["nb05.q3", "nb06.q2"])
def test_multiple_choice_spellings(q, choices, right):
    text = choices[right]
    for spelling in (right, right.upper(), f"({right})", f"{right}.", f" {right.upper()} ", f"[{right}]",
                     text, text.upper(), "  " + text.lower().rstrip(".") + "  "):
        assert q.check(spelling, display=False).correct, spelling
    for wrong in ("banana", right * 2, "bb", "e", "(b) " + text, text[:20], "", 2, None, ["b"]):
        result = q.check(wrong, display=False)
        assert not result and result.attempted, wrong
        assert "one letter" in result.message and "text of one option" in result.message, result.message
    assert repr("banana") in q.check("banana", display=False).message


@pytest.mark.parametrize("q, choices, right", MULTIPLE_CHOICE, ids=["nb05.q3", "nb06.q2"])
def test_multiple_choice_feedback_quotes_the_choice(q, choices, right):
    for letter, text in choices.items():
        if letter == right:
            continue
        for spelling in (letter, text.lower()):
            result = q.check(spelling, display=False)
            assert not result and f"You chose ({letter})" in result.message and text in result.message


# --------------------------------------------------------------------------- the notebooks as shipped


def _exercise_cells(path: Path) -> list[str]:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    start = next(i for i, c in enumerate(nb.cells)
                 if c.cell_type == "markdown" and re.search(r"^#+ .*Exercises", c.source, re.M))
    return [c.source for c in nb.cells[start:] if c.cell_type == "code"
            and (".check(" in c.source or "maskedu.exercises" in c.source)]


@pytest.mark.parametrize("number", sorted(MODULES))
def test_notebook_exercises_ship_blank_and_report_not_attempted(number, context, monkeypatch):
    path = next(NOTEBOOKS.glob(f"{number}_*.ipynb"))
    cells = _exercise_cells(path)
    checking = [c for c in cells if re.search(r"\bq\d\.check\(", c)]
    asked = {name for mod, name, _ in QUESTIONS if mod == f"nb{number}"}
    assert {m for c in checking for m in re.findall(r"\b(q\d)\.check\(", c)} == asked
    for source in checking:
        assert "____" in source or "raise NotImplementedError" in source, source
        assert "maskedu.imaging" not in source and "acceptance_probability(" not in source, source
    shown = []
    monkeypatch.setattr(_core, "_show", lambda kind, text: shown.append((kind, text)))
    ns = dict(context)
    ns.update(build_resnet=None, count_flops=None, __name__="__main__")
    for source in cells:
        exec(compile(source, f"{path.name} exercise", "exec"), ns)
    checks = [s for s in shown if s[0] in ("correct", "incorrect", "todo")]
    assert len(checks) == len(checking)
    assert all(kind == "todo" and "not attempted" in text for kind, text in checks), checks


@pytest.mark.parametrize("key", sorted(FUNCTION_QUESTIONS))
def test_every_code_exercise_refuses_a_maskedu_function(key):
    from maskedu.attack import decode_candidates

    mod, name = key.split(".")
    q = getattr(MODULES[mod[2:]], name)
    for answer in (decode_candidates, functools.partial(decode_candidates)):
        result = q.check(answer, display=False)
        assert not result and "maskedu's own" in result.message, result.message
