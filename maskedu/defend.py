"""White-box attacks, defenses, and the evaluation of each defense against attacks that know it is there.

* **White-box attacks** (they need the gradient, ``Oracle(model, "gradients")``): :func:`fgsm` and :func:`pgd`
  under an L-infinity budget ``epsilon`` (a whole number of pixel levels out of 255: ``4 / 255`` lets every
  channel of every pixel move by at most 4), and :func:`gradient_pixel_attack`, which changes few pixels,
  chosen by the gradient. All return real uint8 images. :func:`saliency` shows where the model looks.
* **Defenses**, each a wrapper with the model's own interface (``both``, ``gradient``, called for
  probabilities): :class:`MedianFilter`, :class:`JpegDefense`, :class:`BitDepth`; :func:`squeeze_flags`
  uses bit-depth squeezing as a detector; :func:`adversarial_finetune` trains the model itself to resist.
* **Adaptive evaluation**: :func:`evaluate_defenses` attacks every defense twice, with the adversarial faces
  made against the plain model (the attacker does not know the defense) and with attacks that do (the
  searches run against the defended model, clustered pixels against the median filter, extreme colours
  against squeezing, gradients through a differentiable stand-in: BPDA, Athalye et al. 2018).

>>> import numpy as np
>>> from maskedu.model import build_resnet
>>> model = build_resnet((8, 8, 3), widths=(4,), blocks=(1,))
>>> faces = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
>>> res = pgd(model, faces, [0, 1, 0], epsilon=4 / 255, steps=3)
>>> res.adversarial.dtype, int(np.abs(res.adversarial.astype(int) - faces).max()) <= 4
(dtype('uint8'), True)
>>> MedianFilter(model)(faces).shape
(3, 2)
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .common import ParameterError, check_choice, check_int, check_number
from .oracle import (
    LOSSES,
    AccessError,
    Oracle,
    as_classifier,
    attack_access,
    check_image,
    image_batch,
    label_only_attack,
    needs_access,
    oracle_for,
)

__all__ = [
    "epsilon_levels",
    "WhiteBoxResult",
    "fgsm",
    "pgd",
    "gradient_pixel_attack",
    "saliency",
    "plot_saliency",
    "Defense",
    "MedianFilter",
    "median3x3",
    "JpegDefense",
    "BitDepth",
    "squeeze_flags",
    "FinetuneResult",
    "adversarial_finetune",
    "cluster_attack",
    "ATTACKS",
    "ADAPTIVE",
    "THREAT_MODELS",
    "threat_cards",
    "DefenseReport",
    "evaluate_defenses",
    "plot_defenses",
]


def _finish(fig, created: bool):
    """Hand a figure made here back as a cell's value: in a notebook pyplot lets go of it, so it shows once."""
    if created:
        from .common import in_notebook

        if in_notebook():
            import matplotlib.pyplot as plt

            plt.close(fig)
    return fig


# --------------------------------------------------------------------------- white-box attacks


def epsilon_levels(epsilon: float) -> int:
    """An L-infinity budget on the 0..1 scale as whole pixel levels: ``4 / 255`` -> 4.

    Pixels are whole numbers, so only multiples of 1/255 can be met exactly; anything else is refused.

    >>> epsilon_levels(4 / 255), epsilon_levels(1.0)
    (4, 255)
    """
    epsilon = check_number("epsilon", epsilon, minimum=0.0, maximum=1.0)
    levels = epsilon * 255
    if abs(levels - round(levels)) > 1e-6:
        raise ParameterError(f"epsilon={epsilon} is not a whole number of pixel levels: uint8 images can only move by "
                             f"n / 255; use e.g. {max(1, round(levels))} / 255.")
    return int(round(levels))


def _gradient_oracle(model: Any) -> Oracle:
    """``model`` behind an Oracle of gradient access, for :func:`saliency` (an Oracle of a lower level is refused)."""
    if isinstance(model, Oracle):
        if model.access != "gradients":
            raise AccessError(f"a saliency map needs the gradients; this oracle gives {model.access!r} access. "
                              "Use Oracle(model, 'gradients').")
        return model
    return Oracle(model, "gradients")


def _batch(images: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"images must be uint8 of shape (N, height, width, 3) (or one image), got {x.dtype} {x.shape}.")
    y = np.asarray(labels).reshape(-1).astype(int)
    if len(y) != len(x):
        raise ValueError(f"got {len(x)} images but {len(y)} labels; give one label per image.")
    return x, y


@dataclass
class WhiteBoxResult:
    """What a white-box attack made of a batch: the uint8 ``adversarial`` images, ``success`` per image (the
    attacked model's label differs from the true one), the predictions before and after, ``queries`` (images
    sent, gradients included) and the settings."""

    original: np.ndarray
    adversarial: np.ndarray
    labels: np.ndarray
    predicted_before: np.ndarray
    predicted_after: np.ndarray
    success: np.ndarray
    queries: int
    seconds: float
    settings: dict = field(default_factory=dict)

    @property
    def success_rate(self) -> float:
        """Share of the faces the model got right whose label flipped."""
        right = self.predicted_before == self.labels
        return float(self.success[right].mean()) if right.any() else float("nan")

    @property
    def changed_pixels(self) -> np.ndarray:
        """How many pixels of each image changed (any channel)."""
        return (self.adversarial != self.original).any(axis=3).sum(axis=(1, 2))

    def __repr__(self) -> str:
        return (f"<WhiteBoxResult {self.settings.get('method', '')}: {int(self.success.sum())} of {len(self.success)} "
                f"labels flipped, {self.queries:,} queries, {self.seconds:.2f} s>")


