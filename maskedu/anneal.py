"""Simulated annealing, written out by hand because seeing it is the lesson (notebook 06).

The whole algorithm fits in one loop (:func:`simulated_annealing`)::

    state = initial state;  f = fitness(state)
    for t in 0, 1, 2, ...:
        T = schedule(t)                                  # the temperature falls as t grows
        candidate = neighbour(state)                     # a small random change
        delta = fitness(candidate) - f                   # > 0: better (we maximise)
        if random() < acceptance_probability(delta, T):  # the Metropolis rule
            state, f = candidate, fitness(candidate)

The **Metropolis rule** accepts every move that is at least as good, and a worse move with probability
``exp(delta / T)``: while ``T`` is high almost anything goes (the search explores); as ``T`` falls only
small steps down are taken, and at the end the search only climbs. The **schedule** decides how fast
that happens: :class:`ExponentialSchedule` (mlrose's ``ExpDecay``, which the original experiment used:
``T = T0 * exp(-k t)``), :class:`GeometricSchedule` (``T = T0 * alpha**t``, the same curve written with
a ratio) and :class:`ArithmeticSchedule` (``T = T0 - step * t``, a straight line down).

:func:`random_search` draws independent random states with the same budget: the baseline every search
has to beat.

>>> import numpy as np
>>> rng_target = 3.0
>>> result = simulated_annealing(lambda x: -(x - rng_target) ** 2, 0.0,
...                              lambda x, rng: x + rng.normal(0, 0.5), max_iters=500, seed=0)
>>> round(result.best_state, 1)
3.0
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np

from .common import ParameterError, check_choice, check_int, check_number

__all__ = [
    "acceptance_probability",
    "Schedule",
    "ExponentialSchedule",
    "GeometricSchedule",
    "ArithmeticSchedule",
    "SCHEDULES",
    "make_schedule",
    "IterationInfo",
    "SearchHistory",
    "AnnealResult",
    "simulated_annealing",
    "random_search",
]


# --------------------------------------------------------------------------- the Metropolis rule


def acceptance_probability(delta: float, temperature: float) -> float:
    """Probability of moving to a candidate whose fitness differs from the current one by ``delta``.

    We *maximise*, so ``delta > 0`` is an improvement and is always taken (probability 1), as is a
    move that is just as good (``delta == 0``). A worse move (``delta < 0``) is taken with probability
    ``exp(delta / temperature)``: close to 1 for a small loss at a high temperature, close to 0 for a
    big loss or a cold search. At ``temperature == 0`` worse moves are never taken (pure hill climbing).

    >>> acceptance_probability(+0.5, 1.0)
    1.0
    >>> round(acceptance_probability(-1.0, 1.0), 4)    # exp(-1)
    0.3679
    >>> round(acceptance_probability(-1.0, 0.1), 6)    # exp(-10): a cold search barely moves down
    4.5e-05
    """
    delta = float(delta)
    temperature = float(temperature)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}.")
    if delta >= 0:
        return 1.0
    if temperature == 0:
        return 0.0
    return math.exp(delta / temperature)


# --------------------------------------------------------------------------- temperature schedules


@dataclass(frozen=True)
class Schedule:
    """A temperature schedule: call it with the iteration number ``t`` to get the temperature.

    Every schedule starts at ``t0`` and never goes below ``min_temp`` (as in mlrose, where the search
    would otherwise stop once the temperature reaches 0).
    """

    t0: float = 1.0
    min_temp: float = 0.001
    #: The schedule's own rate parameter (a subclass's field), which must be above 0.
    rate: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        check_number("t0 (the initial temperature)", self.t0, minimum=0.0, strict_minimum=True)
        check_number("min_temp", self.min_temp, minimum=0.0)
        if self.min_temp > self.t0:
            raise ValueError(f"min_temp={self.min_temp} is above the initial temperature t0={self.t0}; lower it.")
        if self.rate is not None:
            check_number(self.rate, getattr(self, self.rate), minimum=0.0, strict_minimum=True)

    def raw(self, t: float) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def __call__(self, t: int | float) -> float:
        if t < 0:
            raise ValueError(f"the iteration number must be >= 0, got {t}.")
        return max(float(self.raw(t)), self.min_temp)

    def curve(self, n: int) -> np.ndarray:
        """The temperatures of the first ``n`` iterations, for plotting."""
        return np.array([self(t) for t in range(int(n))], dtype=np.float64)


@dataclass(frozen=True)
class ExponentialSchedule(Schedule):
    """``T = t0 * exp(-decay * t)``: mlrose's ``ExpDecay`` (defaults ``t0=1, decay=0.005, min_temp=0.001``)."""

    decay: float = 0.005
    rate: ClassVar[str] = "decay"

    def raw(self, t: float) -> float:
        return self.t0 * math.exp(-self.decay * t)


