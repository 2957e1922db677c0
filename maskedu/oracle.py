"""What the attacker may see: a model behind an access level and a query budget, and a label-only attack.

An attack's strength depends on what it is allowed to ask. :class:`Oracle` puts a model behind one of four
access levels, each revealing more than the one before:

* ``"label"``: the predicted class only (:meth:`Oracle.labels`);
* ``"probabilities"``: the softmax scores as well (calling the oracle);
* ``"logits"``: the raw scores before the softmax (:meth:`Oracle.logits`, ``oracle.both``);
* ``"gradients"``: the gradient of a loss with respect to every pixel (:meth:`Oracle.gradient`).

It refuses anything its level hides (:class:`AccessError`) and counts **queries**, one per image sent to the
model (an answer an attack reuses from its own cache is free), refusing the batch that would pass its
``budget`` (:class:`QueryBudgetError`). It is a plain callable returning probabilities, so the attacks of
:mod:`maskedu.attack` run through it unchanged and report the same counts:

>>> import numpy as np
>>> from maskedu.model import build_resnet
>>> oracle = Oracle(build_resnet((8, 8, 3), widths=(4,), blocks=(1,)), "probabilities", budget=3)
>>> oracle(np.zeros((2, 8, 8, 3), np.uint8)).shape, oracle.queries
((2, 2), 2)
>>> oracle(np.zeros((2, 8, 8, 3), np.uint8))
Traceback (most recent call last):
...
maskedu.oracle.QueryBudgetError: this batch of 2 images would pass the oracle's budget of 3 queries (2 used, 1 left); ...

Every attack in :mod:`maskedu` declares the access it needs with :func:`needs_access` (its ``ACCESS``
attribute; all of them in :data:`ATTACK_ACCESS`) and runs through an oracle (:func:`oracle_for`): handed a
plain model it wraps it in an Oracle itself, handed an Oracle of a lower level it refuses at once:

>>> label_only_attack.ACCESS
'label'
>>> label_only_attack(Oracle(oracle.model, "label", budget=200), np.zeros((8, 8, 3), np.uint8), 0).queries <= 200
True

:func:`label_only_attack` is a sparse attack that sees nothing but the label.
"""

from __future__ import annotations

import time
import weakref
from typing import Any, Sequence

import numpy as np

from .common import MaskeduError, ParameterError, ParameterTypeError, check_choice, check_int

__all__ = [
    "ACCESS_LEVELS",
    "ATTACK_ACCESS",
    "ATTACK_USES",
    "attack_access",
    "needs_access",
    "oracle_for",
    "AccessError",
    "QueryBudgetError",
    "Classifier",
    "as_classifier",
    "Oracle",
    "label_only_attack",
    "LOSSES",
]

#: The access levels, from least to most revealing.
ACCESS_LEVELS = ("label", "probabilities", "logits", "gradients")
#: Losses a gradient can be taken of; attacks climb them. ``"ce"``: cross-entropy of the true class;
#: ``"cw"``: the best other logit minus the true logit (Carlini & Wagner's margin, positive once the label flips).
LOSSES = ("ce", "cw")


class AccessError(MaskeduError, PermissionError):
    """The oracle was asked for something its access level hides (scores from a label-only oracle, ...)."""


class QueryBudgetError(MaskeduError, RuntimeError):
    """The oracle's query budget would be passed by this batch; nothing of it was sent to the model."""


# --------------------------------------------------------------------------- the model behind the oracle

_LOGIT_MODELS: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


