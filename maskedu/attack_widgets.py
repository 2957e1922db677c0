"""The one-pixel attack explorer of notebook 04: an ipywidgets panel over plain, tested functions.

>>> explorer = attack_explorer(model, crops.images, crops.labels)    # doctest: +SKIP
>>> explorer                                                          # doctest: +SKIP

Pick a face (filtered by class and by whether the model gets it right), set the search, press Run:
a live curve shows the true-class confidence of the best candidate and of the population each
generation, with the 0.5 decision line; at the end the original and adversarial faces sit side by side.
Stop ends the search after the current generation.

A **defense** can be chosen (:data:`DEFENSE_CHOICES`: a median filter, JPEG re-encoding, bit-depth squeezing from
:mod:`maskedu.defend`, and any defended model passed in, such as one from :func:`maskedu.defend.adversarial_finetune`)
with how the attacker meets it (:data:`MODE_CHOICES`): **adaptive**, the search queries the defended model itself;
**transfer**, the search attacks the plain model and its face is then shown to the defense. The curve's title and
the result text name the defense, and the result says whether it held (:func:`defense_outcome`).

The attack runs in a background thread, so the kernel keeps handling the Stop click while it runs.
Everything the widget does is a plain function here (:func:`filter_faces`, :func:`panel_settings`,
:func:`live_png`, :func:`result_png`, :func:`describe_result`, :func:`friendly_error`) or a method of
:class:`AttackExplorer` that can be called without a browser (``explorer.run_attack()``), because
ipywidgets swallows exceptions raised inside a button's callback. Run, Stop, the thread and the error
format come from :class:`maskedu.panel.RunStopPanel`, shared with the pattern panel of notebook 06.
"""

from __future__ import annotations

import base64
import html
import io
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from . import attack as _attack
from .attack import AttackResult, GenerationState, as_scorer, check_attack_params, one_pixel_attack
from .common import ParameterError, ParameterTypeError, check_choice
from .panel import RunStopPanel
from .panel import friendly_error as _friendly_error

__all__ = [
    "CORRECTNESS_CHOICES",
    "DEFENSE_CHOICES",
    "MODE_CHOICES",
    "make_defense",
    "defense_settings",
    "DefenseOutcome",
    "defense_outcome",
    "filter_faces",
    "parse_mutation",
    "panel_settings",
    "friendly_error",
    "describe_result",
    "face_caption",
    "thumbnail_png",
    "live_png",
    "result_png",
    "AttackExplorer",
    "attack_explorer",
]

CORRECTNESS_CHOICES = ("all", "correct", "incorrect")
#: The defenses the explorer builds itself (:mod:`maskedu.defend`); more can be passed in as defended models.
DEFENSE_CHOICES = ("none", "median filter", "JPEG", "bit-depth squeeze")
#: How the attacker meets the defense: it searches against the defended model itself ("adaptive"), or against the
#: plain model, its face then shown to the defense ("transfer": the attacker does not know the defense is there).
MODE_CHOICES = ("adaptive", "transfer")
MODE_LABELS = {"adaptive": "adaptive: attack the defended model",
               "transfer": "transfer: attack the plain model, then test on the defense"}


# --------------------------------------------------------------------------- plain functions


def filter_faces(labels: Any, predicted: Any, *, cls: str | int = "all", correctness: str = "all",
                 class_names: Sequence[str] | None = None) -> np.ndarray:
    """Indices of the faces of one class (``"all"`` for every class) that the model gets right or wrong.

    >>> filter_faces([0, 1, 1, 0], [0, 1, 0, 1], cls="without_mask", correctness="incorrect",
    ...              class_names=("with_mask", "without_mask")).tolist()
    [2]
    """
    labels = np.asarray(labels).reshape(-1)
    predicted = np.asarray(predicted).reshape(-1)
    if labels.shape != predicted.shape:
        raise ValueError(f"got {len(labels)} labels but {len(predicted)} predictions.")
    keep = np.ones(len(labels), bool)
    if cls != "all":
        if isinstance(cls, str):
            names = list(class_names or ())
            if cls not in names:
                raise ValueError(f"class {cls!r} is not one of {['all'] + names}.")
            cls = names.index(cls)
        keep &= labels == int(cls)
    if correctness not in CORRECTNESS_CHOICES:
        raise ValueError(f"correctness={correctness!r} is not one of {list(CORRECTNESS_CHOICES)}.")
    if correctness == "correct":
        keep &= labels == predicted
    elif correctness == "incorrect":
        keep &= labels != predicted
    return np.flatnonzero(keep)


