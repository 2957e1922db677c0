"""The core under every attack: :class:`AttackRun` (scores, fitness, query cache, history, stopping, result).

An attack is a search over candidates; what every search shares lives here, so that
:func:`~maskedu.attack.one_pixel_attack` (differential evolution) and :func:`~maskedu.attack.sparse_attack`
(greedy random search) only say how they propose candidates. A new attack is written the same way:

>>> import numpy as np
>>> logits = lambda batch: np.stack([np.full(len(batch), 2.0), batch[:, 0, 0, 0] / 50.0], axis=1)
>>> run = AttackRun(logits, np.zeros((4, 4, 3), np.uint8), 0, fitness="margin", settings={})
>>> candidates = np.array([[[0, 0, 50, 0, 0]], [[0, 0, 250, 0, 0]]])     # (S, k, 5): x, y, r, g, b
>>> probs, logits_ = run.score(candidates)
>>> fit, flipped = run.fitness_of(probs, logits_)
>>> flipped.tolist()
[False, True]
>>> run.result(candidates[1], probs[1], True, "success").summary()[:26]
'SUCCESS: with_mask 0.8808 '
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..common import check_int
from .pixels import _check_image, perturb
from .scoring import Scorer, _QueryCache, as_scorer

@dataclass
class GenerationState:
    """What the attack looks like after one generation (generation 0 is the starting population).

    ``best_confidence`` is the true-class probability of the best candidate so far;
    ``population_*`` summarise the true-class probability over the current population (min, quartiles,
    max), the band the explorer draws. ``best_pixels`` is the best candidate as a ``(k, 5)`` int array.
    """

    generation: int
    best_confidence: float
    best_fitness: float
    population_min: float
    population_q25: float
    population_median: float
    population_q75: float
    population_max: float
    best_pixels: np.ndarray
    queries: int
    evaluations: int
    seconds: float
    success: bool


@dataclass
class AttackResult:
    """The outcome of :func:`one_pixel_attack`.

    ``queries`` counts the images actually sent to the model (the original included); ``evaluations``
    counts the candidates DE scored (what a plain implementation would have queried: repeats of an
    identical whole-pixel candidate are answered from a cache). ``stop_reason`` is one of "success",
    "budget", "stopped" (``on_generation`` returned True), "exhausted" (:func:`~maskedu.attack.sparse_attack`: nothing
    new left to propose) or "already misclassified".
    """

    success: bool
    label: int
    target: int | None
    original: np.ndarray
    adversarial: np.ndarray
    pixels: np.ndarray
    prior_probs: np.ndarray
    final_probs: np.ndarray
    queries: int
    evaluations: int
    generations: int
    seconds: float
    history: list[GenerationState]
    fitness: str
    stop_reason: str
    settings: dict = field(default_factory=dict)
    class_names: tuple[str, ...] | None = None

    @property
    def prior_confidence(self) -> float:
        """True-class probability before the attack."""
        return float(self.prior_probs[self.label])

    @property
    def final_confidence(self) -> float:
        """True-class probability of the adversarial image."""
        return float(self.final_probs[self.label])

    @property
    def confidence_drop(self) -> float:
        """How much the true-class probability fell (0 when nothing helped)."""
        return self.prior_confidence - self.final_confidence

    @property
    def predicted_before(self) -> int:
        return int(np.argmax(self.prior_probs))

    @property
    def predicted_after(self) -> int:
        return int(np.argmax(self.final_probs))

    def name(self, index: int) -> str:
        if self.class_names is not None and 0 <= index < len(self.class_names):
            return self.class_names[index]
        return f"class {index}"

    def curve(self) -> dict[str, np.ndarray]:
        """The history as arrays (generation, best, population min/q25/median/q75/max, queries)."""
        keys = ["generation", "best_confidence", "population_min", "population_q25", "population_median",
                "population_q75", "population_max", "queries"]
        return {k: np.array([getattr(h, k) for h in self.history]) for k in keys}

    def summary(self) -> str:
        verdict = "SUCCESS" if self.success else "no success"
        px = ", ".join(f"({x},{y}) -> ({r},{g},{b})" for x, y, r, g, b in self.pixels.tolist())
        return (
            f"{verdict}: {self.name(self.predicted_before)} {self.prior_confidence:.4f} -> "
            f"{self.name(self.predicted_after)}; true-class probability {self.prior_confidence:.4f} -> "
            f"{self.final_confidence:.4f} with {len(self.pixels)} pixel(s) [{px}]; {self.generations} generations, "
            f"{self.queries:,} queries ({self.evaluations:,} candidates scored), {self.seconds:.2f} s ({self.stop_reason})."
        )

    def __repr__(self) -> str:
        return f"<AttackResult {self.summary()}>"


class AttackStopped(Exception):
    """Raised inside the objective to end the search early (success in the starting population, or Stop)."""



class AttackRun:
    """One attack in progress: what :func:`one_pixel_attack` and :func:`sparse_attack` share.

    On creation it checks the image, refuses faces the model learned from (see :func:`check_unseen_faces`),
    scores the clean image once and checks ``label`` and ``target`` against the model's classes. Then:

    * :meth:`score` scores whole-pixel candidates ``(S, k, 5)``, each distinct image sent to the model once;
    * :meth:`fitness_of` turns scores into the fitness every search minimises, and says which flipped the label;
    * :meth:`keep_success` remembers the best candidate that flipped it;
    * :meth:`record` appends a :class:`GenerationState` to the history and asks ``on_generation`` whether to stop;
    * :meth:`result` builds the :class:`AttackResult`.
    """

    def __init__(self, predict: Any, image: Any, label: int | str, *, fitness: str, settings: dict,
                 target: int | str | None = None, class_names: Sequence[str] | None = None,
                 on_generation: Callable[[GenerationState], Any] | None = None):
        self.started = time.perf_counter()
        self.image = _check_image(image)
        self.height, self.width = self.image.shape[:2]
        self.fitness, self.settings, self.on_generation = fitness, settings, on_generation
        self.scorer: Scorer = as_scorer(predict)
        check_unseen_faces(self.scorer, self.image[None])
        names = tuple(class_names) if class_names is not None else None
        self.queries_before = self.scorer.images
        self.prior_probs, self.prior_logits = self.scorer(self.image[None], what="the clean image")
        self.n_classes = self.prior_probs.shape[1]
        if names is None:  # maskedu's two classes, or three (MASKEDU_CLASSES=3); None for other models
            from ..dataset import default_class_names

            names = default_class_names(self.n_classes)
        self.class_names = names
        self.label = _check_label("label", label, self.n_classes, names)
        if target is not None:
            target = _check_label("target", target, self.n_classes, names)
            if target == self.label:
                raise ValueError(f"target={target} is the true label itself; pick another class, or target=None "
                                 "for any other class.")
        self.target = target
        self.settings["target"] = target
        self.cache = _QueryCache(self.scorer, self.image, self.prior_probs, self.prior_logits)
        self.evaluations = 0  # candidates scored, repeats included (what a plain implementation would query)
        self.history: list[GenerationState] = []
        self.stopped = False  # on_generation asked to stop
        self.error: BaseException | None = None  # an error to raise once the search has unwound
        self.success_fit = np.inf
        self.success_pixels: np.ndarray | None = None
        self.success_probs: np.ndarray | None = None

    @property
    def queries(self) -> int:
        """Images sent to the model so far by this attack (the clean image included)."""
        return self.scorer.images - self.queries_before

    @property
    def already_misclassified(self) -> bool:
        """True when the clean image already is what the attack is after (nothing to do)."""
        return bool(self.fitness_of(self.prior_probs, self.prior_logits)[1][0])

    def fitness_of(self, probs: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The fitness to minimise for each row of scores, and whether each row reached the goal.

        Untargeted: the true-class probability ("probability") or the true logit minus the best other
        ("margin"); the goal is any other class on top. Targeted: 1 - p(target), or the best other logit
        minus the target's; the goal is the target on top.
        """
        label, target = self.label, self.target
        if target is None:
            if self.fitness == "probability":
                fit = probs[:, label]
            else:
                fit = logits[:, label] - np.delete(logits, label, axis=1).max(axis=1)
            return fit, np.argmax(logits, axis=1) != label
        if self.fitness == "probability":
            fit = 1.0 - probs[:, target]
        else:
            fit = np.delete(logits, target, axis=1).max(axis=1) - logits[:, target]
        return fit, np.argmax(logits, axis=1) == target

    def score(self, candidates: np.ndarray, *, count: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and logits of ``(S, k, 5)`` whole-pixel candidates (repeated images from the cache).

        ``count=False`` for a second look at candidates already counted (DE's end-of-generation summary).
        """
        if count:
            self.evaluations += len(candidates)
        return self.cache(candidates)

    def keep_success(self, fit: np.ndarray, ok: np.ndarray, candidates: np.ndarray, probs: np.ndarray) -> None:
        """Remember the best (lowest-fitness) candidate that reached the goal, if it beats the one kept."""
        if ok.any():
            i = int(np.flatnonzero(ok)[np.argmin(fit[ok])])
            if fit[i] < self.success_fit:
                self.success_fit = float(fit[i])
                self.success_pixels = candidates[i].copy()
                self.success_probs = probs[i].copy()

    def record(self, generation: int, population_probs: np.ndarray, best_confidence: float, best_fitness: float,
               best_pixels: np.ndarray, success: bool) -> bool:
        """Add a generation to the history (its population's true-class probabilities summarised); True to stop."""
        q = np.quantile(population_probs[:, self.label], [0.0, 0.25, 0.5, 0.75, 1.0])
        state = GenerationState(
            generation=generation, best_confidence=float(best_confidence), best_fitness=float(best_fitness),
            population_min=float(q[0]), population_q25=float(q[1]), population_median=float(q[2]),
            population_q75=float(q[3]), population_max=float(q[4]), best_pixels=np.asarray(best_pixels).copy(),
            queries=self.queries, evaluations=self.evaluations, seconds=time.perf_counter() - self.started,
            success=success,
        )
        self.history.append(state)
        if self.on_generation is not None and self.on_generation(state) is True:
            self.stopped = True
        return self.stopped

    def result(self, pixels: Any, probs: Any, success: bool, reason: str) -> AttackResult:
        """The :class:`AttackResult` for the adversarial ``pixels`` (``(k, 5)``; none for the clean image)."""
        pixels = np.asarray(pixels)
        adv = perturb(self.image, pixels.reshape(1, -1))[0] if len(pixels) else self.image.copy()
        return AttackResult(
            success=success, label=self.label, target=self.target, original=self.image.copy(), adversarial=adv,
            pixels=np.asarray(pixels, dtype=np.int64).reshape(-1, 5),
            prior_probs=self.prior_probs[0].astype(np.float64), final_probs=np.asarray(probs, dtype=np.float64),
            queries=self.queries, evaluations=self.evaluations,
            generations=self.history[-1].generation if self.history else 0,
            seconds=time.perf_counter() - self.started, history=self.history, fitness=self.fitness,
            stop_reason=reason, settings=self.settings, class_names=self.class_names,
        )


def check_unseen_faces(predict: Any, images: np.ndarray) -> None:
    """Refuse to attack faces the model trained or validated on (raises :class:`maskedu.model.SeenFaceError`).

    Applies when ``predict`` is, or wraps (``.model``, as a :class:`Scorer` or the training stage's prediction
    function do), a model that carries its split record (:func:`maskedu.model.train` and
    :func:`maskedu.model.load_model` attach it); any other predict function is left alone. An attack on a
    training face reported as held out would overstate how fragile the model is on new faces.
    """
    model_module = sys.modules.get("maskedu.model")
    check = getattr(model_module, "check_unseen", None)
    if check is None:  # the training stage was never imported: no model here carries a split record
        return
    seen: set[int] = set()
    candidate = predict
    for _ in range(8):  # Scorer -> its predict (an Oracle) -> a defense -> a classifier -> the Keras model ...
        if candidate is None or id(candidate) in seen:
            break
        seen.add(id(candidate))
        check(candidate, images)
        candidate = candidate.predict if isinstance(candidate, Scorer) else getattr(candidate, "model", None)


def _check_label(name: str, value: Any, n_classes: int, names: Sequence[str] | None) -> int:
    if isinstance(value, str):
        if names is None or value not in names:
            raise ValueError(f"{name}={value!r} is not a class name; the classes are {list(names or [])}.")
        return list(names).index(value)
    try:
        return check_int(name, value, minimum=0, maximum=n_classes - 1)
    except ValueError:
        named = f" ({', '.join(f'{i} = {c}' for i, c in enumerate(names))})" if names else ""
        raise ValueError(
            f"{name}={value} is out of range: the model has {n_classes} classes, so use 0..{n_classes - 1}{named}."
        ) from None

