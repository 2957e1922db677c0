"""Checkable exercises for every notebook, in the style of Kaggle Learn's learntools.

In a notebook::

    from maskedu.exercises import nb01, ____
    answer = ____                # the blank a cell ships with: "not attempted yet" until you replace it
    nb01.q1.check(answer)        # specific feedback about your answer when it is wrong
    nb01.q1.hint()
    nb01.q1.solution()

Each ``nbXX`` module defines its questions with :class:`Question`; see ``_core.py``.
"""

from ._core import Blank, CheckResult, Correct, Incorrect, NotAttempted, Question, ____

__all__ = ["Question", "Incorrect", "Correct", "NotAttempted", "CheckResult", "Blank", "____"]