@needs_access("gradients")
def fgsm(model: Any, images: Any, labels: Any, *, epsilon: float = 4 / 255, loss: str = "ce") -> WhiteBoxResult:
    """The fast gradient sign method (Goodfellow et al. 2015): one step of ``epsilon`` along the sign of the
    loss gradient, ``x' = clip(x + eps * sign(grad), 0, 255)``. ``model`` is a model, a defense, or an
    ``Oracle(.., "gradients")``; the images are uint8 and so is the result, never more than ``epsilon`` away.
    """
    started = time.perf_counter()
    x, y = _batch(images, labels)
    eps = epsilon_levels(epsilon)
    check_choice("loss", loss, LOSSES)
    oracle = oracle_for(fgsm, model)
    q0 = oracle.queries
    _, g, logits = oracle.gradient(x, y, loss=loss)
    adv = np.clip(x.astype(np.int32) + eps * np.sign(g).astype(np.int32), 0, 255).astype(np.uint8)
    after = oracle.labels(adv)
    before = logits.argmax(axis=1)
    return WhiteBoxResult(x.copy(), adv, y, before, after, after != y, oracle.queries - q0, time.perf_counter() - started,
                          dict(method="fgsm", epsilon=eps / 255, loss=loss))


@needs_access("gradients")
def pgd(model: Any, images: Any, labels: Any, *, epsilon: float = 4 / 255, steps: int = 10, step_size: int | None = None,
        random_start: bool = True, loss: str = "cw", seed: int | None = 0) -> WhiteBoxResult:
    """Projected gradient descent (Madry et al. 2018) under an L-infinity budget, on whole pixel values.

    From a random start inside the budget, ``steps`` times: move every channel ``step_size`` levels (default
    a quarter of the budget, at least 1) along the sign of the gradient, then project back into the budget and
    into 0..255. Every point is a whole-valued image, so the gradient is taken at real uint8 images, each of
    those answers also says whether the label flipped, and an image keeps the first point that flipped it.
    Against a defense the gradient comes through its differentiable stand-in (:class:`Defense`).
    """
    started = time.perf_counter()
    x, y = _batch(images, labels)
    eps = epsilon_levels(epsilon)
    steps = check_int("steps", steps, minimum=1)
    step = max(1, eps // 4) if step_size is None else check_int("step_size", step_size, minimum=1)
    check_choice("loss", loss, LOSSES)
    oracle = oracle_for(pgd, model)
    q0 = oracle.queries
    rng = np.random.default_rng(seed)
    x0 = x.astype(np.int32)
    lo, hi = np.maximum(x0 - eps, 0), np.minimum(x0 + eps, 255)
    cur = np.clip(x0 + (rng.integers(-eps, eps + 1, x.shape) if random_start and eps else 0), lo, hi)
    done = np.zeros(len(x), bool)
    adv = x0.copy()
    for t in range(steps + 1):
        todo = np.flatnonzero(~done)
        if len(todo) == 0:
            break
        _, g, logits = oracle.gradient(cur[todo].astype(np.uint8), y[todo], loss=loss)
        flipped = logits.argmax(axis=1) != y[todo]
        adv[todo] = cur[todo]
        done[todo[flipped]] = True
        if t == steps:
            break
        move = todo[~flipped]
        cur[move] = np.clip(cur[move] + step * np.sign(g[~flipped]).astype(np.int32), lo[move], hi[move])
    adv = adv.astype(np.uint8)
    before = oracle.labels(x)
    after = oracle.labels(adv)
    return WhiteBoxResult(x.copy(), adv, y, before, after, after != y, oracle.queries - q0, time.perf_counter() - started,
                          dict(method="pgd", epsilon=eps / 255, steps=steps, step_size=step, random_start=random_start,
                               loss=loss))


@needs_access("gradients")
def gradient_pixel_attack(model: Any, images: Any, labels: Any, *, pixels: int = 20, per_step: int = 1,
                          colors: str = "extreme") -> WhiteBoxResult:
    """A few-pixel attack guided by the gradient (in the spirit of JSMA, Papernot et al. 2016).

    Each step takes the gradient of the margin loss and, for every pixel not yet changed, estimates what
    setting it to the extreme colour the gradient points to (each channel 0 or 255) would gain: the sum over
    channels of gradient x change. It changes the ``per_step`` best pixels, and stops when the label flips or
    ``pixels`` pixels are changed: at most ``pixels / per_step + 1`` queries per face.
    """
    started = time.perf_counter()
    x, y = _batch(images, labels)
    pixels = check_int("pixels", pixels, minimum=1, maximum=x.shape[1] * x.shape[2])
    per_step = check_int("per_step", per_step, minimum=1)
    check_choice("colors", colors, ("extreme",))
    oracle = oracle_for(gradient_pixel_attack, model)
    q0 = oracle.queries
    cur = x.copy()
    used = np.zeros(x.shape[:3], bool)
    done = np.zeros(len(x), bool)
    n_changed = np.zeros(len(x), int)
    while True:
        todo = np.flatnonzero(~done & (n_changed < pixels))
        if len(todo) == 0:
            break
        _, g, logits = oracle.gradient(cur[todo], y[todo], loss="cw")
        flipped = logits.argmax(axis=1) != y[todo]
        done[todo[flipped]] = True
        for j, i in enumerate(todo):
            if flipped[j]:
                continue
            target = np.where(g[j] > 0, 255, 0)
            gain = (g[j] * (target - cur[i].astype(np.float64))).sum(axis=2)
            gain[used[i]] = -np.inf
            k = min(per_step, pixels - n_changed[i])
            best = np.argsort(gain.ravel())[::-1][:k]
            ys, xs = np.unravel_index(best, gain.shape)
            cur[i, ys, xs] = target[ys, xs]
            used[i, ys, xs] = True
            n_changed[i] += k
    before = oracle.labels(x)
    after = oracle.labels(cur)
    return WhiteBoxResult(x.copy(), cur, y, before, after, after != y, oracle.queries - q0, time.perf_counter() - started,
                          dict(method="gradient_pixels", pixels=pixels, per_step=per_step))


def saliency(model: Any, image: Any, label: int) -> np.ndarray:
    """Where the model looks: the size of the gradient of the true-class loss at each pixel (the largest over the
    three channels), scaled to 0..1, an ``(H, W)`` map (Simonyan et al. 2014)."""
    x, y = _batch(image, [label])
    _, g, _ = _gradient_oracle(model).gradient(x, y, loss="ce")
    s = np.abs(g[0]).max(axis=2)
    return s / s.max() if s.max() > 0 else s


def plot_saliency(image: np.ndarray, sal: np.ndarray, chosen: Mapping[str, Any] | None = None, *, ax=None, title: str = ""):
    """The face, its saliency map over it, and the pixels attacks chose (``{"name": (k, 5) pixels or (k, 2) x, y}``)
    marked with one marker per attack."""
    created = ax is None
    if created:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(image, interpolation="nearest")
    ax.imshow(sal, cmap="inferno", alpha=0.55, interpolation="nearest")
    from .attack import series_style

    for i, (name, px) in enumerate((chosen or {}).items()):
        px = np.asarray(px).reshape(-1, np.asarray(px).shape[-1] if np.ndim(px) > 1 else 2)
        if len(px):
            st = series_style(i)
            ax.scatter(px[:, 0], px[:, 1], s=40, marker=st["marker"], facecolors="none", edgecolors=st["color"], lw=1.8,
                       label=f"{name} ({len(px)} px)")
    if chosen:
        ax.legend(fontsize=7, loc="lower left")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return _finish(ax.figure, created)


# --------------------------------------------------------------------------- defenses


class Defense:
    """A model behind an input transformation, with the model's own interface.

    ``both(batch)`` -> ``(probabilities, logits)`` of the transformed images; ``defense(batch)`` the
    probabilities; ``transform(batch)`` the uint8 images the model really sees. ``gradient(batch, labels)``
    is BPDA (Athalye et al. 2018): the model's gradient at the transformed images, sent back through a
    differentiable stand-in for the transformation (:meth:`backward`: the identity unless a subclass says
    otherwise), averaged over ``samples`` draws when the transformation is random (expectation over
    transformation). Subclasses define ``transform`` and, where useful, ``backward``.
    """

    name = "defense"
    random = False

    def __init__(self, model: Any):
        self.model = as_classifier(model)
        self.samples = 1

    def transform(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """The stand-in's vector-Jacobian product: the identity (straight-through)."""
        return grad

    def _prep(self, batch: Any) -> np.ndarray:
        x = image_batch(batch, self.name)
        return np.clip(np.round(x), 0, 255).astype(np.uint8) if x.dtype != np.uint8 else x

    def both(self, batch: Any) -> tuple[np.ndarray, np.ndarray]:
        return self.model.both(self.transform(self._prep(batch)))

    def __call__(self, batch: Any) -> np.ndarray:
        return self.both(batch)[0]

    def gradient(self, batch: Any, labels: Any, *, loss: str = "ce"):
        x = self._prep(batch)
        draws = self.samples if self.random else 1
        total = None
        for _ in range(draws):
            value, g, logits = self.model.gradient(self.transform(x), labels, loss=loss)
            g = self.backward(g)
            total = (value, g, logits) if total is None else tuple(a + b for a, b in zip(total, (value, g, logits)))
        return tuple(t / draws for t in total)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self.model, 'name', 'model')})"


