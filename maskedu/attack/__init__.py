"""The one-pixel attack (Su et al.) with scipy's differential evolution, fast and observable.

A *candidate* is ``(x, y, r, g, b)`` for each changed pixel: one pixel is 5 numbers, ``k`` pixels are
``5 * k`` numbers. Differential evolution (DE) keeps a population of candidates and, every generation,
mixes them into new ones and keeps whichever is better. "Better" is the *fitness*, which DE minimises:

* ``"probability"`` (the paper's): the model's probability of the true class.
* ``"margin"``: the logit of the true class minus the best other logit (negative = the label flipped).
  It is computed from logits, so it never rounds to a constant the way a float32 probability rounds
  to exactly 1.0 on a confident face.

With ``target=`` set, both become targeted (push the target class up instead of the true class down).

>>> import numpy as np
>>> img = np.zeros((4, 4, 3), np.uint8)
>>> perturb(img, [1, 2, 255, 0, 0])[2, 1]            # pixel x=1, y=2 turned red
array([255,   0,   0], dtype=uint8)

The pieces:

* :func:`perturb` applies a whole population of candidates to copies of an image by array indexing.
* :func:`one_pixel_attack` runs DE (``scipy.optimize.differential_evolution`` with ``vectorized=True``:
  one batched model call per generation) and returns an :class:`AttackResult`.
* :data:`PAPER` reproduces the paper's settings; :data:`QUICK` and :data:`WATCH` are faster presets,
  :data:`MANY_PIXELS` gives DE 20 pixels in extreme colours.
* :func:`sparse_attack` (with :data:`SPARSE`) is our strongest many-pixel search: a sensitivity scan and
  greedy random search, much stronger than DE at 20 pixels on the same 30,000 queries.
* :func:`attack_many` runs the study (many faces x pixel counts x fitness x budgets) into an
  :class:`AttackStudy` table.
* :func:`plot_history` and :func:`plot_attack` draw the confidence curve and the before/after faces.

The package, one module per concern: ``settings`` (choices, presets, :func:`check_attack_params`),
``pixels`` (candidates to images), ``scoring`` (:class:`Scorer`, the query cache), ``run`` (:class:`AttackRun`,
the core every attack shares, and the results), ``de`` (:func:`one_pixel_attack`), ``sparse``
(:func:`sparse_attack`), ``photo`` (:func:`photo_attack`: the whole photo-to-label pipeline under attack), ``study`` (:func:`attack_many`, :class:`AttackStudy`) and ``plots``.
A new attack goes in a module of its own, built on :class:`AttackRun`.
"""

from __future__ import annotations

from __future__ import annotations

from .de import _initial_population, one_pixel_attack
from .pixels import _check_image, candidate_bounds, decode_candidates, perturb
from .plots import (
    LINE_STYLES,
    MARKERS,
    OKABE_ITO,
    best_candidate_curve,
    plot_attack,
    plot_confidence_histogram,
    plot_drops,
    plot_fitness_curves,
    plot_gallery,
    plot_history,
    plot_study,
    saturation,
    series_style,
)
from .photo import PhotoAttackResult, held_out_photos, photo_attack, plot_photo_attack
from .run import AttackResult, AttackRun, AttackStopped, GenerationState, check_unseen_faces
from .scoring import Scorer, _margin, _QueryCache, as_scorer
from .settings import (
    COLOR_CHOICES,
    FITNESS_CHOICES,
    INIT_CHOICES,
    MANY_PIXELS,
    PAPER,
    PAPER_SUCCESS_RATE,
    PRESETS,
    QUICK,
    SPARSE,
    STRATEGY_CHOICES,
    WATCH,
    check_attack_params,
)
from .sparse import sparse_attack
from .study import AttackStudy, _StudyProgress, attack_many

__all__ = [
    "perturb",
    "decode_candidates",
    "candidate_bounds",
    "one_pixel_attack",
    "sparse_attack",
    "photo_attack",
    "PhotoAttackResult",
    "held_out_photos",
    "plot_photo_attack",
    "AttackRun",
    "AttackResult",
    "GenerationState",
    "AttackStopped",
    "check_attack_params",
    "check_unseen_faces",
    "PAPER",
    "QUICK",
    "WATCH",
    "MANY_PIXELS",
    "SPARSE",
    "PRESETS",
    "FITNESS_CHOICES",
    "COLOR_CHOICES",
    "Scorer",
    "as_scorer",
    "attack_many",
    "AttackStudy",
    "plot_history",
    "plot_attack",
    "plot_study",
    "plot_gallery",
    "plot_confidence_histogram",
    "plot_drops",
    "plot_fitness_curves",
    "best_candidate_curve",
    "series_style",
    "OKABE_ITO",
    "saturation",
    "PAPER_SUCCESS_RATE",
]
