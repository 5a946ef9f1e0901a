"""The accuracy predictor's data: measured top-1 of random subnets (reference `acc_dataset.py`).

`n_subnets` random subnets, each at every resolution, are measured on a
held-out split of the training images after BN recalibration. Sampling is
uniform per choice as the reference's, or spread over sizes: uniform choices
make nearly every subnet mid-sized (of 20,000 uniform subnets of the cifar
preset, none lies within 10% of the largest's MACs), so neither the
predictor nor the search learns what the small and large ends are worth. The records go
to one JSON file, rewritten atomically every few measurements, so a killed
build resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ofa_tf.errors import ConfigError
from ofa_tf.io import atomic_write_json
from ofa_tf.space.registry import Config, Space

DATASET_FILE = "accuracy_dataset.json"
SAVE_EVERY = 10
SAMPLINGS = ("uniform", "size-spread")


@dataclasses.dataclass(frozen=True)
class AccuracyDatasetConfig:
    """What to measure.

    Args:
        n_subnets: random subnets (each measured at every resolution; reference 1,000).
        resolutions: input resolutions.
        seed: seeds the subnets and the recalibration crops.
        bn_recalibration_images / bn_recalibration_batch: BN reset before each measurement.
        sampling: "uniform" (the reference's) or "size-spread" (the space's `sample_indices`).
    """

    n_subnets: int = 1000
    resolutions: tuple[int, ...] = (128, 160, 192, 224)
    seed: int = 0
    bn_recalibration_images: int = 2000
    bn_recalibration_batch: int = 200
    sampling: str = "uniform"

    def __post_init__(self) -> None:
        object.__setattr__(self, "resolutions", tuple(int(r) for r in self.resolutions))
        if self.n_subnets < 1:
            raise ConfigError(f"n_subnets={self.n_subnets}: measure at least one subnet")
        if not self.resolutions or min(self.resolutions) < 8:
            raise ConfigError(f"resolutions={self.resolutions}: give resolutions >= 8 pixels")
        if self.sampling not in SAMPLINGS:
            raise ConfigError(f"sampling={self.sampling!r}: choose one of {', '.join(SAMPLINGS)}")


def sample_subnets(space: Space, n: int, seed: int, sampling: str = "uniform") -> list[Config]:
    """The `n` subnets of a build (fixed for the seed, so a resumed build measures the same ones)."""
    rng = np.random.default_rng(seed)
    if sampling == "uniform":
        return [space.sample(rng) for _ in range(n)]
    return space.from_indices(space.sample_indices(rng, n, with_resolution=False, size_spread=True))


def load_records(path: str | os.PathLike, config: AccuracyDatasetConfig) -> list[dict[str, Any]]:
    """Records already measured for `config` (empty if none).

    The subnets of a seed form one sequence, so a build may grow or shrink
    `n_subnets` and keep the measured prefix; any other difference is an error.
    """
    path = Path(path)
    if not path.is_file():
        return []
    try:
        stored = json.loads(path.read_text())
        stored_config = AccuracyDatasetConfig(**{**stored["config"], "resolutions": tuple(stored["config"]["resolutions"])})
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ConfigError(f"{path} is not an accuracy dataset ({error}): remove it or choose another --out") from None
    if dataclasses.replace(stored_config, n_subnets=config.n_subnets) != config:
        raise ConfigError(
            f"{path} was built with {dataclasses.asdict(stored_config)}: resume with the same options "
            "(--n-subnets may change), or choose another --out"
        )
    return [r for r in stored["records"] if r["subnet"] < config.n_subnets]


def build_accuracy_dataset(
    space: Space,
    measure: Callable[[Config, int], float],
    config: AccuracyDatasetConfig,
    path: str | os.PathLike,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Measures every (subnet, resolution) pair not yet in `path`; returns all records.

    Args:
        space: the supernet's search space.
        measure: (subnet, resolution) -> top-1 percent (e.g. `SubnetEvaluator.top1` on the hold-out split).
        config: what to measure.
        path: the JSON file (created, or resumed).
        progress: called with (done, total) after each measurement.

    Returns:
        records `{"subnet": i, "config": {...}, "resolution": r, "top1": percent}`.
    """
    records = load_records(path, config)
    done = {(r["subnet"], r["resolution"]) for r in records}
    subnets = sample_subnets(space, config.n_subnets, config.seed, config.sampling)
    total = len(subnets) * len(config.resolutions)
    save = lambda: atomic_write_json(path, {"config": dataclasses.asdict(config), "records": records})  # noqa: E731
    for index, subnet in enumerate(subnets):
        for resolution in config.resolutions:
            if (index, resolution) in done:
                continue
            top1 = measure(subnet, resolution)
            records.append({"subnet": index, "config": subnet.to_dict(), "resolution": resolution, "top1": top1})
            if len(records) % SAVE_EVERY == 0:
                save()
            if progress is not None:
                progress(len(records), total)
    save()
    return records