#: The compare-exchange pairs of a sorting network that leaves the median of 9 values in position 4
#: (Paeth's median-of-9, as in Devillard's "Fast median search").
_MEDIAN9 = ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3), (5, 8), (4, 7),
            (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2))


def median3x3(batch: np.ndarray) -> np.ndarray:
    """Each channel of a batch of images (N, H, W, C) replaced by its median over a 3 x 3 window, edges mirrored.

    The same numbers as ``scipy.ndimage.median_filter(batch, size=(1, 3, 3, 1), mode="reflect")``, some 20 times
    faster on a batch of faces: nine shifted views sorted by 19 elementwise min/max steps instead of a sort per
    pixel. The median filter is applied to every query an attack sends to it, so its speed is the attack's.

    >>> x = np.zeros((1, 4, 4, 1), np.uint8); x[0, 1, 1] = 255
    >>> int(median3x3(x).max())
    0
    """
    x = np.asarray(batch)
    h, w = x.shape[1:3]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)) + ((0, 0),) * (x.ndim - 3), mode="symmetric")
    v = [padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3)]
    for a, b in _MEDIAN9:
        v[a], v[b] = np.minimum(v[a], v[b]), np.maximum(v[a], v[b])
    return np.ascontiguousarray(v[4])


class MedianFilter(Defense):
    """Input smoothing: each channel replaced by its median over a ``size`` x ``size`` window (scipy.ndimage).

    A lone changed pixel is outvoted by its neighbours, which is why it stops one-pixel attacks; its stand-in
    for gradients is the mean over the same window (:meth:`backward`).
    """

    name = "median"

    def __init__(self, model: Any, size: int = 3):
        super().__init__(model)
        self.size = check_int("size", size, minimum=2, maximum=15)

    def transform(self, batch):
        x = self._prep(batch)
        if self.size == 3:
            return median3x3(x)
        from scipy.ndimage import median_filter

        return median_filter(x, size=(1, self.size, self.size, 1), mode="reflect")

    def backward(self, grad):
        from scipy.ndimage import uniform_filter

        return uniform_filter(grad, size=(1, self.size, self.size, 1), mode="reflect")


