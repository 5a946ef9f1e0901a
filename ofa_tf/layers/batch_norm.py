"""Elastic batch normalization: the active channels use slices of the max statistics."""

from __future__ import annotations

import numpy as np

from ofa_tf._backend import keras, tf


class ElasticBatchNormalization(keras.layers.Layer):
    """Batch normalization over the leading `C` channels of max-width statistics.

    Training mode normalizes with the batch statistics and updates the running
    statistics of the active channels only (`running = momentum * running +
    (1 - momentum) * batch`, unbiased batch variance, as PyTorch's BN used by
    the official `DynamicBatchNorm2d`).

    For BN recalibration (`ofa_tf.training.bn_recalibration`) the update factor
    can be an external variable and the variance biased, which makes the
    running statistics the average of per-batch statistics exactly as the
    official `set_running_statistics`.

    Args:
        momentum: Keras-style momentum of the running statistics (0.9 equals
            PyTorch momentum 0.1, the OFA default).
        epsilon: added to the variance (1e-5 as the reference).
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, momentum: float = 0.9, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        # Set by BN recalibration; not part of the config.
        self.update_factor = None
        self.unbiased_running_variance = True

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.max_channels = channels
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")
        # Running statistics are per replica under tf.distribute (updated without a
        # cross-replica sync, which control flow around the block cannot hold) and
        # averaged over replicas when read outside `strategy.run` (saving, evaluation).
        running = dict(shape=(channels,), trainable=False, autocast=False, synchronization="on_read", aggregation="mean")
        self.moving_mean = keras.Variable(initializer="zeros", name="moving_mean", **running)
        self.moving_variance = keras.Variable(initializer="ones", name="moving_variance", **running)

    def _update_running(self, variable, batch_value, channels):
        factor = (1.0 - self.momentum) if self.update_factor is None else tf.convert_to_tensor(self.update_factor)
        running = tf.convert_to_tensor(variable)
        updated = running[:channels] * (1.0 - factor) + batch_value * factor
        variable.assign(tf.concat([updated, running[channels:]], axis=0))

    def call(self, inputs, training=None):
        channels = tf.shape(inputs)[-1]
        compute_dtype = inputs.dtype
        x = tf.cast(inputs, tf.float32)
        gamma = tf.cast(tf.convert_to_tensor(self.gamma), tf.float32)[:channels]
        beta = tf.cast(tf.convert_to_tensor(self.beta), tf.float32)[:channels]
        if training:
            mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
            running_variance = variance
            if self.unbiased_running_variance:
                count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
                running_variance = variance * count / tf.maximum(count - 1.0, 1.0)
            self._update_running(self.moving_mean, mean, channels)
            self._update_running(self.moving_variance, running_variance, channels)
        else:
            mean = tf.convert_to_tensor(self.moving_mean)[:channels]
            variance = tf.convert_to_tensor(self.moving_variance)[:channels]
        outputs = tf.nn.batch_normalization(x, mean, variance, beta, gamma, self.epsilon)
        return tf.cast(outputs, compute_dtype)

    def sliced_weights(self, channels: int) -> list[np.ndarray]:
        """[gamma, beta, moving_mean, moving_variance] of a stock `BatchNormalization`."""
        return [w.numpy()[:channels] for w in (self.gamma, self.beta, self.moving_mean, self.moving_variance)]

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, epsilon=self.epsilon)
        return config