class Classifier:
    """A Keras model (built by :func:`maskedu.model.build_resnet`, with a layer named "logits") seen as numpy in,
    numpy out: ``both(batch)`` gives ``(probabilities, logits)`` and ``gradient(batch, labels)`` the gradient of a
    loss with respect to the pixels, written with ``tf.GradientTape``.

    Images are ``(N, H, W, 3)`` pixels in 0..255 (uint8, or float for a gradient step between whole values).
    Defenses (:mod:`maskedu.defend`) have the same two methods, so an :class:`Oracle` can wrap either.
    """

    def __init__(self, model: Any):
        from .model import make_predict_fn

        self.model = getattr(model, "model", model)  # a PredictFn gives its model
        # a prediction function given (make_predict_fn(model, engine="tflite")) answers the queries; gradients
        # always come from the Keras model
        self._predict = model if callable(getattr(model, "both", None)) else make_predict_fn(self.model)
        self.name = getattr(self.model, "name", "model")

    def both(self, batch: Any) -> tuple[np.ndarray, np.ndarray]:
        return self._predict.both(batch)

    def __call__(self, batch: Any) -> np.ndarray:
        return self.both(batch)[0]

    def _grad_fn(self):
        fn = _LOGIT_MODELS.get(self.model)
        if fn is None:
            import tensorflow as tf

            from .model import make_predict_fn

            sub = make_predict_fn(self.model)._sub  # the model up to its logits layer, shared with prediction

            @tf.function(reduce_retracing=True, autograph=False)  # plain Python control flow only
            def grad(x, y, cw):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    logits = sub(x, training=False)
                    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
                    true = tf.gather(logits, y, batch_dims=1)
                    others = logits - 1e9 * tf.one_hot(y, tf.shape(logits)[1], dtype=logits.dtype)
                    margin = tf.reduce_max(others, axis=1) - true
                    loss = tf.where(cw, margin, ce)
                    total = tf.reduce_sum(loss)  # inside the tape: it must see this sum to differentiate it
                return loss, tape.gradient(total, x), logits

            fn = _LOGIT_MODELS[self.model] = grad
        return fn

    def gradient(self, batch: Any, labels: Any, *, loss: str = "ce") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(loss per image, d loss / d pixels, logits)`` at ``batch`` for the true ``labels``.

        The loss (see :data:`LOSSES`) rises as the image moves away from its label, so an attack follows
        the gradient's sign upwards. Each image's gradient is its own (batch norm runs in inference mode).
        """
        import tensorflow as tf

        check_choice("loss", loss, LOSSES)
        x = tf.convert_to_tensor(np.asarray(batch, dtype=np.float32))
        y = tf.convert_to_tensor(np.asarray(labels, dtype=np.int32).reshape(-1))
        value, g, logits = self._grad_fn()(x, y, tf.constant(loss == "cw"))
        return value.numpy().astype(np.float64), g.numpy(), logits.numpy()

    def __repr__(self) -> str:
        return f"Classifier({self.name})"


class _ScoresOnly:
    """Any function from images to class scores, as a classifier without gradients."""

    def __init__(self, fn: Any):
        from .attack import Scorer

        self.fn = self.model = fn  # .model: the unseen-face check looks through it
        self._scorer = Scorer(fn)
        self.name = getattr(fn, "__name__", type(fn).__name__)

    def both(self, batch):
        return self._scorer(np.asarray(batch))

    def __call__(self, batch):
        return self.both(batch)[0]

    def gradient(self, batch, labels, *, loss="ce"):
        raise AccessError(f"{self.name} gives class scores but no gradients (a plain function of images, or a Keras "
                          "model without a layer named 'logits'). Give a model built by maskedu.model.build_resnet "
                          "(or a defense around it) for a gradient attack.")


def as_classifier(model: Any):
    """A :class:`Classifier` for a Keras model (or a ``make_predict_fn`` function); a defense or a classifier is
    returned as it is; any other function returning class scores becomes one without gradients."""
    if isinstance(model, Oracle):
        raise ParameterTypeError("an Oracle cannot sit behind another Oracle: give it the model (or the defense) itself.")
    from .attack import Scorer

    if isinstance(model, Scorer):  # a Scorer counts its own calls: the oracle counts them now
        model = model.predict
    if hasattr(model, "both") and hasattr(model, "gradient"):
        return model
    try:
        import keras

        if isinstance(model, keras.Model) or isinstance(getattr(model, "model", None), keras.Model):
            try:
                return Classifier(model)
            except ValueError:  # no layer named "logits": its scores still serve, without gradients
                return _ScoresOnly(model)
    except ImportError:  # pragma: no cover
        pass
    if callable(model):
        return _ScoresOnly(model)
    raise ParameterTypeError(f"expected a Keras model, a defense or a function of images, got {type(model).__name__}.")


# --------------------------------------------------------------------------- the oracle


class Oracle:
    """A model behind an access level (one of :data:`ACCESS_LEVELS`) and an optional query budget.

    ``oracle(batch)`` returns probabilities (refused at the ``"label"`` level); ``oracle.labels(batch)`` the
    predicted classes (every level); ``oracle.logits(batch)`` and ``oracle.both(batch)`` need ``"logits"``;
    ``oracle.gradient(batch, labels)`` needs ``"gradients"``. Every image sent counts one query, whatever was
    asked; ``queries``, ``calls``, ``remaining`` say where the attacker stands. ``model`` is a Keras model, a
    defense from :mod:`maskedu.defend`, or any function of images returning class scores (no gradients).
    """

    def __init__(self, model: Any, access: str = "probabilities", *, budget: int | None = None):
        self.access = check_choice("access", access, ACCESS_LEVELS)
        self.budget = None if budget is None else check_int("budget", budget, minimum=1)
        self.model = as_classifier(model)
        self.level = ACCESS_LEVELS.index(access)
        self.queries = 0
        self.calls = 0
        if self.level >= ACCESS_LEVELS.index("logits"):
            # only where logits are allowed: maskedu.attack.Scorer then takes true logits instead of log-probabilities
            self.both = self._both

    @property
    def remaining(self) -> float:
        """Queries left (``inf`` without a budget)."""
        return float("inf") if self.budget is None else self.budget - self.queries

    def _need(self, level: str, what: str) -> None:
        if self.level < ACCESS_LEVELS.index(level):
            raise AccessError(f"this oracle gives {self.access!r} access, which hides {what}; an attack that needs them "
                              f"must be run against Oracle(model, {level!r}) or a higher level "
                              f"({', '.join(ACCESS_LEVELS)}).")

    def _spend(self, batch: Any) -> np.ndarray:
        x = image_batch(batch, "the oracle")
        if self.budget is not None and self.queries + len(x) > self.budget:
            raise QueryBudgetError(
                f"this batch of {len(x)} images would pass the oracle's budget of {self.budget:,} queries "
                f"({self.queries:,} used, {self.budget - self.queries:,} left); nothing was sent. Send fewer images, "
                "or make a new Oracle with a larger budget.")
        self.queries += len(x)
        self.calls += 1
        return x

    def labels(self, batch: Any) -> np.ndarray:
        """The predicted class of every image (all levels)."""
        x = self._spend(batch)
        return np.argmax(self.model.both(x)[0], axis=1)

    def __call__(self, batch: Any) -> np.ndarray:
        """Probabilities ``(N, classes)``."""
        self._need("probabilities", "the scores (it answers with labels only: use oracle.labels)")
        return np.asarray(self.model.both(self._spend(batch))[0])

    def _both(self, batch: Any) -> tuple[np.ndarray, np.ndarray]:
        self._need("logits", "the logits")
        probs, logits = self.model.both(self._spend(batch))
        return np.asarray(probs), np.asarray(logits)

    def logits(self, batch: Any) -> np.ndarray:
        """Logits ``(N, classes)``."""
        self._need("logits", "the logits")
        return np.asarray(self.model.both(self._spend(batch))[1])

    def gradient(self, batch: Any, labels: Any, *, loss: str = "ce") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(loss per image, gradient of the loss per pixel, logits)``; one query per image."""
        self._need("gradients", "the gradients")
        x = self._spend(batch)
        return self.model.gradient(x, labels, loss=loss)

    def __repr__(self) -> str:
        left = "" if self.budget is None else f", {self.remaining:,.0f} of {self.budget:,} left"
        return f"Oracle({getattr(self.model, 'name', 'model')}, {self.access!r}, {self.queries:,} queries{left})"