def parse_mutation(value: Any) -> float | tuple[float, float]:
    """``"0.5, 1"`` or ``(0.5, 1)`` -> a dithering range; ``"0.8"`` or ``0.8`` -> one number."""
    if isinstance(value, str):
        parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p]
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise ValueError(
                f"mutation {value!r} is not a number: type one number such as 0.8, or a range such as 0.5, 1."
            ) from None
        if len(numbers) == 1:
            return numbers[0]
        if len(numbers) == 2:
            return (numbers[0], numbers[1])
        raise ValueError(f"mutation {value!r}: type one number (0.8) or two (0.5, 1), not {len(numbers)}.")
    if isinstance(value, (tuple, list)):
        return tuple(float(v) for v in value)  # type: ignore[return-value]
    return value


def panel_settings(values: Mapping[str, Any]) -> dict:
    """Check the panel's values and turn them into keyword arguments for :func:`one_pixel_attack`.

    ``values`` holds pixels, popsize, maxiter, mutation (number, pair or text), recombination, fitness,
    seed and optionally colors. Raises ValueError/TypeError with the message the panel shows.

    >>> panel_settings(dict(pixels=1, popsize=400, maxiter=75, mutation="0.5, 1", recombination=1,
    ...                     fitness="probability", seed=0))["mutation"]
    (0.5, 1.0)
    """
    missing = {"pixels", "popsize", "maxiter", "mutation", "recombination", "fitness", "seed"} - set(values)
    if missing:
        raise ValueError(f"missing settings: {', '.join(sorted(missing))}.")
    mutation = parse_mutation(values["mutation"])
    seed = None if values["seed"] in (None, "") else values["seed"]
    colors = values.get("colors", "any")
    p = check_attack_params(pixels=values["pixels"], popsize=values["popsize"], maxiter=values["maxiter"],
                            fitness=values["fitness"], mutation=mutation, recombination=values["recombination"],
                            colors=colors, seed=seed)
    return {k: p[k] for k in ("pixels", "popsize", "maxiter", "fitness", "mutation", "recombination", "seed", "colors")}


def friendly_error(exc: BaseException) -> str:
    """An HTML message for the panel: what is wrong and that nothing ran (the one panel format,
    :func:`maskedu.panel.friendly_error`)."""
    return _friendly_error(exc, "attack")


def face_caption(index: int, label: int, probs: np.ndarray, class_names: Sequence[str]) -> str:
    """A one-line HTML caption: face number, true class, prediction and its probability."""
    pred = int(np.argmax(probs))
    ok = "correct" if pred == label else "WRONG"
    colour = "#2e7d32" if pred == label else "#c62828"
    return (f"face #{index}: true <b>{html.escape(class_names[label])}</b>, predicted "
            f"<b style='color:{colour}'>{html.escape(class_names[pred])}</b> ({ok}), "
            f"p(true class) = {probs[label]:.6f}")


