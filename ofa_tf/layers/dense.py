"""Elastic dense layer: the input width is a slice of the max kernel."""

from __future__ import annotations

import numpy as np

from ofa_tf._backend import keras, tf
from ofa_tf.layers.initializers import linear_uniform
from ofa_tf.layers.slicing import channels_of, leading


class ElasticDense(keras.layers.Layer):
    """A dense layer (OFA `DynamicLinear`) whose input and output widths may shrink.

    Args:
        max_units: output units of the full kernel.
        use_bias: whether to add a bias.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, max_units: int, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.max_units = int(max_units)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        in_features = int(input_shape[-1])
        self.kernel = self.add_weight(
            name="kernel", shape=(in_features, self.max_units), initializer=linear_uniform(in_features)
        )
        self.bias = self.add_weight(name="bias", shape=(self.max_units,), initializer="zeros") if self.use_bias else None

    def call(self, inputs, active_units=None):
        units = self.max_units if active_units is None else active_units
        outputs = tf.matmul(inputs, leading(self.kernel, [channels_of(inputs), units]))
        if self.bias is not None:
            outputs = outputs + leading(self.bias, [units])
        return outputs

    def sliced_weights(self, in_features: int, units: int) -> list[np.ndarray]:
        weights = [self.kernel.numpy()[:in_features, :units]]
        if self.bias is not None:
            weights.append(self.bias.numpy()[:units])
        return weights

    def get_config(self):
        config = super().get_config()
        config.update(max_units=self.max_units, use_bias=self.use_bias)
        return config
