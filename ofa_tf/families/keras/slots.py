"""The layer slots of a network converted from Keras: the MBConv families' slots over its own layers.

Keys are the official `MBv3LatencyTable` keys with what a converted layer adds (its
activation, its squeeze-excite width, the stem's kernel), so a latency table of one model
never answers for a layer another computes differently.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING


from ofa_tf.families.mbconv.description import POOL
from ofa_tf.families.mbconv.slots import expanded_conv_key
from ofa_tf.space.choices import conv_output_size, se_mid_channels
from ofa_tf.space.slots import FIRST_BLOCK, LayerSlot, LayerSpec, LayerVariant, shape_text

if TYPE_CHECKING:  # the space calls these functions: a runtime import back would be a cycle
    from ofa_tf.families.keras.space import KerasBlockSpec, KerasSpace


def se_hidden_channels(spec: KerasBlockSpec, mid: int) -> int:
    """The squeeze-excite hidden width of a block running `mid` middle channels."""
    return spec.se.mid_channels if spec.se.follows == "fixed" else se_mid_channels(mid)


def bottleneck_key(spec: KerasBlockSpec, size: int, kernel_size: int, mid: int) -> str:
    out = conv_output_size(size, spec.stride)
    return "-".join([
        "bottleneck", f"input:{shape_text(size, size, spec.in_channels)}", f"output:{shape_text(out, out, spec.out_channels)}",
        f"mid:{mid}", f"kernel:{kernel_size}", f"stride:{spec.stride}@{spec.stride_on}", f"shortcut:{int(spec.shortcut)}",
        f"bias:{int(spec.use_bias)}",
    ])


def bottleneck_cost(spec: KerasBlockSpec, kernel_size: int, mid: int, size: int | None) -> int:
    """MACs of a bottleneck at input `size`, or its parameters when `size` is None."""
    bias, cin, cout = int(spec.use_bias), spec.in_channels, spec.out_channels
    convs = [(cin, mid, 1, 1 if spec.stride_on == "conv2" else spec.stride), (mid, mid, kernel_size, spec.stride if spec.stride_on == "conv2" else 1),
             (mid, cout, 1, 1)] + ([(cin, cout, 1, spec.stride)] if spec.shortcut else [])
    if size is None:
        return sum(k * k * a * b + (bias + 2) * b for a, b, k, _ in convs)
    total, current = 0, size
    for index, (a, b, k, stride) in enumerate(convs):
        current = conv_output_size(size if index == 3 else current, stride)
        total += current * current * k * k * a * b
    return total


def block_key(spec: KerasBlockSpec, size: int, kernel_size: int, mid: int) -> str:
    if spec.kind == "bottleneck":
        return bottleneck_key(spec, size, kernel_size, mid)
    key = f"{expanded_conv_key(spec, size, kernel_size, mid)}-act:{spec.activation}"
    return key if spec.se is None else f"{key}-se_mid:{se_hidden_channels(spec, mid)}"


def block_cost(spec: KerasBlockSpec, kernel_size: int, mid: int, size: int | None) -> int:
    """MACs of one block at input `size`, or its parameters when `size` is None."""
    if spec.kind == "bottleneck":
        return bottleneck_cost(spec, kernel_size, mid, size)
    se_mid = se_hidden_channels(spec, mid) if spec.se is not None else 0
    if size is None:
        cost = spec.in_channels * mid + 2 * mid if spec.has_expand else 0  # expand conv + BN
        cost += kernel_size * kernel_size * mid + 2 * mid  # depthwise + BN
        cost += 2 * mid * se_mid + se_mid + mid if spec.se is not None else 0  # two 1x1 convs with biases
        return cost + mid * spec.out_channels + 2 * spec.out_channels  # project + BN
    out_size = conv_output_size(size, spec.stride)
    cost = size * size * spec.in_channels * mid if spec.has_expand else 0
    cost += out_size * out_size * mid * kernel_size * kernel_size
    cost += 2 * mid * se_mid
    return cost + out_size * out_size * mid * spec.out_channels


def _block_variant(spec: KerasBlockSpec, size: int, kernel_size: int, mid: int, block: int) -> LayerVariant:
    layer = LayerSpec(block_key(spec, size, kernel_size, mid), "expanded_conv", (size, size, spec.in_channels), block, kernel_size, mid)
    return LayerVariant(layer, block_cost(spec, kernel_size, mid, size), block_cost(spec, kernel_size, mid, None))


def _conv_params(conv, in_channels: int) -> int:
    return conv.kernel_size**2 * in_channels * conv.width + conv.width * (int(conv.use_bias) + 2 * int(conv.use_bn))


def _stem_slot(space: KerasSpace, resolution: int) -> LayerSlot:
    stem, size = space.family_spec.stem, space.stem_output_size(resolution)  # after the stem pooling, if any
    key = f"Conv-input:{shape_text(resolution, resolution, 3)}-output:{shape_text(size, size, stem.width)}-kernel:{stem.kernel_size}"
    conv_size = conv_output_size(resolution, stem.stride)
    macs = conv_size * conv_size * stem.kernel_size**2 * 3 * stem.width
    key += "-pool:3x3s2" if space.family_spec.stem_pool else ""
    return LayerSlot("stem", (LayerVariant(LayerSpec(key, "Conv", (resolution, resolution, 3)), macs, _conv_params(stem, 3)),))


def _head_slots(space: KerasSpace, resolution: int) -> list[LayerSlot]:
    size, channels = space.final_feature_size(resolution), space.blocks[-1].out_channels
    slots = []
    for index, layer in enumerate(space.family_spec.head_sequence):
        shape = (size, size, channels)
        if layer == POOL:
            key = f"AvgPool2D-input:{shape_text(*shape)}-output:{shape_text(1, 1, channels)}"
            slots.append(LayerSlot("pool", (LayerVariant(LayerSpec(key, "AvgPool2D", shape), 0, 0),)))
            size = 1
            continue
        kind = f"Conv_{index + 1}"
        key = f"{kind}-input:{shape_text(*shape)}-output:{shape_text(size, size, layer.width)}-act:{layer.activation}"
        spec = LayerSpec(key, kind, shape, head=layer)
        slots.append(LayerSlot(layer.name, (LayerVariant(spec, size * size * channels * layer.width, _conv_params(layer, channels)),)))
        channels = layer.width
    n, bias = space.n_classes, int(space.family_spec.classifier_bias)
    key = f"Logits-input:{shape_text(1, 1, channels)}-output:{n}"
    slots.append(LayerSlot("classifier", (LayerVariant(LayerSpec(key, "Logits", (1, 1, channels)), channels * n, channels * n + bias * n),)))
    return slots


@functools.lru_cache(maxsize=64)
def keras_layer_slots(space: KerasSpace, resolution: int) -> tuple[LayerSlot, ...]:
    """The slots of a converted subnet at `resolution`, in network order; a block's variants are its
    kernels (those it may run) x `expand_ratio_list`."""
    first, stem_size = space.first_block(), space.stem_output_size(resolution)
    first_variant = _block_variant(first, stem_size, first.kernel_size_list[0], first.mid_channels[0], FIRST_BLOCK)
    slots = [_stem_slot(space, resolution), LayerSlot("first_block", (first_variant,))]
    for spec, size in zip(space.blocks, space.block_input_sizes(resolution)):
        variants = tuple(_block_variant(spec, size, k, mid, spec.index) for k in spec.kernel_size_list for mid in spec.mid_channels)
        slots.append(LayerSlot(f"block{spec.index}", variants))
    return tuple(slots + _head_slots(space, resolution))
