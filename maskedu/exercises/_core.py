"""The small mechanism behind every exercise: a question with a checker, a hint and a solution.

A checker is a plain function that receives the student's answer and raises :class:`Incorrect` with a
specific message ("your boxes are in x1, x2, y1, y2 order: the CSV header lies") when it is wrong.
Anything else it raises is reported as a problem with the answer, never as a crash of the notebook.

>>> def _check(answer):
...     if answer != 4:
...         raise Incorrect("2 + 2 is not " + repr(answer))
>>> q = Question("q1", _check, hint="Count on your fingers.", solution="answer = 4")
>>> q.check(4, display=False).correct
True
>>> q.check(5, display=False).message
'2 + 2 is not 5'
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Incorrect", "Correct", "CheckResult", "Question"]


class Incorrect(Exception):
    """Raised by a checker with feedback the student can act on."""


class Correct(Exception):
    """Optionally raised by a checker to attach a message to a right answer."""


@dataclass(frozen=True)
class CheckResult:
    correct: bool
    message: str

    def __bool__(self) -> bool:
        return self.correct

    def _ipython_display_(self) -> None:
        """Shown already by check(); a notebook cell ending in q.check(...) shows the feedback once."""


def _show(kind: str, text: str) -> None:
    colours = {"correct": "#2e7d32", "incorrect": "#c62828", "hint": "#1565c0", "solution": "#6a1b9a"}
    labels = {"correct": "Correct", "incorrect": "Incorrect", "hint": "Hint", "solution": "Solution"}
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display

        if get_ipython() is not None:
            body = html.escape(text).replace("\n", "<br>")
            if kind == "solution":
                body = f"<pre style='margin:0'>{html.escape(text)}</pre>"
            display(HTML(f"<div style='color:{colours[kind]}'><b>{labels[kind]}:</b> {body}</div>"))
            return
    except ImportError:  # pragma: no cover
        pass
    print(f"{labels[kind]}: {text}")


class Question:
    """One exercise: ``check(answer)``, ``hint()``, ``solution()``."""

    def __init__(self, name: str, checker: Callable[[Any], Any], *, hint: str, solution: str, prompt: str = ""):
        self.name = name
        self._checker = checker
        self._hint = hint
        self._solution = solution
        self.prompt = prompt

    def check(self, answer: Any = ..., *, display: bool = True) -> CheckResult:
        """Check an answer; shows coloured feedback in a notebook and returns a CheckResult (truthy when right)."""
        if answer is ...:
            result = CheckResult(False, "Pass your answer to check(), for example q1.check(my_answer).")
        else:
            try:
                extra = self._checker(answer)
                result = CheckResult(True, extra if isinstance(extra, str) and extra else "Well done.")
            except Correct as ok:
                result = CheckResult(True, str(ok) or "Well done.")
            except Incorrect as wrong:
                result = CheckResult(False, str(wrong))
            except Exception as exc:  # a malformed answer must not crash the student's notebook
                result = CheckResult(False, f"Your answer could not be checked: {type(exc).__name__}: {exc}")
        if display:
            _show("correct" if result.correct else "incorrect", result.message)
        return result

    def hint(self) -> None:
        _show("hint", self._hint)

    def solution(self) -> None:
        _show("solution", self._solution)

    def __repr__(self) -> str:
        return f"<Question {self.name}: call .check(answer), .hint() or .solution()>"
