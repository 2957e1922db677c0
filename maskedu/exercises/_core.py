"""The small mechanism behind every exercise: a question with a checker, a hint and a solution.

A checker is a plain function that receives the student's answer and raises :class:`Incorrect` with a
specific message about that answer ("for the row [...] your function returned (69, 294, 126, 392): ...")
when it is wrong. Anything else it raises is reported as a problem with the answer, never as a crash of
the notebook.

Every exercise cell ships with a blank, :data:`____`, or a stub function that raises
``NotImplementedError``. Both are reported as "not attempted yet" (a neutral message, a falsy result),
never as right or wrong, so running an untouched notebook shows no green "Correct".

>>> def _check(answer):
...     if answer != 4:
...         raise Incorrect("2 + 2 is not " + repr(answer))
>>> q = Question("q1", _check, hint="Count on your fingers.", solution="answer = 4", answer="answer")
>>> q.check(4, display=False).correct
True
>>> q.check(5, display=False).message
'2 + 2 is not 5'
>>> r = q.check(____, display=False)
>>> bool(r), r.attempted, "not attempted" in r.message
(False, False, True)
>>> choice("(B)", {"a": "yes", "b": "no"}), choice("No.", {"a": "yes", "b": "no"})
('b', 'b')
"""

from __future__ import annotations

import builtins
import functools
import html
import inspect
import os
import re
import types
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

__all__ = [
    "Incorrect", "Correct", "NotAttempted", "CheckResult", "Question", "Blank", "____",
    "is_blank", "call", "need_function", "number_answers", "refuse_library", "choice",
]


class Incorrect(Exception):
    """Raised by a checker with feedback the student can act on."""


class Correct(Exception):
    """Optionally raised by a checker to attach a message to a right answer."""


class NotAttempted(Exception):
    """Raised when the answer is still the shipped blank or stub."""


class Blank:
    """The placeholder an exercise cell ships with: ``answer = ____``.

    Arithmetic on it gives the blank back, so ``fraction = ____ / 2`` still reports "not attempted".
    """

    _instance: "Blank | None" = None

    def __new__(cls) -> "Blank":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "____"

    def __bool__(self) -> bool:
        return False

    def _same(self, *args: Any, **kwargs: Any) -> "Blank":
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __pow__ = __rpow__ = _same
    __neg__ = __pos__ = __abs__ = _same


#: The blank an exercise cell ships with; replace it with your answer.
____ = Blank()


def is_blank(answer: Any, _depth: int = 0) -> bool:
    """True for the blank itself, or a tuple, list or dict that still holds one."""
    if isinstance(answer, Blank):
        return True
    if _depth >= 3:
        return False
    if isinstance(answer, (tuple, list)):
        return any(is_blank(v, _depth + 1) for v in answer)
    if isinstance(answer, dict):
        return any(is_blank(v, _depth + 1) for v in answer.values())
    return False


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def call(fn: Callable, *args: Any, describe: str = "") -> Any:
    """Call the student's function: a stub (``NotImplementedError``, or a blank returned) is "not attempted";
    any other exception becomes :class:`Incorrect` naming the inputs (``describe``)."""
    try:
        out = fn(*args)
    except NotImplementedError:
        raise NotAttempted(f"your {_name(fn)} still raises NotImplementedError: write its body, then run the cell again.") from None
    except (Incorrect, NotAttempted):
        raise
    except Exception as exc:  # the student's code: report, do not crash
        where = f" {describe}" if describe else ""
        raise Incorrect(f"Your {_name(fn)} raised {type(exc).__name__}: {exc}{where}.") from None
    if is_blank(out):
        raise NotAttempted(f"your {_name(fn)} still returns ____: write its body, then run the cell again.")
    return out


def need_function(fn: Any, name: str) -> None:
    """Refuse an answer that is not a function (a value, or the function called instead of passed)."""
    if not callable(fn):
        raise Incorrect(f"You passed {type(fn).__name__} {fn!r}. Pass your function itself ({name}, without brackets).")


