"""One small Keras model per latency-table key, built with the extractor's own layers.

The keys are those of `ofa_tf.nas.latency_table` (the official format); each
model is the slice of an extracted subnet the key stands for, built by
`ofa_tf.extract._SubnetBuilder` from supernet weights, so a whole subnet is
exactly the concatenation of its keys' models:

- `Conv`: first conv (stride 2) + BN + h-swish;
- `expanded_conv`: one MBConv block (expand, depthwise, SE, project, residual);
- `Conv_1`: final expand 1x1 conv + BN + h-swish;
- `AvgPool2D`: global average pooling;
- `Conv_2`: feature-mix 1x1 conv + h-swish;
- `Logits`: flatten + classifier.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from ofa_tf.nas.latency_table import all_keys, block_keys, expanded_conv_key, fixed_keys
from ofa_tf.space import SearchSpace

FIXED_KINDS = ("Conv", "expanded_conv", "Conv_1", "AvgPool2D", "Conv_2", "Logits")
FIRST_BLOCK = -1


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """What to build for one latency-table key.

    Args:
        key: the latency-table key.
        kind: one of `FIXED_KINDS`.
        input_shape: (height, width, channels) of the model input.
        block: elastic block index, `FIRST_BLOCK` for the fixed first block, None otherwise.
        kernel_size: depthwise kernel size (blocks only).
        mid: middle channels (blocks only).
    """

    key: str
    kind: str
    input_shape: tuple[int, int, int]
    block: int | None = None
    kernel_size: int = 0
    mid: int = 0


def _fixed_specs(space: SearchSpace, resolution: int) -> list[LayerSpec]:
    f1 = space.conv_output_size(resolution, 2)
    final = space.final_feature_size(resolution)
    first = space.first_block()
    shapes = [
        (resolution, resolution, 3),
        (f1, f1, space.first_conv_channels),
        (final, final, space.blocks[-1].out_channels),
        (final, final, space.final_expand_channels),
        (1, 1, space.final_expand_channels),
        (1, 1, space.feature_mix_channels),
    ]
    specs = []
    for key, kind, shape in zip(fixed_keys(space, resolution), FIXED_KINDS, shapes):
        if key.split("-")[0] != kind:
            raise RuntimeError(f"latency-table key {key} is not a {kind} key: fixed_keys changed its order")
        if kind == "expanded_conv":
            specs.append(LayerSpec(key, kind, shape, FIRST_BLOCK, kernel_size=3, mid=first.mid_channels[0]))
        else:
            specs.append(LayerSpec(key, kind, shape))
    return specs


def _block_specs(space: SearchSpace, resolution: int) -> list[LayerSpec]:
    specs = []
    sizes = space.block_input_sizes(resolution)
    for spec, size, per_kernel in zip(space.blocks, sizes, block_keys(space, resolution)):
        for kernel_size, per_expand in zip(space.ks_list, per_kernel):
            for mid, key in zip(spec.mid_channels, per_expand):
                if key != expanded_conv_key(spec, size, kernel_size, mid):
                    raise RuntimeError(f"latency-table key {key} does not describe block {spec.index}")
                specs.append(LayerSpec(key, "expanded_conv", (size, size, spec.in_channels), spec.index, kernel_size, mid))
    return specs


def layer_specs(space: SearchSpace, resolutions: Iterable[int]) -> list[LayerSpec]:
    """One spec per distinct key a search over `resolutions` can query, in `all_keys` order.

    Args:
        space: the search space.
        resolutions: input resolutions.
    """
    resolutions = list(resolutions)
    unique: dict[str, LayerSpec] = {}
    for resolution in resolutions:
        for spec in _fixed_specs(space, resolution) + _block_specs(space, resolution):
            unique.setdefault(spec.key, spec)
    order = all_keys(space, resolutions)
    if set(unique) != set(order):
        raise RuntimeError("layer specs and latency-table keys disagree")
    return [unique[key] for key in order]


def build_layer_model(supernet: Any, spec: LayerSpec) -> Any:
    """The Keras model of one key, with `supernet`'s weights.

    Args:
        supernet: a built `OFAMobileNetV3` of the table's width and class count.
        spec: from `layer_specs`.
    """
    from ofa_tf._backend import keras
    from ofa_tf.extract import _SubnetBuilder

    space = supernet.space
    builder = _SubnetBuilder(keras, supernet.bn_momentum, supernet.bn_epsilon)
    inputs = keras.layers.Input(spec.input_shape, name="features")
    x = inputs
    if spec.kind == "Conv":
        x = builder.stem(x, supernet)
    elif spec.kind == "expanded_conv":
        if spec.block == FIRST_BLOCK:
            block_spec, block = space.first_block(), supernet.first_block
        else:
            block_spec, block = space.blocks[spec.block], supernet.blocks[spec.block]
        x = builder.mbconv(x, "block", block_spec, block, spec.kernel_size, spec.mid)
    elif spec.kind == "Conv_1":
        x = builder.final_expand(x, supernet)
    elif spec.kind == "AvgPool2D":
        x = builder.apply(keras.layers.GlobalAveragePooling2D(keepdims=True, name="pool"), x)
    elif spec.kind == "Conv_2":
        x = builder.feature_mix(x, supernet)
    else:
        x = builder.classifier(builder.apply(keras.layers.Flatten(name="flatten"), x), supernet)
    return keras.Model(inputs, x, name=spec.kind)
