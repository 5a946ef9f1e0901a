"""Agreement between predicted (LUT sum) and measured latencies, and the linear correction of the sum.

The correction `measured ≈ scale * predicted + offset` is stored beside the
LUT as `NAME.correction.json` (`{"_correction": {"scale": s, "offset": o}, ...}`);
`load_correction(lut_path).apply(LatencyTable.latency(arch, r))` gives
corrected predictions.
"""

from __future__ import annotations


import numpy as np

from ofa_tf.nas.latency_correction import LinearCorrection


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation coefficient."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties sharing their average rank."""
    values = np.asarray(values)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), np.float64)
    ranks[order] = np.arange(len(values))
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (Pearson of the ranks, ties averaged)."""
    return pearson(_ranks(x), _ranks(y))


def mape(predicted: np.ndarray, measured: np.ndarray) -> float:
    """Mean absolute percentage error of `predicted` against `measured`, in %."""
    predicted, measured = np.asarray(predicted, np.float64), np.asarray(measured, np.float64)
    return float(np.mean(np.abs(predicted - measured) / measured) * 100.0)


def mean_signed_error(predicted: np.ndarray, measured: np.ndarray) -> float:
    """Mean of (predicted - measured) / measured, in % (the bias of the prediction)."""
    predicted, measured = np.asarray(predicted, np.float64), np.asarray(measured, np.float64)
    return float(np.mean((predicted - measured) / measured) * 100.0)


def leave_one_out_mape(predicted: np.ndarray, measured: np.ndarray) -> float:
    """MAPE (%) of the linear correction on each subnet when fitted on all the others."""
    predicted, measured = np.asarray(predicted, np.float64), np.asarray(measured, np.float64)
    errors = []
    for i in range(len(predicted)):
        keep = np.arange(len(predicted)) != i
        corrected = LinearCorrection.fit(predicted[keep], measured[keep]).apply(predicted[i : i + 1])
        errors.append(abs(corrected[0] - measured[i]) / measured[i])
    return float(np.mean(errors) * 100.0)