# --------------------------------------------------------------------------- what each attack needs

#: Every attack of :mod:`maskedu` and the access it needs, filled by :func:`needs_access` as the attacks'
#: modules are imported (:func:`attack_access` imports them all first).
ATTACK_ACCESS: dict[str, str] = {}
#: The level each attack is given when handed a plain model (its ``USES``: more than it needs, where it helps).
ATTACK_USES: dict[str, str] = {}


def needs_access(level: str, *, uses: str | None = None):
    """Declare the access an attack needs: a decorator setting its ``ACCESS`` (and ``USES``) attribute and
    listing it in :data:`ATTACK_ACCESS`.

    ``level`` is the least access the attack can work with: an :class:`Oracle` below it is refused
    (:func:`oracle_for`). ``uses`` (default ``level``) is the level a plain model is wrapped in, when the attack
    makes use of more where it is there: the DE and sparse searches need probabilities, but take the margin
    from true logits when they may see them.

    >>> @needs_access("label")
    ... def my_attack(predict, image, label): ...
    >>> my_attack.ACCESS, ATTACK_ACCESS.pop("my_attack"), ATTACK_USES.pop("my_attack")
    ('label', 'label', 'label')
    """
    check_choice("level", level, ACCESS_LEVELS)
    uses = level if uses is None else check_choice("uses", uses, ACCESS_LEVELS)
    if ACCESS_LEVELS.index(uses) < ACCESS_LEVELS.index(level):
        raise ParameterError(f"uses={uses!r} is below the level the attack needs ({level!r}).")

    def declare(attack):
        attack.ACCESS, attack.USES = level, uses
        ATTACK_ACCESS[attack.__name__], ATTACK_USES[attack.__name__] = level, uses
        return attack

    return declare


