"""The evolutionary search under a latency budget, on a known landscape over the flownas space's encoding."""

from __future__ import annotations

import numpy as np
import pytest

from ehdnas.core.errors import UserError
from ehdnas.methods.evolution import EvolutionSettings, evolve
from ehdnas.spaces import get_space

SPACE = get_space("flownas")
SIZES = np.array([len(d.choices) for d in SPACE.decisions])


def latency(arch) -> float:  # noqa: ANN001
    """Grows with every choice index: larger kernels, widths, depths, expansions cost more."""
    return float(np.sum(SPACE.encode(arch)))


def fitness(arch) -> float:  # noqa: ANN001
    """Falls as choices grow: the best architecture within a budget spends all of it on the cheapest gains."""
    weights = np.linspace(1.0, 2.0, len(SIZES))
    return float(-(weights * np.asarray(SPACE.encode(arch))).sum())


def test_every_evaluated_architecture_meets_the_budget_and_the_search_beats_random_sampling() -> None:
    budget = 10.0
    settings = EvolutionSettings(population=20, generations=10, parents=5, mutations=10, crossovers=10)
    result = evolve(SPACE, fitness, latency, budget, settings, np.random.default_rng(0))
    assert all(c.latency_ms <= budget for c in result.seen.values())
    assert result.best.latency_ms <= budget and result.best == min(result.seen.values(), key=lambda c: c.fitness)
    assert [c.fitness for c in result.population] == sorted(c.fitness for c in result.population)
    assert len(result.history) == 10 and result.history[-1]["best_fitness"] <= result.history[0]["best_fitness"]
    assert 0 < result.rejected < result.drawn  # uniform draws are often over a budget of 10 index steps

    # Random sampling with as many fitness evaluations, same budget: the evolution does at least as well.
    rng = np.random.default_rng(0)
    feasible = [a for a in (SPACE.decode(rng.integers(0, SIZES).tolist()) for _ in range(5000)) if latency(a) <= 10]
    random_best = min(fitness(a) for a in feasible[: len(result.seen)])
    assert result.best.fitness < random_best
    # The optimum within the budget spends its 10 index steps on the heaviest decisions (each step costs 1).
    weights, steps, optimum = np.linspace(1.0, 2.0, len(SIZES)), 10, 0.0
    for d in np.argsort(-weights):
        take = min(steps, SIZES[d] - 1)
        optimum, steps = optimum - take * weights[d], steps - take
    assert result.best.fitness <= 0.9 * optimum  # within 10% of it (seed 0: 95%)


def test_counts_are_consistent_and_seeded() -> None:
    settings = EvolutionSettings(population=8, generations=3, parents=3, mutations=4, crossovers=4)
    runs = [evolve(SPACE, fitness, latency, 12.0, settings, np.random.default_rng(7)) for _ in range(2)]
    assert runs[0].population == runs[1].population and runs[0].drawn == runs[1].drawn
    accepted = runs[0].drawn - runs[0].rejected
    assert accepted == 8 + 2 * (4 + 4)  # the initial population, then mutants and children of two breedings
    calls: list[str] = []
    evolve(SPACE, lambda a: calls.append(SPACE.to_text(a)) or 0.0, latency, 12.0, settings, np.random.default_rng(7))
    assert len(calls) == len(set(calls))  # fitness once per distinct architecture


def test_a_budget_out_of_reach_and_bad_settings_are_user_errors() -> None:
    with pytest.raises(UserError, match=r"no architecture within 0.5 ms in 50 draws \(the fastest seen: .*raise"):
        evolve(SPACE, fitness, latency, 0.5, EvolutionSettings(max_draws=50), np.random.default_rng(0))
    for bad in (EvolutionSettings(parents=60), EvolutionSettings(mutation_prob=1.5), EvolutionSettings(generations=0)):
        with pytest.raises(UserError, match="evolution:"):
            evolve(SPACE, fitness, latency, 100.0, bad, np.random.default_rng(0))


def test_a_followed_predictor_is_read_again_after_each_generation_and_drops_parents_it_puts_over_the_budget() -> None:
    """The predictor first says every architecture is 30% faster than it is; following corrects it."""
    scale = {"factor": 0.7}
    followed: list[str] = []

    def predicted(arch) -> float:  # noqa: ANN001
        return scale["factor"] * latency(arch)

    def follow(arch) -> dict[str, float]:  # noqa: ANN001
        followed.append(SPACE.to_text(arch))
        scale["factor"] = 1.0  # measured: the truth from now on
        return {"predicted_ms": 0.0, "measured_ms": latency(arch)}

    settings = EvolutionSettings(population=12, generations=4, parents=4, mutations=6, crossovers=6)
    result = evolve(SPACE, fitness, predicted, 14.0, settings, np.random.default_rng(0), follow=follow)
    assert len(followed) == 4 and all("follow_measured_ms" in r for r in result.history)
    assert all(latency(c.arch) <= 14.0 for c in result.population)  # over-budget parents were dropped
    assert all(c.latency_ms == latency(c.arch) for c in result.population)  # their latencies read again


def test_every_draw_and_fitness_is_a_step_and_steps_advance_by_generation() -> None:
    settings = EvolutionSettings(population=6, generations=3, parents=2, mutations=2, crossovers=2)
    steps: list[tuple[float, str]] = []
    records: list[tuple[int, int]] = []  # (generation ranked, steps so far)
    result = evolve(
        SPACE, fitness, latency, 10.0, settings, np.random.default_rng(0),
        lambda record: records.append((record["generation"], len(steps))),
        lambda done, message: steps.append((done, message)),
    )  # fmt: skip
    done = [d for d, _ in steps]
    assert len(steps) == result.drawn + 6 + 2 * 4  # each draw, then each candidate scored
    assert done == sorted(done) and done[-1] == 3.0
    assert [done[at - 1] for _, at in records] == [1.0, 2.0, 3.0]  # a generation is ranked when its steps are done
    assert steps[0][1].startswith("evolution 1/3: drew ") and steps[-1][1].startswith("evolution 3/3: drew 4/4, ")
    assert f"({result.rejected} of {result.drawn} drawn over the budget)" in steps[-1][1]