def number_answers(fn: Callable, inputs: Iterable[Any], describe: Callable[[Any], str]):
    """Call the student's ``fn`` on each input, one at a time; yield ``(input, number, what it returned)``.

    For questions whose answer is a function giving one number: anything that is not one number (a list,
    None, text) is :class:`Incorrect` with what came back. ``describe(x)`` words the input, e.g.
    ``lambda m: f"for the margin {m}"``.

    >>> [got for _, got, _ in number_answers(lambda x: x * 2, [1, 2.5], lambda x: f"for x = {x}")]
    [2.0, 5.0]
    >>> list(number_answers(lambda x: [x, x], [3], lambda x: f"for x = {x}"))
    Traceback (most recent call last):
    maskedu.exercises._core.Incorrect: For x = 3 your function returned [3, 3]; return one number.
    """
    import numpy as np

    for x in inputs:
        said = describe(x)
        out = call(fn, x, describe=said)
        try:
            got = float(np.asarray(out).reshape(()))
        except (TypeError, ValueError):
            raise Incorrect(f"{said[:1].upper()}{said[1:]} your function returned {out!r}; return one number.") from None
        yield x, got, out


# --------------------------------------------------------------------------- the library's own functions


def _unwrap(fn: Any) -> list[Any]:
    """fn and everything it wraps: functools.partial, bound methods, functools.wraps, np.vectorize."""
    seen: list[Any] = []
    todo = [fn]
    while todo:
        f = todo.pop()
        if any(f is s for s in seen) or len(seen) > 20:
            continue
        seen.append(f)
        for attr in ("func", "__func__", "__wrapped__", "pyfunc"):
            inner = getattr(f, attr, None) if not isinstance(f, Blank) else None
            if inner is not None and callable(inner):
                todo.append(inner)
    return seen


def _is_library(obj: Any, forbidden: Iterable[Any]) -> bool:
    if any(obj is f for f in forbidden):
        return True
    if isinstance(obj, functools.partial) or inspect.isroutine(obj):
        if not str(getattr(obj, "__module__", "") or "").startswith("maskedu"):
            return False
        code = getattr(obj, "__code__", None)  # code typed at a prompt (a doctest) is not the library's
        return code is None or not code.co_filename.startswith("<")
    return False


def _referenced(fn: Any) -> Iterable[Any]:
    """The global objects (and attributes of maskedu modules) a plain function's code refers to."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    names: set[str] = set()
    stack = [code]
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    glob = getattr(fn, "__globals__", {}) or {}
    found = []
    for n in names:
        if n in glob:
            v = glob[n]
        elif hasattr(builtins, n):
            continue
        else:
            continue
        found.append(v)
        if isinstance(v, types.ModuleType) and v.__name__.startswith("maskedu"):
            found.extend(getattr(v, m) for m in names if hasattr(v, m))
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            found.append(cell.cell_contents)
        except ValueError:  # an empty cell
            pass
    return found


def refuse_library(fn: Any, forbidden: Iterable[Any], what: str) -> None:
    """Refuse maskedu's own function (``forbidden`` by identity, or any function of a ``maskedu`` module),
    also wrapped (functools.partial, functools.wraps, a bound method) or called from the student's function."""
    forbidden = list(forbidden)
    message = (f"That is maskedu's own {what}, not your code. The exercise is to write it yourself: "
               "replace the call with your own lines (the check tries them on cases you do not see).")
    todo, seen = [fn], []
    while todo:
        f = todo.pop()
        if any(f is s for s in seen) or len(seen) > 50:
            continue
        seen.append(f)
        for g in _unwrap(f):
            if _is_library(g, forbidden):
                raise Incorrect(message)
            if g is not f:
                seen.append(g)
            for ref in _referenced(g):
                if _is_library(ref, forbidden):
                    raise Incorrect(message)
                if inspect.isfunction(ref) and not str(ref.__module__ or "").startswith("maskedu"):
                    todo.append(ref)  # a helper of the student's: look inside it too


# --------------------------------------------------------------------------- multiple choice


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().rstrip(".").strip().lower()


def choice(answer: Any, choices: Mapping[str, str]) -> str:
    """The letter chosen: a letter ("b", "B", "(b)", "b.", " B ") or an option's exact text (any case).

    Anything else raises :class:`Incorrect` listing the valid forms.
    """
    letters = list(choices)
    listed = ", ".join(f"'{k}'" for k in letters[:-1]) + f" or '{letters[-1]}'"
    forms = (f"Answer with one letter, {listed} ('B', '(b)' and 'b.' work too), or the text of one option "
             "copied exactly.")
    if not isinstance(answer, str):
        raise Incorrect(f"You gave {answer!r} ({type(answer).__name__}). {forms}")
    text = _normalise(answer)
    letter = re.sub(r"\s+", "", text)
    if re.fullmatch(r"[(\[]?[a-z][)\]]?", letter):
        letter = letter.strip("()[]")
        if letter in choices:
            return letter
    for k, option in choices.items():
        if text == _normalise(option):
            return k
    raise Incorrect(f"{answer!r} is not one of the choices. {forms}")


