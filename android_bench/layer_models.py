"""One small Keras model per latency-table key, built with the extractor's own layers.

The keys are those of `ofa_tf.nas.latency_table` (the official format); each
model is the slice of an extracted subnet the key stands for, built by
`ofa_tf.extract._SubnetBuilder` from supernet weights, so a whole subnet is
exactly the concatenation of its keys' models:

- `Conv`: first conv (stride 2) + BN + activation;
- `expanded_conv`: one MBConv block (expand, depthwise, SE, project, residual);
- the head convs of the family (`Conv_1`, `Conv_2`: 1x1 conv, BN where it has one, activation);
- `AvgPool2D`: global average pooling;
- `Logits`: flatten + classifier.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from ofa_tf.families import HeadConv
from ofa_tf.nas.latency_table import FIRST_BLOCK_LAYER, all_keys, block_keys, expanded_conv_key, fixed_layers
from ofa_tf.space import SearchSpace

FIRST_BLOCK = -1


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """What to build for one latency-table key.

    Args:
        key: the latency-table key.
        kind: the key's prefix (`Conv`, `expanded_conv`, `Conv_1`, `AvgPool2D`, `Conv_2`, `Logits`).
        input_shape: (height, width, channels) of the model input.
        block: elastic block index, `FIRST_BLOCK` for the fixed first block, None otherwise.
        kernel_size: depthwise kernel size (blocks only).
        mid: middle channels (blocks only).
        head: the head conv a `Conv_1` / `Conv_2` key stands for.
    """

    key: str
    kind: str
    input_shape: tuple[int, int, int]
    block: int | None = None
    kernel_size: int = 0
    mid: int = 0
    head: HeadConv | None = None


def _fixed_specs(space: SearchSpace, resolution: int) -> list[LayerSpec]:
    first = space.first_block()
    specs = []
    for key, shape, layer in fixed_layers(space, resolution):
        kind = key.split("-")[0]
        if layer == FIRST_BLOCK_LAYER:
            specs.append(LayerSpec(key, kind, shape, FIRST_BLOCK, kernel_size=3, mid=first.mid_channels[0]))
        else:
            specs.append(LayerSpec(key, kind, shape, head=layer if isinstance(layer, HeadConv) else None))
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
        supernet: a built supernet of the table's family, width and class count.
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
    elif spec.head is not None:
        x = builder.head_conv(x, supernet, spec.head)
    elif spec.kind == "AvgPool2D":
        x = builder.pool(x)
    else:
        x = builder.classifier(builder.apply(keras.layers.Flatten(name="flatten"), x), supernet)
    return keras.Model(inputs, x, name=spec.kind)
