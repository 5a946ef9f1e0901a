"""The layer slots of OFA-ResNet50-D, and the official layer configs they stand for.

Slots in network order: the first stem conv (variants: its width), the
residual stem conv (runs iff the stem depth is the largest), the last stem
conv (first x last stem width), the 3x3 stride-2 max pooling, one slot per
bottleneck position (variants: input width x expand x width where the input
width follows another choice, else expand x width), the global pooling and
the classifier (last stage's width). Keys follow the official table style:
`Conv-input:224x224x3-output:112x112x24`, `ResidualConv-...`,
`MaxPool2D-...`, `bottleneck-input:56x56x168-output:28x28x336-expand:64-stride:2-downsample:1`,
`AvgPool2D-...`, `Logits-input:1x1x2048-output:1000`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from ofa_tf.space.slots import LayerSlot, LayerSpec, LayerVariant, shape_text
from ofa_tf.space.choices import conv_output_size

if TYPE_CHECKING:  # the space calls these functions: a runtime import back would be a cycle
    from ofa_tf.families.resnet.space import BottleneckSpec, ResNetArchIndices, ResNetSpace


def conv_layer_config(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> dict[str, Any]:
    """An official `ConvLayer` config (conv, BN, ReLU) as the ResNets' stem writes it."""
    return {
        "name": "ConvLayer", "in_channels": in_channels, "out_channels": out_channels, "kernel_size": kernel_size,
        "stride": stride, "dilation": 1, "groups": 1, "bias": False, "has_shuffle": False, "use_bn": True,
        "act_func": "relu", "dropout_rate": 0, "ops_order": "weight_bn_act",
    }


def residual_conv_config(channels: int) -> dict[str, Any]:
    """The residual stem conv: a `ResidualBlock` of a 3x3 `ConvLayer` and an identity shortcut."""
    return {"name": "ResidualBlock", "conv": conv_layer_config(channels, channels, 3), "shortcut": {"name": "IdentityLayer"}}


def bottleneck_config(in_channels: int, out_channels: int, stride: int, expand_ratio: float, mid: int) -> dict[str, Any]:
    """An official `ResNetBottleneckBlock` config (ResNet-D downsampling)."""
    return {
        "name": "ResNetBottleneckBlock", "in_channels": in_channels, "out_channels": out_channels, "kernel_size": 3,
        "stride": stride, "expand_ratio": expand_ratio, "mid_channels": mid, "act_func": "relu",
        "groups": 1, "downsample_mode": "avgpool_conv",
    }


def linear_config(in_features: int, out_features: int, dropout_rate: float = 0.0) -> dict[str, Any]:
    """The classifier's official `LinearLayer` config."""
    return {
        "name": "LinearLayer", "in_features": in_features, "out_features": out_features, "bias": True,
        "use_bn": False, "act_func": None, "dropout_rate": dropout_rate, "ops_order": "weight_bn_act",
    }


def _conv3x3(kind: str, cin: int, cout: int, size: int, stride: int, config: dict[str, Any]) -> LayerVariant:
    out = conv_output_size(size, stride)
    key = f"{kind}-input:{shape_text(size, size, cin)}-output:{shape_text(out, out, cout)}"
    return LayerVariant(LayerSpec(key, kind, (size, size, cin), config=config), 9 * cin * cout * out * out, 9 * cin * cout + 2 * cout)


def _bottleneck(block: BottleneckSpec, cin: int, cout: int, expand: float, mid: int, size: int) -> LayerVariant:
    out = conv_output_size(size, block.stride)
    convs = [(1, cin, mid, size), (3, mid, mid, out), (1, mid, cout, out)]  # (kernel, in, out, output size)
    convs += [(1, cin, cout, out)] if block.has_downsample else []  # after the shortcut's average pooling
    key = "-".join([
        "bottleneck", f"input:{shape_text(size, size, cin)}", f"output:{shape_text(out, out, cout)}",
        f"expand:{mid}", f"stride:{block.stride}", f"downsample:{int(block.has_downsample)}",
    ])
    spec = LayerSpec(key, "bottleneck", (size, size, cin), config=bottleneck_config(cin, cout, block.stride, expand, mid))
    macs = sum(k * k * i * o * s * s for k, i, o, s in convs)
    return LayerVariant(spec, macs, sum(k * k * i * o + 2 * o for k, i, o, _ in convs))