class JpegDefense(Defense):
    """JPEG re-encoding at ``quality`` (Pillow): small, high-frequency changes are what JPEG throws away first.
    Its gradient stand-in is the identity."""

    name = "jpeg"

    def __init__(self, model: Any, quality: int = 75):
        super().__init__(model)
        self.quality = check_int("quality", quality, minimum=1, maximum=95)

    def transform(self, batch):
        from PIL import Image

        out = []
        for img in self._prep(batch):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="JPEG", quality=self.quality)
            buf.seek(0)
            out.append(np.asarray(Image.open(buf).convert("RGB")))
        return np.stack(out) if out else self._prep(batch)


class BitDepth(Defense):
    """Bit-depth squeezing (Xu et al. 2018): each channel rounded to ``bits`` bits (``2 ** bits`` levels), so a
    change smaller than half a level disappears. Extreme colours (0, 255) pass unchanged. Identity stand-in."""

    name = "squeeze"

    def __init__(self, model: Any, bits: int = 3):
        super().__init__(model)
        self.bits = check_int("bits", bits, minimum=1, maximum=7)

    def transform(self, batch):
        top = 2 ** self.bits - 1
        x = self._prep(batch).astype(np.float64)
        return (np.round(x / 255 * top) / top * 255).round().astype(np.uint8)


def squeeze_flags(model: Any, images: Any, *, bits: int = 3, median: int | None = None) -> np.ndarray:
    """Bit-depth squeezing as a detector (feature squeezing, Xu et al. 2018): flag an image whose predicted label
    changes when it is squeezed (to ``bits`` bits, or by a ``median`` x ``median`` filter when given). Run it on
    clean faces for its false-alarm rate, on adversarial ones for its detection rate."""
    clf = as_classifier(model)
    x = np.asarray(images)
    plain = clf.both(x)[0].argmax(axis=1)
    flags = BitDepth(clf, bits=bits).both(x)[0].argmax(axis=1) != plain
    if median:
        flags |= MedianFilter(clf, size=median).both(x)[0].argmax(axis=1) != plain
    return flags


# --------------------------------------------------------------------------- adversarial training


@dataclass
class FinetuneResult:
    """The fine-tuned model, the seconds it took, and the loss per epoch."""

    model: Any
    seconds: float
    losses: list
    settings: dict

    def __repr__(self) -> str:
        return f"<FinetuneResult {self.settings} in {self.seconds:.1f} s, losses {[round(v, 3) for v in self.losses]}>"


