"""A linear correction of a latency table's sums, fitted on measured subnets (`ofa-tf bench validate`)
and stored beside the table, where the latency model reads it."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ofa_tf.errors import ConfigError
from ofa_tf.io import atomic_write_json


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
