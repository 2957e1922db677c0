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
"""

from __future__ import annotations

import math
import sys
import time
import types
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .common import check_choice, check_int, check_number, progress

__all__ = [
    "perturb",
    "decode_candidates",
    "candidate_bounds",
    "one_pixel_attack",
    "sparse_attack",
    "AttackResult",
    "GenerationState",
    "AttackStopped",
    "PAPER",
    "QUICK",
    "WATCH",
    "MANY_PIXELS",
    "SPARSE",
    "PRESETS",
    "FITNESS_CHOICES",
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
#: A quick look (about 2,100 queries, a second or two on a small network): 100 candidates, 20 generations.
QUICK: Mapping[str, Any] = types.MappingProxyType(dict(
    pixels=1, popsize=100, maxiter=20, fitness="margin", mutation=(0.5, 1.0), recombination=1.0,
    strategy="best1bin", init="latinhypercube", colors="any",
))
#: What the explorer widget starts with: the paper's search, a quarter of the budget (about 7,600 queries).
WATCH: Mapping[str, Any] = types.MappingProxyType(dict(
    pixels=1, popsize=200, maxiter=37, fitness="margin", mutation=(0.5, 1.0), recombination=1.0,
    strategy="best1bin", init="latinhypercube", colors="any",
))
#: Twenty pixels for DE, each colour channel 0 or 255 (8 colours instead of 16.7 million), margin
#: fitness, at the paper's budget. DE struggles here: 100 numbers and 75 generations are too few for it;
#: :func:`sparse_attack` with :data:`SPARSE` does much better on the same budget.
MANY_PIXELS: Mapping[str, Any] = types.MappingProxyType(dict(
    pixels=20, popsize=400, maxiter=74, fitness="margin", mutation=(0.5, 1.0), recombination=0.7,
    strategy="best1bin", init="latinhypercube", colors="extreme",
))
#: Our strongest search within the paper's 30,000 queries, for :func:`sparse_attack`: 20 pixels in
#: extreme colours, a sensitivity scan, then greedy random search. ``sparse_attack(predict, face, label, **SPARSE)``.
SPARSE: Mapping[str, Any] = types.MappingProxyType(dict(
    pixels=20, budget=30_000, batch=100, scan=True, fraction=0.3, colors="extreme", fitness="margin",
))
PRESETS: Mapping[str, Mapping[str, Any]] = types.MappingProxyType(
    {"paper": PAPER, "quick": QUICK, "watch": WATCH, "many pixels": MANY_PIXELS}
)


# --------------------------------------------------------------------------- perturbation


def _check_image(image: Any, name: str = "image") -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        hint = ""
        if np.issubdtype(arr.dtype, np.floating):
            hint = (" If your pixels are floats in 0..1, convert with (image * 255).round().astype(np.uint8);"
                    " if they are floats in 0..255, use image.round().astype(np.uint8).")
        raise TypeError(f"{name} must hold uint8 pixels (0..255), got dtype {arr.dtype}.{hint}")
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(
            f"{name} must be one RGB image of shape (height, width, 3), got shape {arr.shape}."
            + (" That looks like a batch: pass one image, e.g. images[0]." if arr.ndim == 4 else "")
        )
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} has no pixels (shape {arr.shape}).")
    return arr


def decode_candidates(candidates: Any, height: int, width: int, *, colors: str = "any") -> np.ndarray:
    """Turn real-valued candidates into whole pixels: an ``(S, k, 5)`` int array of (x, y, r, g, b).

    ``candidates`` is one candidate ``(5k,)``, a population ``(S, 5k)`` or ``(S, k, 5)``. Values are
    rounded to the nearest integer (halves round up) and clipped: x to 0..width-1, y to 0..height-1 and
    colours to 0..255. With ``colors="extreme"`` each colour channel becomes 0 or 255 (255 from 127.5 up).

    >>> decode_candidates([3.6, -2, 300, 12.4, 127.5], 10, 10)
    array([[[  4,   0, 255,  12, 128]]])
    """
    cand = np.asarray(candidates, dtype=np.float64)
    if cand.ndim == 1:
        cand = cand[None, :]
    if cand.ndim == 2:
        if cand.shape[1] == 0 or cand.shape[1] % 5:
            raise ValueError(
                f"a candidate is 5 numbers (x, y, r, g, b) per pixel, so its length must be a multiple of 5; "
                f"got {cand.shape[1]}."
            )
        cand = cand.reshape(cand.shape[0], -1, 5)
    if cand.ndim != 3 or cand.shape[2] != 5:
        raise ValueError(
            f"candidates must have shape (5k,), (S, 5k) or (S, k, 5) with (x, y, r, g, b) per pixel; got {cand.shape}."
        )
    if not np.isfinite(cand).all():
        raise ValueError("candidates contain NaN or infinite values; every x, y, r, g, b must be a finite number.")
    out = np.floor(cand + 0.5)
    out[..., 0] = np.clip(out[..., 0], 0, width - 1)
    out[..., 1] = np.clip(out[..., 1], 0, height - 1)
    check_choice("colors", colors, COLOR_CHOICES)
    if colors == "extreme":
        out[..., 2:] = np.where(cand[..., 2:] >= 127.5, 255, 0)
    else:
        out[..., 2:] = np.clip(out[..., 2:], 0, 255)
    return out.astype(np.int64)


def perturb(images_or_image: Any, candidates: Any, *, colors: str = "any") -> np.ndarray:
    """Apply candidates to images, all at once by array indexing (no Python loop over candidates).

    Parameters
    ----------
    images_or_image : uint8 array
        One image ``(H, W, 3)`` (copied once per candidate) or a batch ``(S, H, W, 3)``, one per candidate.
    candidates : array-like
        ``(5k,)`` for one candidate, ``(S, 5k)`` or ``(S, k, 5)`` for S candidates of k pixels each, every
        pixel ``(x, y, r, g, b)``; x is the column, y the row. Fractions are rounded and out-of-range values
        clipped (see :func:`decode_candidates`). When two pixels of one candidate share (x, y), the later wins.

    Returns
    -------
    ``(H, W, 3)`` for one image and one 1-D candidate, else ``(S, H, W, 3)``; a new uint8 array (the input
    is never modified).

    >>> img = np.zeros((3, 3, 3), np.uint8)
    >>> out = perturb(img, [[0, 0, 255, 255, 255], [2, 1, 9, 9, 9]])
    >>> out.shape, out[0, 0, 0].tolist(), out[1, 1, 2].tolist()
    ((2, 3, 3, 3), [255, 255, 255], [9, 9, 9])
    """
    arr = np.asarray(images_or_image)
    single_candidate = np.ndim(candidates) == 1
    if arr.ndim == 4:
        if arr.dtype != np.uint8:
            raise TypeError(f"images must hold uint8 pixels (0..255), got dtype {arr.dtype}.")
        if arr.shape[3] != 3:
            raise ValueError(f"images must have shape (S, height, width, 3), got {arr.shape}.")
        h, w = arr.shape[1:3]
    else:
        arr = _check_image(arr)
        h, w = arr.shape[:2]
    cand = decode_candidates(candidates, h, w, colors=colors)
    s = cand.shape[0]
    if arr.ndim == 4:
        if arr.shape[0] != s:
            raise ValueError(f"got {arr.shape[0]} images but {s} candidates; give one image, or one per candidate.")
        out = arr.copy()
    else:
        out = np.repeat(arr[None], s, axis=0)
    rows = np.arange(s)[:, None]  # (S, 1) broadcast against (S, k)
    out[rows, cand[:, :, 1], cand[:, :, 0]] = cand[:, :, 2:].astype(np.uint8)
    if single_candidate and arr.ndim == 3:
        return out[0]
    return out


def candidate_bounds(height: int, width: int, pixels: int) -> list[tuple[float, float]]:
    """The search box DE explores: for each pixel x in [-0.5, W-0.5], y in [-0.5, H-0.5], colours in [-0.5, 255.5].

    Half a unit beyond each end, so that after rounding every whole value is equally likely.
    """
    one = [(-0.5, width - 0.5), (-0.5, height - 0.5), (-0.5, 255.5), (-0.5, 255.5), (-0.5, 255.5)]
    return one * pixels


# --------------------------------------------------------------------------- scoring a batch


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


_KERAS_FNS: "weakref.WeakKeyDictionary[Any, Callable]" = weakref.WeakKeyDictionary()


def _keras_both(model: Any) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]:
    """Probabilities and (when the model has a layer named "logits") logits from a Keras model.

    Built once per model and reused (building traces a TensorFlow graph, which takes a second or two).
    """
    try:
        return _KERAS_FNS[model]
    except (KeyError, TypeError):
        pass
    fn = _build_keras_both(model)
    try:
        _KERAS_FNS[model] = fn
    except TypeError:  # pragma: no cover - not weak-referenceable
        pass
    return fn


def _build_keras_both(model: Any) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]:
    try:  # the training stage's fast prediction function, when it exists
        from .model import make_predict_fn  # type: ignore

        fn = make_predict_fn(model)
        if hasattr(fn, "both"):
            return lambda batch: tuple(np.asarray(a) for a in fn.both(batch))  # type: ignore[return-value]
    except (ImportError, ValueError):  # no training stage, or a model without a layer named "logits"
        pass
    import keras

    outputs = [model.output]
    names = [layer.name for layer in model.layers]
    if "logits" in names:
        outputs.append(model.get_layer("logits").output)
    both = keras.Model(model.inputs, outputs)

    def call(batch: np.ndarray):
        res = []
        for start in range(0, len(batch), 512):
            out = both.predict_on_batch(batch[start : start + 512])
            res.append(out if isinstance(out, (list, tuple)) else [out])
        probs = np.concatenate([np.asarray(r[0]) for r in res])
        logits = np.concatenate([np.asarray(r[1]) for r in res]) if len(outputs) == 2 else None
        return probs, logits

    return call


class Scorer:
    """Wrap any ``predict`` into one that returns ``(probabilities, logits)`` for a uint8 batch.

    ``predict`` may be a Keras model, the training stage's prediction function (with ``.both``), or any
    function returning probabilities or logits as an ``(N, classes)`` array. Whether it returns
    probabilities is decided on the first call (rows of non-negative numbers that sum to 1): then the
    log-probabilities stand in for logits. They differ from the logits only by a constant per image, so
    the margin is the same, until a probability underflows to 0 (a logit gap beyond about 100).
    ``scorer.calls`` and ``scorer.images`` count the calls and the images sent to the model.

    Scores that are NaN or infinite raise :class:`maskedu.model.ModelError` naming the model and ``what``
    was scored: an attack on them would report a wrong answer ("already misclassified", or a whole budget
    spent on NaN) instead of failing.
    """

    def __init__(self, predict: Any):
        if isinstance(predict, Scorer):
            predict = predict.predict
        if not callable(predict) and not hasattr(predict, "predict"):
            raise TypeError(
                f"predict must be a function from a batch of images to class scores, or a Keras model; got {type(predict).__name__}."
            )
        self.predict = predict
        self._both: Callable | None = None
        self.kind: str | None = None  # "both", "probabilities" or "logits"
        if hasattr(predict, "both") and callable(predict.both):
            self._both = lambda b: tuple(np.asarray(a) for a in predict.both(b))
            self.kind = "both"
        elif "keras" in sys.modules and _is_keras_model(predict):
            self._both = _keras_both(predict)
            self.kind = "both"
        self.calls = 0
        self.images = 0
        self.n_classes: int | None = None

    #: The most images sent to the model in one call: a generation of 400 candidates goes as 4 calls of 100.
    #: On 2 CPU cores our ResNet scores 100-200 images per call faster per image than 400 (cache-sized
    #: activations): the paper's attack on one face took 10.8-12.8 s in calls of 100 or 200 against 13.2-19.5 s
    #: in calls of 400, with the same result (two alternating runs). Batching across faces would go the wrong way.
    chunk = 100

    def __call__(self, batch: np.ndarray, *, what: str = "images") -> tuple[np.ndarray, np.ndarray]:
        batch = np.ascontiguousarray(batch)
        if len(batch) > self.chunk:
            parts = [self(batch[i:i + self.chunk], what=what) for i in range(0, len(batch), self.chunk)]
            return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])
        self.calls += 1
        self.images += len(batch)
        if self._both is not None:
            probs, logits = self._both(batch)
            probs = np.asarray(probs, dtype=np.float64)
            self._check_finite(probs, what)
            if logits is None:
                logits = np.log(np.maximum(probs, 1e-45))
            logits = np.asarray(logits, dtype=np.float64)
            self._check_finite(logits, what)
        else:
            out = self.predict(batch)
            if hasattr(out, "numpy"):
                out = out.numpy()
            out = np.asarray(out, dtype=np.float64)
            self._check_shape(out, len(batch))
            self._check_finite(out, what)  # before the first call decides what kind of scores these are
            if self.kind is None:
                looks_like_probs = bool(
                    np.all(out >= 0) and np.all(out <= 1) and np.allclose(out.sum(axis=1), 1.0, atol=1e-3)
                )
                self.kind = "probabilities" if looks_like_probs else "logits"
            if self.kind == "probabilities":
                probs = out
                logits = np.log(np.maximum(out, 1e-45))
            else:
                logits = out
                probs = _softmax(out)
        self._check_shape(probs, len(batch))
        if self.n_classes is None:
            self.n_classes = probs.shape[1]
        return probs, logits

    def _check_finite(self, out: np.ndarray, what: str) -> None:
        bad = ~np.isfinite(out).reshape(len(out), -1).all(axis=1)
        if not bad.any():
            return
        from .model import ModelError

        model = getattr(self.predict, "model", self.predict)
        name = getattr(model, "name", None) or getattr(model, "__name__", type(model).__name__)
        kind = "NaN" if np.isnan(out).any() else "infinite"
        which = what if len(out) == 1 else f"{int(bad.sum())} of {len(out)} {what}"
        raise ModelError(f"the model {name!r} returned {kind} scores for {which}: nothing about them can be compared, "
                         "so the attack stops here. Its weights are probably NaN (a training that diverged): "
                         "train it again or load a good copy.")

    def _check_shape(self, out: np.ndarray, n: int) -> None:
        if out.ndim != 2 or out.shape[0] != n or out.shape[1] < 2:
            raise ValueError(
                f"predict must return one row of class scores per image, shape ({n}, number of classes >= 2); "
                f"it returned shape {out.shape}."
            )


def _is_keras_model(obj: Any) -> bool:
    try:
        import keras

        return isinstance(obj, keras.Model)
    except ImportError:  # pragma: no cover
        return False


def as_scorer(predict: Any) -> Scorer:
    """A :class:`Scorer` for ``predict`` (returned as is when it already is one)."""
    return predict if isinstance(predict, Scorer) else Scorer(predict)


# --------------------------------------------------------------------------- results


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
    "budget", "stopped" (``on_generation`` returned True) or "already misclassified".
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


# --------------------------------------------------------------------------- the query cache


class _QueryCache:
    """Scores whole-pixel candidates, sending each distinct image to the model only once.

    DE populations converge onto identical whole-pixel candidates, and different candidates can make the
    same image: the same pixels in another order, two pixels on one spot (the later wins), a pixel set to
    the colour it already has. Each candidate is reduced to the changes it really makes (sorted by
    position, overwritten and no-op pixels dropped): equal keys mean equal images, and the empty change
    is the original image, whose scores are known from the start.
    """

    def __init__(self, scorer: Scorer, image: np.ndarray, prior_probs: np.ndarray, prior_logits: np.ndarray):
        self.scorer, self.image = scorer, image
        self.width = image.shape[1]
        self.n = prior_probs.shape[1]
        self.prior_row = np.concatenate([prior_probs[0], prior_logits[0]])
        self.rows: dict[bytes, np.ndarray] = {}

    def keys(self, decoded: np.ndarray) -> np.ndarray:
        """(S, k, 5) whole-pixel candidates -> (S, 5k) int16 canonical changes (-1 rows for no change)."""
        pos = decoded[:, :, 1] * self.width + decoded[:, :, 0]
        order = np.argsort(pos, axis=1, kind="stable")
        d = np.take_along_axis(decoded, order[:, :, None], axis=1)
        pos = np.take_along_axis(pos, order, axis=1)
        drop = np.zeros(pos.shape, bool)
        drop[:, :-1] = pos[:, :-1] == pos[:, 1:]  # overwritten by a later pixel on the same spot
        drop |= (d[:, :, 2:] == self.image[d[:, :, 1], d[:, :, 0]]).all(axis=2)  # already that colour
        d = np.where(drop[:, :, None], -1, d)
        order = np.argsort(np.where(drop, -1, pos), axis=1, kind="stable")
        return np.take_along_axis(d, order[:, :, None], axis=1).reshape(len(d), -1).astype(np.int16)

    def __call__(self, decoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        canon = self.keys(decoded)
        keys = [row.tobytes() for row in canon]
        unchanged = np.full(canon.shape[1], -1, np.int16).tobytes()
        self.rows.setdefault(unchanged, self.prior_row)
        missing: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            if k not in self.rows and k not in missing:
                missing[k] = i
        if missing:
            idx = list(missing.values())
            probs, logits = self.scorer(perturb(self.image, decoded[idx].reshape(len(idx), -1)), what="candidate images")
            for k, row in zip(missing, np.concatenate([probs, logits], axis=1)):
                self.rows[k] = row
        table = np.stack([self.rows[k] for k in keys])
        return table[:, : self.n], table[:, self.n :]


# --------------------------------------------------------------------------- the attack


def _validate(pixels, popsize, maxiter, fitness, mutation, recombination, strategy, init, colors, seed):
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
    return pixels, popsize, maxiter, mutation, recombination, seed, init


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



def _prepare_scoring(predict, image, label, target, class_names):
    """Shared set-up of both attacks: the scorer, the clean image's scores, and the checked label/target."""
    names = tuple(class_names) if class_names is not None else None
    scorer = as_scorer(predict)
    queries_before = scorer.images
    prior_probs, prior_logits = scorer(image[None], what="the clean image")
    n_classes = prior_probs.shape[1]
    if names is None and n_classes == 2:
        from .annotations import CLASS_NAMES

        names = CLASS_NAMES
    label = _check_label("label", label, n_classes, names)
    if target is not None:
        target = _check_label("target", target, n_classes, names)
        if target == label:
            raise ValueError(f"target={target} is the true label itself; pick another class, or target=None for any other class.")
    return names, scorer, queries_before, prior_probs, prior_logits, n_classes, label, target

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
    predict : a Keras model, ``maskedu.model.make_predict_fn(model)`` or any function
        From a batch ``(N, H, W, 3)`` of uint8 images to probabilities or logits ``(N, classes)``.
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

    Returns
    -------
    :class:`AttackResult`

    >>> result = one_pixel_attack(model, face, label=0, **PAPER)           # doctest: +SKIP
    >>> result.success, result.pixels, result.queries                      # doctest: +SKIP
    """
    from scipy.optimize import differential_evolution

    started = time.perf_counter()
    image = _check_image(image)
    h, w = image.shape[:2]
    pixels, popsize, maxiter, mutation, recombination, seed, init = _validate(
        pixels, popsize, maxiter, fitness, mutation, recombination, strategy, init, colors, seed
    )
    if pixels > h * w:
        raise ValueError(f"pixels={pixels} is more than the image has ({h} x {w} = {h * w}); use at most {h * w}.")
    names, scorer, queries_before, prior_probs, prior_logits, n_classes, label, target = _prepare_scoring(
        predict, image, label, target, class_names
    )

    def scores_to_fitness(probs: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if target is None:
            if fitness == "probability":
                fit = probs[:, label]
            else:
                others = np.delete(logits, label, axis=1)
                fit = logits[:, label] - others.max(axis=1)
            ok = np.argmax(logits, axis=1) != label
        else:
            if fitness == "probability":
                fit = 1.0 - probs[:, target]
            else:
                others = np.delete(logits, target, axis=1)
                fit = others.max(axis=1) - logits[:, target]
            ok = np.argmax(logits, axis=1) == target
        return fit, ok

    settings = dict(pixels=pixels, popsize=popsize, maxiter=maxiter, fitness=fitness, mutation=mutation,
                    recombination=recombination, strategy=strategy,
                    init=init if isinstance(init, str) else "array", colors=colors,
                    seed=seed if not isinstance(seed, np.random.Generator) else "generator", target=target,
                    early_stop=early_stop)

    def finish(adv_pixels: np.ndarray, adv_probs: np.ndarray, success: bool, generations: int, reason: str,
               history: list[GenerationState], evaluations: int) -> AttackResult:
        adv = perturb(image, adv_pixels.reshape(1, -1))[0] if len(adv_pixels) else image.copy()
        return AttackResult(
            success=success, label=label, target=target, original=image.copy(), adversarial=adv,
            pixels=np.asarray(adv_pixels, dtype=np.int64).reshape(-1, 5), prior_probs=prior_probs[0].astype(np.float64),
            final_probs=np.asarray(adv_probs, dtype=np.float64), queries=scorer.images - queries_before,
            evaluations=evaluations, generations=generations, seconds=time.perf_counter() - started,
            history=history, fitness=fitness, stop_reason=reason, settings=settings, class_names=names,
        )

    _, prior_ok = scores_to_fitness(prior_probs, prior_logits)
    if prior_ok[0]:
        return finish(np.zeros((0, 5), np.int64), prior_probs[0], False, 0, "already misclassified", [], 0)

    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    bounds = candidate_bounds(h, w, pixels)
    init_pop = _initial_population(init, popsize, bounds, rng)

    # ---- the objective: one batched model call per generation, identical images answered from a cache
    cache = _QueryCache(scorer, image, prior_probs, prior_logits)
    true_ix = label
    n = n_classes
    track = {"evaluations": 0, "success_fit": np.inf, "success_pixels": None, "success_row": None,
             "generation": 0, "history": [], "stop": None, "error": None}

    def lookup(population: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores (probs | logits rows) and whole-pixel candidates (S, k, 5) for a (S, 5k) population."""
        decoded = decode_candidates(population, h, w, colors=colors)
        probs, logits = cache(decoded)
        return np.concatenate([probs, logits], axis=1), decoded

    def record(generation: int, pop_rows: np.ndarray, pop_fit: np.ndarray, best_pixels: np.ndarray) -> bool:
        conf = pop_rows[:, true_ix]
        b = int(np.argmin(pop_fit))
        q = np.quantile(conf, [0.0, 0.25, 0.5, 0.75, 1.0])
        state = GenerationState(
            generation=generation, best_confidence=float(conf[b]), best_fitness=float(pop_fit[b]),
            population_min=float(q[0]), population_q25=float(q[1]), population_median=float(q[2]),
            population_q75=float(q[3]), population_max=float(q[4]), best_pixels=best_pixels,
            queries=scorer.images - queries_before, evaluations=track["evaluations"],
            seconds=time.perf_counter() - started, success=track["success_pixels"] is not None,
        )
        track["history"].append(state)
        if on_generation is not None and on_generation(state) is True:
            track["stop"] = "stopped"
            return True
        return False

    def objective(x: np.ndarray) -> np.ndarray:
        pop = np.atleast_2d(x.T) if x.ndim == 2 else x[None, :]
        try:
            rows, decoded = lookup(pop)
        except (ValueError, TypeError) as exc:  # scipy would hide it in a RuntimeError about its map-like callable
            track["error"] = exc
            raise AttackStopped from exc
        track["evaluations"] += len(pop)
        fit, ok = scores_to_fitness(rows[:, :n], rows[:, n:])
        if ok.any():
            i = int(np.flatnonzero(ok)[np.argmin(fit[ok])])
            if fit[i] < track["success_fit"]:
                track["success_fit"] = float(fit[i])
                track["success_pixels"] = decoded[i].copy()
                track["success_row"] = rows[i, :n].copy()
        if track["generation"] == 0:  # the starting population: scipy has no callback for it
            b = int(np.argmin(fit))
            stop = record(0, rows, fit, decoded[b].copy())
            track["generation"] = 1
            if stop or (early_stop and track["success_pixels"] is not None):
                raise AttackStopped
        return fit

    def callback(intermediate_result) -> bool:
        res = intermediate_result
        rows, decoded = lookup(res.population)
        fit = np.asarray(res.population_energies, dtype=np.float64)
        b = int(np.argmin(fit))
        stop = record(int(res.nit), rows, fit, decoded[b].copy())
        track["generation"] = int(res.nit) + 1
        return bool(stop or (early_stop and track["success_pixels"] is not None))

    best_x = None
    if maxiter == 0:
        try:
            objective(init_pop.T)
        except AttackStopped:
            pass
        generations = 0
    else:
        try:
            res = differential_evolution(
                objective, bounds, maxiter=maxiter, popsize=1, init=init_pop, mutation=mutation,
                recombination=recombination, strategy=strategy, rng=rng, callback=callback, polish=False,
                tol=0.0, atol=-1.0,  # never "converge": a population of ties would otherwise stop at once
                updating="deferred", vectorized=True,
            )
            best_x = res.x
            generations = int(res.nit)
        except AttackStopped:
            generations = 0
        if track["history"]:
            generations = track["history"][-1].generation
    if track["error"] is not None:  # the model's answer was unusable (ModelError) or had the wrong shape
        raise track["error"]

    history = track["history"]
    if track["success_pixels"] is not None:
        adv_pixels, adv_probs, success = track["success_pixels"], track["success_row"], True
        reason = "success" if early_stop else (track["stop"] or "budget")
    else:
        if best_x is None:
            # stopped before scipy returned: the best candidate recorded last
            adv_pixels = history[-1].best_pixels if history else np.zeros((0, 5), np.int64)
        else:
            adv_pixels = decode_candidates(best_x, h, w, colors=colors)[0]
        rows, _ = lookup(adv_pixels.reshape(1, -1)) if len(adv_pixels) else (prior_probs, None)
        adv_probs = rows[0, :n]
        success = False
        reason = track["stop"] or "budget"
    result = finish(np.asarray(adv_pixels), adv_probs, success, generations, reason, history, track["evaluations"])
    return result


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
       the current one. Repeat until the label flips or ``budget`` queries are used.

    ``on_generation`` is called after the scan (generation 0) and after each step; the history's
    population band is that of the step's proposals. Returns an :class:`AttackResult` like
    :func:`one_pixel_attack`.
    """
    started = time.perf_counter()
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
    names, scorer, q0, prior_probs, prior_logits, n, label, target = _prepare_scoring(
        predict, image, label, target, class_names
    )
    goal = label if target is None else target
    sign = 1.0 if target is None else -1.0

    def score(probs, logits):
        if fitness == "probability":
            fit = probs[:, label] if target is None else 1.0 - probs[:, target]
        else:
            others = np.delete(logits, goal, axis=1).max(axis=1)
            fit = sign * (logits[:, goal] - others)
        ok = (np.argmax(logits, axis=1) != label) if target is None else (np.argmax(logits, axis=1) == target)
        return fit, ok

    settings = dict(method="sparse", pixels=pixels, budget=budget, batch=batch, scan=scan, fraction=fraction,
                    colors=colors, fitness=fitness, target=target, seed=seed, early_stop=early_stop)
    history: list[GenerationState] = []
    evaluations = 0

    def result(px, probs, success, reason):
        adv = perturb(image, np.asarray(px).reshape(1, -1))[0] if len(px) else image.copy()
        return AttackResult(
            success=success, label=label, target=target, original=image.copy(), adversarial=adv,
            pixels=np.asarray(px, dtype=np.int64).reshape(-1, 5), prior_probs=prior_probs[0].astype(np.float64),
            final_probs=np.asarray(probs, dtype=np.float64), queries=scorer.images - q0, evaluations=evaluations,
            generations=history[-1].generation if history else 0, seconds=time.perf_counter() - started,
            history=history, fitness=fitness, stop_reason=reason, settings=settings, class_names=names,
        )

    if score(prior_probs, prior_logits)[1][0]:
        return result(np.zeros((0, 5)), prior_probs[0], False, "already misclassified")
    rng = np.random.default_rng(seed)
    cache = _QueryCache(scorer, image, prior_probs, prior_logits)

    def evaluate(cands: np.ndarray):
        """cands: (S, k, 5) whole pixels -> probs, logits (repeated images from the cache)."""
        nonlocal evaluations
        evaluations += len(cands)
        return cache(cands)

    def opposite(ys, xs):
        return np.where(image[ys, xs] >= 128, 0, 255)

    def random_colours(m):
        if colors == "extreme":
            return rng.integers(0, 2, (m, 3)) * 255
        return rng.integers(0, 256, (m, 3))

    def record(gen, probs, best_px, best_conf, best_fit, success) -> bool:
        q = np.quantile(probs[:, label], [0.0, 0.25, 0.5, 0.75, 1.0])
        state = GenerationState(
            generation=gen, best_confidence=float(best_conf), best_fitness=float(best_fit), population_min=float(q[0]),
            population_q25=float(q[1]), population_median=float(q[2]), population_q75=float(q[3]),
            population_max=float(q[4]), best_pixels=np.asarray(best_px).copy(), queries=scorer.images - q0,
            evaluations=evaluations, seconds=time.perf_counter() - started, success=success,
        )
        history.append(state)
        return on_generation is not None and on_generation(state) is True

    ys, xs = np.divmod(np.arange(h * w), w)
    weights = np.ones(h * w)
    f0 = score(prior_probs, prior_logits)[0][0]
    scan_probs = prior_probs
    if scan and h * w + 1 < budget:
        single = np.concatenate([xs[:, None], ys[:, None], opposite(ys, xs)], axis=1)[:, None, :]
        scan_probs, scan_logits = evaluate(single)
        sfit, sok = score(scan_probs, scan_logits)
        weights = np.maximum(f0 - sfit, 0.0) + 1e-3 * max(f0 - sfit.min(), 1e-9)
        if sok.any() and early_stop:
            j = int(np.flatnonzero(sok)[np.argmin(sfit[sok])])
            record(0, scan_probs, single[j], scan_probs[j, label], sfit[j], True)
            return result(single[j], scan_probs[j], True, "success")
    prob = weights / weights.sum()
    k = pixels
    pos = rng.choice(h * w, size=k, replace=False, p=prob)
    cols = opposite(ys[pos], xs[pos])
    current = np.concatenate([xs[pos][:, None], ys[pos][:, None], cols], axis=1)
    pr, lg = evaluate(current[None])
    cur_fit, cur_ok = score(pr, lg)
    cur_fit, cur_ok, cur_probs = float(cur_fit[0]), bool(cur_ok[0]), pr[0]
    stop = record(0, scan_probs, current, cur_probs[label], cur_fit, cur_ok)
    step = 0
    while not stop and not (cur_ok and early_stop) and scorer.images - q0 + batch <= budget:
        step += 1
        used = (scorer.images - q0) / budget
        m = max(1, int(round(k * fraction * (1.0 - used))))
        props = np.repeat(current[None], batch, axis=0)
        for b in range(batch):  # small per-proposal choices; the images are still made and scored in one batch
            which = rng.choice(k, size=m, replace=False)
            move = rng.random(m) < 0.5
            if move.any():
                new = rng.choice(h * w, size=int(move.sum()), p=prob)
                props[b, which[move], 0], props[b, which[move], 1] = xs[new], ys[new]
            props[b, which, 2:] = random_colours(m)
        pr, lg = evaluate(props)
        fit, ok = score(pr, lg)
        j = int(np.argmin(fit))
        if fit[j] < cur_fit:
            current, cur_fit, cur_ok, cur_probs = props[j].copy(), float(fit[j]), bool(ok[j]), pr[j]
        stop = record(step, pr, current, cur_probs[label], cur_fit, cur_ok)
    reason = "success" if cur_ok and early_stop else ("stopped" if stop else "budget")
    return result(current, cur_probs, cur_ok, reason)


# --------------------------------------------------------------------------- the study


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
        from .claims import wilson_interval

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
        from .common import in_notebook

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
    show_progress: bool = True,
    **attack_kwargs: Any,
) -> AttackStudy:
    """Attack every image with every combination of pixel count, fitness and budget.

    ``budgets`` are ``(popsize, maxiter)`` pairs (the paper's is ``(400, 75)``). ``method="sparse"`` runs
    :func:`sparse_attack` instead of DE, with ``budget = popsize x (maxiter + 1)`` queries. Faces the model already
    gets wrong are skipped when ``only_correct`` (as in the paper) and listed in ``study.skipped``.
    Attack ``i`` of a face uses seed ``seed + face index``, so a configuration's result does not depend on
    which other configurations ran. Extra keywords (``colors=``, ``recombination=``, ...) go to
    :func:`one_pixel_attack`.

    >>> study = attack_many(model, crops.images[:20], crops.labels[:20], pixels=(1, 3))   # doctest: +SKIP
    >>> print(study)                                                                       # doctest: +SKIP
    """
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
    scorer = as_scorer(predict)
    probs, prior_logits = scorer(_check_batch(imgs))
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
    records, results = [], []
    configs = [(p, f, b) for p in pixel_list for f in fitness_list for b in budget_list]
    bar = _StudyProgress(len(todo) * len(configs), show_progress)
    try:
        for p, f, (pop, it) in configs:
            for i in todo:
                if method == "sparse":
                    res = sparse_attack(scorer, imgs[i], int(labs[i]), pixels=p, fitness=f, budget=pop * (it + 1),
                                        seed=seed + i, **attack_kwargs)
                else:
                    res = one_pixel_attack(scorer, imgs[i], int(labs[i]), pixels=p, fitness=f, popsize=pop,
                                           maxiter=it, seed=seed + i, **attack_kwargs)
                # the logit margins before and after (one extra image): unlike a float32 probability, they
                # still tell a saturated face's attacks apart
                _, final_logits = scorer(res.adversarial[None])
                records.append(dict(
                    index=i, label=int(labs[i]), pixels=p, fitness=f, popsize=pop, maxiter=it, method=method,
                    prior_margin=_margin(prior_logits[i], int(labs[i])), final_margin=_margin(final_logits[0], int(labs[i])),
                    colors=res.settings.get("colors", "any"), success=res.success,
                    prior_confidence=res.prior_confidence, final_confidence=res.final_confidence,
                    confidence_drop=res.confidence_drop, queries=res.queries, evaluations=res.evaluations,
                    generations=res.generations, seconds=res.seconds, stop_reason=res.stop_reason,
                    tied_start=bool(res.history and res.history[0].population_min == res.history[0].population_max),
                    tied_end=bool(res.history and res.history[-1].population_min == res.history[-1].population_max),
                ))
                if keep_results:
                    results.append(res)
                bar.update(sum(r["success"] for r in records))
    finally:
        bar.close()
    return AttackStudy(records=records, results=results, skipped=skipped, seconds=time.perf_counter() - started)


def _margin(logits: np.ndarray, label: int) -> float:
    """The true class's logit minus the best other one (negative once the label has flipped)."""
    z = np.asarray(logits, dtype=np.float64)
    return float(z[label] - np.delete(z, label).max())


def _check_batch(imgs: np.ndarray) -> np.ndarray:
    if imgs.dtype != np.uint8:
        raise TypeError(f"images must hold uint8 pixels (0..255), got dtype {imgs.dtype}.")
    if imgs.shape[-1] != 3:
        raise ValueError(f"images must have shape (N, height, width, 3), got {imgs.shape}.")
    return imgs


# --------------------------------------------------------------------------- plots


def _finish(fig, created: bool):
    """Hand a figure back as a cell's value: in a notebook pyplot lets go of it, so it shows once."""
    if created:
        from .common import in_notebook

        if in_notebook():
            import matplotlib.pyplot as plt

            plt.close(fig)
    return fig


def plot_history(result_or_history: AttackResult | Sequence[GenerationState], *, ax=None, label: str | None = None,
                 title: str | None = None):
    """True-class confidence per generation: the best candidate, the population's band, the 0.5 line.

    Returns the figure; pass ``ax=`` to draw into your own axes.
    """
    history = result_or_history.history if isinstance(result_or_history, AttackResult) else list(result_or_history)
    created = ax is None
    if created:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 3.2))
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
    return _finish(ax.figure, created)


