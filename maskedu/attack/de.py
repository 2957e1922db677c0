"""The one-pixel attack (Su et al.): scipy's differential evolution over (x, y, r, g, b) candidates.

One batched model call per generation (``vectorized=True``), the starting population scored too, and
everything else (fitness, query cache, history, stopping, the result) from :class:`AttackRun`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..oracle import needs_access, oracle_for
from .pixels import _check_image, candidate_bounds, decode_candidates
from .run import AttackResult, AttackRun, AttackStopped, GenerationState
from .settings import check_attack_params


@needs_access("probabilities", uses="logits")
def one_pixel_attack(
    predict: Any,
    image: Any,
    label: int | str,
    *,
    pixels: int = 1,
    target: int | str | None = None,
    popsize: int = 400,
    maxiter: int = 75,
    fitness: str = "margin",
    mutation: float | tuple[float, float] = (0.5, 1.0),
    recombination: float = 1.0,
    strategy: str = "best1bin",
    init: str | np.ndarray = "latinhypercube",
    colors: str = "any",
    seed: int | np.random.Generator | None = None,
    on_generation: Callable[[GenerationState], Any] | None = None,
    early_stop: bool = True,
    class_names: Sequence[str] | None = None,
) -> AttackResult:
    """Change ``pixels`` pixels of ``image`` so that ``predict`` no longer says ``label``.

    Parameters
    ----------
    predict : a Keras model, ``maskedu.model.make_predict_fn(model)``, a defense, any function, or an Oracle
        From a batch ``(N, H, W, 3)`` of uint8 images to probabilities or logits ``(N, classes)``. The attack
        needs ``"probabilities"`` access (``one_pixel_attack.ACCESS``): an :class:`~maskedu.oracle.Oracle` of a
        lower level is refused; anything else is put behind ``Oracle(predict, "logits")`` (the margin from true
        logits), whose count is the result's ``queries``.
    image : uint8 array ``(H, W, 3)``
    label : the true class, an index (or a name from ``class_names``).
    pixels : how many pixels may change (k); a candidate is 5k numbers.
    target : None for "any other class" (untargeted), or the class to reach.
    popsize : candidates per generation (the whole population, as in the paper: 400).
    maxiter : generations after the starting population (the paper: 75).
    fitness : "margin" (default, from logits) or "probability" (the paper's).
    mutation, recombination, strategy : passed to ``scipy.optimize.differential_evolution``.
    init : "latinhypercube" (the paper's), "random", "sobol", "halton", or your own ``(popsize, 5k)`` array.
    colors : "any" or "extreme" (each channel 0 or 255: 8 colours instead of 16.7 million).
    seed : makes the attack reproducible.
    on_generation : called with a :class:`GenerationState` after the starting population and after each
        generation; return True to stop (the explorer's Stop button does this).
    early_stop : stop as soon as a candidate flips the label (the paper does).

    A face the model trained or validated on is refused (:class:`maskedu.model.SeenFaceError`) when
    ``predict`` is, or wraps, a model that carries its split record.

    Returns
    -------
    :class:`AttackResult`

    >>> result = one_pixel_attack(model, face, label=0, **PAPER)           # doctest: +SKIP
    >>> result.success, result.pixels, result.queries                      # doctest: +SKIP
    """
    from scipy.optimize import differential_evolution

    image = _check_image(image)
    h, w = image.shape[:2]
    p = check_attack_params(pixels=pixels, popsize=popsize, maxiter=maxiter, fitness=fitness, mutation=mutation,
                            recombination=recombination, strategy=strategy, init=init, colors=colors, seed=seed)
    pixels, popsize, maxiter, init, seed = p["pixels"], p["popsize"], p["maxiter"], p["init"], p["seed"]
    if pixels > h * w:
        raise ValueError(f"pixels={pixels} is more than the image has ({h} x {w} = {h * w}); use at most {h * w}.")
    settings = dict(pixels=pixels, popsize=popsize, maxiter=maxiter, fitness=fitness, mutation=p["mutation"],
                    recombination=p["recombination"], strategy=strategy,
                    init=init if isinstance(init, str) else "array", colors=colors,
                    seed=seed if not isinstance(seed, np.random.Generator) else "generator", target=target,
                    early_stop=early_stop)
    oracle = oracle_for(one_pixel_attack, predict)
    run = AttackRun(oracle, image, label, fitness=fitness, target=target, class_names=class_names,
                    settings=settings, on_generation=on_generation)
    if run.already_misclassified:
        return run.result(np.zeros((0, 5), np.int64), run.prior_probs[0], False, "already misclassified")

    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    bounds = candidate_bounds(h, w, pixels)
    init_pop = _initial_population(init, popsize, bounds, rng)

    def done() -> bool:
        return run.stopped or (early_stop and run.success_pixels is not None)

    def objective(x: np.ndarray) -> np.ndarray:
        """DE's population (5k, S) -> fitness (S,), in one batched model call; also records generation 0."""
        pop = np.atleast_2d(x.T) if x.ndim == 2 else x[None, :]
        try:
            decoded = decode_candidates(pop, h, w, colors=colors)
            probs, logits = run.score(decoded)
        except (ValueError, TypeError) as exc:  # scipy would hide it in a RuntimeError about its map-like callable
            run.error = exc
            raise AttackStopped from exc
        fit, ok = run.fitness_of(probs, logits)
        run.keep_success(fit, ok, decoded, probs)
        if not run.history:  # the starting population: scipy has no callback for it
            b = int(np.argmin(fit))
            run.record(0, probs, probs[b, run.label], fit[b], decoded[b], run.success_pixels is not None)
            if done():
                raise AttackStopped
        return fit

    def callback(intermediate_result) -> bool:
        """After each generation: record the population DE kept (already scored, so from the cache)."""
        res = intermediate_result
        decoded = decode_candidates(res.population, h, w, colors=colors)
        probs, _ = run.score(decoded, count=False)
        fit = np.asarray(res.population_energies, dtype=np.float64)
        b = int(np.argmin(fit))
        run.record(int(res.nit), probs, probs[b, run.label], fit[b], decoded[b], run.success_pixels is not None)
        return done()

    best_x = None
    try:
        if maxiter == 0:
            objective(init_pop.T)
        else:
            best_x = differential_evolution(
                objective, bounds, maxiter=maxiter, popsize=1, init=init_pop, mutation=p["mutation"],
                recombination=p["recombination"], strategy=strategy, rng=rng, callback=callback, polish=False,
                tol=0.0, atol=-1.0,  # never "converge": a population of ties would otherwise stop at once
                updating="deferred", vectorized=True,
            ).x
    except AttackStopped:
        pass
    if run.error is not None:  # the model's answer was unusable (ModelError) or had the wrong shape
        raise run.error

    if run.success_pixels is not None:
        reason = "success" if early_stop else ("stopped" if run.stopped else "budget")
        return run.result(run.success_pixels, run.success_probs, True, reason)
    if best_x is None:  # stopped before scipy returned: the best candidate recorded last
        adv_pixels = run.history[-1].best_pixels if run.history else np.zeros((0, 5), np.int64)
    else:
        adv_pixels = decode_candidates(best_x, h, w, colors=colors)[0]
    adv_probs = run.score(adv_pixels[None], count=False)[0][0] if len(adv_pixels) else run.prior_probs[0]
    return run.result(adv_pixels, adv_probs, False, "stopped" if run.stopped else "budget")


def _initial_population(init, popsize, bounds, rng) -> np.ndarray:
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    if not isinstance(init, str):
        return np.clip(init, lo, hi)
    d = len(bounds)
    if init == "random":
        unit = rng.random((popsize, d))
    else:
        from scipy.stats import qmc

        sampler = {"latinhypercube": qmc.LatinHypercube, "sobol": qmc.Sobol, "halton": qmc.Halton}[init](d=d, rng=rng)
        if init == "sobol":  # the first popsize of 2**m points: the same points, without scipy's warning about
            # sizes that are not powers of two (and without touching the process-wide warning filters)
            unit = sampler.random_base2((popsize - 1).bit_length())[:popsize]
        else:
            unit = sampler.random(popsize)
    # keep strictly inside the box (scipy refuses an init exactly on a bound only for some strategies)
    unit = np.clip(unit, 0.0, np.nextafter(1.0, 0.0))
    return lo + unit * (hi - lo)