def describe_result(result: AttackResult) -> str:
    """The outcome as HTML: verdict, prediction before/after, the pixels, queries and seconds."""
    verdict = ("<b style='color:#c62828'>Label flipped</b>" if result.success
               else "<b style='color:#2e7d32'>Label held</b>")
    before = f"<b>{html.escape(result.name(result.predicted_before))}</b>, p(true) = {result.prior_confidence:.6f}"
    after = (f"<b>{html.escape(result.name(result.predicted_after))}</b>, p(true) = {result.final_confidence:.6f} "
             f"(drop {result.confidence_drop:.6f})")
    pixels = "; ".join(f"({x}, {y}) set to RGB ({r}, {g}, {b})" for x, y, r, g, b in result.pixels.tolist())
    return (f"<div>{verdict} ({html.escape(result.stop_reason)}) after {result.generations} generation(s).<br>"
            f"Before: {before}. After: {after}.<br>Pixels: {html.escape(pixels) or 'none'}.<br>"
            f"{result.queries:,} model queries ({result.evaluations:,} candidates scored, repeats answered from the "
            f"cache) in {result.seconds:.2f} s.</div>")


def make_defense(name: str, model: Any, extra: Mapping[str, Any] | None = None) -> Any:
    """The defended model for a choice of :data:`DEFENSE_CHOICES` (or a name of ``extra``, defended models passed
    in); ``"none"`` is the model itself. The wrappers keep the model's interface, so an attack runs against them.

    >>> make_defense("median filter", lambda batch: np.tile([[2.0, 0.0]], (len(batch), 1)))
    MedianFilter(<lambda>)
    """
    from .defend import BitDepth, JpegDefense, MedianFilter

    extra = dict(extra or {})
    check_choice("defense", name, (*DEFENSE_CHOICES, *extra))
    if name in extra:
        return extra[name]
    builders = {"median filter": MedianFilter, "JPEG": JpegDefense, "bit-depth squeeze": BitDepth}
    return builders[name](model) if name in builders else model


def defense_settings(values: Mapping[str, Any], defenses: Sequence[str] = DEFENSE_CHOICES) -> tuple[str, str]:
    """The panel's ``defense`` and ``mode`` values, checked: ``(defense, mode)`` (missing ones: no defense,
    adaptive). Raises ValueError with the message the panel shows.

    >>> defense_settings(dict(defense="JPEG", mode="transfer"))
    ('JPEG', 'transfer')
    """
    defense = values.get("defense", "none")
    mode = values.get("mode", "adaptive")
    check_choice("defense", defense, tuple(defenses))
    check_choice("mode", mode, MODE_CHOICES)
    return defense, mode


@dataclass
class DefenseOutcome:
    """What an attack did against a defense: which ``defense`` and ``mode``, the true ``label``, and the plain and
    defended models' probabilities for the clean and the adversarial face. ``held`` is True when the defended
    model still gives the true label to the adversarial face."""

    defense: str
    mode: str
    label: int
    class_names: tuple
    plain_clean: np.ndarray
    plain_adversarial: np.ndarray
    defended_clean: np.ndarray
    defended_adversarial: np.ndarray
    attack_success: bool

    @property
    def held(self) -> bool:
        return int(np.argmax(self.defended_adversarial)) == self.label

    def _says(self, probs: np.ndarray) -> str:
        pred = int(np.argmax(probs))
        name = self.class_names[pred] if pred < len(self.class_names) else f"class {pred}"
        return f"<b>{html.escape(name)}</b> (p(true) = {probs[self.label]:.6f})"

    def describe(self) -> str:
        """The outcome as HTML: the defense, how it was attacked, and whether it held."""
        if self.defense == "none":
            return "<div>Defense: <b>none</b> (the attack ran against the plain model).</div>"
        how = ("adaptive: the search queried the defended model itself" if self.mode == "adaptive" else
               "transfer: the search attacked the plain model"
               + (" and flipped it" if self.attack_success else " and did not flip it")
               + "; its face was then shown to the defense")
        verdict = ("<b style='color:#2e7d32'>the defense held</b>" if self.held
                   else "<b style='color:#c62828'>the attack beat the defense</b>")
        return (f"<div>Defense: <b>{html.escape(self.defense)}</b>, {how}.<br>"
                f"Defended model on the adversarial face: {self._says(self.defended_adversarial)}: {verdict} "
                f"(on the clean face: {self._says(self.defended_clean)}).<br>"
                f"Plain model on the adversarial face: {self._says(self.plain_adversarial)}. "
                "Switch between adaptive and transfer to see the gap.</div>")