def attack_access() -> dict[str, str]:
    """:data:`ATTACK_ACCESS` with every attack module imported: ``{attack name: access level}``, from the least
    revealing level to the most."""
    from . import attack, defend  # noqa: F401  (importing them declares their attacks)

    return dict(sorted(ATTACK_ACCESS.items(), key=lambda kv: (ACCESS_LEVELS.index(kv[1]), kv[0])))


def oracle_for(attack: Any, predict: Any) -> Oracle:
    """The :class:`Oracle` ``attack`` (a function declared with :func:`needs_access`) runs through.

    An Oracle is used as it is (so its budget and query count are the caller's) when its level is at least the
    attack's ``ACCESS``, and refused at once with :class:`AccessError` otherwise, before any query. Anything else
    (a Keras model, a defense, a prediction function, a :class:`~maskedu.attack.Scorer`) is wrapped in a new
    ``Oracle(predict, attack.USES)`` without a budget.
    """
    need = getattr(attack, "ACCESS", None)
    if need is None:
        raise ParameterTypeError(f"{getattr(attack, '__name__', attack)!r} declares no access level: decorate it "
                                 "with maskedu.oracle.needs_access(level).")
    name = attack.__name__
    if isinstance(predict, Oracle):
        if predict.level < ACCESS_LEVELS.index(need):
            fits = [a for a, lv in ATTACK_ACCESS.items() if ACCESS_LEVELS.index(lv) <= predict.level]
            raise AccessError(f"{name} needs {need!r} access, but this oracle gives {predict.access!r} access; run it "
                              f"against Oracle(model, {need!r}) or a higher level"
                              + (f", or use an attack for {predict.access!r} access ({', '.join(fits)})." if fits else "."))
        return predict
    from .attack import Scorer

    if isinstance(predict, Scorer):
        predict = predict.predict
    return Oracle(predict, attack.USES)


# --------------------------------------------------------------------------- a label-only attack


def image_batch(batch: Any, who: str) -> np.ndarray:
    """``batch`` as an ``(N, height, width, 3)`` array (one image gets a batch axis), or a ValueError naming ``who``."""
    x = np.asarray(batch)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"{who} takes images of shape (N, height, width, 3), got {x.shape}.")
    return x