# --------------------------------------------------------------------------- results and questions


@dataclass(frozen=True)
class CheckResult:
    correct: bool
    message: str
    attempted: bool = True

    def __bool__(self) -> bool:
        return self.correct

    def _ipython_display_(self) -> None:
        """Shown already by check(); a notebook cell ending in q.check(...) shows the feedback once."""


_COLOURS = {"correct": "#2e7d32", "incorrect": "#c62828", "todo": "#616161", "hint": "#1565c0", "solution": "#6a1b9a"}
_LABELS = {"correct": "Correct", "incorrect": "Incorrect", "todo": "To do", "hint": "Hint", "solution": "Solution"}


#: Set to "1" by the first cell of a graded release (``maskedu course release --graded``).
GRADED_ENV = "MASKEDU_GRADED"
_SWITCHED_OFF = "Hints and solutions are switched off in this graded assignment."


def _graded() -> bool:
    """True in a graded release: ``.hint()`` and ``.solution()`` then show nothing (read at call time)."""
    return os.environ.get(GRADED_ENV, "") == "1"


def _show(kind: str, text: str) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display

        if get_ipython() is not None:
            body = html.escape(text).replace("\n", "<br>")
            if kind == "solution":
                body = f"<pre style='margin:0'>{html.escape(text)}</pre>"
            display(HTML(f"<div style='color:{_COLOURS[kind]}'><b>{_LABELS[kind]}:</b> {body}</div>"))
            return
    except ImportError:  # pragma: no cover
        pass
    print(f"{_LABELS[kind]}: {text}")


_NOT_ATTEMPTED = "This exercise is not attempted yet: "


class Question:
    """One exercise: ``check(answer)``, ``hint()``, ``solution()``.

    ``answer`` names the variable that the solution text leaves the answer in (the tests run the solution
    and check that variable).
    """

    def __init__(self, name: str, checker: Callable[[Any], Any], *, hint: str, solution: str, prompt: str = "",
                 answer: str = "answer"):
        self.name = name
        self._checker = checker
        self._hint = hint
        self._solution = solution
        self.prompt = prompt
        self.answer = answer

    def check(self, answer: Any = ..., *, display: bool = True) -> CheckResult:
        """Check an answer; shows coloured feedback in a notebook and returns a CheckResult (truthy when right)."""
        if answer is ...:
            result = CheckResult(False, "Pass your answer to check(), for example q1.check(my_answer).")
        elif is_blank(answer):
            result = CheckResult(False, _NOT_ATTEMPTED + "replace ____ with your answer, then run the cell again.", False)
        else:
            try:
                extra = self._checker(answer)
                result = CheckResult(True, extra if isinstance(extra, str) and extra else "Well done.")
            except Correct as ok:
                result = CheckResult(True, str(ok) or "Well done.")
            except NotAttempted as todo:
                result = CheckResult(False, _NOT_ATTEMPTED + str(todo), False)
            except NotImplementedError:
                result = CheckResult(False, _NOT_ATTEMPTED + "your code still raises NotImplementedError.", False)
            except Incorrect as wrong:
                result = CheckResult(False, str(wrong))
            except Exception as exc:  # a malformed answer must not crash the student's notebook
                result = CheckResult(False, f"Your answer could not be checked: {type(exc).__name__}: {exc}")
        if display:
            kind = "correct" if result.correct else ("incorrect" if result.attempted else "todo")
            _show(kind, result.message)
        return result

    def hint(self) -> None:
        if _graded():
            _show("todo", _SWITCHED_OFF)
            return
        _show("hint", self._hint)

    def solution(self) -> None:
        if _graded():
            _show("todo", _SWITCHED_OFF)
            return
        _show("solution", self._solution)

    @property
    def solution_text(self) -> str:
        """The worked answer as code (what .solution() shows)."""
        return self._solution

    def __repr__(self) -> str:
        return f"<Question {self.name}: call .check(answer), .hint() or .solution()>"
