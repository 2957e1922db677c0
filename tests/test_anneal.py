"""Simulated annealing by hand: the Metropolis rule, the schedules, the loop, the random-search baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from maskedu.anneal import (
    ArithmeticSchedule,
    ExponentialSchedule,
    GeometricSchedule,
    acceptance_probability,
    make_schedule,
    random_search,
    simulated_annealing,
)


def test_acceptance_probability_is_the_metropolis_rule():
    assert acceptance_probability(0.3, 1.0) == 1.0
    assert acceptance_probability(0.0, 0.5) == 1.0
    assert acceptance_probability(-1.0, 1.0) == pytest.approx(math.exp(-1.0))
    assert acceptance_probability(-0.5, 2.0) == pytest.approx(math.exp(-0.25))
    assert acceptance_probability(-1.0, 0.0) == 0.0
    # colder means less willing to step down
    assert acceptance_probability(-1.0, 0.1) < acceptance_probability(-1.0, 1.0) < acceptance_probability(-1.0, 10.0)
    with pytest.raises(ValueError, match="temperature"):
        acceptance_probability(-1.0, -0.1)


def test_schedules_follow_their_formulas_and_floor():
    e = ExponentialSchedule(t0=2.0, decay=0.01, min_temp=0.001)
    assert e(0) == 2.0 and e(100) == pytest.approx(2.0 * math.exp(-1.0))
    g = GeometricSchedule(t0=2.0, alpha=0.9, min_temp=0.001)
    assert g(3) == pytest.approx(2.0 * 0.9**3)
    a = ArithmeticSchedule(t0=1.0, step=0.01, min_temp=0.05)
    assert a(50) == pytest.approx(0.5) and a(1000) == 0.05
    assert np.all(np.diff(e.curve(50)) < 0) and np.all(np.diff(g.curve(50)) < 0)
    # make_schedule spreads the cooling over the budget: the floor is reached at the last iteration
    for name in ("exponential", "geometric", "arithmetic"):
        s = make_schedule(name, 1.0, max_iters=200, min_temp=0.01)
        assert s(0) == pytest.approx(1.0)
        assert s(199) == pytest.approx(0.01, rel=1e-6)
        assert s(100) > 0.01


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(t0=-1.0), "t0"),
        (dict(t0=0.0), "t0"),
        (dict(t0=1.0, min_temp=2.0), "min_temp"),
        (dict(t0=1.0, decay=-0.1), "decay"),
    ],
)
def test_bad_schedule_parameters_are_explained(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExponentialSchedule(**kwargs)


def test_bad_schedule_names_and_alpha():
    with pytest.raises(ValueError, match="schedule"):
        make_schedule("linear")
    with pytest.raises(ValueError, match="alpha"):
        GeometricSchedule(alpha=1.5)
    with pytest.raises(ValueError, match="t0"):
        make_schedule("exponential", -2.0)


def test_annealer_accepts_every_improvement():
    # each neighbour is strictly better: every move must be accepted, even at a tiny temperature
    result = simulated_annealing(lambda x: float(x), 0, lambda x, rng: x + 1, schedule=ExponentialSchedule(t0=1e-3, min_temp=1e-9),
                                 max_iters=300, seed=0)
    assert all(result.history.accepted)
    assert result.best_state == 300 and result.final_state == 300
    assert result.history.worse_moves_accepted() == 0


def test_annealer_accepts_worse_moves_with_the_metropolis_probability():
    # every neighbour is worse by exactly 1; the state resets, so each iteration is an independent trial
    rng_fitness = {0: 0.0, 1: -1.0}
    n = 4000
    for temperature in (0.5, 1.0, 3.0):
        schedule = ExponentialSchedule(t0=temperature, decay=1e-12, min_temp=1e-6)
        result = simulated_annealing(lambda s: rng_fitness[s], 0, lambda s, rng: 1 - s if s == 0 else 0,
                                     schedule=schedule, max_iters=n, seed=123)
        h = result.history
        down = [a for a, c, f in zip(h.accepted, h.candidate_fitness, [h.initial_fitness] + h.fitness[:-1]) if c < f]
        expected = math.exp(-1.0 / temperature)
        rate = float(np.mean(down))
        stderr = math.sqrt(expected * (1 - expected) / len(down))
        assert abs(rate - expected) < 4 * stderr, (temperature, rate, expected)
        np.testing.assert_allclose([p for p, c in zip(h.probability, h.candidate_fitness) if c == -1.0], expected)


def test_annealer_finds_the_optimum_and_beats_greedy_on_a_trap():
    # a 1-D landscape with a local peak at 2 and the global one at 10: greedy from 0 gets stuck at 2
    landscape = np.array([0, 1, 3, 1, 0, 1, 2, 3, 4, 5, 6, 5, 4, 3, 2, 1], dtype=float)

    def step(x, rng):
        return int(np.clip(x + rng.choice([-1, 1]), 0, len(landscape) - 1))

    sa = [simulated_annealing(lambda x: landscape[x], 0, step, t0=3.0, max_iters=400, seed=s).best_state for s in range(10)]
    greedy = [simulated_annealing(lambda x: landscape[x], 0, step, schedule=ExponentialSchedule(t0=1e-4, min_temp=1e-9),
                                  max_iters=400, seed=s).best_state for s in range(10)]
    assert sum(b == 10 for b in sa) >= 8
    assert all(b == 2 for b in greedy)


def test_history_max_attempts_and_callback():
    calls = []
    result = simulated_annealing(lambda x: -abs(x), 0, lambda x, rng: x + 5, schedule=ExponentialSchedule(t0=0.01, min_temp=1e-6),
                                 max_iters=100, max_attempts=10, seed=0, on_iteration=calls.append)
    assert result.stopped == "max_attempts" and len(result.history) == 10 == len(calls)
    assert result.n_evaluations == 11
    arrays = result.history.as_arrays()
    assert set(arrays) >= {"fitness", "temperature", "accepted", "best_fitness", "probability"}
    assert all(len(v) == 10 for v in arrays.values())

    stop = simulated_annealing(lambda x: float(x), 0, lambda x, rng: x + 1, max_iters=100, seed=0,
                               on_iteration=lambda info: info.iteration >= 4)
    assert stop.stopped == "callback" and len(stop.history) == 5
    with pytest.raises(ValueError, match="max_iters"):
        simulated_annealing(lambda x: 0.0, 0, lambda x, rng: x, max_iters=0)
    with pytest.raises(ValueError, match="max_attempts"):
        simulated_annealing(lambda x: 0.0, 0, lambda x, rng: x, max_attempts=0)
    with pytest.raises(TypeError, match="schedule"):
        simulated_annealing(lambda x: 0.0, 0, lambda x, rng: x, schedule=0.5)


def test_annealer_is_reproducible_and_takes_a_custom_rule():
    def run(seed, rule=acceptance_probability):
        return simulated_annealing(lambda x: -(x - 3.0) ** 2, 0.0, lambda x, rng: x + rng.normal(0, 0.5), max_iters=200,
                                   seed=seed, acceptance=rule).history.fitness

    assert run(1) == run(1)
    assert run(1) != run(2)
    never_down = run(1, rule=lambda d, t: 1.0 if d >= 0 else 0.0)
    assert all(b >= a for a, b in zip(never_down, never_down[1:]))


def test_random_search_uses_the_same_budget():
    result = random_search(lambda x: -abs(x - 0.5), lambda rng: float(rng.uniform(0, 1)), max_iters=200, seed=0)
    assert result.n_evaluations == 201 and len(result.history) == 200
    assert result.method == "random_search"
    assert abs(result.best_state - 0.5) < 0.02
    assert np.all(np.diff(result.history.best_fitness) >= 0)