def defense_outcome(model: Any, defended: Any, result: AttackResult, defense: str, mode: str) -> DefenseOutcome:
    """Show the clean and adversarial faces of ``result`` to the plain ``model`` and to the ``defended`` one (four
    images, outside the attack's query count) and say what the defense did."""
    from .oracle import as_classifier

    pair = np.stack([result.original, result.adversarial])
    plain = np.asarray(as_classifier(model).both(pair)[0], np.float64)
    guarded = plain if defense == "none" else np.asarray(as_classifier(defended).both(pair)[0], np.float64)
    names = tuple(result.class_names or ())
    return DefenseOutcome(defense, mode, int(result.label), names, plain[0], plain[1], guarded[0], guarded[1],
                          bool(result.success))


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def thumbnail_png(image: np.ndarray, scale: int = 3) -> bytes:
    """A face enlarged ``scale`` times (nearest neighbour, so single pixels stay visible) as PNG bytes."""
    from PIL import Image

    img = Image.fromarray(np.asarray(image, np.uint8))
    img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def live_png(history: Sequence[GenerationState], *, maxiter: int | None = None, title: str = "") -> bytes:
    """The live confidence curve as PNG bytes (drawn without pyplot, so safe from a background thread)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    _attack.plot_history(history, ax=ax, title=title)
    if maxiter:
        ax.set_xlim(0, maxiter)
    return _png(fig)


def result_png(result: AttackResult) -> bytes:
    """Original vs adversarial, circled and zoomed, as PNG bytes."""
    from matplotlib.figure import Figure

    return _png(_attack.plot_attack(result, fig=Figure()))


def _bundle(item: Any) -> dict:
    """One display_data output for an Output widget: PNG bytes or an HTML string."""
    if isinstance(item, bytes):
        data = {"image/png": base64.b64encode(item).decode("ascii"), "text/plain": "<figure>"}
    else:
        data = {"text/html": str(item), "text/plain": html.unescape(str(item))}
    return {"output_type": "display_data", "data": data, "metadata": {}}


def show(output: Any, *items: Any) -> None:
    """Replace what an Output widget shows (works from a background thread, unlike ``with output:``)."""
    output.outputs = tuple(_bundle(i) for i in items)


# --------------------------------------------------------------------------- the panel


class AttackExplorer(RunStopPanel):
    """The explorer panel. ``explorer.widget`` is the ipywidgets box (also shown when the explorer is a cell's value).

    ``run_attack()`` runs one attack with the panel's settings in the calling thread and returns the
    :class:`AttackResult` (or None when a setting is invalid: the message is in the panel). The Run
    button calls ``start()``, which does the same in a background thread; Stop calls ``stop()``.

    ``defenses`` adds defended models to the defense choice, by name (``{"adversarial training": tuned}``, a model
    from :func:`maskedu.defend.adversarial_finetune`): the panel builds the median filter, JPEG and bit-depth
    squeezing itself, but fine-tuning takes minutes of training, too long for a click. ``explorer.outcome`` is
    the :class:`DefenseOutcome` of the last attack.
    """

    what = "attack"

    def __init__(self, predict: Any, images: np.ndarray, labels: np.ndarray, *,
                 class_names: Sequence[str] | None = None, settings: Mapping[str, Any] | None = None,
                 live_interval: float = 0.3, defenses: Mapping[str, Any] | None = None):
        import ipywidgets as W

        super().__init__()
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be a uint8 batch of shape (N, height, width, 3), got {images.dtype} {images.shape}.")
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(images) or len(images) == 0:
            raise ValueError(f"need one label per image and at least one image; got {len(images)} images, {len(labels)} labels.")
        self.scorer = as_scorer(predict)
        self.images, self.labels = images, labels.astype(int)
        self.probs, _ = self.scorer(images)
        self.predicted = self.probs.argmax(axis=1)
        n_classes = self.probs.shape[1]
        if class_names is None:  # maskedu's two classes, or three (MASKEDU_CLASSES=3)
            from .dataset import default_class_names

            class_names = default_class_names(n_classes) or tuple(f"class {i}" for i in range(n_classes))
        self.class_names = tuple(class_names)
        self.live_interval = live_interval
        self.history: list[GenerationState] = []
        self._last_draw = 0.0
        self._maxiter = 0
        start = dict(_attack.WATCH)
        start.update(settings or {})

        style = {"description_width": "110px"}
        lay = W.Layout(width="260px")
        self.w_class = W.Dropdown(options=["all", *self.class_names], value="all", description="class", style=style, layout=lay)
        self.w_correct = W.Dropdown(options=list(CORRECTNESS_CHOICES), value="correct", description="prediction", style=style, layout=lay)
        self.w_index = W.IntSlider(min=0, max=0, value=0, description="face", style=style, layout=lay, continuous_update=False)
        self.w_thumb = W.Image(format="png", width=150, height=150)
        self.w_caption = W.HTML()
        self.w_pixels = W.IntText(value=start["pixels"], description="pixels", style=style, layout=lay)
        self.w_popsize = W.IntText(value=start["popsize"], description="population", style=style, layout=lay)
        self.w_maxiter = W.IntText(value=start["maxiter"], description="generations", style=style, layout=lay)
        mut = start["mutation"]
        self.w_mutation = W.Text(value=", ".join(str(m) for m in mut) if isinstance(mut, tuple) else str(mut),
                                 description="mutation", style=style, layout=lay)
        self.w_recomb = W.FloatText(value=start["recombination"], description="recombination", style=style, layout=lay)
        self.w_fitness = W.Dropdown(options=list(_attack.FITNESS_CHOICES), value=start["fitness"], description="fitness", style=style, layout=lay)
        self.w_colors = W.Dropdown(options=list(_attack.COLOR_CHOICES), value=start["colors"], description="colours", style=style, layout=lay)
        self.w_seed = W.IntText(value=start.get("seed", 0) or 0, description="seed", style=style, layout=lay)
        self.w_preset = W.Dropdown(options=["(keep)", *_attack.PRESETS], value="(keep)", description="preset", style=style, layout=lay)
        self.w_budget = W.HTML()
        self.out_live = W.Output(layout=W.Layout(min_height="240px"))
        self.out_result = W.Output()
        self.predict = predict
        self.extra_defenses = _check_defenses(defenses)
        self.defense_choices = (*DEFENSE_CHOICES, *self.extra_defenses)
        self._defended: dict[str, Any] = {}
        self.outcome: DefenseOutcome | None = None
        self._against = ""
        defense, mode = defense_settings(start, self.defense_choices)
        self.w_defense = W.Dropdown(options=list(self.defense_choices), value=defense, description="defense",
                                    style=style, layout=lay)
        self.w_mode = W.Dropdown(options=list(MODE_CHOICES), value=mode, description="attacker", style=style, layout=lay)
        self.w_mode_note = W.HTML(layout=W.Layout(width="260px"))
        self.w_mode.observe(lambda _: self.show_mode(), "value")
        self.show_mode()

        self.w_class.observe(lambda _: self.refresh_faces(), "value")
        self.w_correct.observe(lambda _: self.refresh_faces(), "value")
        self.w_index.observe(lambda _: self.show_face(), "value")
        self.w_preset.observe(lambda ch: self.apply_preset(ch["new"]), "value")
        for wdg in (self.w_pixels, self.w_popsize, self.w_maxiter):
            wdg.observe(lambda _: self.show_budget(), "value")

        left = W.VBox([W.HTML("<b>1. Pick a face</b>"), self.w_class, self.w_correct, self.w_index, self.w_thumb, self.w_caption])
        middle = W.VBox([W.HTML("<b>2. Set the search</b>"), self.w_preset, self.w_pixels, self.w_popsize, self.w_maxiter,
                         self.w_mutation, self.w_recomb, self.w_fitness, self.w_colors, self.w_seed, self.w_budget,
                         W.HTML("<b>3. Choose a defense</b>"), self.w_defense, self.w_mode, self.w_mode_note,
                         W.HBox([self.run_button, self.stop_button]), self.status])
        self.widget = W.VBox([W.HBox([left, middle, self.out_live]), self.out_result])
        self.refresh_faces()
        self.show_budget()

    # ---- face selection
    @property
    def candidates(self) -> np.ndarray:
        """Face indices that pass the class and correctness filters."""
        return filter_faces(self.labels, self.predicted, cls=self.w_class.value, correctness=self.w_correct.value,
                            class_names=self.class_names)

    @property
    def face_index(self) -> int | None:
        idx = self.candidates
        if len(idx) == 0:
            return None
        return int(idx[min(self.w_index.value, len(idx) - 1)])

    def refresh_faces(self) -> None:
        n = len(self.candidates)
        self.w_index.max = max(0, n - 1)
        self.w_index.value = min(self.w_index.value, max(0, n - 1))
        self.w_index.disabled = n <= 1
        self.show_face()

    def select(self, face: int) -> None:
        """Show face number ``face`` (an index into the images), clearing filters that hide it."""
        if face not in set(self.candidates.tolist()):
            self.w_class.value, self.w_correct.value = "all", "all"
        self.w_index.value = int(np.flatnonzero(self.candidates == face)[0])
        self.show_face()

    def show_face(self) -> None:
        i = self.face_index
        if i is None:
            self.w_thumb.value = b""
            self.w_caption.value = "<i>No face matches these filters.</i>"
            return
        self.w_thumb.value = thumbnail_png(self.images[i])
        self.w_caption.value = face_caption(i, int(self.labels[i]), self.probs[i], self.class_names)

    # ---- settings
    def values(self) -> dict:
        return dict(pixels=self.w_pixels.value, popsize=self.w_popsize.value, maxiter=self.w_maxiter.value,
                    mutation=self.w_mutation.value, recombination=self.w_recomb.value, fitness=self.w_fitness.value,
                    colors=self.w_colors.value, seed=self.w_seed.value, defense=self.w_defense.value,
                    mode=self.w_mode.value)

    def apply_preset(self, name: str) -> None:
        if name not in _attack.PRESETS:
            return
        p = _attack.PRESETS[name]
        self.w_pixels.value, self.w_popsize.value, self.w_maxiter.value = p["pixels"], p["popsize"], p["maxiter"]
        m = p["mutation"]
        self.w_mutation.value = ", ".join(str(v) for v in m) if isinstance(m, tuple) else str(m)
        self.w_recomb.value, self.w_fitness.value, self.w_colors.value = p["recombination"], p["fitness"], p["colors"]

    def show_mode(self) -> None:
        """Say under the attacker choice what it means."""
        self.w_mode_note.value = f"<small>{html.escape(MODE_LABELS.get(self.w_mode.value, ''))}</small>"

    def show_budget(self) -> None:
        try:
            s = panel_settings(self.values())
            self.w_budget.value = (f"<small>up to {s['popsize'] * (s['maxiter'] + 1):,} candidates "
                                   f"(the paper: 30,400)</small>")
        except (ValueError, TypeError) as exc:
            self.w_budget.value = f"<small style='color:#c62828'>{html.escape(str(exc))}</small>"

    # ---- running
    def _on_generation(self, state: GenerationState) -> bool:
        self.history.append(state)
        now = time.perf_counter()
        if now - self._last_draw >= self.live_interval or state.success:
            self._last_draw = now
            self._draw_live()
        return self.stop_requested

    def _draw_live(self) -> None:
        if not self.history:
            return
        last = self.history[-1]
        show(self.out_live, live_png(self.history, maxiter=self._maxiter,
                                     title=f"{self._against}generation {last.generation}: best p(true) = "
                                           f"{last.best_confidence:.4f}"))
        self.status.value = (f"generation {last.generation}/{self._maxiter} · {last.queries:,} queries · "
                               f"{last.seconds:.1f} s")

    def parse(self) -> tuple[int, dict, tuple[str, str]]:
        """The face to attack, the attack's keyword arguments (:func:`panel_settings`) and the defense and mode
        (:func:`defense_settings`), checked."""
        face = self.face_index
        if face is None:
            raise ValueError("no face matches the filters: choose another class or prediction filter.")
        values = self.values()
        return face, panel_settings(values), defense_settings(values, self.defense_choices)

    def defended(self, defense: str) -> Any:
        """The defended model of a choice (built once, :func:`make_defense`)."""
        if defense not in self._defended:
            self._defended[defense] = make_defense(defense, self.predict, self.extra_defenses)
        return self._defended[defense]

    def show_error(self, exc: BaseException) -> None:
        show(self.out_result, friendly_error(exc))
        self.say("cannot run", "error")

    def search(self, settings: tuple[int, dict]) -> AttackResult:
        """One attack with checked settings, drawn live; the result shown below the panel."""
        face, kwargs, (defense, mode) = settings
        self.history = []
        self._maxiter = kwargs["maxiter"]
        self._last_draw = 0.0
        show(self.out_result)
        defended = self.defended(defense)
        adaptive = defense != "none" and mode == "adaptive"
        self._against = ("no defense · " if defense == "none" else
                         f"vs {defense} ({'adaptive' if adaptive else 'transfer: the plain model'}) · ")
        self.say(f"running against {'the ' + defense if adaptive else 'the plain model'}...")
        # adaptive: the black-box search queries the defended model itself, through its own oracle
        result = one_pixel_attack(defended if adaptive else self.predict, self.images[face], int(self.labels[face]),
                                  on_generation=self._on_generation, class_names=self.class_names, **kwargs)
        result.settings.update(defense=defense, mode=mode)
        self.result = result
        self.outcome = defense_outcome(self.predict, defended, result, defense, mode)
        self._draw_live()
        show(self.out_result, result_png(result), describe_result(result), self.outcome.describe())
        held = "" if defense == "none" else (f" · {defense} held" if self.outcome.held else f" · {defense} beaten")
        self.say(f"done: {result.stop_reason}{held}", "done")
        return result

    def run_attack(self) -> AttackResult | None:
        """Run one attack with the panel's settings, here and now; show it in the panel and return it."""
        return self.run()

def attack_explorer(predict: Any, images: np.ndarray, labels: np.ndarray, *, class_names: Sequence[str] | None = None,
                    defenses: Mapping[str, Any] | None = None, **settings: Any) -> AttackExplorer:
    """Build the explorer panel for ``predict`` on these faces; settings (pixels=, popsize=, ..., defense=, mode=)
    pre-fill it; ``defenses`` adds defended models to the defense choice by name."""
    return AttackExplorer(predict, images, labels, class_names=class_names, settings=settings, defenses=defenses)


def _check_defenses(defenses: Mapping[str, Any] | None) -> dict:
    """Defended models passed in, by name: names new and plain, models callable."""
    if defenses is None:
        return {}
    if not isinstance(defenses, Mapping):
        raise ParameterTypeError(f"defenses must map a name to a defended model, e.g. {{'adversarial training': tuned}}; "
                                 f"got {type(defenses).__name__}.")
    for name, model in defenses.items():
        if not isinstance(name, str) or not name or name in DEFENSE_CHOICES:
            raise ParameterError(f"defense name {name!r} must be a new, non-empty text (the panel already has "
                                 f"{', '.join(DEFENSE_CHOICES)}).")
        if not callable(model) and not callable(getattr(model, "both", None)):
            raise ParameterTypeError(f"defense {name!r} must be a model (or a function of images), got {type(model).__name__}.")
    return dict(defenses)
