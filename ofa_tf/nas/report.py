"""The specialize report: a Pareto plot and a markdown summary of the chosen subnet."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ofa_tf.io import atomic_save_figure, atomic_write_text


def pareto_front(cost: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats (lower cost and higher accuracy), by cost."""
    order = np.lexsort((-accuracy, cost))
    best = -np.inf
    front = []
    for i in order:
        if accuracy[i] > best:
            front.append(i)
            best = accuracy[i]
    return np.array(front, dtype=np.int64)


def plot_pareto(
    path: str | os.PathLike,
    random_points: tuple[np.ndarray, np.ndarray],
    population: tuple[np.ndarray, np.ndarray],
    chosen: tuple[float, float],
    limit: float,
    cost_label: str,
    title: str,
) -> None:
    """Writes a PNG: random subnets, the final population and its front, the budget and the chosen subnet.

    Args:
        path: PNG file.
        random_points / population: (cost, predicted top-1 %) arrays.
        chosen: (cost, predicted top-1 %) of the chosen subnet.
        limit: the budget (a vertical line).
        cost_label: x-axis label.
        title: plot title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    axes.scatter(*random_points, s=6, c="0.75", label="random subnets")
    axes.scatter(*population, s=10, c="tab:blue", label="final population")
    front = pareto_front(*population)
    axes.plot(population[0][front], population[1][front], c="tab:blue", lw=1.2, label="final front")
    axes.axvline(limit, c="tab:red", ls="--", lw=1, label="budget")
    axes.scatter([chosen[0]], [chosen[1]], marker="*", s=180, c="tab:red", zorder=5, label="chosen")
    axes.set_xlabel(cost_label)
    axes.set_ylabel("predicted top-1 (%)")
    axes.set_title(title)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    atomic_save_figure(figure, path)
    plt.close(figure)


CHOICE_NAMES = {"ks": "Kernel sizes", "e": "Expand ratios", "d": "Depths", "w": "Width indices"}


def choice_lines(config: dict[str, Any]) -> list[str]:
    """One markdown line per choice of a subnet config (MBConv: ks, e, d; ResNets: d, e, w)."""
    names = [name for name in CHOICE_NAMES if name in config]
    return [f"{CHOICE_NAMES[name]}: `{list(config[name])}`" + ("  " if i < len(names) - 1 else "") for i, name in enumerate(names)]


def write_report(path: str | os.PathLike, summary: dict[str, Any], plot_file: str) -> None:
    """Writes `report.md` for one budget from the `subnet.json` summary."""
    config = summary["config"]
    rows = [
        ("budget", summary["budget"]),
        ("resolution", f"{summary['resolution']} px"),
        ("MACs", f"{summary['macs'] / 1e6:.2f}M"),
        ("parameters", f"{summary['params'] / 1e6:.3f}M"),
    ]
    if summary.get("latency_ms") is not None:
        rows.append(("predicted latency", f"{summary['latency_ms']:.2f} ms ({summary['latency_table']})"))
    rows += [
        ("predicted top-1 (hold-out)", f"{summary['predicted_top1']:.2f}%"),
    ]
    stored = summary.get("bn_statistics", "recalibrated") != "recalibrated"
    measured = "test split, extracted" + (", the supernet's stored BN statistics" if stored else " + BN recalibrated")
    if summary.get("measured_top1") is not None:
        rows.append((f"measured top-1 ({measured})", f"{summary['measured_top1']:.2f}%"))
    else:
        rows.append(("measured top-1", "not measured: no data of the supernet's classes was given (--data)"))
    if summary.get("finetuned_top1") is not None:
        rows.append((f"after {summary['finetune_epochs']} fine-tune epoch(s) with KD", f"{summary['finetuned_top1']:.2f}%"))
    rows.append(("search time", f"{summary['search_seconds']:.2f} s ({summary['generations']} generations)"))
    lines = [f"# Specialized subnet for {summary['budget']}", ""]
    if summary.get("note"):
        lines += [f"> {summary['note']}", ""]
    lines += ["| | |", "|---|---|"] + [f"| {key} | {value} |" for key, value in rows]
    lines += [
        "",
        *choice_lines(config),
        "",
        f"![Pareto plot]({plot_file})",
        "",
        "Predictor: " + summary["predictor"],
        "",
    ]
    atomic_write_text(path, "\n".join(lines))
