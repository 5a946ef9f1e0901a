"""Subnet extraction: a `SubnetConfig` + supernet weights -> a stock Keras model.

The extracted model uses only `ZeroPadding2D`, `Conv2D`, `DepthwiseConv2D`,
`BatchNormalization`, `Activation`, `GlobalAveragePooling2D`, `Multiply`,
`Add`, `Flatten`, `Dropout` and `Dense`: it saves as `.keras` without custom
objects and converts to TFLite with builtin ops only.
"""

from __future__ import annotations

from typing import Any

from ofa_tf._backend import keras
from ofa_tf.layers.activations import KERAS_ACTIVATION
from ofa_tf.families.mbconv.description import POOL, HeadConv
from ofa_tf.families.mbconv.space import BlockSpec, SubnetConfig
from ofa_tf.space.slots import FIRST_BLOCK


class SubnetBuilder:
    """Adds stock layers to a functional graph, copying supernet weights when given."""

    def __init__(self, lib: Any, bn_momentum: float, bn_epsilon: float):
        self.layers = lib.layers
        self.bn_args = dict(momentum=bn_momentum, epsilon=bn_epsilon)

    def apply(self, layer, x, weights=None):
        y = layer(x)
        if weights is not None:
            layer.set_weights(weights)
        return y

    def _padded(self, x, name, kernel_size: int, padding: str):
        """`x` and the Keras padding of a layer that pads as `padding`: TF's "same" (networks converted from
        Keras), or `k // 2` on each side ("symmetric", the official OFA's: a `ZeroPadding2D`, then "valid")."""
        if padding == "same":
            return x, "same"
        if kernel_size > 1:
            x = self.apply(self.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad"), x)
        return x, "valid"

    def conv(self, x, name, filters, kernel_size, source, strides=1, activation=None):
        """A stock `Conv2D` with `source`'s (an `ElasticConv2D`'s) sliced weights, padding and bias."""
        in_channels = x.shape[-1]
        x, padding = self._padded(x, name, kernel_size, source.padding)
        conv = self.layers.Conv2D(
            filters, kernel_size, strides=strides, padding=padding, use_bias=source.use_bias, activation=activation, name=name
        )
        return self.apply(conv, x, source.sliced_weights(in_channels, filters))

    def bn_act(self, x, name, source, activation=None):
        channels = x.shape[-1]
        x = self.apply(
            self.layers.BatchNormalization(**self.bn_args, name=f"{name}_bn"), x, source.sliced_weights(channels)
        )
        if activation is not None:
            x = self.apply(self.layers.Activation(KERAS_ACTIVATION[activation], name=f"{name}_act"), x)
        return x

    def mbconv(self, x, name, spec: BlockSpec, block, kernel_size: int, mid: int):
        shortcut = x
        if block.has_expand:
            x = self.conv(x, f"{name}_expand", mid, 1, block.expand_conv)
            x = self.bn_act(x, f"{name}_expand", block.expand_bn, spec.activation)
        x, padding = self._padded(x, f"{name}_depthwise", kernel_size, block.padding)
        depthwise = self.layers.DepthwiseConv2D(
            kernel_size, strides=spec.stride, padding=padding, use_bias=False, name=f"{name}_depthwise"
        )
        x = self.apply(depthwise, x, block.depthwise.sliced_weights(mid, kernel_size))
        x = self.bn_act(x, f"{name}_depthwise", block.depthwise_bn, spec.activation)
        if spec.use_se:
            x = self.squeeze_excite(x, f"{name}_se", block.se)
        x = self.conv(x, f"{name}_project", spec.out_channels, 1, block.project_conv)
        x = self.bn_act(x, f"{name}_project", block.project_bn)
        if spec.has_residual:
            x = self.layers.Add(name=f"{name}_add")([shortcut, x])
        return x

    # the fixed layers around the elastic blocks, shared with the latency-table layer models
    def preprocess(self, x, supernet):
        """The input's preprocessing inside the network (none in OFA's families)."""
        return x

    def stem(self, x, supernet):
        """First conv (3x3) + BN + the family's activation."""
        stem = supernet.space.family_spec.stem_stage
        x = self.conv(x, "first_conv", supernet.space.first_conv_channels, 3, supernet.first_conv, strides=stem.stride)
        return self.bn_act(x, "first_conv", supernet.first_conv_bn, stem.activation)

    def head_conv(self, x, supernet, conv: HeadConv):
        """One 1x1 head conv (`conv.name`: final_expand, feature_mix) + BN where it has one + activation."""
        channels = supernet.space.head_width(conv)
        x = self.conv(x, conv.name, channels, 1, getattr(supernet, f"{conv.name}_conv"))
        if conv.use_bn:
            return self.bn_act(x, conv.name, getattr(supernet, f"{conv.name}_bn"), conv.activation)
        return self.apply(self.layers.Activation(KERAS_ACTIVATION[conv.activation], name=f"{conv.name}_act"), x)

    def pool(self, x):
        return self.apply(self.layers.GlobalAveragePooling2D(keepdims=True, name="pool"), x)

    def classifier(self, x, supernet):
        """The linear classifier on flat features (with a bias where the supernet's has one)."""
        n, source = supernet.space.n_classes, supernet.classifier
        return self.apply(self.layers.Dense(n, use_bias=source.use_bias, name="classifier"), x, source.sliced_weights(x.shape[-1], n))

    def squeeze_excite(self, x, name, source):
        """`source`'s (an `ElasticSqueezeExcite`'s) hidden width, activations and sliced weights as stock layers."""
        channels = x.shape[-1]
        weights = source.sliced_weights(channels)
        s = self.apply(self.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool"), x)
        reduce = self.layers.Conv2D(
            source.hidden_channels(channels), 1, activation=KERAS_ACTIVATION[source.activation], name=f"{name}_reduce"
        )
        s = self.apply(reduce, s, weights[:2])
        expand = self.layers.Conv2D(channels, 1, activation=KERAS_ACTIVATION[source.gate], name=f"{name}_expand")
        s = self.apply(expand, s, weights[2:])
        return self.layers.Multiply(name=f"{name}_multiply")([x, s])


def extract_mbconv_subnet(
    supernet: Any, config: SubnetConfig | None = None, lib: Any = keras, name: str | None = None,
    builder_class: type = SubnetBuilder,
) -> Any:
    """`extract_subnet` for a supernet of MBConv blocks (`OFAMBConvNetwork`), its layers made by `builder_class`."""
    space = supernet.space
    config = supernet.active_config if config is None else config
    space.validate(config)
    builder = builder_class(lib, supernet.bn_momentum, supernet.bn_epsilon)
    layers = builder.layers
    size = config.resolution
    inputs = layers.Input((size, size, 3), name="image")
    x = builder.stem(builder.preprocess(inputs, supernet), supernet)
    first, first_block = space.first_block(), supernet.first_block
    x = builder.mbconv(x, "first_block", first, first_block, first_block.kernel_size_list[-1], first.mid_channels[0])
    active = space.active_block_mask(config.d)[0]
    for spec in space.blocks:
        if active[spec.index]:
            mid = spec.mid_channels[space.expand_ratio_list.index(config.e[spec.index])]
            x = builder.mbconv(x, f"blocks_{spec.index}", spec, supernet.blocks[spec.index], config.ks[spec.index], mid)
    for conv in space.family_spec.head_sequence:
        x = builder.pool(x) if conv == POOL else builder.head_conv(x, supernet, conv)
    x = builder.apply(layers.Flatten(name="flatten"), x)
    if supernet.dropout_rate > 0:
        x = builder.apply(layers.Dropout(supernet.dropout_rate, name="dropout"), x)
    outputs = builder.classifier(x, supernet)
    return lib.Model(inputs, outputs, name=name or "ofa_subnet")


def slot_output(supernet: Any, x: Any, spec: Any, lib: Any = keras, builder_class: type = SubnetBuilder) -> Any:
    """The layers of one latency-table key (`ofa_tf.space.slots.LayerSpec` of kind "Conv",
    "expanded_conv", a head conv or "Logits") applied to `x`, with `supernet`'s weights."""
    builder, space = builder_class(lib, supernet.bn_momentum, supernet.bn_epsilon), supernet.space
    if spec.kind == "Conv":
        return builder.stem(builder.preprocess(x, supernet), supernet)
    if spec.kind == "expanded_conv":
        if spec.block == FIRST_BLOCK:
            block_spec, block = space.first_block(), supernet.first_block
        else:
            block_spec, block = space.blocks[spec.block], supernet.blocks[spec.block]
        return builder.mbconv(x, "block", block_spec, block, spec.kernel_size, spec.mid)
    if spec.head is not None:
        return builder.head_conv(x, supernet, spec.head)
    return builder.classifier(builder.apply(lib.layers.Flatten(name="flatten"), x), supernet)
