"""The attack study: many faces x pixel counts x fitnesses x budgets, into one :class:`AttackStudy` table."""

from __future__ import annotations

import functools
import math
import os
import time
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from ..common import ParameterError, ParameterTypeError, check_choice, check_int, progress, renamed_flag
from .de import one_pixel_attack
from .run import AttackResult, check_unseen_faces
from .scoring import Scorer, _margin, as_scorer
from .settings import FITNESS_CHOICES
from .sparse import sparse_attack


@dataclass
class AttackStudy:
    """Every attack of :func:`attack_many` (``records``, one dict each) and the summary ``table()``."""

    records: list[dict]
    results: list[AttackResult]
    skipped: list[dict]
    seconds: float

    @classmethod
    def combine(cls, *studies: "AttackStudy") -> "AttackStudy":
        """One study holding the attacks of several (for one table or one plot)."""
        return cls(records=[r for s in studies for r in s.records], results=[r for s in studies for r in s.results],
                   skipped=list(studies[0].skipped) if studies else [], seconds=sum(s.seconds for s in studies))

    def largest_drops(self) -> dict[int, float]:
        """The largest true-class probability drop any attack reached on each face (face index -> drop)."""
        out: dict[int, float] = {}
        for r in self.records:
            out[r["index"]] = max(out.get(r["index"], -np.inf), r["confidence_drop"])
        return out

    def table(self) -> list[dict]:
        """One row per (pixels, fitness, popsize, maxiter): attacks, successes, success rate with its 95%
        Wilson interval (``ci_low``, ``ci_high``), mean and median confidence drop, mean queries to success
        (NaN when nothing succeeded; the printed tables show "-")."""
        groups: dict[tuple, list[dict]] = {}
        for r in self.records:
            groups.setdefault((r["pixels"], r["fitness"], r["popsize"], r["maxiter"], r["colors"], r.get("method", "de")),
                              []).append(r)
        from ..claims import wilson_interval

        rows = []
        for (px, fit, pop, it, col, meth), recs in groups.items():
            wins = [r for r in recs if r["success"]]
            drops = np.array([r["confidence_drop"] for r in recs])
            lo, hi = wilson_interval(len(wins), len(recs))
            rows.append(dict(
                method=meth, pixels=px, fitness=fit, popsize=pop, maxiter=it, colors=col, budget=pop * (it + 1), attacks=len(recs),
                successes=len(wins), success_rate=len(wins) / len(recs), ci_low=lo, ci_high=hi,
                mean_confidence_drop=float(drops.mean()), median_confidence_drop=float(np.median(drops)),
                max_confidence_drop=float(drops.max()),
                mean_queries_to_success=float(np.mean([r["queries"] for r in wins])) if wins else float("nan"),
                mean_seconds=float(np.mean([r["seconds"] for r in recs])),
            ))
        return rows

    def rate(self, pixels: int, fitness: str, **match: Any) -> float:
        """Success rate of one configuration (extra keys such as popsize=.. narrow it down)."""
        rows = [r for r in self.table() if r["pixels"] == pixels and r["fitness"] == fitness
                and all(r.get(k) == v for k, v in match.items())]
        if not rows:
            raise KeyError(f"no attacks with pixels={pixels}, fitness={fitness!r}, {match}")
        succ = sum(r["successes"] for r in rows)
        return succ / sum(r["attacks"] for r in rows)

    def column(self, key: str, **match: Any) -> np.ndarray:
        """One field of the per-attack records, for the attacks matching ``match`` (e.g. pixels=1)."""
        return np.array([r[key] for r in self.records if all(r.get(k) == v for k, v in match.items())])

    def __str__(self) -> str:
        head = f"{'method':>6} {'pixels':>6} {'fitness':>11} {'popsize':>7} {'gens':>4} {'colors':>7} {'attacks':>7} {'success':>8} {'rate [95% interval]':>22} {'mean drop':>9} {'med drop':>9} {'q to success':>12}"
        lines = [head]
        for r in self.table():
            q = "-" if math.isnan(r["mean_queries_to_success"]) else f"{r['mean_queries_to_success']:,.0f}"
            lines.append(
                f"{r['method']:>6} {r['pixels']:>6} {r['fitness']:>11} {r['popsize']:>7} {r['maxiter']:>4} {r['colors']:>7} {r['attacks']:>7} "
                f"{r['successes']:>8} {_rate_text(r):>22} {r['mean_confidence_drop']:>9.4f} "
                f"{r['median_confidence_drop']:>9.4f} {q:>12}"
            )
        if self.skipped:
            lines.append(f"({len(self.skipped)} face(s) skipped: {', '.join(sorted({s['reason'] for s in self.skipped}))})")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cols = ["method", "pixels", "fitness", "popsize", "maxiter", "colors", "attacks", "successes", "success_rate",
                "mean_confidence_drop", "median_confidence_drop", "mean_queries_to_success"]
        heads = {"success_rate": "success rate [95% interval]"}
        out = ["<table><tr>" + "".join(f"<th>{heads.get(c, c.replace('_', ' '))}</th>" for c in cols) + "</tr>"]
        for r in self.table():
            cells = []
            for c in cols:
                v = r[c]
                if c == "success_rate":
                    v = _rate_text(r)
                elif isinstance(v, float):
                    v = "-" if math.isnan(v) else (f"{v:,.0f}" if c.startswith("mean_q") else f"{v:.4f}")
                cells.append(f"<td>{v}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</table>")
        if self.skipped:
            out.append(f"<p>{len(self.skipped)} face(s) skipped (not attacked): "
                       f"{', '.join(sorted({s['reason'] for s in self.skipped}))}.</p>")
        return "".join(out)

    def __repr__(self) -> str:
        return f"<AttackStudy of {len(self.records)} attacks>\n{self}"


