"""Evolutionary search under a latency budget (FlowNAS's search, after Once-for-All's evolution finder).

It works on a space's categorical encoding (`space.encode` / `space.decode`), so
any registered space can be searched, and it depends only on the two functions
it is handed: `fitness(arch)` (lower is better, e.g. validation EPE plus the
distance to a teacher's features) and `latency_ms(arch)` (a predictor's
estimate or a measurement). Each is called once per distinct architecture.

Every candidate is checked against the budget before its fitness is computed:
one over the budget is rejected and another is drawn, as FlowNAS and
Once-for-All do, and the rejections are counted (the share of the space the
budget rules out). Each generation keeps the `parents` best architectures seen
so far and breeds `mutations` mutants (each decision redrawn with probability
`mutation_prob`) and `crossovers` children (each decision from either of two
parents).

With `follow` (a predictor that follows the search), the generation's best is
handed to it after each generation (it measures there and corrects the
predictor), and every latency is read again: a parent the corrected predictor
puts over the budget is dropped.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ehdnas.core.errors import UserError
from ehdnas.core.options import make_config
from ehdnas.core.settings import SettingError
from ehdnas.spaces.base import SearchSpace

EVOLUTION_HELP = (
    "Evolution settings KEY=VALUE: population, generations, parents, mutations, mutation_prob, crossovers, "
    "max_draws [FlowNAS's: 50, 20, 10, 25, 0.1, 25, 1000]."
)


@dataclass(frozen=True)
class EvolutionSettings:
    """FlowNAS's defaults."""

    population: int = 50
    generations: int = 20
    parents: int = 10
    mutations: int = 25
    mutation_prob: float = 0.1
    crossovers: int = 25
    max_draws: int = 1000  # draws for one candidate before the budget is declared out of reach

    def check(self) -> None:
        counts = (self.population, self.generations, self.parents, self.max_draws)
        if min(counts) < 1 or self.mutations < 0 or self.crossovers < 0:
            raise UserError("evolution: population, generations, parents and max_draws must be at least 1")
        if self.parents > self.population:
            raise UserError("evolution: parents cannot outnumber the population")
        if not 0 <= self.mutation_prob <= 1:
            raise UserError("evolution: the mutation probability must lie within 0..1")


def evolution_settings(values: dict[str, Any]) -> EvolutionSettings:
    """A method's `evolution` option (KEY=VALUE pairs or a spec's object) as typed settings."""
    return make_config(EvolutionSettings, values, "evolution")


def spelled_out(values: dict[str, Any]) -> dict[str, Any]:
    """Every evolution setting of `values`, typed, so that what ran is what is stored (as given when invalid:
    `check_evolution` reports it)."""
    try:
        return dataclasses.asdict(evolution_settings(values))
    except UserError:
        return values


def check_evolution(values: dict[str, Any]) -> None:
    """A method's `evolution` option checked, its problem a SettingError of that option."""
    try:
        evolution_settings(values).check()
    except UserError as err:
        raise SettingError("evolution", str(err).removeprefix("evolution: ")) from None


@dataclass(frozen=True)
class Candidate:
    arch: Any
    fitness: float  # lower is better
    latency_ms: float


@dataclass(frozen=True)
class EvolutionResult:
    population: list[Candidate]  # the last generation, best first
    history: list[dict[str, float]]  # per generation: best and mean fitness, best's latency
    seen: dict[str, Candidate]  # every architecture whose fitness was computed, by its text
    drawn: int  # candidates proposed (initial samples, mutants, children)
    rejected: int  # of those, over the budget

    @property
    def best(self) -> Candidate:
        return self.population[0]


