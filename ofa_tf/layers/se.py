"""Elastic squeeze-and-excitation (OFA `DynamicSE`)."""

from __future__ import annotations

import numpy as np

from ofa_tf._backend import keras, tf
from ofa_tf.layers import activations
from ofa_tf.layers.initializers import he_fout
from ofa_tf.layers.slicing import channels_of, leading
from ofa_tf.space.choices import se_mid_channels


class ElasticSqueezeExcite(keras.layers.Layer):
    """Squeeze-and-excitation whose width follows the input channels.

    For `C` active channels the hidden width is `make_divisible(C // 4, 8)`
    (OFA's and Keras' MobileNetV3's), or a fixed `mid_channels` (EfficientNet's,
    a quarter of the block's input); the reduce (C -> mid, `activation`) and expand
    (mid -> C, `gate`) 1x1 convs with biases are leading slices of the max weights.

    Args:
        mid_channels: a fixed hidden width, or None for one that follows the input.
        activation: the reduce conv's activation (an `ofa_tf.layers.activations` name).
        gate: the expand conv's activation.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, mid_channels: int | None = None, activation: str = "relu", gate: str = "h_sigmoid", **kwargs):
        super().__init__(**kwargs)
        self.mid_channels = None if mid_channels is None else int(mid_channels)
        self.activation, self.gate = activation, gate
        self._activation, self._gate = activations.get(activation), activations.get(gate)

    def hidden_channels(self, channels: int) -> int:
        """The hidden width for `channels` active inputs."""
        return se_mid_channels(channels) if self.mid_channels is None else self.mid_channels

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.max_channels = channels
        mid = self.hidden_channels(channels)
        self.reduce_kernel = self.add_weight(name="reduce_kernel", shape=(channels, mid), initializer=he_fout(1, mid))
        self.reduce_bias = self.add_weight(name="reduce_bias", shape=(mid,), initializer="zeros")
        self.expand_kernel = self.add_weight(
            name="expand_kernel", shape=(mid, channels), initializer=he_fout(1, channels)
        )
        self.expand_bias = self.add_weight(name="expand_bias", shape=(channels,), initializer="zeros")
        # mid width for every possible active channel count, looked up in-graph.
        self._mid_table = tf.constant([self.hidden_channels(c) for c in range(channels + 1)], tf.int32)

    def call(self, inputs):
        channels = channels_of(inputs)
        mid = self.hidden_channels(channels) if isinstance(channels, int) else tf.gather(self._mid_table, channels)
        pooled = tf.reduce_mean(inputs, axis=[1, 2])
        hidden = self._activation(
            tf.matmul(pooled, leading(self.reduce_kernel, [channels, mid])) + leading(self.reduce_bias, [mid])
        )
        gate = tf.matmul(hidden, leading(self.expand_kernel, [mid, channels])) + leading(self.expand_bias, [channels])
        return inputs * self._gate(gate)[:, None, None, :]

    def sliced_weights(self, channels: int) -> list[np.ndarray]:
        """[reduce kernel, reduce bias, expand kernel, expand bias] as stock 1x1 `Conv2D` weights."""
        mid = self.hidden_channels(channels)
        return [
            self.reduce_kernel.numpy()[None, None, :channels, :mid],
            self.reduce_bias.numpy()[:mid],
            self.expand_kernel.numpy()[None, None, :mid, :channels],
            self.expand_bias.numpy()[:channels],
        ]

    def get_config(self):
        config = super().get_config()
        config.update(mid_channels=self.mid_channels, activation=self.activation, gate=self.gate)
        return config
