"""Checks a latency table against whole-model measurements of random subnets.

Each sampled subnet is extracted, converted to TFLite in the depthwise forms
the table measured fastest (as `ofa-tf export --target` converts it) and
timed on the device; its prediction is the LUT sum. The report holds Pearson r, Spearman
ρ, the mean absolute percentage error, the bias, and a linear correction of
the sum (kept when it lowers the leave-one-out error).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ofa_tf.android_bench import metrics
from ofa_tf.nas.latency_correction import LinearCorrection, save_correction
from ofa_tf.android_bench.backend import Backend
from ofa_tf.errors import ConfigError
from ofa_tf.io import atomic_write_json
from ofa_tf.nas.latency_table import LatencyTable
from ofa_tf.space.registry import make_space

Progress = Callable[[int, int, str], None]


@dataclasses.dataclass(frozen=True)
class ValidateConfig:
    """A validation run.

    Args:
        lut: the LUT YAML.
        width_mult: supernet width the LUT was built for.
        resolution: input resolution of the subnets.
        n: number of random subnets.
        n_classes: classifier outputs the LUT was built for.
        seed: subnet sampling seed.
        family: the supernet family the LUT was built for ("mbv3", "proxyless", "resnet50").
    """

    lut: str
    width_mult: float = 1.0
    resolution: int = 224
    n: int = 50
    n_classes: int = 1000
    seed: int = 0
    family: str = "mbv3"

    def __post_init__(self) -> None:
        if self.n < 3:
            raise ConfigError(f"--n {self.n}: validate at least 3 subnets (50 by default)")
        make_space(self.family, self.width_mult, n_classes=self.n_classes)  # a family, width and classes that fit

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Validation:
    """Predicted and measured latencies (ms) of the sampled subnets, and what they say.

    Args:
        config: the run.
        subnets: the sampled configs.
        predicted_ms: LUT sums.
        measured_ms: whole-model mean latencies.
    """

    config: ValidateConfig
    subnets: tuple[Any, ...]
    predicted_ms: np.ndarray
    measured_ms: np.ndarray

    @property
    def correction(self) -> LinearCorrection:
        return LinearCorrection.fit(self.predicted_ms, self.measured_ms)

    def summary(self) -> dict[str, Any]:
        """r, ρ, MAPE and bias of the raw sum; the correction and its in-sample and leave-one-out MAPE."""
        predicted, measured = self.predicted_ms, self.measured_ms
        raw_mape = metrics.mape(predicted, measured)
        loo_mape = metrics.leave_one_out_mape(predicted, measured)
        return {
            "n": len(measured),
            "pearson_r": metrics.pearson(predicted, measured),
            "spearman_rho": metrics.spearman(predicted, measured),
            "mape_pct": raw_mape,
            "bias_pct": metrics.mean_signed_error(predicted, measured),
            "correction": dataclasses.asdict(self.correction),
            "mape_corrected_pct": metrics.mape(self.correction.apply(predicted), measured),
            "mape_corrected_loo_pct": loo_mape,
            "correction_helps": loo_mape < raw_mape,
        }


def validate_lut(config: ValidateConfig, backend: Backend, on_progress: Progress | None = None) -> Validation:
    """Samples `config.n` subnets, times each whole model and pairs it with its LUT sum.

    Args:
        config: the run.
        backend: where models are timed.
        on_progress: called as (subnets done, total, label) after each subnet.
    """
    from ofa_tf.export.forms import TableForms
    from ofa_tf.export.rewrite import rebuild
    from ofa_tf.export.tflite import convert_to_tflite
    from ofa_tf.supernet.extract import extract_subnet
    from ofa_tf.supernet.storage import supernet_for_space

    space = make_space(config.family, config.width_mult, n_classes=config.n_classes, resolutions=(config.resolution,))
    table = LatencyTable.from_yaml(space, config.lut)
    if not table.covers(config.resolution):
        raise ConfigError(
            f"{config.lut} lacks keys of width {config.width_mult}, {config.n_classes} classes at "
            f"{config.resolution} px: build them with `ofa-tf bench lut` or pass the table's --width-mult/--resolution"
        )
    forms = TableForms(table.entries, config.lut)
    net = supernet_for_space(space)
    rng = np.random.default_rng(config.seed)
    subnets = tuple(space.sample(rng).with_resolution(config.resolution) for _ in range(config.n))
    predicted = table.latency(space.to_indices(subnets), config.resolution)
    measured = []
    for number, subnet in enumerate(subnets, start=1):
        model = convert_to_tflite(rebuild(extract_subnet(net, subnet), depthwise_form=forms))
        measured.append(backend.measure(model, f"subnet {number}").mean_ms)
        if on_progress is not None:
            on_progress(number, config.n, f"subnet {number}")
    return Validation(config, subnets, np.asarray(predicted, np.float64), np.asarray(measured, np.float64))


def write_report(validation: Validation, device: dict[str, Any], out_prefix: str | os.PathLike) -> dict[str, Path]:
    """Saves `PREFIX.json` (card, summary, per-subnet values), `PREFIX.png` (scatter plot) and,
    when the correction lowers the leave-one-out error, the LUT's `NAME.correction.json`.

    Args:
        validation: from `validate_lut`.
        device: the backend's `describe()`.
        out_prefix: path prefix of the report files.
    """
    from ofa_tf.android_bench.plot import scatter_plot

    summary = validation.summary()
    prefix = Path(out_prefix)
    paths = {"json": prefix.with_name(prefix.name + ".json"), "png": prefix.with_name(prefix.name + ".png")}
    rows = [
        {"subnet": s.to_dict(), "predicted_ms": float(p), "measured_ms": float(m)}
        for s, p, m in zip(validation.subnets, validation.predicted_ms, validation.measured_ms)
    ]
    atomic_write_json(
        paths["json"], {"config": validation.config.to_dict(), "device": device, "summary": summary, "subnets": rows}
    )
    scatter_plot(validation.predicted_ms, validation.measured_ms, validation.correction, summary, paths["png"])
    if summary["correction_helps"]:
        fitted_on = {
            "device": device,
            "resolution": validation.config.resolution,
            **{k: summary[k] for k in ("n", "mape_pct", "mape_corrected_loo_pct", "bias_pct")},
        }
        paths["correction"] = save_correction(validation.config.lut, validation.correction, fitted_on)
    return paths
