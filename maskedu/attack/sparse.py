"""A many-pixel attack by greedy random search (:func:`sparse_attack`), on the same :class:`AttackRun` core."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..common import check_choice, check_int, check_number
from ..oracle import needs_access, oracle_for
from .pixels import _check_image
from .run import AttackResult, AttackRun, GenerationState
from .settings import COLOR_CHOICES, FITNESS_CHOICES

#: Steps in a row that send no new image (all proposals answered from the cache) after which
#: :func:`sparse_attack` stops as "exhausted": queries are the budget, so without this a search whose
#: neighbourhood holds nothing new would draw cached proposals for ever.
STALE_STEPS = 50


@needs_access("probabilities", uses="logits")
def sparse_attack(
    predict: Any,
    image: Any,
    label: int | str,
    *,
    pixels: int = 20,
    budget: int = 30_000,
    batch: int = 100,
    scan: bool = True,
    fraction: float = 0.3,
    colors: str = "extreme",
    fitness: str = "margin",
    target: int | str | None = None,
    seed: int | None = None,
    on_generation: Callable[[GenerationState], Any] | None = None,
    early_stop: bool = True,
    class_names: Sequence[str] | None = None,
) -> AttackResult:
    """A many-pixel attack by greedy random search, our strongest within the paper's 30,000 queries.

    Written by hand because seeing it is the lesson: where DE with 20 pixels (100 numbers) and 400
    candidates has too few generations to get anywhere, a plain hill-climber does better.

    1. ``scan``: set every pixel, one at a time, to its opposite extreme colour (each channel 0 if it was
       bright, else 255): ``H x W`` queries that map where the model is sensitive.
    2. Start from ``pixels`` positions drawn in proportion to that sensitivity, in those colours.
    3. Each step, make ``batch`` proposals, each moving or recolouring a few of the pixels (a ``fraction``
       of them at first, shrinking to one), score them in one model call, and keep the best if it beats
       the current one. Repeat until the label flips or ``budget`` queries are used, or until
       :data:`STALE_STEPS` steps in a row send nothing new (every proposal an image already asked about,
       answered free from the cache): the neighbourhood is exhausted and the search stops ("exhausted")
       rather than drawing the same proposals forever.

    ``on_generation`` is called after the scan (generation 0) and after each step; the history's
    population band is that of the step's proposals. Returns an :class:`AttackResult` like
    :func:`one_pixel_attack` (and, like it, needs ``"probabilities"`` access, runs through an
    :class:`~maskedu.oracle.Oracle` and refuses faces the model learned from).
    """
    image = _check_image(image)
    h, w = image.shape[:2]
    pixels = check_int("pixels", pixels, minimum=1, maximum=h * w)
    budget = check_int("budget", budget, minimum=2)
    batch = check_int("batch", batch, minimum=1)
    fraction = check_number("fraction", fraction, minimum=0.0, maximum=1.0)
    check_choice("colors", colors, COLOR_CHOICES)
    check_choice("fitness", fitness, FITNESS_CHOICES)
    if seed is not None:
        seed = check_int("seed", seed, minimum=0)
    settings = dict(method="sparse", pixels=pixels, budget=budget, batch=batch, scan=scan, fraction=fraction,
                    colors=colors, fitness=fitness, target=target, seed=seed, early_stop=early_stop)
    oracle = oracle_for(sparse_attack, predict)
    run = AttackRun(oracle, image, label, fitness=fitness, target=target, class_names=class_names,
                    settings=settings, on_generation=on_generation)
    if run.already_misclassified:
        return run.result(np.zeros((0, 5)), run.prior_probs[0], False, "already misclassified")
    rng = np.random.default_rng(seed)
    label = run.label

    def opposite(ys, xs):
        return np.where(image[ys, xs] >= 128, 0, 255)

    def random_colours(shape):
        if colors == "extreme":
            return rng.integers(0, 2, (*shape, 3)) * 255
        return rng.integers(0, 256, (*shape, 3))

    # 1. the scan: every pixel on its own, in its opposite colour
    ys, xs = np.divmod(np.arange(h * w), w)
    weights = np.ones(h * w)
    f0 = run.fitness_of(run.prior_probs, run.prior_logits)[0][0]
    scan_probs = run.prior_probs
    if scan and h * w + 1 < budget:
        single = np.concatenate([xs[:, None], ys[:, None], opposite(ys, xs)], axis=1)[:, None, :]
        scan_probs, scan_logits = run.score(single)
        sfit, sok = run.fitness_of(scan_probs, scan_logits)
        weights = np.maximum(f0 - sfit, 0.0) + 1e-3 * max(f0 - sfit.min(), 1e-9)
        if sok.any() and early_stop:
            j = int(np.flatnonzero(sok)[np.argmin(sfit[sok])])
            run.record(0, scan_probs, scan_probs[j, label], sfit[j], single[j], True)
            return run.result(single[j], scan_probs[j], True, "success")
    # 2. the start: positions drawn by sensitivity
    prob = weights / weights.sum()
    k = pixels
    pos = rng.choice(h * w, size=k, replace=False, p=prob)
    current = np.concatenate([xs[pos][:, None], ys[pos][:, None], opposite(ys[pos], xs[pos])], axis=1)
    pr, lg = run.score(current[None])
    cur_fit, cur_ok = run.fitness_of(pr, lg)
    cur_fit, cur_ok, cur_probs = float(cur_fit[0]), bool(cur_ok[0]), pr[0]
    run.record(0, scan_probs, cur_probs[label], cur_fit, current, cur_ok)
    # 3. greedy steps: a batch of proposals, keep the best if it beats the current candidate
    step = stale = 0
    while not run.stopped and not (cur_ok and early_stop) and run.queries + batch <= budget and stale < STALE_STEPS:
        step += 1
        sent = run.queries
        m = max(1, int(round(k * fraction * (1.0 - run.queries / budget))))
        props = np.repeat(current[None], batch, axis=0)
        # each proposal: m of the k pixels (a random subset), each moved with probability 1/2 to a position
        # drawn by sensitivity, and recoloured; drawn for the whole batch at once
        rows = np.arange(batch)[:, None]
        which = np.argsort(rng.random((batch, k)), axis=1)[:, :m]
        move = rng.random((batch, m)) < 0.5
        new = rng.choice(h * w, size=(batch, m), p=prob)
        props[rows, which, 0] = np.where(move, xs[new], props[rows, which, 0])
        props[rows, which, 1] = np.where(move, ys[new], props[rows, which, 1])
        props[rows, which, 2:] = random_colours((batch, m))
        pr, lg = run.score(props)
        stale = stale + 1 if run.queries == sent else 0
        fit, ok = run.fitness_of(pr, lg)
        j = int(np.argmin(fit))
        if fit[j] < cur_fit:
            current, cur_fit, cur_ok, cur_probs = props[j].copy(), float(fit[j]), bool(ok[j]), pr[j]
        run.record(step, pr, cur_probs[label], cur_fit, current, cur_ok)
    if cur_ok and early_stop:
        reason = "success"
    else:
        reason = "stopped" if run.stopped else ("exhausted" if stale >= STALE_STEPS else "budget")
    return run.result(current, cur_probs, cur_ok, reason)
