"""Analytic MACs and parameter counts, from the search space alone.

What is counted matches the official counter (`ofa.utils.count_net_flops` /
`MBv3LatencyTable.count_flops_given_config`): multiply-accumulates of every
convolution (including the SE 1x1 convs at 1x1 spatial size) and linear
layer; batch norm, activations, pooling and additions are free. Parameters
are the trainable ones of the extracted subnet (BN running statistics are
buffers upstream, not parameters).

Per-block costs are tabulated once per resolution as [block, kernel, expand]
arrays, so a whole population of subnets is counted with one numpy gather.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np

from ofa_tf.nas.block_tables import sum_block_table, sum_per_resolution
from ofa_tf.families import POOL
from ofa_tf.space import ArchIndices, BlockSpec, SearchSpace, SubnetConfig, se_mid_channels
from ofa_tf.errors import ConfigError


def _mbconv_cost(space: SearchSpace, spec: BlockSpec, kernel_size: int, mid: int, size: int | None) -> int:
    """MACs of one MBConv block at input `size`, or its parameters when `size` is None."""
    se_mid = se_mid_channels(mid)
    if size is None:
        cost = spec.in_channels * mid + 2 * mid if spec.has_expand else 0  # expand conv + BN
        cost += kernel_size * kernel_size * mid + 2 * mid  # depthwise + BN
        cost += 2 * mid * se_mid + se_mid + mid if spec.use_se else 0
        return cost + mid * spec.out_channels + 2 * spec.out_channels  # project + BN
    out_size = space.conv_output_size(size, spec.stride)
    cost = size * size * spec.in_channels * mid if spec.has_expand else 0
    cost += out_size * out_size * mid * kernel_size * kernel_size
    cost += 2 * mid * se_mid if spec.use_se else 0
    return cost + out_size * out_size * mid * spec.out_channels


def _block_costs(space: SearchSpace, resolution: int | None) -> np.ndarray:
    """[n_blocks, n_ks, n_e] MACs (resolution given) or params (resolution None)."""
    sizes = space.block_input_sizes(resolution) if resolution is not None else [None] * space.n_blocks
    table = np.zeros((space.n_blocks, len(space.ks_list), len(space.expand_ratio_list)), dtype=np.int64)
    for spec, size in zip(space.blocks, sizes):
        for ki, k in enumerate(space.ks_list):
            for ei, mid in enumerate(spec.mid_channels):
                table[spec.index, ki, ei] = _mbconv_cost(space, spec, k, mid, size)
    return table


def _fixed_cost(space: SearchSpace, resolution: int | None) -> int:
    """MACs (or params when resolution is None) of the layers outside the elastic blocks:
    the stem conv, the first block, the head convs and the classifier."""
    family, c0 = space.family_spec, space.first_conv_channels
    stem_size = None if resolution is None else space.stem_output_size(resolution)
    first = space.first_block()
    cost = 27 * c0 + 2 * c0 if resolution is None else stem_size * stem_size * 27 * c0  # 3x3 conv (+ BN)
    cost += _mbconv_cost(space, first, 3, first.mid_channels[0], stem_size)
    size = None if resolution is None else space.final_feature_size(resolution)
    channels = space.blocks[-1].out_channels
    for conv in family.head_sequence:
        if conv == POOL:
            size = None if resolution is None else 1
            continue
        out_channels = space.head_width(conv)
        cost += channels * out_channels * (1 if size is None else size * size)
        cost += 2 * out_channels if size is None and conv.use_bn else 0
        channels = out_channels
    n = space.n_classes
    return int(cost + channels * n + (n if resolution is None else 0))


class EfficiencyTable:
    """Exact MACs and parameter counts of many subnets at once.

    Args:
        space: the search space.
    """

    def __init__(self, space: SearchSpace):
        self.space = space
        self._params = _block_costs(space, None)
        self._fixed_params = _fixed_cost(space, None)

    @functools.lru_cache(maxsize=None)
    def _macs_tables(self, resolution: int) -> tuple[np.ndarray, int]:
        return _block_costs(self.space, resolution), _fixed_cost(self.space, resolution)

    def macs(self, arch: ArchIndices, resolution: int | None = None) -> np.ndarray:
        """[N] MACs; each row at `arch.resolution` unless `resolution` is given."""
        return sum_per_resolution(self.space, arch, resolution, self._macs_tables)

    def params(self, arch: ArchIndices) -> np.ndarray:
        """[N] trainable parameter counts of the extracted subnets."""
        return sum_block_table(self.space, self._params, self._fixed_params, arch, np.arange(len(arch)))


def efficiency_table(space: Any) -> Any:
    """The vectorized MACs / params counter of a search space's family (`EfficiencyTable` for the MBConv
    families, `ResNetEfficiencyTable` for OFA-ResNet50-D)."""
    from ofa_tf.resnet_space import ResNetEfficiencyTable, ResNetSpace

    return ResNetEfficiencyTable(space) if isinstance(space, ResNetSpace) else EfficiencyTable(space)


def _as_config(config: SubnetConfig | dict[str, Any]) -> SubnetConfig:
    return config if isinstance(config, SubnetConfig) else SubnetConfig.from_dict(config)


@functools.lru_cache(maxsize=32)
def _table(space: SearchSpace) -> EfficiencyTable:
    return EfficiencyTable(space)


def _space_for(width_mult: float, n_classes: int, space: SearchSpace | None) -> SearchSpace:
    return space if space is not None else SearchSpace(width_mult=width_mult, n_classes=n_classes)


def count_macs(
    config: SubnetConfig | dict[str, Any],
    width_mult: float = 1.0,
    resolution: int | None = None,
    n_classes: int = 1000,
    space: SearchSpace | None = None,
) -> int:
    """MACs of one subnet, as the official counter.

    Args:
        config: a `SubnetConfig` or a dict with "ks", "e", "d" (and optionally "r").
        width_mult: width multiplier of the supernet (ignored when `space` is given).
        resolution: input resolution; defaults to the config's, else 224.
        n_classes: classifier outputs (ignored when `space` is given).
        space: the search space, for non-default kernel/expand/depth lists.

    Raises:
        ConfigError: (a `ValueError`) naming the invalid field.
    """
    config = _as_config(config)
    space = _space_for(width_mult, n_classes, space)
    resolution = resolution or config.resolution or 224
    return int(_table(space).macs(space.to_indices([config]), resolution=resolution)[0])


def count_params(
    config: SubnetConfig | dict[str, Any],
    width_mult: float = 1.0,
    n_classes: int = 1000,
    space: SearchSpace | None = None,
) -> int:
    """Trainable parameters of one extracted subnet (same arguments as `count_macs`)."""
    config = _as_config(config)
    space = _space_for(width_mult, n_classes, space)
    return int(_table(space).params(space.to_indices([config]))[0])


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
