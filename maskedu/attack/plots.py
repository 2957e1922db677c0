"""The attack's plots. Every function returns a :class:`matplotlib.figure.Figure`, drawn once in a notebook;
pass ``ax=`` (or ``fig=``) to draw into your own.

>>> import numpy as np
>>> plot_confidence_histogram(np.array([[0.9, 0.1], [0.2, 0.8]]), [0, 1]).axes[0].get_xlabel()[:16]
'1 - p(true class'
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from .pixels import perturb
from .run import AttackResult, GenerationState
from .scoring import _margin, as_scorer
from .settings import PAPER_SUCCESS_RATE
from .study import AttackStudy

from ..plotting import bare_figure as _figure


def plot_history(result_or_history: AttackResult | Sequence[GenerationState], *, ax=None, label: str | None = None,
                 title: str | None = None):
    """True-class confidence per generation: the best candidate, the population's band, the 0.5 line.

    Returns the figure; pass ``ax=`` to draw into your own axes.
    """
    history = result_or_history.history if isinstance(result_or_history, AttackResult) else list(result_or_history)
    if ax is None:
        ax = _figure(figsize=(6, 3.2)).add_subplot()
    ax.axhline(0.5, color="crimson", lw=1, ls="--", label="decision line (0.5)")
    if history:
        g = np.array([s.generation for s in history])
        ax.fill_between(g, [s.population_min for s in history], [s.population_max for s in history],
                        color="tab:blue", alpha=0.15, lw=0, label="population (min to max)")
        ax.fill_between(g, [s.population_q25 for s in history], [s.population_q75 for s in history],
                        color="tab:blue", alpha=0.3, lw=0, label="population (middle half)")
        ax.plot(g, [s.best_confidence for s in history], color="tab:blue", lw=2, marker=".", label=label or "best candidate")
        ax.set_xlim(0, max(1, int(g.max())))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("generation")
    ax.set_ylabel("true-class probability")
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(loc="lower left", fontsize=7)
    ax.figure.tight_layout()
    return ax.figure


def plot_attack(result: AttackResult, *, zoom: int = 7, fig=None, title: bool = True):
    """Original and adversarial face side by side, changed pixels circled, zoomed patches of (up to 2) pixels below.

    Pass ``fig=matplotlib.figure.Figure()`` to draw without pyplot (as the explorer does from its thread).
    """
    from matplotlib.patches import Circle, Rectangle

    if fig is None:
        fig = _figure(figsize=(7.5, 4.6))
    else:
        fig.set_size_inches(7.5, 4.6)
    grid = fig.add_gridspec(2, 4, height_ratios=[3, 1.3])
    axes = [fig.add_subplot(grid[0, :2]), fig.add_subplot(grid[0, 2:])]
    zoom_axes = [fig.add_subplot(grid[1, i]) for i in range(4)]
    h, w = result.original.shape[:2]
    radius = max(1.5, 0.06 * max(h, w))
    for ax, img, probs, name in [
        (axes[0], result.original, result.prior_probs, "original"),
        (axes[1], result.adversarial, result.final_probs, "adversarial"),
    ]:
        ax.imshow(img, interpolation="nearest")
        cls = int(np.argmax(probs))
        ax.set_title(f"{name}: predicted {result.name(cls)}\np({result.name(result.label)}) = {probs[result.label]:.4f}",
                     fontsize=9, color="crimson" if cls != result.label else "black")
        ax.axis("off")
        if name == "adversarial":
            for x, y, *_ in result.pixels.tolist():
                ax.add_patch(Circle((x, y), radius, fill=False, color="yellow", lw=2))
    shown = result.pixels.tolist()[:2]
    for j, (x, y, *_rgb) in enumerate(shown):
        for ax, img, name in [(zoom_axes[2 * j], result.original, "before"), (zoom_axes[2 * j + 1], result.adversarial, "after")]:
            y0 = min(max(0, y - zoom // 2), max(0, h - zoom))
            x0 = min(max(0, x - zoom // 2), max(0, w - zoom))
            ax.imshow(img[y0 : y0 + zoom, x0 : x0 + zoom], interpolation="nearest")
            ax.add_patch(Rectangle((x - x0 - 0.5, y - y0 - 0.5), 1, 1, fill=False, color="yellow", lw=2))
            ax.set_title(f"({x},{y}) {name}", fontsize=8)
    for ax in zoom_axes:
        ax.axis("off")
    if title:
        more = f" (zoom on the first 2 of {len(result.pixels)})" if len(result.pixels) > 2 else ""
        fig.suptitle(
            f"{'label flipped' if result.success else 'label held'} · {len(result.pixels)} pixel(s){more} · "
            f"{result.queries:,} queries · {result.seconds:.1f} s", fontsize=10,
        )
    return fig


def saturation(probs: Any, labels: Any) -> dict:
    """How saturated the model's confidences are on these faces (probs from the model, labels the truth).

    Returns counts: faces, correct, ``exactly_one`` (the true-class probability is exactly 1.0 in the
    model's float32: every one-pixel candidate that does not flip a lot ties with it), ``above_0_9999``
    and ``above_0_99``, and the true-class probabilities themselves.
    """
    probs = np.asarray(probs)
    labels = np.asarray(labels).reshape(-1).astype(int)
    p = probs[np.arange(len(labels)), labels]
    correct = probs.argmax(axis=1) == labels
    return dict(
        faces=int(len(labels)), correct=int(correct.sum()), exactly_one=int((p == 1.0).sum()),
        above_0_9999=int((p > 0.9999).sum()), above_0_99=int((p > 0.99).sum()), true_class_probability=p,
    )


def plot_confidence_histogram(probs: Any, labels: Any, *, ax=None):
    """Histogram of the true-class probability, on a scale that spreads out the values near 1.

    The x axis is ``1 - p`` (log scale); faces where float32 gives exactly ``p = 1.0`` have no place
    on it and are counted in the title instead.
    """
    sat = saturation(probs, labels)
    p = sat["true_class_probability"].astype(np.float64)
    if ax is None:
        ax = _figure(figsize=(6, 3.2)).add_subplot()
    gap = 1.0 - p[p < 1.0]
    if len(gap):
        lo = max(1e-8, gap.min())
        bins = np.logspace(np.log10(lo), 0, 25)
        ax.hist(np.clip(gap, lo, 1.0), bins=bins, color="tab:blue")
    ax.set_xscale("log")
    ax.axvline(0.5, color="crimson", ls="--", lw=1, label="decision line (p = 0.5)")
    ax.set_xlabel("1 - p(true class)   (further left = more confident)")
    ax.set_ylabel("faces")
    ax.set_title(f"{sat['faces']} faces: {sat['exactly_one']} at exactly p = 1.0 (not shown), "
                 f"{sat['above_0_9999']} above 0.9999", fontsize=9)
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


#: Okabe & Ito's colour-blind-safe palette (black left out: it is the paper's marker), with a line style and
#: a marker per series, so series differ in three ways, not by colour alone.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (3, 1, 1, 1, 1, 1)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def series_style(i: int) -> dict:
    """Colour, line style and marker of the ``i``-th series of a plot (Okabe-Ito colours)."""
    return dict(color=OKABE_ITO[i % len(OKABE_ITO)], ls=LINE_STYLES[i % len(LINE_STYLES)], marker=MARKERS[i % len(MARKERS)])


def plot_study(study: AttackStudy, *, ax=None, paper: bool = True):
    """Success rate as the number of pixels grows, one series per method, fitness and budget, each with its
    95% Wilson interval as error bars, and the paper's 1.77% at one pixel beside them."""
    if ax is None:
        ax = _figure(figsize=(7, 3.8)).add_subplot()
    rows = study.table()
    keys = sorted({(r["method"], r["fitness"], r["popsize"], r["maxiter"], r["colors"]) for r in rows})
    for j, (meth, fit, pop, it, col) in enumerate(keys):
        mine = sorted((r for r in rows if (r["method"], r["fitness"], r["popsize"], r["maxiter"], r["colors"])
                       == (meth, fit, pop, it, col)), key=lambda r: r["pixels"])
        extra = ("" if col == "any" else f", {col} colours") + (", sparse search" if meth == "sparse" else "")
        x = np.array([r["pixels"] for r in mine], dtype=float) * (1.0 + 0.03 * (j - (len(keys) - 1) / 2))
        y = np.array([100 * r["success_rate"] for r in mine])
        err = np.array([[100 * (r["success_rate"] - r["ci_low"]) for r in mine],
                        [100 * (r["ci_high"] - r["success_rate"]) for r in mine]])
        style = series_style(j)
        ax.errorbar(x, y, yerr=err, color=style["color"], ls=style["ls"], marker=style["marker"], capsize=3, lw=1.5,
                    ms=6, label=f"{fit}, {pop} x {it + 1} = {pop * (it + 1):,}{extra} (n={mine[0]['attacks']})")
    if paper:
        ax.scatter([1], [100 * PAPER_SUCCESS_RATE], marker="*", s=200, color="black", zorder=5,
                   label="the paper (Hu et al. 2021): 1.77% at 1 pixel")
    ax.set_xscale("log")
    pix = sorted({r["pixels"] for r in rows})
    ax.set_xticks(pix)
    ax.set_xticklabels([str(p) for p in pix])
    ax.minorticks_off()
    ax.set_xlabel("pixels changed")
    ax.set_ylabel("success rate (%), 95% interval")
    ax.set_ylim(-3, 103)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax.figure.tight_layout()
    return ax.figure


def best_candidate_curve(result: AttackResult, predict: Any) -> dict[str, np.ndarray]:
    """The best candidate of each generation of an attack, scored again: its true-class probability (as
    float32 gives it) and its logit margin (true logit minus the other), which the probability hides once it
    rounds to 1.0. ``predict`` is the model the attack ran on (a model, or a function with ``.both``)."""
    scorer = as_scorer(predict)
    if not result.history:
        return dict(generation=np.zeros(0, int), probability=np.zeros(0), margin=np.zeros(0))
    batch = np.stack([perturb(result.original, s.best_pixels.reshape(1, -1))[0] if len(s.best_pixels)
                      else result.original for s in result.history])
    probs, logits = scorer(batch)
    margin = np.array([_margin(z, result.label) for z in logits])
    return dict(generation=np.array([s.generation for s in result.history]),
                probability=probs[:, result.label].astype(np.float64), margin=margin)


def plot_fitness_curves(attacks: Mapping[str, Mapping[str, AttackResult]], predicts: Mapping[str, Any], *, fig=None):
    """One column per model, two rows: the best candidate's true-class probability and its logit margin
    per generation, one series per fitness. ``attacks[model][fitness]`` is an :class:`AttackResult` and
    ``predicts[model]`` the model it ran on."""
    if fig is None:
        fig = _figure(figsize=(5.2 * len(attacks), 5.6))
    axes = fig.subplots(2, len(attacks), squeeze=False, sharex="col")
    for c, (model_name, by_fitness) in enumerate(attacks.items()):
        for j, (fit, res) in enumerate(by_fitness.items()):
            curve = best_candidate_curve(res, predicts[model_name])
            style = series_style(j)
            step = max(1, len(curve["generation"]) // 12)
            for r, key in enumerate(("probability", "margin")):
                # markers of the later series shifted half a step: identical curves still show both
                axes[r, c].plot(curve["generation"], curve[key], color=style["color"], ls=style["ls"], marker=style["marker"],
                                ms=4, markevery=((j * step) // 2 % step, step), lw=1.6, label=f"{fit} fitness")
        axes[0, c].axhline(0.5, color="black", lw=0.8, ls=(0, (1, 2)), label="decision line")
        axes[1, c].axhline(0.0, color="black", lw=0.8, ls=(0, (1, 2)), label="decision line")
        axes[0, c].set_title(model_name, fontsize=10)
        axes[0, c].set_ylabel("p(true class) of the best")
        axes[1, c].set_ylabel("logit margin of the best")
        axes[1, c].set_xlabel("generation")
        for ax in axes[:, c]:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_gallery(results: Sequence[AttackResult], *, n: int = 6, ncols: int = 3, only_success: bool = True):
    """Adversarial faces with their changed pixels circled and the prediction before -> after."""
    from matplotlib.patches import Circle

    chosen = [r for r in results if r.success or not only_success][:n]
    if not chosen:
        fig = _figure(figsize=(5, 1))
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no successful attack to show", ha="center", va="center")
        ax.axis("off")
        return fig
    nrows = math.ceil(len(chosen) / ncols)
    fig = _figure(figsize=(3 * ncols, 3.2 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, r in zip(axes.ravel(), chosen):
        ax.imshow(r.adversarial, interpolation="nearest")
        h, w = r.adversarial.shape[:2]
        for x, y, *_ in r.pixels.tolist():
            ax.add_patch(Circle((x, y), max(1.5, 0.05 * max(h, w)), fill=False, color="yellow", lw=1.5))
        ax.set_title(f"{r.name(r.predicted_before)} {r.prior_confidence:.3f}\n-> {r.name(r.predicted_after)} "
                     f"({len(r.pixels)} px, {r.queries:,} q)", fontsize=8)
    fig.tight_layout()
    return fig


def plot_drops(study: AttackStudy, *, ax=None, by: str = "pixels"):
    """The largest drop of the true-class probability per face, for each value of ``by`` (e.g. pixels).

    Success is all-or-nothing; this shows how close the failures came (0 = nothing moved, 1 = all of it).
    """
    if ax is None:
        ax = _figure(figsize=(6, 3.2)).add_subplot()
    faces = sorted({r["index"] for r in study.records})
    values = sorted({r[by] for r in study.records})
    width = 0.8 / max(1, len(values))
    for j, v in enumerate(values):
        best = {}
        for r in study.records:
            if r[by] == v:
                best[r["index"]] = max(best.get(r["index"], 0.0), r["confidence_drop"])
        ax.bar(np.arange(len(faces)) + j * width, [best.get(f, 0.0) for f in faces], width=width, label=f"{by} = {v}",
               color=OKABE_ITO[j % len(OKABE_ITO)], hatch=("", "//", "..", "xx", "\\\\", "++", "oo")[j % 7],
               edgecolor="white", lw=0.3)
    ax.set_xticks(np.arange(len(faces)) + 0.4 - width / 2)
    ax.set_xticklabels([str(f) for f in faces], fontsize=7)
    ax.set_xlabel("face")
    ax.set_ylabel("largest drop of p(true class)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    ax.figure.tight_layout()
    return ax.figure