@dataclass(frozen=True)
class GeometricSchedule(Schedule):
    """``T = t0 * alpha**t``: multiply by ``alpha`` (0 < alpha < 1) every step (mlrose's ``GeomDecay``).

    The same curve as the exponential schedule with ``alpha = exp(-decay)``; textbooks use both spellings.
    """

    alpha: float = 0.99
    rate: ClassVar[str] = "alpha"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha >= 1.0:
            raise ValueError(f"alpha must be below 1 so the temperature falls, got {self.alpha}.")

    def raw(self, t: float) -> float:
        return self.t0 * self.alpha**t


@dataclass(frozen=True)
class ArithmeticSchedule(Schedule):
    """``T = t0 - step * t``: a straight line down to ``min_temp`` (mlrose's ``ArithDecay``)."""

    step: float = 0.001
    rate: ClassVar[str] = "step"

    def raw(self, t: float) -> float:
        return self.t0 - self.step * t


SCHEDULES = {"exponential": ExponentialSchedule, "geometric": GeometricSchedule, "arithmetic": ArithmeticSchedule}


def make_schedule(name: str = "exponential", t0: float = 1.0, *, max_iters: int | None = None, min_temp: float = 0.001, **kwargs: Any) -> Schedule:
    """Build a schedule by name: ``"exponential"``, ``"geometric"`` or ``"arithmetic"``.

    With ``max_iters`` and no explicit rate, the rate is chosen so the temperature reaches ``min_temp``
    right at the last iteration (so every schedule spends the whole budget cooling). Extra keyword
    arguments (``decay``, ``alpha``, ``step``) are passed to the schedule.

    >>> make_schedule("arithmetic", 1.0, max_iters=1001, min_temp=0.0)(500)
    0.5
    """
    check_choice("schedule", name, SCHEDULES)
    t0 = check_number("t0 (the initial temperature)", t0, minimum=0.0, strict_minimum=True)
    min_temp = check_number("min_temp", min_temp, minimum=0.0)
    if max_iters is not None and not kwargs:
        n = max(check_int("max_iters", max_iters, minimum=1) - 1, 1)
        floor = min_temp if min_temp > 0 else t0 * 1e-3
        if name == "exponential":
            kwargs["decay"] = math.log(t0 / floor) / n if t0 > floor else 1e-9
        elif name == "geometric":
            kwargs["alpha"] = math.exp(-math.log(t0 / floor) / n) if t0 > floor else 1 - 1e-9
        else:
            kwargs["step"] = max((t0 - min_temp) / n, 1e-12)
    return SCHEDULES[name](t0=t0, min_temp=min_temp, **kwargs)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class IterationInfo:
    """What ``on_iteration`` receives after every iteration (return True from the callback to stop)."""

    iteration: int
    temperature: float
    fitness: float  # the current state's fitness after the decision
    candidate_fitness: float
    best_fitness: float
    accepted: bool
    probability: float
    state: Any
    best_state: Any


@dataclass
class SearchHistory:
    """Per iteration: current fitness, candidate fitness, best so far, temperature, acceptance."""

    fitness: list[float] = field(default_factory=list)
    candidate_fitness: list[float] = field(default_factory=list)
    best_fitness: list[float] = field(default_factory=list)
    temperature: list[float] = field(default_factory=list)
    accepted: list[bool] = field(default_factory=list)
    probability: list[float] = field(default_factory=list)
    initial_fitness: float = float("nan")

    def __len__(self) -> int:
        return len(self.fitness)

    def as_arrays(self) -> dict[str, np.ndarray]:
        """Every column as a numpy array (handy for plotting)."""
        return {k: np.asarray(v) for k, v in self.__dict__.items() if isinstance(v, list)}

    @property
    def acceptance_rate(self) -> float:
        return float(np.mean(self.accepted)) if self.accepted else float("nan")

    def worse_moves_accepted(self) -> int:
        """How many times the search stepped down (the moves only annealing makes)."""
        before = [self.initial_fitness] + self.fitness[:-1]
        return int(sum(a and c < b for a, c, b in zip(self.accepted, self.candidate_fitness, before)))


@dataclass
class AnnealResult:
    """The outcome of :func:`simulated_annealing` or :func:`random_search`."""

    best_state: Any
    best_fitness: float
    final_state: Any
    final_fitness: float
    history: SearchHistory
    n_evaluations: int
    stopped: str  # "max_iters", "max_attempts" or "callback"
    seconds: float
    method: str = "simulated_annealing"

    def __repr__(self) -> str:
        return (f"AnnealResult(method={self.method!r}, best_fitness={self.best_fitness:.4g}, iterations={len(self.history)}, "
                f"evaluations={self.n_evaluations}, stopped={self.stopped!r}, seconds={self.seconds:.2f})")


# --------------------------------------------------------------------------- the searches


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _checked(value: Any, state: Any, where: str) -> float:
    """The fitness as a float; NaN or infinity raises, naming the state: the Metropolis rule cannot compare
    them (a NaN start would reject every move and return the start as if it were the best)."""
    value = float(value)
    if not math.isfinite(value):
        shown = repr(state)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ParameterError(f"fitness returned {value} for {where} ({shown}): a fitness must be a finite number "
                             "(higher is better). Check what it computes for that state.")
    return value


