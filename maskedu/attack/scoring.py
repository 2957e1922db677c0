"""Scoring: any ``predict`` turned into (probabilities, logits), and a cache that sends each image once.

>>> import numpy as np
>>> scorer = Scorer(lambda batch: np.tile([[2.0, 0.0]], (len(batch), 1)))     # a function returning logits
>>> probs, logits = scorer(np.zeros((3, 4, 4, 3), np.uint8))
>>> scorer.kind, probs.shape, scorer.images
('logits', (3, 2), 3)
"""

from __future__ import annotations

import sys
import weakref
from typing import Any, Callable

import numpy as np

from .pixels import perturb

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
        from ..model import make_predict_fn  # type: ignore

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
        from ..model import ModelError

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


def _margin(logits: np.ndarray, label: int) -> float:
    """The true class's logit minus the best other one (negative once the label has flipped)."""
    z = np.asarray(logits, dtype=np.float64)
    return float(z[label] - np.delete(z, label).max())