def adversarial_finetune(model: Any, images: Any, labels: Any, *, epsilon: float = 4 / 255, epochs: int = 3,
                         method: str = "fgsm", steps: int = 3, batch_size: int = 32, learning_rate: float = 2e-4,
                         clean_share: float = 0.5, seed: int = 0, verbose: bool = False) -> FinetuneResult:
    """Fine-tune a copy of a trained model on adversarial faces made as it trains (the original is untouched).

    Each batch: ``method="fgsm"`` makes FGSM faces from a random start inside ``epsilon`` with a step of
    1.25 ``epsilon`` (Wong et al. 2020, "Fast is better than free"); ``"pgd"`` runs ``steps`` PGD steps. The loss
    mixes the clean faces (weight ``clean_share``) and the adversarial ones, so clean accuracy is kept.
    Batch norm and dropout stay in inference mode: a few epochs of fine-tuning, not training from scratch.
    Use only faces the model trained on (its split's ``train`` part), never the held-out ones.
    """
    import keras
    import tensorflow as tf

    check_choice("method", method, ("fgsm", "pgd"))
    eps = float(epsilon_levels(epsilon))
    epochs = check_int("epochs", epochs, minimum=1)
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    clean_share = check_number("clean_share", clean_share, minimum=0.0, maximum=1.0)
    x_all, y_all = _batch(images, labels)
    base = getattr(model, "model", model)
    tuned = keras.models.clone_model(base)
    tuned.set_weights(base.get_weights())
    sub = keras.Model(tuned.inputs, tuned.get_layer("logits").output)
    opt = keras.optimizers.Adam(learning_rate)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    tf.random.set_seed(seed)
    rng = np.random.default_rng(seed)

    @tf.function(reduce_retracing=True, autograph=False)  # plain Python control flow only
    def craft(x, y):
        if method == "fgsm":
            adv = tf.clip_by_value(x + tf.random.uniform(tf.shape(x), -eps, eps), 0.0, 255.0)
            n, alpha = 1, 1.25 * eps
        else:
            adv = tf.clip_by_value(x + tf.random.uniform(tf.shape(x), -eps, eps), 0.0, 255.0)
            n, alpha = steps, max(1.0, eps / 2)
        for _ in range(n):
            with tf.GradientTape() as tape:
                tape.watch(adv)
                loss = ce(y, sub(adv, training=False))
            g = tape.gradient(loss, adv)
            adv = tf.clip_by_value(adv + alpha * tf.sign(g), x - eps, x + eps)
            adv = tf.clip_by_value(tf.round(adv), 0.0, 255.0)
        return adv

    @tf.function(reduce_retracing=True, autograph=False)  # plain Python control flow only
    def train_step(x, y):
        adv = craft(x, y)
        with tf.GradientTape() as tape:
            loss = clean_share * ce(y, sub(x, training=False)) + (1 - clean_share) * ce(y, sub(adv, training=False))
        grads = tape.gradient(loss, sub.trainable_variables)
        opt.apply_gradients(zip(grads, sub.trainable_variables))
        return loss

    started = time.perf_counter()
    losses = []
    for epoch in range(epochs):
        order = rng.permutation(len(x_all))
        total = 0.0
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            total += float(train_step(tf.constant(x_all[idx], tf.float32), tf.constant(y_all[idx], tf.int32))) * len(idx)
        losses.append(total / len(order))
        if verbose:
            print(f"adversarial fine-tuning epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f}")
    return FinetuneResult(tuned, time.perf_counter() - started, losses,
                          dict(method=method, epsilon=eps / 255, epochs=epochs, steps=steps if method == "pgd" else 1))


# --------------------------------------------------------------------------- clustered pixels