def plot_attack(result: AttackResult, *, zoom: int = 7, fig=None, title: bool = True):
    """Original and adversarial face side by side, changed pixels circled, zoomed patches of (up to 2) pixels below.

    Pass ``fig=matplotlib.figure.Figure()`` to draw without pyplot (as the explorer does from its thread).
    """
    from matplotlib.patches import Circle, Rectangle

    created = fig is None
    if created:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(7.5, 4.6))
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
    return _finish(fig, created)


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
    created = ax is None
    if created:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 3.2))
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
    return _finish(ax.figure, created)


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
    created = ax is None
    if created:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 3.8))
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
    return _finish(ax.figure, created)


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
    created = fig is None
    if created:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(5.2 * len(attacks), 5.6))
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
    return _finish(fig, created)


def plot_gallery(results: Sequence[AttackResult], *, n: int = 6, ncols: int = 3, only_success: bool = True):
    """Adversarial faces with their changed pixels circled and the prediction before -> after."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    chosen = [r for r in results if r.success or not only_success][:n]
    if not chosen:
        fig, ax = plt.subplots(figsize=(5, 1))
        ax.text(0.5, 0.5, "no successful attack to show", ha="center", va="center")
        ax.axis("off")
        return _finish(fig, True)
    nrows = math.ceil(len(chosen) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3 * ncols, 3.2 * nrows), squeeze=False)
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
    return _finish(fig, True)


def plot_drops(study: AttackStudy, *, ax=None, by: str = "pixels"):
    """The largest drop of the true-class probability per face, for each value of ``by`` (e.g. pixels).

    Success is all-or-nothing; this shows how close the failures came (0 = nothing moved, 1 = all of it).
    """
    created = ax is None
    if created:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 3.2))
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
    return _finish(ax.figure, created)
