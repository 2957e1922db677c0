"""The attacks' settings: the choices, the presets (the paper's and ours) and the one check of DE's settings.

>>> check_attack_params(popsize=40, maxiter=5, mutation=[0.5, 1])["mutation"]
(0.5, 1.0)
"""

from __future__ import annotations

import types
from typing import Any, Mapping

import numpy as np

from ..common import check_choice, check_int, check_number

#: The paper's one-pixel success rate on its mask classifier (1.77%).
PAPER_SUCCESS_RATE = 0.0177

FITNESS_CHOICES = ("margin", "probability")
INIT_CHOICES = ("latinhypercube", "random", "sobol", "halton")
COLOR_CHOICES = ("any", "extreme")
STRATEGY_CHOICES = (
    "best1bin", "best1exp", "rand1bin", "rand1exp", "rand2bin", "rand2exp",
    "randtobest1bin", "randtobest1exp", "currenttobest1bin", "currenttobest1exp", "best2bin", "best2exp",
)

#: The paper's settings, exactly as in the Hyperparticle/one-pixel-attack-keras code it followed:
#: 1 pixel, a population of 400 candidates, 75 generations (400 + 75 x 400 = 30,400 candidates scored),
#: recombination 1, scipy's default mutation (dithered between 0.5 and 1), "best1bin", a Latin-hypercube
#: start, the raw softmax probability of the true class as fitness, stop as soon as the label flips.
#: Use it as ``one_pixel_attack(predict, image, label, **PAPER)``.
PAPER: Mapping[str, Any] = types.MappingProxyType(dict(
    pixels=1, popsize=400, maxiter=75, fitness="probability", mutation=(0.5, 1.0), recombination=1.0,
    strategy="best1bin", init="latinhypercube", colors="any",
))


def _like_paper(**changes: Any) -> Mapping[str, Any]:
    """A read-only preset: the paper's settings with ``changes``."""
    return types.MappingProxyType({**PAPER, **changes})



#: A quick look (about 2,100 queries, a second or two on a small network): 100 candidates, 20 generations.
QUICK: Mapping[str, Any] = _like_paper(popsize=100, maxiter=20, fitness="margin")
#: What the explorer widget starts with: the paper's search, a quarter of the budget (about 7,600 queries).
WATCH: Mapping[str, Any] = _like_paper(popsize=200, maxiter=37, fitness="margin")
#: Twenty pixels for DE, each colour channel 0 or 255 (8 colours instead of 16.7 million), margin
#: fitness, at the paper's budget. DE struggles here: 100 numbers and 75 generations are too few for it;
#: :func:`sparse_attack` with :data:`SPARSE` does much better on the same budget.
MANY_PIXELS: Mapping[str, Any] = _like_paper(pixels=20, maxiter=74, fitness="margin", recombination=0.7,
                                              colors="extreme")
#: Our strongest search within the paper's 30,000 queries, for :func:`sparse_attack`: 20 pixels in
#: extreme colours, a sensitivity scan, then greedy random search. ``sparse_attack(predict, face, label, **SPARSE)``.
SPARSE: Mapping[str, Any] = types.MappingProxyType(dict(
    pixels=20, budget=30_000, batch=100, scan=True, fraction=0.3, colors="extreme", fitness="margin",
))
PRESETS: Mapping[str, Mapping[str, Any]] = types.MappingProxyType(
    {"paper": PAPER, "quick": QUICK, "watch": WATCH, "many pixels": MANY_PIXELS}
)



def check_attack_params(*, pixels: Any = 1, popsize: Any = 400, maxiter: Any = 75, fitness: Any = "margin",
                        mutation: Any = (0.5, 1.0), recombination: Any = 1.0, strategy: Any = "best1bin",
                        init: Any = "latinhypercube", colors: Any = "any", seed: Any = None) -> dict:
    """Check :func:`one_pixel_attack`'s search settings and return them as clean keyword arguments.

    The attack and the explorer panel both call it, so a bad value gets the same message everywhere.
    ``popsize`` becomes the init array's length when ``init`` is an array. Raises ValueError/TypeError
    (maskedu's ParameterError) naming the setting and the values it accepts.

    >>> check_attack_params(pixels=3, popsize=50)["popsize"]
    50
    """
    pixels = check_int("pixels", pixels, minimum=1)
    popsize = check_int("popsize", popsize, minimum=5)
    maxiter = check_int("maxiter", maxiter, minimum=0)
    check_choice("fitness", fitness, FITNESS_CHOICES)
    check_choice("strategy", strategy, STRATEGY_CHOICES)
    check_choice("colors", colors, COLOR_CHOICES)
    if isinstance(mutation, (tuple, list)):
        if len(mutation) != 2:
            raise ValueError(f"mutation must be a number in [0, 2) or a pair (low, high) for dithering; got {mutation!r}.")
        lo = check_number("mutation low", mutation[0], minimum=0.0, maximum=2.0)
        hi = check_number("mutation high", mutation[1], minimum=0.0, maximum=2.0)
        if not lo <= hi or hi >= 2.0:
            raise ValueError(f"mutation=(low, high) needs 0 <= low <= high < 2; got {mutation!r}.")
        mutation = (lo, hi)
    else:
        mutation = check_number("mutation", mutation, minimum=0.0, maximum=2.0)
        if mutation >= 2.0:
            raise ValueError(f"mutation must be below 2, got {mutation}.")
    recombination = check_number("recombination", recombination, minimum=0.0, maximum=1.0)
    if seed is not None and not isinstance(seed, np.random.Generator):
        seed = check_int("seed", seed, minimum=0)
    if isinstance(init, str):
        check_choice("init", init, INIT_CHOICES)
    else:
        init = np.asarray(init, dtype=np.float64)
        if init.ndim != 2 or init.shape[1] != 5 * pixels or init.shape[0] < 5:
            raise ValueError(
                f"an init array must have shape (population >= 5, 5 * pixels = {5 * pixels}); got {init.shape}."
            )
        popsize = init.shape[0]
    return dict(pixels=pixels, popsize=popsize, maxiter=maxiter, fitness=fitness, mutation=mutation,
                recombination=recombination, strategy=strategy, init=init, colors=colors, seed=seed)
