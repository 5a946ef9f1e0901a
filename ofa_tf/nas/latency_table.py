"""Latency model: a sum over a per-layer lookup table in the official YAML format.

Keys follow `ofa/nas/efficiency_predictor/latency_lookup_table.py`
(`MBv3LatencyTable`), e.g.
`expanded_conv-input:112x112x24-output:56x56x32-expand:72-kernel:3-stride:2-idskip:0-se:0-hs:0`
with `expand` the middle channel count; values hold `mean` in ms (and,
when measured by ofa-tf, `std` and `count`). One table may hold several
resolutions, since the keys carry the feature-map sizes.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Iterable, Mapping

import numpy as np
import yaml

from ofa_tf.errors import ConfigError, MissingFileError
from ofa_tf.families import POOL
from ofa_tf.nas.block_tables import sum_per_resolution
from ofa_tf.space import ArchIndices, BlockSpec, SearchSpace, SubnetConfig


def _shape(*dims: int) -> str:
    return "x".join(str(d) for d in dims)


def expanded_conv_key(spec: BlockSpec, size: int, kernel_size: int, mid: int) -> str:
    out = SearchSpace.conv_output_size(size, spec.stride)
    return "-".join(
        [
            "expanded_conv",
            f"input:{_shape(size, size, spec.in_channels)}",
            f"output:{_shape(out, out, spec.out_channels)}",
            f"expand:{mid}",
            f"kernel:{kernel_size}",
            f"stride:{spec.stride}",
            f"idskip:{int(spec.has_residual)}",
            f"se:{int(spec.use_se)}",
            f"hs:{int(spec.activation == 'h_swish')}",
        ]
    )


STEM, FIRST_BLOCK_LAYER, CLASSIFIER = "stem", "first_block", "classifier"


def fixed_layers(space: SearchSpace, resolution: int) -> list[tuple[str, tuple[int, int, int], Any]]:
    """(key, input shape, layer) of the layers every subnet has, in network order.

    The layer is `STEM`, `FIRST_BLOCK_LAYER`, a `HeadConv` of the family, `POOL` or
    `CLASSIFIER`. Keys: `Conv` (stem), `expanded_conv` (first block), the head convs'
    `lut_kind` (`Conv_1`, `Conv_2`), `AvgPool2D` and `Logits`.
    """
    family = space.family_spec
    stem = space.stem_output_size(resolution)
    c0 = space.first_conv_channels
    layers = [
        (f"Conv-input:{_shape(resolution, resolution, 3)}-output:{_shape(stem, stem, c0)}", (resolution, resolution, 3), STEM),
        (expanded_conv_key(space.first_block(), stem, 3, c0), (stem, stem, c0), FIRST_BLOCK_LAYER),
    ]
    size, channels = space.final_feature_size(resolution), space.blocks[-1].out_channels
    for layer in family.head_sequence:
        if layer == POOL:
            key = f"AvgPool2D-input:{_shape(size, size, channels)}-output:{_shape(1, 1, channels)}"
            layers.append((key, (size, size, channels), POOL))
            size = 1
            continue
        out = space.head_width(layer)
        key = f"{layer.lut_kind}-input:{_shape(size, size, channels)}-output:{_shape(size, size, out)}"
        layers.append((key, (size, size, channels), layer))
        channels = out
    layers.append((f"Logits-input:{_shape(1, 1, channels)}-output:{space.n_classes}", (1, 1, channels), CLASSIFIER))
    return layers


def fixed_keys(space: SearchSpace, resolution: int) -> list[str]:
    """Keys of the layers every subnet has: first conv, first block, head."""
    return [key for key, _, _ in fixed_layers(space, resolution)]


def block_keys(space: SearchSpace, resolution: int) -> list[list[list[str]]]:
    """[block][kernel index][expand index] keys of the elastic blocks."""
    sizes = space.block_input_sizes(resolution)
    return [
        [[expanded_conv_key(spec, size, k, mid) for mid in spec.mid_channels] for k in space.ks_list]
        for spec, size in zip(space.blocks, sizes)
    ]


def subnet_block_keys(space: SearchSpace, config: SubnetConfig, resolution: int) -> list[str]:
    """Keys of the elastic blocks `config` runs at `resolution`, in network order."""
    arch = space.to_indices([config])
    keys = block_keys(space, resolution)
    active = np.flatnonzero(space.active_block_mask(arch.depth)[0])
    return [keys[i][arch.kernel_index[0, i]][arch.expand_index[0, i]] for i in active]


def all_keys(space: SearchSpace, resolutions: Iterable[int]) -> list[str]:
    """Every key a search over `resolutions` can query (what a LUT builder must measure)."""
    keys: dict[str, None] = {}
    for r in resolutions:
        keys.update(dict.fromkeys(fixed_keys(space, r)))
        for per_kernel in block_keys(space, r):
            for per_expand in per_kernel:
                keys.update(dict.fromkeys(per_expand))
    return list(keys)


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

    def __init__(self, space: SearchSpace, entries: Mapping[str, Any]):
        self.space = space
        self.entries = dict(entries)

    @classmethod
    def from_yaml(cls, space: SearchSpace, *paths: str | os.PathLike) -> "LatencyTable":
        """Loads and merges official-format YAML tables (e.g. one per resolution)."""
        return cls(space, read_entries(*paths))

    def _mean(self, key: str) -> float:
        try:
            return float(self.entries[key]["mean"])
        except KeyError:
            raise ConfigError(
                f"latency table has no entry {key}: it was built for another width, class count or resolution"
            ) from None

    @functools.lru_cache(maxsize=None)
    def _tables(self, resolution: int) -> tuple[np.ndarray, float]:
        keys = block_keys(self.space, resolution)
        table = np.array([[[self._mean(k) for k in per_e] for per_e in per_k] for per_k in keys], dtype=np.float64)
        return table, sum(self._mean(k) for k in fixed_keys(self.space, resolution))

    def covers(self, resolution: int) -> bool:
        """Whether every key of `resolution` is in the table."""
        return all(key in self.entries for key in all_keys(self.space, [resolution]))

    def latency(self, arch: ArchIndices, resolution: int | None = None) -> np.ndarray:
        """[N] predicted latencies in ms."""
        return sum_per_resolution(self.space, arch, resolution, self._tables)
