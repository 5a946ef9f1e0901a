"""Subnet extraction for a network converted from Keras: the MBConv extractor with the model's own layers.

The MBConv extractor takes padding, biases and squeeze-excite widths and activations from the
supernet's layers; a converted network adds its preprocessing as one `Rescaling` layer, its own
stem (kernel, ResNet50's max pooling) and head, and bottleneck blocks.
"""

from __future__ import annotations

from typing import Any

from ofa_tf._backend import keras
from ofa_tf.families.mbconv.extract import SubnetBuilder, extract_mbconv_subnet, slot_output


class KerasSubnetBuilder(SubnetBuilder):
    """`SubnetBuilder` for converted networks."""

    def mbconv(self, x, name, spec, block, kernel_size: int, mid: int):
        if spec.kind == "bottleneck":
            return self.bottleneck(x, name, spec, block, mid)
        return super().mbconv(x, name, spec, block, kernel_size, mid)

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


def extract_keras_subnet(supernet: Any, config: Any = None, lib: Any = keras, name: str | None = None) -> Any:
    """`extract_subnet` for a converted network (`KerasMBConvNetwork`)."""
    return extract_mbconv_subnet(supernet, config, lib=lib, name=name, builder_class=KerasSubnetBuilder)


def keras_slot_output(supernet: Any, x: Any, spec: Any, lib: Any = keras) -> Any:
    """The stock layers of one latency-table key applied to `x`, with `supernet`'s weights."""
    return slot_output(supernet, x, spec, lib=lib, builder_class=KerasSubnetBuilder)
