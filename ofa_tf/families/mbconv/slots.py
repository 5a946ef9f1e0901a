"""The layer slots of the MBConv families (OFA-MobileNetV3, OFA-ProxylessNAS).

Slots in network order: the stem conv, the fixed first block, one slot per
elastic block (variants: kernel x expand, in `ks_list` x `mid_channels`
order), the head convs and pooling of the family, the classifier. Keys are
those of the official `MBv3LatencyTable`, e.g.
`expanded_conv-input:112x112x24-output:56x56x32-expand:72-kernel:3-stride:2-idskip:0-se:0-hs:0`
with `expand` the middle channel count.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from ofa_tf.families.mbconv.description import POOL
from ofa_tf.space.slots import FIRST_BLOCK, LayerSlot, LayerSpec, LayerVariant, shape_text
from ofa_tf.space.choices import conv_output_size, se_mid_channels

if TYPE_CHECKING:  # the space calls these functions: a runtime import back would be a cycle
    from ofa_tf.families.mbconv.space import ArchIndices, BlockSpec, SearchSpace


def expanded_conv_key(spec: BlockSpec, size: int, kernel_size: int, mid: int) -> str:
    """The official key of an MBConv block at input `size`."""
    out = conv_output_size(size, spec.stride)
    return "-".join(
        [
            "expanded_conv",
            f"input:{shape_text(size, size, spec.in_channels)}",
            f"output:{shape_text(out, out, spec.out_channels)}",
            f"expand:{mid}",
            f"kernel:{kernel_size}",
            f"stride:{spec.stride}",
            f"idskip:{int(spec.has_residual)}",
            f"se:{int(spec.use_se)}",
            f"hs:{int(spec.activation == 'h_swish')}",
        ]
    )


def _mbconv_cost(spec: BlockSpec, kernel_size: int, mid: int, size: int | None) -> int:
    """MACs of one MBConv block at input `size`, or its parameters when `size` is None."""
    se_mid = se_mid_channels(mid)
    if size is None:
        cost = spec.in_channels * mid + 2 * mid if spec.has_expand else 0  # expand conv + BN
        cost += kernel_size * kernel_size * mid + 2 * mid  # depthwise + BN
        cost += 2 * mid * se_mid + se_mid + mid if spec.use_se else 0
        return cost + mid * spec.out_channels + 2 * spec.out_channels  # project + BN
    out_size = conv_output_size(size, spec.stride)
    cost = size * size * spec.in_channels * mid if spec.has_expand else 0
    cost += out_size * out_size * mid * kernel_size * kernel_size
    cost += 2 * mid * se_mid if spec.use_se else 0
    return cost + out_size * out_size * mid * spec.out_channels


def _block_variant(spec: BlockSpec, size: int, kernel_size: int, mid: int, block: int) -> LayerVariant:
    key = expanded_conv_key(spec, size, kernel_size, mid)
    layer = LayerSpec(key, "expanded_conv", (size, size, spec.in_channels), block, kernel_size, mid)
    return LayerVariant(layer, _mbconv_cost(spec, kernel_size, mid, size), _mbconv_cost(spec, kernel_size, mid, None))


def _stem_slot(space: SearchSpace, resolution: int) -> LayerSlot:
    size, c0 = space.stem_output_size(resolution), space.first_conv_channels
    key = f"Conv-input:{shape_text(resolution, resolution, 3)}-output:{shape_text(size, size, c0)}"
    layer = LayerSpec(key, "Conv", (resolution, resolution, 3))
    return LayerSlot("stem", (LayerVariant(layer, size * size * 27 * c0, 27 * c0 + 2 * c0),))  # 3x3 conv (+ BN)


def _head_slots(space: SearchSpace, resolution: int) -> list[LayerSlot]:
    size, channels = space.final_feature_size(resolution), space.blocks[-1].out_channels
    slots = []
    for layer in space.family_spec.head_sequence:
        shape = (size, size, channels)
        if layer == POOL:
            key = f"AvgPool2D-input:{shape_text(*shape)}-output:{shape_text(1, 1, channels)}"
            slots.append(LayerSlot("pool", (LayerVariant(LayerSpec(key, "AvgPool2D", shape), 0, 0),)))
            size = 1
            continue
        out = space.head_width(layer)
        key = f"{layer.lut_kind}-input:{shape_text(*shape)}-output:{shape_text(size, size, out)}"
        params = channels * out + (2 * out if layer.use_bn else 0)
        spec = LayerSpec(key, layer.lut_kind, shape, head=layer)
        slots.append(LayerSlot(layer.name, (LayerVariant(spec, size * size * channels * out, params),)))
        channels = out
    n = space.n_classes
    key = f"Logits-input:{shape_text(1, 1, channels)}-output:{n}"
    slots.append(LayerSlot("classifier", (LayerVariant(LayerSpec(key, "Logits", (1, 1, channels)), channels * n, channels * n + n),)))
    return slots


@functools.lru_cache(maxsize=64)
def mbconv_layer_slots(space: SearchSpace, resolution: int) -> tuple[LayerSlot, ...]:
    """The slots of an MBConv-family subnet at `resolution`, in network order."""
    first, stem_size = space.first_block(), space.stem_output_size(resolution)
    slots = [_stem_slot(space, resolution), LayerSlot("first_block", (_block_variant(first, stem_size, 3, first.mid_channels[0], FIRST_BLOCK),))]
    for spec, size in zip(space.blocks, space.block_input_sizes(resolution)):
        variants = tuple(_block_variant(spec, size, k, mid, spec.index) for k in space.ks_list for mid in spec.mid_channels)
        slots.append(LayerSlot(f"block{spec.index}", variants))
    return tuple(slots + _head_slots(space, resolution))


def mbconv_slot_variants(space: SearchSpace, arch: ArchIndices) -> np.ndarray:
    """[N, n_slots] the variant each subnet runs per slot (-1: a block its depth skips)."""
    n_expand = len(space.expand_ratio_list)
    blocks = np.where(space.active_block_mask(arch.depth), arch.kernel_index * n_expand + arch.expand_index, -1)
    n_head = len(space.family_spec.head_sequence) + 1
    return np.concatenate([np.zeros((len(arch), 2), np.int64), blocks, np.zeros((len(arch), n_head), np.int64)], axis=1)
