"""Specialization: for each budget, search the best subnet, extract it and write a run folder.

Per budget, `OUT_DIR/<budget>/` holds:
    subnet.json    config, resolution, MACs, params, latency, predicted and measured top-1
                   (and, with finalists, each finalist's hold-out top-1)
    subnet.keras   the extracted stock Keras model, BN recalibrated at its resolution
    pareto.png     random subnets, final population and front, budget, chosen subnet
    report.md      the summary with the plot
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from ofa_tf.supernet.counting import efficiency_table
from ofa_tf.errors import ConfigError
from ofa_tf.supernet.extract import extract_subnet
from ofa_tf.io import atomic_save_model, atomic_write_json
from ofa_tf.nas.budget import Budget
from ofa_tf.nas.efficiency_predictor import EfficiencyModel
from ofa_tf.nas.report import plot_pareto, write_report
from ofa_tf.nas.search_algorithm import EvolutionFinder
from ofa_tf.space.choices import ArchRows
from ofa_tf.space.registry import Config, Space
from ofa_tf.training.finetune import FinetuneConfig, finetune, keras_top1

RANDOM_POINTS = 1000
BUDGET_USE = 0.9  # a chosen subnet below this share of its budget gets a note saying why
NEAR_BUDGET_SAMPLES = 20_000  # random subnets: the budget-use note's comparison, and the finalists' cost bands


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """Evolutionary search parameters (reference defaults).

    Args:
        population_size / generations: of the evolution.
        seed: makes the search deterministic.
        finalists: 0 trusts the predictor (the reference); N > 0 measures up to N candidates on the
            hold-out split (`choose_by_measurement`) and ships the best measured.
    """

    population_size: int = 100
    generations: int = 500
    seed: int = 0
    finalists: int = 0


@dataclasses.dataclass
class SearchOutcome:
    """The subnet chosen for one budget.

    Args:
        budget: the budget.
        config: the subnet (with its resolution).
        predicted_accuracy: predicted top-1 fraction.
        cost: its efficiency value.
        seconds: search wall time.
        note: why the subnet is not near the budget (above the largest subnet, or
            the predictor scores no subnet nearer the budget higher).
        population / population_cost / population_accuracy: the final population (None without a search).
    """

    budget: Budget
    config: Config
    predicted_accuracy: float
    cost: float
    seconds: float
    note: str = ""
    population: Any = None
    population_cost: np.ndarray | None = None
    population_accuracy: np.ndarray | None = None


def search_budget(
    space: Space, predict, model: EfficiencyModel, budget: Budget, config: SearchConfig,
    known: ArchRows | None = None,
) -> SearchOutcome:
    """The best predicted subnet under `budget` (`known`: subnets the search starts from, e.g.
    the winners of smaller budgets, so a larger budget never gets a lower predicted accuracy).

    Raises ConfigError when the budget is below the smallest subnet; a budget
    at or above the largest subnet returns the largest (with a note).
    """
    low, high = model.feasible_range(space)
    resolutions = f"{min(space.resolutions)}-{max(space.resolutions)} px"
    if budget.limit < low:
        raise ConfigError(
            f"budget {budget.text} is below the smallest subnet ({model.describe(low)} at {min(space.resolutions)} px): "
            f"this supernet spans {model.describe(low)} .. {model.describe(high)} over {resolutions}"
        )
    start = time.perf_counter()
    if budget.limit >= high:
        largest = space.max_config(max(space.resolutions))
        arch = space.to_indices([largest])
        return SearchOutcome(
            budget, largest, float(predict(arch)[0]), high, time.perf_counter() - start,
            note=f"budget {budget.text} is above the largest subnet ({model.describe(high)}): returning the largest",
        )
    finder = EvolutionFinder(
        space, predict, model.cost, budget.limit, population_size=config.population_size, generations=config.generations,
        known=known,
    )
    result = finder.run(config.seed)
    chosen = space.from_indices(result.best)[0]
    return SearchOutcome(
        budget, chosen, result.best_accuracy, result.best_efficiency, time.perf_counter() - start,
        note=budget_use_note(space, predict, model, budget, result.best_efficiency, result.best_accuracy, config.seed),
        population=result.population, population_cost=result.population_efficiency,
        population_accuracy=result.population_accuracy,
    )


def _random_subnets(space: Space, seed: int) -> ArchRows:
    """NEAR_BUDGET_SAMPLES subnets spread from small to large, with resolutions, fixed for `seed`."""
    return space.sample_indices(np.random.default_rng(seed), NEAR_BUDGET_SAMPLES, with_resolution=True, size_spread=True)


def budget_use_note(
    space: Space, predict, model: EfficiencyModel, budget: Budget, cost: float, accuracy: float, seed: int
) -> str:
    """Why a chosen subnet uses less than 90% of its budget ("" when it uses more).

    Scores random subnets whose cost lies within 90-100% of the budget: the
    predictor's best among them is what the search traded away.
    """
    if cost >= BUDGET_USE * budget.limit:
        return ""
    share = f"uses {int(100 * cost / budget.limit)}% of the budget"  # floored: 89.9% is not "90%"
    arch = _random_subnets(space, seed)
    costs = model.cost(arch)
    near = np.flatnonzero((costs >= BUDGET_USE * budget.limit) & (costs <= budget.limit))
    if near.size == 0:
        return f"{share}: none of {NEAR_BUDGET_SAMPLES:,} random subnets lies within 90-100% of it"
    best = float(np.max(predict(arch.take(near))))
    return (
        f"{share}: the predictor scores it {100 * accuracy:.2f}%, above the best of {near.size:,} random subnets "
        f"within 90-100% of the budget ({100 * best:.2f}%)"
    )


def finalists(
    space: Space, predict, model: EfficiencyModel, outcome: SearchOutcome, n: int, earlier: list[Config], seed: int
) -> list[Config]:
    """Up to `n` distinct candidates for a budget: the search's winner, the winners of smaller budgets
    that fit, and the best-predicted subnet of each cost band between the winner and the budget.

    The bands make the finalists reach the budget where the predictor ranks larger subnets too low
    (its error is largest at the top end, where it has seen the fewest subnets); the earlier winners
    make a larger budget's measured best at least a smaller one's.

    Args:
        space / predict / model: the search's space, predictor and cost.
        outcome: the search's result for the budget.
        n: how many at most.
        earlier: winners of smaller budgets of the same kind.
        seed: fixes the random candidates.
    """
    chosen = [outcome.config] + [c for c in earlier if model.cost(space.to_indices([c]))[0] <= outcome.budget.limit]
    pool = _random_subnets(space, seed)
    if outcome.population is not None:
        pool = ArchRows.concat([pool, outcome.population])
    costs, accuracy = model.cost(pool), predict(pool)
    edges = np.linspace(outcome.cost, min(outcome.budget.limit, model.feasible_range(space)[1]), max(n - len(chosen), 0) + 1)
    for low, high in zip(edges[:-1], edges[1:]):
        band = np.flatnonzero((costs > low) & (costs <= high))
        if band.size:
            chosen.append(space.from_indices(pool.take(band[[int(np.argmax(accuracy[band]))]]))[0])
    unique = list(dict.fromkeys(chosen))
    return unique[:n]


def choose_by_measurement(
    candidates: list[Config], measure, predict, space: Space, model: EfficiencyModel
) -> tuple[Config, list[dict[str, Any]]]:
    """The candidate with the best measured top-1 (the first, the predictor's choice, on ties), and a
    record per candidate (config, cost, predicted and hold-out top-1).

    Args:
        candidates: from `finalists`, the predictor's choice first.
        measure: (config, resolution) -> top-1 percent on the hold-out split.
        predict / space / model: for the records.
    """
    arch = space.to_indices(candidates)
    records = [
        {"config": c.to_dict(), "cost": float(cost), "predicted_top1": 100.0 * float(p), "holdout_top1": measure(c, c.resolution)}
        for c, cost, p in zip(candidates, model.cost(arch), predict(arch))
    ]
    best = max(range(len(records)), key=lambda i: (records[i]["holdout_top1"], -i))
    return candidates[best], records


def budget_folder_name(budget: Budget) -> str:
    """A file-system-safe folder name for a budget ("600M-MACs", "25ms_note10")."""
    return re.sub(r"[^A-Za-z0-9.\-]+", "_", budget.text)


def write_outcome_plot(
    path: Path, outcome: SearchOutcome, space: Space, predict, model: EfficiencyModel, seed: int
) -> None:
    """The Pareto PNG of one budget (random subnets for context, population, front, chosen)."""
    rng = np.random.default_rng(seed)
    random_arch = space.sample_indices(rng, RANDOM_POINTS, with_resolution=True)
    if outcome.population is not None:
        population = (outcome.population_cost, 100.0 * outcome.population_accuracy)
    else:
        population = (np.array([outcome.cost]), np.array([100.0 * outcome.predicted_accuracy]))
    unit = {"macs": 1e6, "params": 1e6, "latency": 1.0}[model.kind]
    label = {"macs": "MACs (M)", "params": "parameters (M)", "latency": "predicted latency (ms)"}[model.kind]
    plot_pareto(
        path,
        (model.cost(random_arch) / unit, 100.0 * predict(random_arch)),
        (population[0] / unit, population[1]),
        (outcome.cost / unit, 100.0 * outcome.predicted_accuracy),
        outcome.budget.limit / unit,
        label,
        f"budget {outcome.budget.text}",
    )


def materialize(net, evaluator, outcome: SearchOutcome) -> Any:
    """The chosen subnet as a stock Keras model, BN recalibrated at its resolution on training images
    (`evaluator` None: with the supernet's stored statistics)."""
    if evaluator is not None:
        evaluator.recalibrate(outcome.config, outcome.config.resolution)
    return extract_subnet(net, outcome.config, name="ofa_subnet")


def write_summary(directory: Path, summary: dict[str, Any]) -> None:
    """`subnet.json`, `report.md` (the plot is written beside them)."""
    atomic_write_json(directory / "subnet.json", summary)
    write_report(directory / "report.md", summary, "pareto.png")


def choose_subnet(
    space: Space,
    predictor,
    model: EfficiencyModel,
    budget: Budget,
    search: SearchConfig,
    smaller_winners: list[Config],
    measure_holdout_top1=None,
    progress=lambda message: None,
) -> tuple[SearchOutcome, list[dict[str, Any]] | None]:
    """The subnet for one budget: the search's, or with `search.finalists` > 1 the finalist
    with the best measured hold-out top-1; and the finalists' measurements (None without).

    Args:
        smaller_winners: the subnets chosen for smaller budgets of the same cost kind (they seed
            the search and join the finalists).
        measure_holdout_top1: (config, resolution) -> hold-out top-1 in percent (finalists only).
    """
    known = space.to_indices(smaller_winners) if smaller_winners else None
    outcome = search_budget(space, predictor.predict, model, budget, search, known)
    progress(f"{budget.text}: {model.describe(outcome.cost)}, predicted top-1 {100 * outcome.predicted_accuracy:.2f}% "
             f"({outcome.seconds:.2f} s search)" + (f"; note: {outcome.note}" if outcome.note else ""))
    if search.finalists <= 1:
        return outcome, None
    candidates = finalists(space, predictor.predict, model, outcome, search.finalists, smaller_winners, search.seed)
    chosen, measured = choose_by_measurement(candidates, measure_holdout_top1, predictor.predict, space, model)
    if chosen != outcome.config:
        arch = space.to_indices([chosen])
        first, best = measured[0], max(r["holdout_top1"] for r in measured)
        largest = max(r["cost"] for r in measured)
        outcome = dataclasses.replace(
            outcome, config=chosen, cost=float(model.cost(arch)[0]), predicted_accuracy=float(predictor.predict(arch)[0]),
            note=f"the best hold-out top-1 ({best:.1f}%) of {len(candidates)} finalists up to {model.describe(largest)}, "
                 f"above the predictor's choice ({model.describe(first['cost'])}, {first['holdout_top1']:.1f}%)",
        )
    progress(f"  {len(candidates)} finalists on the hold-out split: "
             + ", ".join(f"{model.describe(r['cost'])} {r['holdout_top1']:.1f}%" for r in measured))
    return outcome, measured


def subnet_summary(
    outcome: SearchOutcome,
    model: EfficiencyModel,
    space: Space,
    search: SearchConfig,
    provenance: dict[str, Any],
    measured_top1: float | None,
    recalibrated: bool,
    finalists_measured: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """What `subnet.json` records of a chosen subnet (fine-tuning fields None until it is fine-tuned)."""
    counts = efficiency_table(space)
    arch = space.to_indices([outcome.config])
    return {
        "budget": outcome.budget.text,
        "config": outcome.config.to_dict(),
        "resolution": outcome.config.resolution,
        "macs": int(counts.macs(arch)[0]),
        "params": int(counts.params(arch)[0]),
        "latency_ms": outcome.cost if model.kind == "latency" else None,
        "latency_table": model.source or None,
        "predicted_top1": 100.0 * outcome.predicted_accuracy,
        "measured_top1": measured_top1,
        "bn_statistics": "recalibrated" if recalibrated else "stored (supernet)",
        "search_seconds": outcome.seconds,
        "generations": 0 if outcome.population is None else search.generations,
        "search": dataclasses.asdict(search),
        "note": outcome.note,
        "predictor": provenance.get("predictor", ""),
        "provenance": provenance,
        "finetune_epochs": None,
        "finetuned_top1": None,
        "finalists": finalists_measured,
    }


def finetune_with_the_largest_as_teacher(net, space: Space, subnet, resolution: int, evaluator, source, config: FinetuneConfig) -> float:
    """Fine-tunes `subnet` with KD from the supernet's largest subnet (BN recalibrated at
    `resolution` first when `evaluator` is given); returns its test top-1 after."""
    if evaluator is not None:
        evaluator.recalibrate(space.max_config(), resolution)
    teacher = extract_subnet(net, space.max_config(resolution), name="teacher")
    finetune(subnet, teacher, source.train_examples(seed=config.seed), source.n_train, config, source.decoded_shuffle_buffer)
    return keras_top1(subnet, source.test_examples())


def specialize(
    net,
    space: Space,
    predictor,
    source,
    budgets: list[Budget],
    efficiency_models: list[EfficiencyModel],
    out_dir: str | Path,
    evaluator,
    search: SearchConfig = SearchConfig(),
    finetune_config: FinetuneConfig | None = None,
    provenance: dict[str, Any] | None = None,
    progress=lambda message: None,
    holdout=None,
) -> list[dict[str, Any]]:
    """Searches, extracts, measures and writes one folder per budget; returns the summaries.

    Args:
        net: the supernet (any registered family).
        space: its search space with the resolutions to search.
        predictor: an `AccuracyPredictor` covering those resolutions.
        source: the image source (training images for fine-tuning, test split for the measurement);
            None: nothing is measured (`measured_top1` None).
        budgets / efficiency_models: one model per budget (`efficiency_model`).
        out_dir: parent folder of the per-budget folders.
        evaluator: a `SubnetEvaluator` on training images (BN recalibration); None keeps the supernet's
            stored BN statistics.
        search: evolution parameters (`finalists` > 1 needs `evaluator` and `holdout`).
        finetune_config: fine-tune each subnet with KD from the supernet's largest subnet (None: no fine-tuning).
        provenance: recorded in every `subnet.json` (supernet, predictor, data).
        progress: receives one-line status messages.
        holdout: labelled hold-out examples (the predictor's) the finalists are measured on.
    """
    summaries = []
    winners: dict[str, list[Config]] = {}  # per cost kind, in increasing budget order
    finetuning = finetune_config is not None and finetune_config.epochs > 0
    measure = None if evaluator is None else (lambda config, resolution: evaluator.top1(config, resolution, holdout))
    for budget, model in sorted(zip(budgets, efficiency_models), key=lambda pair: (pair[1].kind, pair[0].limit)):
        outcome, measured_finalists = choose_subnet(
            space, predictor, model, budget, search, winners.get(model.kind, []), measure, progress
        )
        winners.setdefault(model.kind, []).append(outcome.config)
        directory = Path(out_dir) / budget_folder_name(budget)
        directory.mkdir(parents=True, exist_ok=True)
        write_outcome_plot(directory / "pareto.png", outcome, space, predictor.predict, model, search.seed)
        subnet = materialize(net, evaluator, outcome)
        measured = keras_top1(subnet, source.test_examples()) if source is not None else None
        summary = subnet_summary(
            outcome, model, space, search, provenance or {}, measured, evaluator is not None, measured_finalists
        )
        if finetuning:
            summary["finetune_epochs"] = finetune_config.epochs
            summary["finetuned_top1"] = finetune_with_the_largest_as_teacher(
                net, space, subnet, outcome.config.resolution, evaluator, source, finetune_config
            )
        atomic_save_model(subnet, directory / "subnet.keras")
        write_summary(directory, summary)
        after = f", {summary['finetuned_top1']:.2f}% after {finetune_config.epochs} fine-tuning epochs" if finetuning else ""
        progress(f"  measured top-1 {measured:.2f}%{after} -> {directory}" if measured is not None
                 else f"  not measured (no data: give --data) -> {directory}")
        summaries.append(summary)
    return summaries