def _separate_input_width(block: BottleneckSpec) -> bool:
    """Whether the block's input width follows another `w` entry than its own width."""
    return block.in_width_entry != 2 + block.stage


def _block_slot(space: ResNetSpace, block: BottleneckSpec, size: int) -> LayerSlot:
    widths = range(len(space.width_mult_list))
    inputs = widths if _separate_input_width(block) else (None,)
    variants = tuple(
        _bottleneck(block, block.in_widths[wo if wi is None else wi], block.out_widths[wo], e, int(space.mid_table(block.stage)[wo, ei]), size)
        for wi in inputs
        for ei, e in enumerate(space.expand_ratio_list)
        for wo in widths
    )
    return LayerSlot(f"block{block.index}", variants)


@functools.lru_cache(maxsize=64)
def resnet_layer_slots(space: ResNetSpace, resolution: int) -> tuple[LayerSlot, ...]:
    """The slots of an OFA-ResNet50-D subnet at `resolution`, in network order."""
    size = space.stem_output_size(resolution)
    mids, lasts = space.stem_mid_widths, space.stem_widths
    slots = [
        LayerSlot("stem_conv", tuple(_conv3x3("Conv", 3, c0, resolution, 2, conv_layer_config(3, c0, 3, 2)) for c0 in mids)),
        LayerSlot("stem_residual_conv", tuple(_conv3x3("ResidualConv", c0, c0, size, 1, residual_conv_config(c0)) for c0 in mids)),
        LayerSlot("stem_last_conv", tuple(_conv3x3("Conv", c0, c1, size, 1, conv_layer_config(c0, c1, 3)) for c0 in mids for c1 in lasts)),
    ]
    pooled = space.pooled_size(resolution)
    slots.append(LayerSlot("max_pooling", tuple(
        LayerVariant(LayerSpec(f"MaxPool2D-input:{shape_text(size, size, c)}-output:{shape_text(pooled, pooled, c)}", "MaxPool2D", (size, size, c)), 0, 0)
        for c in lasts
    )))
    size = pooled
    for block in space.blocks:
        slots.append(_block_slot(space, block, size))
        size = space.conv_output_size(size, block.stride)
    finals, n = space.stage_widths(space.n_stages - 1), space.n_classes
    slots.append(LayerSlot("pool", tuple(
        LayerVariant(LayerSpec(f"AvgPool2D-input:{shape_text(size, size, c)}-output:{shape_text(1, 1, c)}", "AvgPool2D", (size, size, c)), 0, 0)
        for c in finals
    )))
    slots.append(LayerSlot("classifier", tuple(
        LayerVariant(LayerSpec(f"Logits-input:{shape_text(1, 1, c)}-output:{n}", "Logits", (1, 1, c), config=linear_config(c, n)), c * n, c * n + n)
        for c in finals
    )))
    return tuple(slots)


def resnet_slot_variants(space: ResNetSpace, arch: ResNetArchIndices) -> np.ndarray:
    """[N, n_slots] the variant each subnet runs per slot (-1: the residual stem conv or a block its depth skips)."""
    depth, expand, width = (np.asarray(a, np.int64) for a in (arch.depth, arch.expand_index, arch.width_index))
    n_w, n_e = len(space.width_mult_list), len(space.expand_ratio_list)
    columns = [width[:, 0], np.where(depth[:, 0] == space.max_depth, width[:, 0], -1), width[:, 0] * n_w + width[:, 1], width[:, 1]]
    runs = space.active_block_mask(depth)
    for block in space.blocks:
        variant = expand[:, block.index] * n_w + width[:, 2 + block.stage]
        if _separate_input_width(block):
            variant += width[:, block.in_width_entry] * n_e * n_w
        columns.append(np.where(runs[:, block.index], variant, -1))
    columns += [width[:, -1], width[:, -1]]
    return np.stack(columns, axis=1)