def simulated_annealing(
    fitness: Callable[[Any], float],
    initial_state: Any,
    neighbour: Callable[[Any, np.random.Generator], Any],
    *,
    schedule: Schedule | str = "exponential",
    t0: float = 1.0,
    max_iters: int = 1000,
    max_attempts: int | None = None,
    seed: int | np.random.Generator | None = 0,
    on_iteration: Callable[[IterationInfo], bool | None] | None = None,
    acceptance: Callable[[float, float], float] = acceptance_probability,
) -> AnnealResult:
    """Maximise ``fitness`` by simulated annealing.

    ``fitness(state) -> float``; ``neighbour(state, rng) -> new state`` (a small random change, never
    modifying ``state`` in place). ``schedule`` is a :class:`Schedule` or a name for
    :func:`make_schedule` (then ``t0`` is the initial temperature and the rate is set so the temperature
    reaches its floor at ``max_iters``). ``max_attempts`` stops the search after that many consecutive
    rejected moves, as mlrose's ``max_attempts`` did (the original used 10); None runs every iteration.
    ``on_iteration(info)`` is called after each iteration with an :class:`IterationInfo`; returning True
    stops the search (a live plot's Stop button). ``acceptance`` lets you plug in your own rule. A fitness
    that is NaN or infinite raises :class:`~maskedu.common.ParameterError` naming the state.

    >>> r = simulated_annealing(lambda x: -abs(x), 5, lambda x, rng: x + int(rng.choice([-1, 1])), max_iters=200)
    >>> r.best_state, r.best_fitness
    (0, 0.0)
    """
    max_iters = check_int("max_iters", max_iters, minimum=1)
    if max_attempts is not None:
        max_attempts = check_int("max_attempts", max_attempts, minimum=1)
    if isinstance(schedule, str):
        schedule = make_schedule(schedule, t0, max_iters=max_iters)
    elif not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a Schedule or one of {sorted(SCHEDULES)}, got {schedule!r}.")
    rng = _rng(seed)
    start = time.perf_counter()

    state = initial_state
    current = _checked(fitness(state), state, "the initial state")
    best_state, best = state, current
    history = SearchHistory(initial_fitness=current)
    attempts, stopped, evaluations = 0, "max_iters", 1

    for t in range(max_iters):
        temperature = schedule(t)
        candidate = neighbour(state, rng)
        candidate_fitness = _checked(fitness(candidate), candidate, f"the candidate at iteration {t}")
        evaluations += 1
        delta = candidate_fitness - current
        probability = float(acceptance(delta, temperature))
        accepted = bool(rng.random() < probability)  # probability 1 is always accepted: random() < 1
        if accepted:
            state, current = candidate, candidate_fitness
            attempts = 0
            if current > best:
                best_state, best = state, current
        else:
            attempts += 1

        history.fitness.append(current)
        history.candidate_fitness.append(candidate_fitness)
        history.best_fitness.append(best)
        history.temperature.append(temperature)
        history.accepted.append(accepted)
        history.probability.append(probability)

        if on_iteration is not None:
            info = IterationInfo(t, temperature, current, candidate_fitness, best, accepted, probability, state, best_state)
            if on_iteration(info) is True:
                stopped = "callback"
                break
        if max_attempts is not None and attempts >= max_attempts:
            stopped = "max_attempts"
            break

    return AnnealResult(best_state, best, state, current, history, evaluations, stopped, time.perf_counter() - start)


def random_search(
    fitness: Callable[[Any], float],
    sample: Callable[[np.random.Generator], Any],
    *,
    max_iters: int = 1000,
    seed: int | np.random.Generator | None = 0,
    on_iteration: Callable[[IterationInfo], bool | None] | None = None,
) -> AnnealResult:
    """The baseline: draw ``max_iters + 1`` independent random states (the same number of fitness
    evaluations as :func:`simulated_annealing`) and keep the best. ``sample(rng) -> state``.

    The history's temperature column is 0 and every draw counts as accepted.
    """
    max_iters = check_int("max_iters", max_iters, minimum=1)
    rng = _rng(seed)
    start = time.perf_counter()
    best_state = sample(rng)
    best = _checked(fitness(best_state), best_state, "the first draw")
    history = SearchHistory(initial_fitness=best)
    stopped, evaluations, state, value = "max_iters", 1, best_state, best
    for t in range(max_iters):
        state = sample(rng)
        value = _checked(fitness(state), state, f"the draw at iteration {t}")
        evaluations += 1
        if value > best:
            best_state, best = state, value
        history.fitness.append(value)
        history.candidate_fitness.append(value)
        history.best_fitness.append(best)
        history.temperature.append(0.0)
        history.accepted.append(True)
        history.probability.append(1.0)
        if on_iteration is not None:
            info = IterationInfo(t, 0.0, value, value, best, True, 1.0, state, best_state)
            if on_iteration(info) is True:
                stopped = "callback"
                break
    return AnnealResult(best_state, best, state, value, history, evaluations, stopped, time.perf_counter() - start, method="random_search")
