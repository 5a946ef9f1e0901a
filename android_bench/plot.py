"""Scatter plot of predicted (LUT sum) against measured latency."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ofa_tf.nas.latency_correction import LinearCorrection
from ofa_tf.io import atomic_save_figure


def scatter_plot(
    predicted: np.ndarray,
    measured: np.ndarray,
    correction: LinearCorrection,
    summary: dict[str, Any],
    path: str | os.PathLike,
) -> None:
    """Writes a PNG: one dot per subnet, the y = x line and the fitted correction.

    Args:
        predicted: LUT sums (ms).
        measured: whole-model latencies (ms).
        correction: fitted linear correction.
        summary: `Validation.summary()` (r, ρ, MAPE shown in the title).
        path: PNG path.
    """
    from matplotlib.figure import Figure  # no pyplot: renders with Agg, no global backend state

    figure = Figure(figsize=(5, 5), dpi=120)
    axes = figure.subplots()
    axes.scatter(predicted, measured, s=14, label="subnets")
    low = min(np.min(predicted), np.min(measured)) * 0.95
    high = max(np.max(predicted), np.max(measured)) * 1.05
    line = np.array([low, high])
    axes.plot(line, line, "k--", linewidth=1, label="measured = predicted")
    axes.plot(
        line, correction.apply(line), "r-", linewidth=1,
        label=f"fit: {correction.scale:.3f} × predicted {correction.offset:+.3f} ms",
    )
    axes.set_xlabel("predicted latency, LUT sum (ms)")
    axes.set_ylabel("measured latency (ms)")
    axes.set_title(
        f"r={summary['pearson_r']:.3f}  ρ={summary['spearman_rho']:.3f}  MAPE {summary['mape_pct']:.1f}% "
        f"→ {summary['mape_corrected_loo_pct']:.1f}% corrected",
        fontsize=9,
    )
    axes.legend(fontsize=8)
    figure.tight_layout()
    atomic_save_figure(figure, path)
