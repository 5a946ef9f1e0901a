"""Analytic MACs and parameter counts, from the search space alone.

What is counted matches the official counter (`ofa.utils.count_net_flops` /
`MBv3LatencyTable.count_flops_given_config`): multiply-accumulates of every
convolution (including the SE 1x1 convs at 1x1 spatial size) and linear
layer; batch norm, activations, pooling and additions are free. Parameters
are the trainable ones of the extracted subnet (BN running statistics are
buffers upstream, not parameters).

Every family lists its layer slots and their variants' costs once
(`ofa_tf.space.slots`); a whole population of subnets is counted with one
numpy gather per resolution.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np

from ofa_tf.errors import ConfigError
from ofa_tf.space.slots import SlotSums, SlottedSpace
from ofa_tf.space.registry import Config, Space, make_space


class EfficiencyTable:
    """Exact MACs and parameter counts of many subnets at once, for any family.

    Args:
        space: the search space of any family.
    """

    def __init__(self, space: SlottedSpace):
        self.space = space
        self._macs = SlotSums(space, lambda variant: variant.macs)
        self._params = SlotSums(space, lambda variant: variant.params)
        self._params_resolution = max(space.resolutions)  # parameters do not depend on it

    def macs(self, arch: Any, resolution: int | None = None) -> np.ndarray:
        """[N] MACs; each row at `arch.resolution` unless `resolution` is given."""
        return self._macs(arch, resolution)

    def params(self, arch: Any) -> np.ndarray:
        """[N] trainable parameter counts of the extracted subnets."""
        return self._params(arch, self._params_resolution)


def efficiency_table(space: SlottedSpace) -> EfficiencyTable:
    """The vectorized MACs / params counter of a search space (any family)."""
    return _table(space)


def count_costs(space: SlottedSpace, config: Any, resolution: int | None = None) -> tuple[int, int]:
    """(MACs, trainable parameters) of one subnet of any family, as the official counter.

    Args:
        space: the search space.
        config: a subnet of it (its resolution is used when `resolution` is None, else 224).
        resolution: input resolution.
    """
    table, arch = _table(space), space.to_indices([config])
    return int(table.macs(arch, resolution or config.resolution or 224)[0]), int(table.params(arch)[0])


def _as_config(config: Config | dict[str, Any], space: Space) -> Config:
    return space.config_from_dict(config) if isinstance(config, dict) else config


@functools.lru_cache(maxsize=32)
def _table(space: SlottedSpace) -> EfficiencyTable:
    return EfficiencyTable(space)


def _space_for(width_mult: float, n_classes: int, space: Space | None) -> Space:
    """`space`, or by default OFA-MobileNetV3's at `width_mult`."""
    return space if space is not None else make_space("mbv3", width_mult=width_mult, n_classes=n_classes)


def count_macs(
    config: Config | dict[str, Any],
    width_mult: float = 1.0,
    resolution: int | None = None,
    n_classes: int = 1000,
    space: Space | None = None,
) -> int:
    """MACs of one subnet, as the official counter.

    Args:
        config: a subnet of `space`, or a dict of its fields (OFA-MobileNetV3: "ks", "e", "d", optionally "r").
        width_mult: width multiplier of the OFA-MobileNetV3 supernet (ignored when `space` is given).
        resolution: input resolution; defaults to the config's, else 224.
        n_classes: classifier outputs (ignored when `space` is given).
        space: the search space (default: OFA-MobileNetV3's), for other families or choice lists.

    Raises:
        ConfigError: (a `ValueError`) naming the invalid field.
    """
    space = _space_for(width_mult, n_classes, space)
    return count_costs(space, _as_config(config, space), resolution)[0]


def count_params(
    config: Config | dict[str, Any],
    width_mult: float = 1.0,
    n_classes: int = 1000,
    space: Space | None = None,
) -> int:
    """Trainable parameters of one extracted subnet (same arguments as `count_macs`)."""
    space = _space_for(width_mult, n_classes, space)
    return count_costs(space, _as_config(config, space))[1]


def count_model_macs(model: Any) -> int:
    """MACs of a built Keras model of stock layers, counted layer by layer.

    Counts `Conv2D` (k*k*cin*cout*H*W / groups), `DepthwiseConv2D` and
    `Dense`; everything else is free. Works for any functional model with a
    fixed input size (e.g. `keras.applications.MobileNetV3Large`).
    """
    total = 0
    for layer in _flat_layers(model):
        kind = type(layer).__name__
        if kind in ("Conv2D", "DepthwiseConv2D"):
            _, height, width, out_channels = layer.output.shape
            if height is None or width is None:
                raise ConfigError("count_model_macs needs a fixed input resolution; rebuild with one")
            kh, kw = layer.kernel_size
            in_channels = layer.input.shape[-1]
            groups = in_channels if kind == "DepthwiseConv2D" else getattr(layer, "groups", 1)
            total += kh * kw * in_channels * out_channels * height * width // groups
        elif kind == "Dense":
            total += int(np.prod(layer.kernel.shape))
    return int(total)


def count_model_params(model: Any) -> int:
    """Trainable parameters of a Keras model."""
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def _flat_layers(model: Any) -> Sequence[Any]:
    layers = []
    for layer in model.layers:
        layers.extend(_flat_layers(layer) if hasattr(layer, "layers") else [layer])
    return layers