def evolve(
    space: SearchSpace,
    fitness: Callable[[Any], float],
    latency_ms: Callable[[Any], float],
    budget_ms: float,
    settings: EvolutionSettings,
    rng: np.random.Generator,
    on_generation: Callable[[dict[str, float]], None] = lambda _: None,
    on_step: Callable[[float, str], None] = lambda done, message: None,
    follow: Callable[[Any], dict[str, float]] | None = None,
) -> EvolutionResult:
    """The best architecture within `budget_ms` that the evolution finds, with its last population.

    `on_generation(record)` as each generation is ranked; `on_step(done, message)` after every draw and every
    fitness, `done` in generations (a generation's candidates drawn, then scored, make up one).
    """
    settings.check()
    sizes = np.array([len(d.choices) for d in space.decisions])
    latencies: dict[str, float] = {}  # every drawn architecture's, by its text
    seen: dict[str, Candidate] = {}
    history: list[dict[str, float]] = []
    drawn = rejected = 0
    coming, size, accepted, scored = 0, settings.population, 0, 0  # the generation being made (from 0), its candidates

    def stepped() -> None:
        on_step(
            coming + (accepted + scored) / (2 * max(size, 1)),
            f"evolution {coming + 1}/{settings.generations}: drew {accepted}/{size}, scored {scored}/{size} "
            f"({rejected} of {drawn} drawn over the budget)",
        )

    def within_budget(propose: Callable[[], np.ndarray]) -> Any:
        nonlocal drawn, rejected, accepted
        for _ in range(settings.max_draws):
            arch = space.decode(propose().tolist())
            key = space.to_text(arch)
            if key not in latencies:
                latencies[key] = float(latency_ms(arch))
            drawn += 1
            if latencies[key] <= budget_ms:
                accepted += 1
                stepped()
                return arch
            rejected += 1
            stepped()
        fastest = min(latencies.values())
        raise UserError(
            f"no architecture within {budget_ms:g} ms in {settings.max_draws} draws (the fastest seen: "
            f"{fastest:.4g} ms): raise the latency budget"
        )

    def evaluate(arch: Any) -> Candidate:
        nonlocal scored
        key = space.to_text(arch)
        if key not in seen:
            seen[key] = Candidate(arch, float(fitness(arch)), latencies[key])
        scored += 1
        stepped()
        return seen[key]

    def mutant(parents: list[Candidate]) -> np.ndarray:
        indices = np.array(space.encode(parents[rng.integers(len(parents))].arch))
        redraw = rng.random(len(sizes)) < settings.mutation_prob
        return np.where(redraw, rng.integers(0, sizes), indices)

    def child(parents: list[Candidate]) -> np.ndarray:
        a, b = (space.encode(parents[i].arch) for i in rng.integers(len(parents), size=2))
        return np.where(rng.random(len(sizes)) < 0.5, a, b)

    population = [evaluate(within_budget(lambda: rng.integers(0, sizes))) for _ in range(settings.population)]
    for generation in range(settings.generations):
        population = sorted({space.to_text(c.arch): c for c in population}.values(), key=lambda c: c.fitness)
        record = {
            "generation": generation + 1,
            "best_fitness": population[0].fitness,
            "mean_fitness": float(np.mean([c.fitness for c in population])),
            "best_latency_ms": population[0].latency_ms,
        }
        if follow is not None:  # the predictor is corrected where the search stands: latencies read again
            record |= {f"follow_{k}": v for k, v in follow(population[0].arch).items() if k != "predicted_ms"}
            latencies.clear()
            for c in population:
                latencies[space.to_text(c.arch)] = float(latency_ms(c.arch))
            population = [dataclasses.replace(c, latency_ms=latencies[space.to_text(c.arch)]) for c in population]
            population = [c for c in population if c.latency_ms <= budget_ms]
            seen.update({space.to_text(c.arch): c for c in population})
            if not population:  # the corrected predictor rules every parent out: start again from random draws
                fresh = (evaluate(within_budget(lambda: rng.integers(0, sizes))) for _ in range(settings.population))
                population = sorted(fresh, key=lambda c: c.fitness)
        history.append(record)
        on_generation(record)
        if generation + 1 == settings.generations:
            break
        parents = population[: settings.parents]
        coming, size, accepted, scored = generation + 1, settings.mutations + settings.crossovers, 0, 0
        mutants = [within_budget(functools.partial(mutant, parents)) for _ in range(settings.mutations)]
        children = [within_budget(functools.partial(child, parents)) for _ in range(settings.crossovers)]
        population = parents + [evaluate(arch) for arch in mutants + children]
    return EvolutionResult(population, history, seen, drawn, rejected)
