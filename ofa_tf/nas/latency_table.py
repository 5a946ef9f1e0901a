"""Latency model: a sum over a per-layer lookup table in the official YAML format.

Keys are the layer slots' (`ofa_tf.space.slots`): for the MBConv families
those of `ofa/nas/efficiency_predictor/latency_lookup_table.py`
(`MBv3LatencyTable`, `ofa_tf.families.mbconv.slots`), for OFA-ResNet50-D keys in the
same style (`ofa_tf.families.resnet.space`); values hold `mean` in ms (and, when
measured by ofa-tf, `std` and `count`). One table may hold several
resolutions, since the keys carry the feature-map sizes.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

import numpy as np
import yaml

from ofa_tf.errors import ConfigError, MissingFileError
from ofa_tf.space.slots import SlotSums, SlottedSpace, slot_keys, subnet_variants


def all_keys(space: SlottedSpace, resolutions: Iterable[int]) -> list[str]:
    """Every key a search over `resolutions` can query (what a LUT builder must measure), in network order."""
    return slot_keys(space, list(resolutions))


def subnet_keys(space: SlottedSpace, config: Any, resolution: int) -> list[str]:
    """The keys subnet `config` runs at `resolution`, in network order."""
    return [variant.key for variant in subnet_variants(space, space.to_indices([config]), resolution)]


def read_entries(*paths: str | os.PathLike) -> dict[str, Any]:
    """The merged entries (key -> {mean: ms, ...}) of official-format YAML tables."""
    entries: dict[str, Any] = {}
    for path in paths:
        if not os.path.isfile(path):
            raise MissingFileError(f"latency table {path} does not exist: build one with `ofa-tf bench lut`")
        try:
            with open(path) as handle:
                content = yaml.safe_load(handle)
        except yaml.YAMLError as error:
            raise ConfigError(f"{path} is not valid YAML ({error.__class__.__name__})") from None
        if not isinstance(content, dict) or not all(isinstance(v, dict) and "mean" in v for v in content.values()):
            raise ConfigError(f"{path} is not a latency table: expected key -> {{mean: ms}} entries")
        entries.update(content)
    return entries


class LatencyTable:
    """Predicts subnet latency (ms) as the sum of its layers' entries.

    Args:
        space: the search space.
        entries: key -> {"mean": ms, ...} (the official YAML content).
    """

    def __init__(self, space: SlottedSpace, entries: Mapping[str, Any]):
        self.space = space
        self.entries = dict(entries)
        self._sums = SlotSums(space, lambda variant: self._mean(variant.key), np.float64)

    @classmethod
    def from_yaml(cls, space: SlottedSpace, *paths: str | os.PathLike) -> "LatencyTable":
        """Loads and merges official-format YAML tables (e.g. one per resolution)."""
        return cls(space, read_entries(*paths))

    def _mean(self, key: str) -> float:
        try:
            return float(self.entries[key]["mean"])
        except KeyError:
            raise ConfigError(
                f"latency table has no entry {key}: it was built for another family, width, class count or resolution"
            ) from None

    def covers(self, resolution: int) -> bool:
        """Whether every key of `resolution` is in the table."""
        return all(key in self.entries for key in all_keys(self.space, [resolution]))

    def latency(self, arch: Any, resolution: int | None = None) -> np.ndarray:
        """[N] predicted latencies in ms."""
        return self._sums(arch, resolution)