@needs_access("probabilities", uses="logits")
def cluster_attack(predict: Any, image: Any, label: int, *, pixels: int = 20, block: int = 2, budget: int = 30_000,
                   seed: int | None = None, **sparse_kwargs: Any):
    """:func:`maskedu.attack.sparse_attack` with its pixels placed in ``block`` x ``block`` squares: a median
    filter outvotes a lone pixel but not a square of them. ``pixels`` counts real pixels (20 pixels in 2 x 2
    squares are 5 squares). Returns the sparse search's :class:`~maskedu.attack.AttackResult`, its
    ``adversarial`` and ``pixels`` mapped back to the full-size face. It needs ``"probabilities"`` access and
    runs through an :class:`~maskedu.oracle.Oracle` like the sparse search (``queries`` are full-size faces sent)."""
    from .attack import check_unseen_faces, perturb, sparse_attack
    from .attack.pixels import BlockImage

    image = check_image(image)
    block = check_int("block", block, minimum=1, maximum=8)
    squares = max(1, check_int("pixels", pixels, minimum=1) // (block * block))
    oracle = oracle_for(cluster_attack, predict)
    check_unseen_faces(oracle, image[None])  # the search below sees only the coarse face
    wrap = BlockImage(oracle, image, block)
    coarse = Oracle(wrap, "logits" if hasattr(wrap, "both") else "probabilities")  # no more than the oracle gives
    res = sparse_attack(coarse, wrap.coarse, label, pixels=squares, budget=budget, seed=seed, **sparse_kwargs)
    res.pixels = wrap.full_pixels(res.pixels)
    res.original = image.copy()
    res.adversarial = perturb(image, res.pixels.reshape(1, -1))[0] if len(res.pixels) else image.copy()
    res.settings = dict(res.settings, method="cluster", block=block, real_pixels=len(res.pixels))
    return res


# --------------------------------------------------------------------------- evaluation

#: The attacks of the grid, and the access each needs.
ATTACKS: Mapping[str, str] = {
    "one_pixel": "probabilities (scores of every query: differential evolution, the paper's attack)",
    "sparse_20": "probabilities (20 pixels, sensitivity scan and greedy search)",
    "label_only": "label (20 pixels, the label alone)",
    "pgd": "gradients (L-infinity 4/255)",
}

#: What each defense's adaptive attacks do (the ones that know it is there).
ADAPTIVE: Mapping[str, str] = {
    "none": "the attacks themselves (nothing to adapt to)",
    "median": "the searches run against the defended model; 20 pixels also in 2x2 squares, which a 3x3 median does "
              "not outvote; PGD through a mean filter standing in for the median (BPDA)",
    "jpeg": "the searches run against the defended model; PGD through the identity standing in for JPEG (BPDA)",
    "squeeze": "the searches run against the defended model in extreme colours (0 or 255 per channel, which "
               "squeezing leaves as they are); PGD through the identity standing in for the rounding (BPDA)",
    "adv_train": "every attack run against the fine-tuned model itself (its own gradients, its own answers)",
}


#: The threat models of notebook 07, one card each: what the attacker sees; :func:`threat_cards` adds the attacks
#: of each level from :func:`maskedu.oracle.attack_access` (what the attacks declare).
THREAT_MODELS: Sequence[Mapping[str, str]] = (
    dict(access="label", sees="the predicted class of each image it sends, nothing else",
         example="a deployed mask checker that only opens a door or not"),
    dict(access="probabilities", sees="the softmax scores of each image it sends", example="an API returning a confidence"),
    dict(access="logits", sees="the raw scores before the softmax (never round to exactly 1.0)",
         example="a model file run as a black box"),
    dict(access="gradients", sees="the model's weights: the gradient of a loss for every pixel",
         example="an open-source model, or an insider"),
)


class _Cards:
    def __init__(self, cards, budget):
        from .oracle import ATTACK_USES

        declared = attack_access()  # every attack, as it declares itself (needs_access)

        def listed(level):
            need = [a for a, lv in declared.items() if lv == level]
            use = [a for a in declared if ATTACK_USES[a] == level and a not in need]
            return ", ".join(need + [f"{a} (uses them when given)" for a in use]) or "none"

        cards = [dict(c, attacks=listed(c["access"])) for c in cards]
        self.cards, self.budget = cards, budget

    def __str__(self):
        return "\n".join(f"[{c['access']}] sees {c['sees']}; attacks: {c['attacks']}; e.g. {c['example']}; "
                         f"budget {self.budget}" for c in self.cards)

    def _repr_html_(self):
        import html

        cells = "".join(
            "<div style='border:1px solid #999;border-radius:6px;padding:6px 10px;margin:4px;width:210px;"
            "display:inline-block;vertical-align:top;font-size:12px'>"
            f"<b>{html.escape(c['access'])}</b><br>sees: {html.escape(c['sees'])}<br>attacks: {html.escape(c['attacks'])}"
            f"<br>e.g. {html.escape(c['example'])}<br>queries: {html.escape(self.budget)}</div>" for c in self.cards)
        return f"<div>{cells}</div>"


def threat_cards(budget: str = "counted, refused past the budget"):
    """The threat models of :data:`THREAT_MODELS` as cards (HTML in a notebook, lines elsewhere); each card lists
    the attacks that declare that access level (:func:`maskedu.oracle.attack_access`)."""
    return _Cards(THREAT_MODELS, budget)


@dataclass
class DefenseReport:
    """Every attack of :func:`evaluate_defenses`: ``records`` (one dict per defense, attack, face and mode),
    ``clean`` (clean accuracy per defense: right, faces), ``train_s`` and ``table()`` / ``to_json()``. ``engine``:
    what the attacks queried; a record's ``attack_success`` is what the attack saw, ``success`` the Keras model's
    verdict on the uint8 adversarial face (they differ only where the two engines disagree at the boundary)."""

    @property
    def disagreements(self) -> int:
        """Records whose attack saw another verdict than the Keras model gives its adversarial face."""
        return sum(r.get("attack_success", r["success"]) != r["success"] for r in self.records)

    records: list
    clean: dict
    train_s: dict
    faces: int
    seconds: float
    detector: dict = field(default_factory=dict)
    engine: str = "keras"

    def rate(self, defense: str, attack: str, adaptive: bool) -> tuple[int, int]:
        """(successes, attacks) of one cell."""
        rs = [r for r in self.records if r["defense"] == defense and r["attack"] == attack and r["adaptive"] == adaptive]
        return sum(r["success"] for r in rs), len(rs)

    def table(self) -> list[dict]:
        from .claims import wilson_interval

        rows = []
        for d, (right, n) in self.clean.items():
            lo, hi = wilson_interval(right, n)
            row = dict(defense=d, clean_accuracy=right / n if n else float("nan"), clean_ci=(lo, hi), faces=n)
            for a in sorted({r["attack"] for r in self.records}, key=list(ATTACKS).index):
                for mode in (False, True):
                    s, m = self.rate(d, a, mode)
                    key = f"{a}{' adaptive' if mode else ''}"
                    row[key] = (s, m, *wilson_interval(s, m)) if m else None
            rows.append(row)
        return rows

    def __str__(self) -> str:
        attacks = [a for a in ATTACKS if any(r["attack"] == a for r in self.records)]
        head = f"{'defense':>10} {'clean acc [95%]':>22}" + "".join(f" {a + ' (non-adapt / adapt)':>38}" for a in attacks)
        lines = [head]

        def cell(v):
            return "-" if v is None else f"{v[0] / v[1]:.0%} [{v[2]:.0%},{v[3]:.0%}]"

        for row in self.table():
            lo, hi = row["clean_ci"]
            text = f"{row['defense']:>10} {row['clean_accuracy']:>8.1%} [{lo:.0%}, {hi:.0%}] n={row['faces']:<3}"
            for a in attacks:
                text += f" {cell(row.get(a)):>18} / {cell(row.get(a + ' adaptive')):>17}"
            lines.append(text)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return "<pre>" + str(self) + "</pre>"

    def to_json(self) -> dict:
        def share(d, a, mode):
            s, m = self.rate(d, a, mode)
            return round(s / m, 4) if m else None

        attacks = [a for a in ATTACKS if any(r["attack"] == a for r in self.records)]
        queries = {}
        for d in self.clean:
            for a in attacks:
                rs = [r["queries"] for r in self.records if r["defense"] == d and r["attack"] == a and r["adaptive"]]
                if rs:
                    queries.setdefault(d, {})[a] = round(float(np.mean(rs)), 1)
        return {
            "faces": self.faces,
            "clean_accuracy": {d: round(r / n, 4) if n else None for d, (r, n) in self.clean.items()},
            "success": {d: {a: share(d, a, False) for a in attacks} for d in self.clean},
            "adaptive_success": {d: {a: share(d, a, True) for a in attacks} for d in self.clean},
            "queries": queries,
            "train_s": {k: round(v, 1) for k, v in self.train_s.items()},
            "detector": self.detector,
            "engine": self.engine,
            "engine_disagreements": self.disagreements,
            "seconds": round(self.seconds, 1),
        }


def _on_engine(model: Any, engine: str) -> Any:
    """``model`` (a :class:`~maskedu.oracle.Classifier` or a :class:`Defense` around one) answering its queries
    with ``engine``; gradients still come from the Keras model. Anything else is returned as it is."""
    import copy

    from .model import make_predict_fn
    from .oracle import Classifier

    if engine == "keras":
        return model
    if isinstance(model, Defense):
        out = copy.copy(model)
        out.model = _on_engine(model.model, engine)
        return out
    if isinstance(model, Classifier):
        return Classifier(make_predict_fn(model.model, engine=engine))
    return model


def _sparse_kwargs(budget: int) -> dict:
    from .attack import SPARSE

    return dict(SPARSE, budget=budget)


def evaluate_defenses(model: Any, images: Any, labels: Any, defenses: Mapping[str, Any], *,
                      attacks: Sequence[str] = tuple(ATTACKS), one_pixel: Mapping[str, Any] | None = None,
                      sparse_budget: int = 30_000, label_budget: int = 30_000, epsilon: float = 4 / 255,
                      pgd_steps: int = 10, seed: int = 0, train_s: Mapping[str, float] | None = None,
                      clean_faces: tuple[Any, Any] | None = None, engine: str = "keras",
                      on_face: Callable[[str, int], Any] | None = None) -> DefenseReport:
    """Attack every defense on every face, non-adaptively and adaptively (see :data:`ADAPTIVE`).

    ``model`` is the plain model; ``defenses`` maps a name to a defended model (``{"median": MedianFilter(model),
    "adv_train": finetuned_model, ...}``; the name ``"none"`` is added for the plain model). ``one_pixel`` are the
    keywords of :func:`maskedu.attack.one_pixel_attack` (default the paper's :data:`~maskedu.attack.PAPER`).

    * **Non-adaptive** (``adaptive=False``): the adversarial face made against the plain model, shown to the
      defended model (a transfer: the attacker did not know the defense).
    * **Adaptive**: the attack run against the defended model itself through an :class:`~maskedu.oracle.Oracle`
      of the access it needs, with the per-defense variants of :data:`ADAPTIVE`; a face counts as flipped when
      any variant flips it, its queries are the variants' sum.

    A face is attacked for a defense only when that defended model classifies it correctly. Clean accuracy is
    measured on ``clean_faces`` (images, labels; default the attacked faces): give all held-out faces for a
    tighter figure than a few attacked ones give. ``detector`` holds bit-depth squeezing as a detector
    (:func:`squeeze_flags`): its false-alarm rate on the clean faces the plain model gets right, and the share of
    each attack's successful adversarial faces (against the plain model) it flags.

    ``engine="tflite"`` lets the attacks query the models run by TensorFlow Lite (:func:`maskedu.model.make_predict_fn`:
    the same answers to about 1e-6, many times faster on the small batches a greedy search sends); gradients,
    clean accuracy, transfers and every reported success stay the Keras models' verdicts on the uint8 faces.
    """
    from .attack import PAPER, one_pixel_attack, sparse_attack

    started = time.perf_counter()
    x, y = _batch(images, labels)
    for a in attacks:
        check_choice("attack", a, tuple(ATTACKS))
    one_pixel = dict(PAPER if one_pixel is None else one_pixel)
    plain = as_classifier(model)
    models = {"none": plain, **{k: as_classifier(v) for k, v in defenses.items() if k != "none"}}
    check_choice("engine", engine, ("keras", "tflite"))
    queried = {d: _on_engine(m, engine) for d, m in models.items()}
    clean_pred = {d: m.both(x)[0].argmax(axis=1) for d, m in models.items()}
    cx, cy = (x, y) if clean_faces is None else _batch(*clean_faces)
    clean = {d: (int((m.both(cx)[0].argmax(axis=1) == cy).sum()), len(cy)) for d, m in models.items()}
    flags = squeeze_flags(plain, cx)
    right = plain.both(cx)[0].argmax(axis=1) == cy
    detector = {"false_alarm_rate": round(float(flags[right].mean()), 4) if right.any() else None}
    records = []

    def run(attack: str, defense: str, i: int, variant: str = "") -> dict:
        """One attack on face i against a defense: its record's success (the Keras verdict), attack_success
        (what the attack saw) and queries; and the adversarial face."""
        saw, adv, q = search(attack, queried[defense], i, variant)
        flipped = bool(models[defense].both(adv[None])[0].argmax(axis=1)[0] != y[i]) if engine != "keras" else bool(saw)
        return dict(success=flipped, attack_success=bool(saw), queries=int(q)), adv

    def search(attack: str, target: Any, i: int, variant: str) -> tuple[bool, np.ndarray, int]:
        face, lab = x[i], int(y[i])
        if attack == "one_pixel":
            o = Oracle(target, "probabilities")
            kw = dict(one_pixel, colors="extreme") if variant == "extreme" else one_pixel
            r = one_pixel_attack(o, face, lab, seed=seed + i, **kw)
            return r.success, r.adversarial, o.queries
        if attack == "sparse_20":
            o = Oracle(target, "probabilities")
            if variant.startswith("cluster"):
                r = cluster_attack(o, face, lab, pixels=20, block=int(variant[-1]), budget=sparse_budget, seed=seed + i)
            else:
                r = sparse_attack(o, face, lab, seed=seed + i, **_sparse_kwargs(sparse_budget))
            return r.success, r.adversarial, o.queries
        if attack == "label_only":
            o = Oracle(target, "label")
            r = label_only_attack(o, face, lab, pixels=20, budget=label_budget, seed=seed + i)
            return r.success, r.adversarial, o.queries
        o = Oracle(target, "gradients")
        r = pgd(o, face[None], [lab], epsilon=epsilon, steps=pgd_steps, seed=seed + i)
        return bool(r.success[0]), r.adversarial[0], o.queries

    def variants(defense: str, attack: str) -> list[str]:
        if defense == "median" and attack == "sparse_20":
            return ["", "cluster2"]
        if defense == "squeeze" and attack == "one_pixel":
            return ["extreme"]
        return [""]

    for attack in attacks:
        made = {}  # face -> adversarial face against the plain model
        won = []  # the faces whose label it flipped
        for i in range(len(x)):
            if clean_pred["none"][i] != y[i]:
                continue
            res, adv = run(attack, "none", i)
            made[i] = adv
            if res["success"]:
                won.append(i)
            records.append(dict(defense="none", attack=attack, adaptive=False, face=i, **res))
            records.append(dict(defense="none", attack=attack, adaptive=True, face=i, **res))
            if on_face:
                on_face(attack, i)
        if won:
            detector[f"detected_{attack}"] = round(float(squeeze_flags(plain, np.stack([made[i] for i in won])).mean()), 4)
        for d, m in models.items():
            if d == "none":
                continue
            right = np.flatnonzero(clean_pred[d] == y)
            if len(right):
                transfer = m.both(np.stack([made.get(i, x[i]) for i in right]))[0].argmax(axis=1)
            for j, i in enumerate(right):
                records.append(dict(defense=d, attack=attack, adaptive=False, face=int(i),
                                    success=bool(i in made and transfer[j] != y[i]), queries=0))
                flipped, saw, spent = False, False, 0
                for v in variants(d, attack):
                    res, _ = run(attack, d, int(i), v)
                    spent += res["queries"]
                    saw = saw or res["attack_success"]
                    if res["success"]:
                        flipped = True
                        break
                records.append(dict(defense=d, attack=attack, adaptive=True, face=int(i), success=flipped,
                                    attack_success=saw, queries=spent))
                if on_face:
                    on_face(f"{attack} vs {d}", int(i))
    return DefenseReport(records, clean, dict(train_s or {}), len(x), time.perf_counter() - started, detector, engine)


def plot_defenses(report: DefenseReport, *, fig=None):
    """One panel per attack: success against each defense, non-adaptive (hatched) beside adaptive (solid), each
    with its 95% Wilson interval; clean accuracy printed under each defense's name."""
    from .attack import OKABE_ITO
    from .claims import wilson_interval

    attacks = [a for a in ATTACKS if any(r["attack"] == a for r in report.records)]
    created = fig is None
    if created:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(3.4 * max(1, len(attacks)), 3.6))
    axes = fig.subplots(1, max(1, len(attacks)), squeeze=False)[0]
    names = list(report.clean)
    for ax, a in zip(axes, attacks):
        for k, mode in enumerate((False, True)):
            vals, errs = [], [[], []]
            for d in names:
                s, m = report.rate(d, a, mode)
                p = s / m if m else float("nan")
                lo, hi = wilson_interval(s, m) if m else (float("nan"), float("nan"))
                vals.append(100 * p)
                errs[0].append(max(0.0, 100 * (p - lo)) if m else 0)
                errs[1].append(max(0.0, 100 * (hi - p)) if m else 0)
            ax.bar(np.arange(len(names)) + (k - 0.5) * 0.38, vals, 0.38, yerr=errs, capsize=2,
                   color=OKABE_ITO[k], hatch="" if mode else "//", edgecolor="white",
                   label="adaptive" if mode else "non-adaptive (transfer)")
        ax.set_xticks(np.arange(len(names)))
        ax.set_xticklabels([f"{d}\n{report.clean[d][0] / max(1, report.clean[d][1]):.0%} clean" for d in names], fontsize=7)
        ax.set_ylim(0, 105)
        ax.set_title(a, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("faces flipped (%), 95% interval")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return _finish(fig, created)
