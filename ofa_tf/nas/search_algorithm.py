"""Evolutionary search under an efficiency budget, vectorized with numpy.

The algorithm and its parameters follow the official `EvolutionFinder`
(`ofa/nas/search_algorithm/evolution.py`): a population of 100 subnets that
satisfy the budget; each generation keeps the best 25% as parents, then adds
50% children by mutation (with probability 0.1 per position of each scope
the family's `ArchRows.SCOPES` name: MBConv kernel and expand per block, depth
per stage; ResNet expand per block, depth per stage, width per entry; new
resolution with probability 0.5) and the rest by crossover (each gene from
either parent). Here every step works on whole
populations at once: one predictor call and one constraint check per batch,
and constraint handling uses a bounded number of resampling rounds, so a
search never loops forever.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from ofa_tf.errors import ConfigError
from ofa_tf.space.choices import ArchRows

Scorer = Callable[[ArchRows], np.ndarray]


@dataclasses.dataclass
class SearchResult:
    """The best subnet found and the search history.

    Args:
        best: the best subnet (one row).
        best_accuracy: its predicted accuracy.
        best_efficiency: its efficiency value (MACs, params or ms).
        population: the final population.
        population_accuracy / population_efficiency: their scores.
        best_per_generation: predicted accuracy of the best subnet after each generation.
    """

    best: ArchRows
    best_accuracy: float
    best_efficiency: float
    population: ArchRows
    population_accuracy: np.ndarray
    population_efficiency: np.ndarray
    best_per_generation: np.ndarray


@dataclasses.dataclass
class EvolutionFinder:
    """Evolutionary search of the subnet with the best predicted accuracy under a budget.

    Args:
        space: the search space (`SearchSpace` or `ResNetSpace`; its resolutions are the resolution choices).
        accuracy: batch scorer, higher is better.
        efficiency: batch cost (MACs, params, ms); a subnet is feasible when cost <= limit.
        limit: the budget.
        population_size / generations / parent_ratio / mutation_ratio / arch_mutate_prob /
            resolution_mutate_prob: as the official defaults.
        max_rounds: resampling rounds before giving up on a feasible population.
        known: subnets to start from (e.g. the winners of smaller budgets); the feasible ones
            replace random members of the initial population, so the search ends no worse.
    """

    space: Any
    accuracy: Scorer
    efficiency: Scorer
    limit: float
    population_size: int = 100
    generations: int = 500
    parent_ratio: float = 0.25
    mutation_ratio: float = 0.5
    arch_mutate_prob: float = 0.1
    resolution_mutate_prob: float = 0.5
    max_rounds: int = 100
    known: ArchRows | None = None

    def _sample(self, rng: np.random.Generator, n: int) -> ArchRows:
        return self.space.sample_indices(rng, n, with_resolution=True)

    def initial_population(self, rng: np.random.Generator) -> ArchRows:
        """`population_size` random feasible subnets, by batched rejection sampling."""
        found: list[ArchRows] = []
        count, tried = 0, 0
        for _ in range(self.max_rounds):
            batch = self._sample(rng, max(4 * self.population_size, 256))
            feasible = np.flatnonzero(self.efficiency(batch) <= self.limit)
            tried += len(batch)
            found.append(batch.take(feasible[: self.population_size - count]))
            count += min(len(feasible), self.population_size - count)
            if count == self.population_size:
                return ArchRows.concat(found)
        raise ConfigError(
            f"only {count} of {tried} random subnets fit the budget {self.limit:g}: it is too tight for this "
            "search space; raise the budget or narrow the resolutions"
        )

    def _with_known(self, population: ArchRows) -> ArchRows:
        if self.known is None:
            return population
        known = self.known.take(np.flatnonzero(self.efficiency(self.known) <= self.limit)[: len(population)])
        return ArchRows.concat([known, population.take(np.arange(len(known), len(population)))])

    def mutate(self, rng: np.random.Generator, parents: ArchRows, n: int) -> ArchRows:
        """`n` children, each a mutated random parent: each position of a scope (MBConv: kernel and expand
        per block, depth per stage; ResNets: expand per block, depth per stage, width per entry) redrawn
        with `arch_mutate_prob`, the resolution with `resolution_mutate_prob`."""
        base = parents.take(rng.integers(0, len(parents), n))
        fresh = self._sample(rng, n)
        masks = {}
        for field, scope in base.SCOPES.items():
            if scope not in masks:
                probability = self.resolution_mutate_prob if scope == "resolution" else self.arch_mutate_prob
                masks[scope] = rng.random(getattr(base, field).shape) < probability
        return type(base)(**{
            field: np.where(masks[scope], getattr(fresh, field), getattr(base, field)) for field, scope in base.SCOPES.items()
        })

    def crossover(self, rng: np.random.Generator, parents: ArchRows, n: int) -> ArchRows:
        """`n` children, each gene taken from one of two random parents."""
        a = parents.take(rng.integers(0, len(parents), n))
        b = parents.take(rng.integers(0, len(parents), n))
        pick = lambda x, y: np.where(rng.random(x.shape) < 0.5, x, y)  # noqa: E731
        return type(a)(*(pick(x, y) for x, y in zip(a.arrays(), b.arrays())))

    def _feasible_children(self, rng, parents, n, make) -> ArchRows:
        """Children that fit the budget; rows still infeasible after `max_rounds` copy a parent."""
        children = make(rng, parents, n)
        ok = self.efficiency(children) <= self.limit
        for _ in range(self.max_rounds):
            if ok.all():
                return children
            retry = make(rng, parents, n)
            children = children.where(ok, retry)
            ok = self.efficiency(children) <= self.limit
        return children.where(ok, parents.take(rng.integers(0, len(parents), n)))

    def run(self, seed: int | np.random.Generator = 0) -> SearchResult:
        """Runs the search; deterministic for a seed."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        n_parents = int(round(self.parent_ratio * self.population_size))
        n_mutations = int(round(self.mutation_ratio * self.population_size))
        population = self._with_known(self.initial_population(rng))
        accuracy = self.accuracy(population)
        history = []
        for _ in range(self.generations):
            order = np.argsort(-accuracy, kind="stable")[:n_parents]
            parents, parent_accuracy = population.take(order), accuracy[order]
            history.append(float(parent_accuracy[0]))
            children = ArchRows.concat([
                self._feasible_children(rng, parents, n_mutations, self.mutate),
                self._feasible_children(rng, parents, self.population_size - n_mutations, self.crossover),
            ])
            population = ArchRows.concat([parents, children])
            accuracy = np.concatenate([parent_accuracy, self.accuracy(children)])
        best = int(np.argmax(accuracy))
        efficiency = self.efficiency(population)
        history.append(float(accuracy[best]))
        return SearchResult(
            best=population.take(np.array([best])),
            best_accuracy=float(accuracy[best]),
            best_efficiency=float(efficiency[best]),
            population=population,
            population_accuracy=accuracy,
            population_efficiency=efficiency,
            best_per_generation=np.array(history),
        )
