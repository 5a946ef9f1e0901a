"""Elastic bottleneck block of a network converted from Keras (ResNet50's `residual_block_v1`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ofa_tf._backend import keras, tf
from ofa_tf.families.mbconv.block import importance_order
from ofa_tf.layers.batch_norm import ElasticBatchNormalization
from ofa_tf.layers.conv import ElasticConv2D


class ElasticKerasBottleneck(keras.layers.Layer):
    """1x1 conv -> kxk conv -> 1x1 conv, each with batch norm, ReLU after the first two and after the
    shortcut is added; the shortcut is a 1x1 conv + batch norm where the block changes shape.

    The middle width (both inner convs' outputs) is elastic: `mid_channels[expand_index]`, a leading
    slice of the model's. Keras' ResNets stride the first 1x1 conv (`stride_on="conv1"`),
    torchvision's the kxk one ("conv2").

    Args:
        in_channels: input channels.
        out_channels: output channels.
        mid_channels: middle width for each expand choice.
        kernel_size: the middle conv's kernel size.
        strides: the block's stride.
        stride_on: "conv1" or "conv2".
        shortcut: whether the shortcut is a 1x1 conv + batch norm (else the input itself).
        use_bias: whether the convs add biases (Keras' ResNets do).
        padding: "symmetric" or "same".
        bn_momentum: Keras-style BN momentum.
        bn_epsilon: BN epsilon.
        **kwargs: base `Layer` arguments.
    """

    residual_activation = staticmethod(tf.nn.relu)  # applied after the shortcut is added

    def __init__(
        self, in_channels: int, out_channels: int, mid_channels: Sequence[int], kernel_size: int = 3, strides: int = 1,
        stride_on: str = "conv1", shortcut: bool = False, use_bias: bool = True, padding: str = "symmetric",
        bn_momentum: float = 0.9, bn_epsilon: float = 1e-5, **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.mid_channels = tuple(int(m) for m in mid_channels)
        self.kernel_size, self.strides, self.stride_on = int(kernel_size), int(strides), stride_on
        self.shortcut, self.use_bias, self.padding = bool(shortcut), bool(use_bias), padding
        self.bn_momentum, self.bn_epsilon = bn_momentum, bn_epsilon
        self.kernel_size_list = (self.kernel_size,)
        conv = dict(use_bias=use_bias, padding=padding)
        bn = dict(momentum=bn_momentum, epsilon=bn_epsilon)
        s1, s2 = (strides, 1) if stride_on == "conv1" else (1, strides)
        max_mid = max(self.mid_channels)
        self.conv1, self.bn1 = ElasticConv2D(max_mid, 1, s1, **conv, name="conv1"), ElasticBatchNormalization(**bn, name="bn1")
        self.conv2 = ElasticConv2D(max_mid, kernel_size, s2, **conv, name="conv2")
        self.bn2 = ElasticBatchNormalization(**bn, name="bn2")
        self.conv3, self.bn3 = ElasticConv2D(out_channels, 1, **conv, name="conv3"), ElasticBatchNormalization(**bn, name="bn3")
        if self.shortcut:
            self.shortcut_conv = ElasticConv2D(out_channels, 1, strides, **conv, name="shortcut_conv")
            self.shortcut_bn = ElasticBatchNormalization(**bn, name="shortcut_bn")
        self._mid_table = tf.constant(self.mid_channels, tf.int32)

    def build(self, input_shape=None):
        max_mid = max(self.mid_channels)
        for conv, bn, cin, cout in ((self.conv1, self.bn1, self.in_channels, max_mid), (self.conv2, self.bn2, max_mid, max_mid),
                                    (self.conv3, self.bn3, max_mid, self.out_channels)):
            conv.build((None, None, None, cin))
            bn.build((None, None, None, cout))
        if self.shortcut:
            self.shortcut_conv.build((None, None, None, self.in_channels))
            self.shortcut_bn.build((None, None, None, self.out_channels))

    def active_mid_channels(self, expand_index):
        if isinstance(expand_index, (int, np.integer)):
            return self.mid_channels[int(expand_index)]
        return tf.gather(self._mid_table, expand_index)

    def call(self, inputs, kernel_index=None, expand_index=None, training=None, residual=True):
        """The block at `mid_channels[expand_index]` (None: the largest); `residual=False`: the branch only
        (the caller adds the input and applies `residual_activation`)."""
        mid = self.active_mid_channels(int(np.argmax(self.mid_channels)) if expand_index is None else expand_index)
        x = tf.nn.relu(self.bn1(self.conv1(inputs, active_filters=mid), training=training))
        x = tf.nn.relu(self.bn2(self.conv2(x, active_filters=mid), training=training))
        x = self.bn3(self.conv3(x), training=training)
        if not residual:
            return x
        shortcut = self.shortcut_bn(self.shortcut_conv(inputs), training=training) if self.shortcut else inputs
        return tf.nn.relu(shortcut + x)

    def reorganize_middle_channels(self, expand_ratio_stage: int = 0) -> None:
        """Sorts middle channels by importance, as upstream's ResNet bottleneck: conv2's outputs by the L1 norm
        of conv3's weights on them, then conv1's outputs by the L1 norm of conv2's weights on them."""
        for consumer, producer, bn in ((self.conv3, self.conv2, self.bn2), (self.conv2, self.conv1, self.bn1)):
            order = importance_order(np.abs(consumer.kernel.numpy()).sum(axis=(0, 1, 3)), expand_ratio_stage, self.mid_channels)
            consumer.kernel.assign(consumer.kernel.numpy()[:, :, order, :])
            producer.kernel.assign(producer.kernel.numpy()[:, :, :, order])
            if producer.bias is not None:
                producer.bias.assign(producer.bias.numpy()[order])
            for variable in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance):
                variable.assign(variable.numpy()[order])

    def get_config(self):
        config = super().get_config()
        config.update(
            in_channels=self.in_channels, out_channels=self.out_channels, mid_channels=list(self.mid_channels),
            kernel_size=self.kernel_size, strides=self.strides, stride_on=self.stride_on, shortcut=self.shortcut,
            use_bias=self.use_bias, padding=self.padding, bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon,
        )
        return config
