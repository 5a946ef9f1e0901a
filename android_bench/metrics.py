"""Agreement between predicted (LUT sum) and measured latencies, and the linear correction of the sum.

The correction `measured ≈ scale * predicted + offset` is stored beside the
LUT as `NAME.correction.json` (`{"_correction": {"scale": s, "offset": o}, ...}`);
`load_correction(lut_path).apply(LatencyTable.latency(arch, r))` gives
corrected predictions.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ofa_tf.errors import ConfigError
from ofa_tf.io import atomic_write_json


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


@dataclasses.dataclass(frozen=True)
class LinearCorrection:
    """measured ≈ scale * predicted + offset (ms).

    Args:
        scale: slope.
        offset: intercept in ms.
    """

    scale: float = 1.0
    offset: float = 0.0

    @classmethod
    def fit(cls, predicted: np.ndarray, measured: np.ndarray) -> "LinearCorrection":
        """Least-squares fit (needs at least 2 distinct predictions)."""
        predicted = np.asarray(predicted, np.float64)
        if len(np.unique(predicted)) < 2:
            raise ConfigError("fitting a latency correction needs at least 2 subnets with different predictions")
        scale, offset = np.polyfit(predicted, np.asarray(measured, np.float64), 1)
        return cls(float(scale), float(offset))

    def apply(self, predicted: np.ndarray) -> np.ndarray:
        return self.scale * np.asarray(predicted, np.float64) + self.offset


def leave_one_out_mape(predicted: np.ndarray, measured: np.ndarray) -> float:
    """MAPE (%) of the linear correction on each subnet when fitted on all the others."""
    predicted, measured = np.asarray(predicted, np.float64), np.asarray(measured, np.float64)
    errors = []
    for i in range(len(predicted)):
        keep = np.arange(len(predicted)) != i
        corrected = LinearCorrection.fit(predicted[keep], measured[keep]).apply(predicted[i : i + 1])
        errors.append(abs(corrected[0] - measured[i]) / measured[i])
    return float(np.mean(errors) * 100.0)


def correction_path(lut_path: str | os.PathLike) -> Path:
    """`luts/NAME.correction.json` for `luts/NAME.yaml`."""
    path = Path(lut_path)
    return path.with_name(f"{path.stem}.correction.json")


def save_correction(lut_path: str | os.PathLike, correction: LinearCorrection, fitted_on: dict[str, Any]) -> Path:
    """Writes the sidecar of `lut_path`.

    Args:
        lut_path: the LUT YAML.
        correction: the fitted correction.
        fitted_on: provenance (device, resolution, subnets, errors before/after).
    """
    return atomic_write_json(
        correction_path(lut_path), {"_correction": dataclasses.asdict(correction), "fitted_on": fitted_on}
    )


def load_correction(lut_path: str | os.PathLike) -> LinearCorrection | None:
    """The correction stored beside `lut_path`, or None when there is none."""
    path = correction_path(lut_path)
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text())["_correction"]
        return LinearCorrection(float(values["scale"]), float(values["offset"]))
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{path} is not a latency correction: expected {{\"_correction\": {{scale, offset}}}}") from None
