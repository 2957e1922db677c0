"""Checkable exercises for every notebook, in the style of Kaggle Learn's learntools.

In a notebook::

    from maskedu.exercises import nb01
    nb01.q1.check(answer)    # specific feedback when it is wrong
    nb01.q1.hint()
    nb01.q1.solution()

Each ``nbXX`` module defines its questions with :class:`Question`; see ``_core.py``.
"""

from ._core import Correct, Incorrect, Question

__all__ = ["Question", "Incorrect", "Correct"]
