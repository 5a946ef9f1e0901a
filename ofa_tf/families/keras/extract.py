"""Subnet extraction for a network converted from Keras: the MBConv extractor with the model's own layers.

Differences from the released families' subnets: TF 'same' padding in the convolutions (Keras'
`correct_pad` + "valid" computes the same), the model's squeeze-excite widths and activations,
biases where the model has them, and its preprocessing as one `Rescaling` layer.
"""

from __future__ import annotations

from typing import Any

from ofa_tf._backend import keras
from ofa_tf.families.mbconv.extract import SubnetBuilder, extract_mbconv_subnet, slot_output
from ofa_tf.layers.activations import KERAS_ACTIVATION


class KerasSubnetBuilder(SubnetBuilder):
    """`SubnetBuilder` for converted networks."""

    def _padded(self, x, name, kernel_size: int, padding: str):
        """`x` and the Keras padding of a conv that pads as `padding` ("same", or `k // 2` on each side)."""
        if padding == "same" or kernel_size == 1:
            return x, "same"
        return self.apply(self.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad"), x), "valid"

    def conv(self, x, name, filters, kernel_size, source, strides=1, use_bias=False, activation=None):
        in_channels = x.shape[-1]
        x, padding = self._padded(x, name, kernel_size, source.padding)
        layer = self.layers.Conv2D(
            filters, kernel_size, strides=strides, padding=padding, use_bias=source.use_bias, activation=activation, name=name
        )
        return self.apply(layer, x, source.sliced_weights(in_channels, filters))

    def mbconv(self, x, name, spec, block, kernel_size: int, mid: int):
        if spec.kind == "bottleneck":
            return self.bottleneck(x, name, spec, block, mid)
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

    def bottleneck(self, x, name, spec, block, mid: int):
        s1, s2 = (spec.stride, 1) if spec.stride_on == "conv1" else (1, spec.stride)
        shortcut = x
        if spec.shortcut:  # made first, as Keras' `residual_block_v1` does (its layers then come in the model's order)
            shortcut = self.conv(x, f"{name}_shortcut", spec.out_channels, 1, block.shortcut_conv, strides=spec.stride)
            shortcut = self.bn_act(shortcut, f"{name}_shortcut", block.shortcut_bn)
        y = self.bn_act(self.conv(x, f"{name}_conv1", mid, 1, block.conv1, strides=s1), f"{name}_conv1", block.bn1, "relu")
        y = self.bn_act(self.conv(y, f"{name}_conv2", mid, block.kernel_size, block.conv2, strides=s2), f"{name}_conv2", block.bn2, "relu")
        y = self.bn_act(self.conv(y, f"{name}_conv3", spec.out_channels, 1, block.conv3), f"{name}_conv3", block.bn3)
        y = self.layers.Add(name=f"{name}_add")([shortcut, y])
        return self.apply(self.layers.Activation("relu", name=f"{name}_out"), y)

    def squeeze_excite(self, x, name, source):
        channels = x.shape[-1]
        weights = source.sliced_weights(channels)
        s = self.apply(self.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool"), x)
        reduce = self.layers.Conv2D(source.hidden_channels(channels), 1, activation=KERAS_ACTIVATION[source.activation], name=f"{name}_reduce")
        s = self.apply(reduce, s, weights[:2])
        expand = self.layers.Conv2D(channels, 1, activation=KERAS_ACTIVATION[source.gate], name=f"{name}_expand")
        s = self.apply(expand, s, weights[2:])
        return self.layers.Multiply(name=f"{name}_multiply")([x, s])

    def preprocess(self, x, supernet):
        description = supernet.space.family_spec
        if not description.has_preprocessing:
            return x
        scale, offset, _ = description.network_input()
        rescaling = self.layers.Rescaling(list(scale), list(offset), name="preprocess")
        return self.apply(rescaling, x)

    def stem(self, x, supernet):
        stem = supernet.space.family_spec.stem
        x = self.conv(x, "first_conv", stem.width, stem.kernel_size, supernet.first_conv, strides=stem.stride)
        x = self.bn_act(x, "first_conv", supernet.first_conv_bn, stem.activation)
        if not supernet.space.family_spec.stem_pool:
            return x
        x, padding = self._padded(x, "stem_pool", 3, supernet.space.family_spec.padding)
        return self.apply(self.layers.MaxPooling2D(3, 2, padding=padding, name="stem_pool"), x)

    def head_conv(self, x, supernet, conv):
        x = self.conv(x, conv.name, conv.width, conv.kernel_size, getattr(supernet, f"{conv.name}_conv"))
        if conv.use_bn:
            return self.bn_act(x, conv.name, getattr(supernet, f"{conv.name}_bn"), conv.activation)
        return self.apply(self.layers.Activation(KERAS_ACTIVATION[conv.activation], name=f"{conv.name}_act"), x)

    def classifier(self, x, supernet):
        n = supernet.space.n_classes
        weights = supernet.classifier.sliced_weights(x.shape[-1], n)
        return self.apply(self.layers.Dense(n, use_bias=supernet.classifier.use_bias, name="classifier"), x, weights)


def extract_keras_subnet(supernet: Any, config: Any = None, lib: Any = keras, name: str | None = None) -> Any:
    """`extract_subnet` for a converted network (`KerasMBConvNetwork`)."""
    return extract_mbconv_subnet(supernet, config, lib=lib, name=name, builder_class=KerasSubnetBuilder)


def keras_slot_output(supernet: Any, x: Any, spec: Any, lib: Any = keras) -> Any:
    """The stock layers of one latency-table key applied to `x`, with `supernet`'s weights."""
    return slot_output(supernet, x, spec, lib=lib, builder_class=KerasSubnetBuilder)