class _StudyProgress:
    """attack_many's progress: in a notebook one line updated in place (its last state, "40 of 40 attacks
    done", is what a saved notebook keeps: a widget bar would be saved at 0%); elsewhere a tqdm bar."""

    def __init__(self, total: int, show: bool):
        from ..common import in_notebook

        self.total, self.done, self.started, self.last = total, 0, time.perf_counter(), 0.0
        self.handle = self.bar = None
        if not show or total == 0:
            return
        if in_notebook():
            from IPython.display import display

            self.handle = display(self._text(0), raw=True, display_id=True)
        else:
            self.bar = progress(total=total, desc="attacks")

    def _text(self, successes: int, final: bool = False) -> dict:
        took = time.perf_counter() - self.started
        line = (f"attacks: {self.done} of {self.total} done, {successes} succeeded, {took:.0f} s"
                + ("" if final or self.done == 0 else f" (about {took / self.done * (self.total - self.done):.0f} s to go)"))
        return {"text/plain": line}

    def update(self, successes: int) -> None:
        self.done += 1
        self.successes = successes
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(successes=successes)
        elif self.handle is not None and (time.perf_counter() - self.last > 1.0 or self.done == self.total):
            self.last = time.perf_counter()
            self.handle.update(self._text(successes, final=self.done == self.total), raw=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.handle is not None:
            self.handle.update(self._text(getattr(self, "successes", 0), final=True), raw=True)


def _rate_text(row: dict) -> str:
    """'2.5% [0.4%, 12.9%]': a table row's success rate and its 95% Wilson interval."""
    return f"{row['success_rate']:.1%} [{row['ci_low']:.1%}, {row['ci_high']:.1%}]"


def attack_many(
    predict: Any,
    images: Any,
    labels: Any,
    *,
    pixels: Iterable[int] = (1,),
    fitness: Iterable[str] = ("probability", "margin"),
    budgets: Iterable[tuple[int, int] | Mapping[str, int]] = ((400, 75),),
    only_correct: bool = True,
    method: str = "de",
    seed: int = 0,
    keep_results: bool = True,
    verbose: bool = True,
    executor: Executor | None = None,
    engine: str | None = None,
    **attack_kwargs: Any,
) -> AttackStudy:
    """Attack every image with every combination of pixel count, fitness and budget.

    ``budgets`` are ``(popsize, maxiter)`` pairs (the paper's is ``(400, 75)``). ``method="sparse"`` runs
    :func:`sparse_attack` instead of DE, with ``budget = popsize x (maxiter + 1)`` queries. Faces the model already
    gets wrong are skipped when ``only_correct`` (as in the paper) and listed in ``study.skipped``.
    Attack ``i`` of a face uses seed ``seed + face index``, so a configuration's result does not depend on
    which other configurations ran. Extra keywords (``colors=``, ``recombination=``, ...) go to
    :func:`one_pixel_attack`. ``verbose=False`` hides the progress line (``show_progress=`` is its old name).
    Faces the model trained or validated on are refused (:class:`maskedu.model.SeenFaceError`) when
    ``predict`` wraps a model that carries its split record: a study on them is no held-out result.

    ``predict`` may also be the path of a model saved by :func:`maskedu.model.save_model` (its split file
    beside it), run by ``engine`` ("keras" by default, or "tflite"). That is what ``executor=`` needs: any
    :class:`concurrent.futures.Executor` (a Dask ``Client(...).get_executor()``, a ``ProcessPoolExecutor``)
    runs the attacks as separate jobs, each worker loading the model from the file once (so the path must be
    readable there) with the split that guards it. Every job carries its face's seed, so the study equals the
    serial one attack for attack (same pixels, queries and verdicts; only ``seconds`` differ).

    >>> study = attack_many(model, crops.images[:20], crops.labels[:20], pixels=(1, 3))   # doctest: +SKIP
    >>> print(study)                                                                       # doctest: +SKIP
    >>> study = attack_many("data/models/resnet.keras", faces, labels,                     # doctest: +SKIP
    ...                     executor=Client("tcp://scheduler:8786").get_executor())
    """
    if "show_progress" in attack_kwargs:
        verbose = renamed_flag(attack_kwargs.pop("show_progress"), old="show_progress", where="attack_many")
    started = time.perf_counter()
    imgs = np.asarray(images)
    if imgs.ndim == 3:
        imgs = imgs[None]
    if imgs.ndim != 4:
        raise ValueError(f"images must be a batch of shape (N, height, width, 3), got {imgs.shape}.")
    labs = np.asarray(labels).reshape(-1)
    if len(labs) != len(imgs):
        raise ValueError(f"got {len(imgs)} images but {len(labs)} labels; give one label per image.")
    pixel_list = [check_int("pixels", p, minimum=1) for p in (pixels if isinstance(pixels, Iterable) else [pixels])]
    fitness_list = [fitness] if isinstance(fitness, str) else list(fitness)
    for f in fitness_list:
        check_choice("fitness", f, FITNESS_CHOICES)
    check_choice("method", method, ("de", "sparse"))
    budget_list = []
    for b in budgets:
        if isinstance(b, Mapping):
            budget_list.append((check_int("popsize", b["popsize"], minimum=5), check_int("maxiter", b["maxiter"], minimum=0)))
        else:
            pop, it = b
            budget_list.append((check_int("popsize", pop, minimum=5), check_int("maxiter", it, minimum=0)))
    if not pixel_list or not fitness_list or not budget_list:
        raise ValueError("pixels, fitness and budgets each need at least one value.")
    model_file, engine = _check_model_source(predict, engine, executor)
    scorer = as_scorer(predict) if model_file is None else scorer_from_file(model_file, engine)
    check_unseen_faces(scorer, _check_batch(imgs))
    probs, prior_logits = scorer(imgs)
    predicted = probs.argmax(axis=1)
    skipped = []
    todo = []
    for i in range(len(imgs)):
        if labs[i] < 0 or labs[i] >= probs.shape[1]:
            skipped.append(dict(index=i, reason="label not a model class"))
        elif only_correct and predicted[i] != labs[i]:
            skipped.append(dict(index=i, reason="already misclassified"))
        else:
            todo.append(i)
    configs = [(p, f, b) for p in pixel_list for f in fitness_list for b in budget_list]
    # one job per (configuration, face), in the serial order; each carries everything it needs, its seed included
    jobs = [dict(image=imgs[i], label=int(labs[i]), index=i, prior_logits=prior_logits[i], pixels=p, fitness=f,
                 popsize=pop, maxiter=it, method=method, seed=seed + i, attack_kwargs=attack_kwargs)
            for p, f, (pop, it) in configs for i in todo]
    bar = _StudyProgress(len(jobs), verbose)
    outcomes: list[tuple[dict, AttackResult]] = []
    try:
        if executor is None:
            for job in jobs:
                outcomes.append(_attack_one(scorer, **job))
                bar.update(sum(rec["success"] for rec, _ in outcomes))
        else:
            futures = [executor.submit(_attack_job, model_file, engine, job) for job in jobs]
            try:
                successes = 0
                for fut in as_completed(futures):
                    successes += fut.result()[0]["success"]  # a worker's error (SeenFaceError, ...) is raised here
                    bar.update(successes)
                outcomes = [fut.result() for fut in futures]
            finally:
                for fut in futures:
                    fut.cancel()
    finally:
        bar.close()
    records = [rec for rec, _ in outcomes]
    results = [res for _, res in outcomes] if keep_results else []
    return AttackStudy(records=records, results=results, skipped=skipped, seconds=time.perf_counter() - started)


def _check_model_source(predict: Any, engine: str | None, executor: Any) -> tuple[Path | None, str]:
    """The saved model's path (None for a live model or function) and the engine to run it with."""
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise ParameterTypeError(
            f"executor must be a concurrent.futures.Executor (something with .submit), such as "
            f"dask.distributed.Client(...).get_executor() or a ProcessPoolExecutor; got {type(executor).__name__}.")
    if isinstance(predict, (str, os.PathLike)):
        from ..model import ENGINES

        # absolute: a worker may start in another folder (on a cluster, the same path on a shared filesystem)
        return Path(predict).expanduser().absolute(), check_choice("engine", "keras" if engine is None else engine, ENGINES)
    if executor is not None:
        raise ParameterError(
            f"with executor=, predict must be the path of a saved model, not a live {type(predict).__name__}: each "
            "worker builds its own model from the file (a live model cannot be shipped to another process). Save it "
            "with maskedu.model.save_model(model, 'model.keras') (its split file goes beside it and keeps the "
            "leak guard) and pass that path, with engine='tflite' for the TensorFlow Lite runtime.")
    if engine is not None:
        raise ParameterError(
            f"engine={engine!r} applies when predict is a saved model's path; for a live model pass "
            f"maskedu.model.make_predict_fn(model, engine={engine!r}) as predict instead.")
    return None, "keras"


@functools.lru_cache(maxsize=4)
def _cached_predict_fn(path: str, stamp: tuple[int, int], engine: str):
    from ..model import load_model, make_predict_fn

    return make_predict_fn(load_model(path), engine=engine)


def scorer_from_file(path: str | os.PathLike, engine: str = "keras") -> Scorer:
    """A new :class:`Scorer` (its own query count) of the model saved at ``path``, run by ``engine``; the model
    is loaded once per process.

    The split file beside the model comes with it (:func:`maskedu.model.load_model`), so its attacks refuse the
    faces it trained on. A file saved again (another modification time or size) is loaded again. This is what
    each worker of ``attack_many(path, ..., executor=...)`` attacks with.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no model at {p}: save one with maskedu.model.save_model(model, {str(p)!r}) "
                                "(on a cluster, at a path every worker can read).")
    st = p.stat()
    return Scorer(_cached_predict_fn(str(p.resolve()), (st.st_mtime_ns, st.st_size), engine))


def _attack_job(model_file: Path, engine: str, job: dict) -> tuple[dict, AttackResult]:
    """One attack of :func:`attack_many` in a worker: the model from its file (once per process), then
    :func:`_attack_one`."""
    return _attack_one(scorer_from_file(model_file, engine), **job)


def _attack_one(scorer: Scorer, *, image: np.ndarray, label: int, index: int, prior_logits: np.ndarray, pixels: int,
                fitness: str, popsize: int, maxiter: int, method: str, seed: int,
                attack_kwargs: Mapping[str, Any]) -> tuple[dict, AttackResult]:
    """One face attacked with one configuration: its record (one row of ``study.records``) and its result."""
    if method == "sparse":
        res = sparse_attack(scorer, image, label, pixels=pixels, fitness=fitness, budget=popsize * (maxiter + 1),
                            seed=seed, **attack_kwargs)
    else:
        res = one_pixel_attack(scorer, image, label, pixels=pixels, fitness=fitness, popsize=popsize,
                               maxiter=maxiter, seed=seed, **attack_kwargs)
    # the logit margins before and after (one extra image): unlike a float32 probability, they
    # still tell a saturated face's attacks apart
    _, final_logits = scorer(res.adversarial[None])
    record = dict(
        index=index, label=label, pixels=pixels, fitness=fitness, popsize=popsize, maxiter=maxiter, method=method,
        prior_margin=_margin(prior_logits, label), final_margin=_margin(final_logits[0], label),
        colors=res.settings.get("colors", "any"), success=res.success,
        prior_confidence=res.prior_confidence, final_confidence=res.final_confidence,
        confidence_drop=res.confidence_drop, queries=res.queries, evaluations=res.evaluations,
        generations=res.generations, seconds=res.seconds, stop_reason=res.stop_reason,
        tied_start=bool(res.history and res.history[0].population_min == res.history[0].population_max),
        tied_end=bool(res.history and res.history[-1].population_min == res.history[-1].population_max),
    )
    return record, res


def _check_batch(imgs: np.ndarray) -> np.ndarray:
    if imgs.dtype != np.uint8:
        raise TypeError(f"images must hold uint8 pixels (0..255), got dtype {imgs.dtype}.")
    if imgs.shape[-1] != 3:
        raise ValueError(f"images must have shape (N, height, width, 3), got {imgs.shape}.")
    return imgs


