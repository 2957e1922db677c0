"""The pattern-search panel of notebook 06: an ipywidgets panel over plain, tested functions.

>>> panel = pattern_panel()        # doctest: +SKIP
>>> panel                          # doctest: +SKIP

Pick the detector, the decoy, the number of copies, the initial temperature, the cooling schedule and
the number of iterations, press Run: the fitness (current and best) and the temperature are drawn
live, next to the best pattern found so far with the detector's boxes on it. Stop ends the search
after the current iteration.

The search runs in a background thread so the kernel still hears the Stop click. Everything the panel
does is a plain function (:func:`panel_settings`, :func:`friendly_error`, :func:`live_png`,
:func:`describe_result`) or a method of :class:`PatternPanel` callable without a browser
(``panel.run()``), because ipywidgets swallows exceptions raised inside a button's callback. Run, Stop,
the thread and the error format come from :class:`maskedu.panel.RunStopPanel`, shared with the attack
explorer of notebook 04.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from . import pattern as P
from .anneal import SCHEDULES, IterationInfo
from .common import check_choice, check_int, check_number
from .panel import RunStopPanel
from .panel import friendly_error as _friendly_error

__all__ = [
    "PanelSettings",
    "panel_settings",
    "friendly_error",
    "live_png",
    "describe_result",
    "PatternPanel",
    "pattern_panel",
]

DEFAULTS = dict(detector="hog", decoy="hog", n_copies=6, t0=1.0, schedule="exponential", iterations=300, fitness="smooth", seed=0)


@dataclass(frozen=True)
class PanelSettings:
    """The panel's values, checked."""

    detector: str = "hog"
    decoy: str = "hog"
    n_copies: int = 6
    t0: float = 1.0
    schedule: str = "exponential"
    iterations: int = 300
    fitness: str = "smooth"
    seed: int = 0

    def search_kwargs(self) -> dict:
        """Keyword arguments for :func:`maskedu.pattern.search_pattern`."""
        return dict(detector=self.detector, decoy=self.decoy, n_copies=self.n_copies, t0=self.t0, schedule=self.schedule,
                    max_iters=self.iterations, fitness=self.fitness, seed=self.seed)


def panel_settings(values: Mapping[str, Any]) -> PanelSettings:
    """Check the panel's raw values (strings from text boxes are accepted) and return :class:`PanelSettings`.

    Raises ValueError/TypeError with a message that names the field and says what to do.

    >>> panel_settings({"n_copies": "4", "t0": "2.5"}).n_copies
    4
    """
    v = {**DEFAULTS, **dict(values)}
    unknown = set(v) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)}; the panel has {sorted(DEFAULTS)}.")

    def number(name, cast):
        x = v[name]
        if isinstance(x, str):
            try:
                x = cast(x.strip())
            except ValueError:
                raise ValueError(f"{name} must be a number, got {v[name]!r}.") from None
        return x

    detector = check_choice("detector", v["detector"], P.DETECTORS)
    decoy = check_choice("decoy", v["decoy"], P.DECOYS)
    n_copies = check_int("number of copies", number("n_copies", int), minimum=1, maximum=20)
    t0 = number("t0", float)
    if isinstance(t0, (int, float)) and not isinstance(t0, bool) and t0 <= 0:
        raise ValueError(f"the initial temperature must be above 0, got {t0}: at 0 no worse move is ever accepted "
                         "(use a tiny value such as 0.001 to see pure hill climbing).")
    t0 = check_number("initial temperature", t0, minimum=0.0, strict_minimum=True, maximum=1e6)
    schedule = check_choice("schedule", v["schedule"], SCHEDULES)
    iterations = check_int("iterations", number("iterations", int), minimum=1, maximum=20000)
    fitness = check_choice("fitness", v["fitness"], P.FITNESSES)
    seed = check_int("seed", number("seed", int), minimum=0)
    return PanelSettings(detector, decoy, n_copies, t0, schedule, iterations, fitness, seed)


def friendly_error(exc: BaseException) -> str:
    """The panel's message (HTML) for an error: what went wrong and what to do (the one panel format,
    :func:`maskedu.panel.friendly_error`)."""
    return _friendly_error(exc, "search")


def describe_result(result: P.PatternResult) -> str:
    """One paragraph about a finished search."""
    h = result.search.history
    return (f"{result.method} with the {result.fitness} fitness against {result.detector.name}: "
            f"{result.n_detections} face(s) detected on the best pattern after {len(h)} iterations "
            f"({result.search.seconds:.1f} s, {len(h) / max(result.search.seconds, 1e-9):.0f} evaluations/s); "
            f"{h.acceptance_rate:.0%} of the moves accepted, {h.worse_moves_accepted()} of them worse moves; "
            f"stopped by {result.search.stopped}.")