def check_image(image: Any, name: str = "image") -> np.ndarray:
    """One uint8 RGB image ``(H, W, 3)``, or a clear error saying what it is instead."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ParameterTypeError(f"{name} must hold uint8 pixels (0..255), got dtype {arr.dtype}; convert floats in 0..1 "
                                 "with (image * 255).round().astype(np.uint8).")
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ParameterError(f"{name} must be one RGB image of shape (height, width, 3), got shape {arr.shape}"
                             + (": that looks like a batch, pass one image, e.g. images[0]." if arr.ndim == 4 else "."))
    return arr


@needs_access("label")
def label_only_attack(
    predict: Any,
    image: Any,
    label: int,
    *,
    pixels: int = 20,
    budget: int = 30_000,
    batch: int = 100,
    seed: int | None = None,
    class_names: Sequence[str] | None = None,
):
    """A sparse attack that sees only the predicted label: find a face with at most ``pixels`` changed pixels
    that the model no longer calls ``label``.

    It works the other way round from :func:`maskedu.attack.sparse_attack`, as the "pointwise" attack of
    Schott et al. (2019) does: first a *misclassified* image, by setting random pixels to random extreme
    colours (more and more of them, until the label flips); then it puts original pixels back, many at a time
    and fewer as it gets harder, keeping every change that leaves the label flipped. It succeeds when no more
    than ``pixels`` changed pixels remain, and starts over from a new noisy image while queries are left.

    ``predict`` is an :class:`Oracle` (any level: only ``labels`` is used) or anything
    :func:`maskedu.attack.one_pixel_attack` accepts, which it puts behind ``Oracle(predict, "label")``. Returns an
    :class:`~maskedu.attack.AttackResult`; its probabilities are what the attacker saw, one-hot labels.
    """
    from .attack import AttackResult

    started = time.perf_counter()
    image = check_image(image)
    h, w = image.shape[:2]
    pixels = check_int("pixels", pixels, minimum=1, maximum=h * w)
    budget = check_int("budget", budget, minimum=2)
    batch = check_int("batch", batch, minimum=2)
    label = check_int("label", label, minimum=0)
    oracle = oracle_for(label_only_attack, predict)
    read, q0 = oracle.labels, oracle.queries

    def used():
        return oracle.queries

    rng = np.random.default_rng(seed)
    prior = int(read(image[None])[0])
    n_classes = max(2, label + 1, prior + 1)

    def onehot(c):
        v = np.zeros(n_classes)
        v[c] = 1.0
        return v

    def result(mask, colours, adv_label, success, reason):
        adv = image.copy()
        adv[mask] = colours[mask]
        ys, xs = np.nonzero(mask)
        px = np.concatenate([xs[:, None], ys[:, None], adv[ys, xs].astype(np.int64)], axis=1)
        names = tuple(class_names) if class_names is not None else None
        return AttackResult(
            success=success, label=label, target=None, original=image.copy(), adversarial=adv, pixels=px,
            prior_probs=onehot(prior), final_probs=onehot(adv_label), queries=used() - q0, evaluations=used() - q0,
            generations=0, seconds=time.perf_counter() - started, history=[], fitness="label",
            stop_reason=reason, settings=dict(method="label_only", pixels=pixels, budget=budget, batch=batch, seed=seed),
            class_names=names)

    if prior != label:
        return result(np.zeros((h, w), bool), image, prior, False, "already misclassified")

    def left():
        return budget - (used() - q0)

    def labels_of(masks, colours):
        imgs = np.repeat(image[None], len(masks), axis=0)
        imgs[masks] = np.broadcast_to(colours, imgs.shape)[masks]
        return read(imgs)

    best = None  # (changed pixel count, mask, colours, label)
    while left() >= batch:
        # 1. a misclassified start: random extreme colours on a growing share of the pixels
        colours = (rng.integers(0, 2, (h, w, 3)) * 255).astype(np.uint8)
        shares = np.geomspace(0.01, 1.0, batch)
        masks = rng.random((batch, h, w)) < shares[:, None, None]
        labs = labels_of(masks, colours)
        flipped = np.flatnonzero(labs != label)
        if len(flipped) == 0:
            continue
        j = flipped[np.argmin(masks[flipped].sum(axis=(1, 2)))]
        mask, cur = masks[j].copy(), int(labs[j])
        # 2. put original pixels back while the label stays flipped
        share = 0.5
        while mask.sum() > pixels and left() >= batch:
            on = np.flatnonzero(mask.ravel())
            m = max(1, int(round(share * len(on))))
            props = np.repeat(mask[None], batch, axis=0).reshape(batch, -1)
            for b in range(batch):
                props[b, rng.choice(on, size=min(m, len(on)), replace=False)] = False
            props = props.reshape(batch, h, w)
            labs = labels_of(props, colours)
            ok = np.flatnonzero(labs != label)
            if len(ok):
                mask, cur = props[ok[0]], int(labs[ok[0]])
            elif m == 1:
                break  # no single pixel can go back: a local minimum, start again
            else:
                share /= 2
        n = int(mask.sum())
        if best is None or n < best[0]:
            best = (n, mask, colours, cur)
        if n <= pixels:
            return result(mask, colours, cur, True, "success")
    if best is None:
        return result(np.zeros((h, w), bool), image, label, False, "budget")
    # the sparsest misclassified image found has too many pixels: the attack failed; report the clean face
    return result(np.zeros((h, w), bool), image, label, False, "budget")