def _figure(fitness, best, temperature, image, boxes, *, max_iters=None, title=""):
    from matplotlib.figure import Figure  # a bare Figure: no pyplot, so the notebook's backend is untouched

    fig = Figure(figsize=(11, 3.4), dpi=80)
    ax1, ax3 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    t = np.arange(len(fitness))
    ax1.plot(t, fitness, color="#90a4ae", lw=1, label="current fitness")
    ax1.plot(t, best, color="#c62828", lw=2, label="best so far")
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("fitness (faces found)")
    if max_iters:
        ax1.set_xlim(0, max_iters)
    ax2 = ax1.twinx()
    ax2.plot(t, temperature, color="#1565c0", lw=1, ls="--", label="temperature")
    ax2.set_ylabel("temperature", color="#1565c0")
    lines = ax1.get_lines() + ax2.get_lines()
    ax1.legend(lines, [ln.get_label() for ln in lines], loc="upper left", fontsize=8)
    if image is not None:
        ax3.imshow(P.draw_boxes(image, boxes) if len(boxes) else image)
        ax3.set_title(f"best pattern so far: {len(boxes)} face(s)")
    ax3.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def live_png(fitness, best, temperature, image=None, boxes=(), *, max_iters=None, title="") -> bytes:
    """The live picture as PNG bytes: fitness and temperature curves, and the best pattern with its boxes."""
    fig = _figure(np.asarray(fitness), np.asarray(best), np.asarray(temperature), image, np.asarray(boxes).reshape(-1, 4),
                  max_iters=max_iters, title=title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


class PatternPanel(RunStopPanel):
    """The panel. ``panel.run(**values)`` runs a search synchronously (what Run does, minus the thread)."""

    what = "search"

    def __init__(self, *, draw_every: int = 25, **values: Any):
        import ipywidgets as W

        super().__init__()
        v = {**DEFAULTS, **values}
        self.draw_every = check_int("draw_every", draw_every, minimum=1)
        style = {"description_width": "130px"}
        # plain (unbounded) number boxes: an out-of-range value gets an explanation, not a silent clamp
        self.detector = W.Dropdown(options=list(P.DETECTORS), value=v["detector"], description="detector", style=style)
        self.decoy = W.Dropdown(options=list(P.DECOYS), value=v["decoy"], description="decoy element", style=style)
        self.n_copies = W.IntText(value=v["n_copies"], description="copies", style=style)
        self.t0 = W.FloatText(value=v["t0"], description="initial temperature", style=style)
        self.schedule = W.Dropdown(options=list(SCHEDULES), value=v["schedule"], description="schedule", style=style)
        self.iterations = W.IntText(value=v["iterations"], description="iterations", style=style)
        self.fitness = W.Dropdown(options=list(P.FITNESSES), value=v["fitness"], description="fitness", style=style)
        self.seed = W.IntText(value=v["seed"], description="seed", style=style)
        self.picture = W.Image(format="png")
        controls = W.VBox([self.detector, self.decoy, self.n_copies, self.t0, self.schedule, self.iterations, self.fitness, self.seed,
                           W.HBox([self.run_button, self.stop_button])])
        self.widget = W.VBox([controls, self.status, self.picture])
        self._fitness: list[float] = []
        self._best: list[float] = []
        self._temperature: list[float] = []
        self._space: P.PatternSpace | None = None
        self._detector = None
        self._max_iters: int | None = None

    def values(self) -> dict:
        """The widgets' raw values, by setting name."""
        return {name: getattr(self, name).value for name in DEFAULTS}

    def on_iteration(self, info: IterationInfo) -> bool:
        """Record the iteration; redraw every ``draw_every`` iterations; True (stop) once Stop was pressed."""
        self._fitness.append(info.fitness)
        self._best.append(info.best_fitness)
        self._temperature.append(info.temperature)
        if (info.iteration + 1) % self.draw_every == 0:
            self.draw(info.best_state)
        return self.stop_requested

    def draw(self, best_state=None) -> None:
        image, boxes = None, np.zeros((0, 4))
        if best_state is not None and self._space is not None:
            image = self._space.render(best_state)
            boxes = self._detector.detect(image).boxes
        self.picture.value = live_png(self._fitness, self._best, self._temperature, image, boxes, max_iters=self._max_iters)

    def parse(self) -> PanelSettings:
        """The widgets' values checked (:func:`panel_settings`), with the detector and pattern space they name."""
        settings = panel_settings(self.values())
        self._detector = P.get_detector(settings.detector)
        self._space = P.PatternSpace(decoy=settings.decoy, n_copies=settings.n_copies)
        return settings

    def search(self, settings: PanelSettings) -> P.PatternResult:
        """One search with checked settings, drawn live; the result described in the panel."""
        self._fitness, self._best, self._temperature = [], [], []
        self._max_iters = settings.iterations
        self.say(f"searching: {settings.iterations} iterations of {settings.schedule} cooling from T0={settings.t0:g} ...")
        kwargs = settings.search_kwargs()
        kwargs.pop("decoy"), kwargs.pop("n_copies")
        kwargs["detector"] = self._detector
        result = P.search_pattern(space=self._space, on_iteration=self.on_iteration, **kwargs)
        self.result = result
        self.draw(result.best_state)
        self.say(describe_result(result), "done")
        return result

    def run(self, **values: Any) -> P.PatternResult | None:
        """Set any given values, check the settings, run the search, draw the result.

        Bad input gives a message in the panel and None, never a traceback.
        """
        for name, value in values.items():
            if name not in DEFAULTS:
                self.show_error(ValueError(f"unknown setting {name!r}; the panel has {sorted(DEFAULTS)}."))
                return None
            getattr(self, name).value = value
        return super().run()


def pattern_panel(**values: Any) -> PatternPanel:
    """The notebook's panel, with starting values (``iterations=``, ``detector=``, ...)."""
    return PatternPanel(**values)
