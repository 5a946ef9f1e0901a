"""Elastic batch normalization: the active channels use slices of the max statistics."""

from __future__ import annotations

import numpy as np

from ofa_tf._backend import keras, tf
from ofa_tf.layers.slicing import channels_of, leading


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
        # Set by BN recalibration (the weight of the current batch in the running
        # average of biased batch statistics); not part of the config.
        self.update_factor = None

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

    def _assign_leading(self, variable, value, channels) -> None:
        """variable[:channels] = value, one op whatever the width."""
        if isinstance(channels, int) and channels == self.max_channels:
            variable.assign(value)
            return
        tf.raw_ops.ResourceStridedSliceAssign(
            ref=variable.value.handle, begin=[0], end=tf.reshape(channels, [1]), strides=[1], value=value
        )

    def call(self, inputs, training=None):
        channels = channels_of(inputs)
        gamma = tf.cast(leading(self.gamma, [channels]), tf.float32)
        beta = tf.cast(leading(self.beta, [channels]), tf.float32)
        running_mean = leading(self.moving_mean, [channels])
        running_variance = leading(self.moving_variance, [channels])
        if not training:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, running_mean, running_variance, epsilon=self.epsilon, is_training=False
            )
            return outputs
        if self.update_factor is None:
            # One fused op normalizes with the batch statistics and returns the running
            # ones updated with the unbiased batch variance (n / (n - 1)), as PyTorch.
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, running_mean, running_variance, epsilon=self.epsilon, is_training=True,
                exponential_avg_factor=1.0 - self.momentum,
            )
        else:  # recalibration: the running average of biased batch statistics
            outputs, batch_mean, unbiased = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, is_training=True
            )
            count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), tf.float32)
            factor = tf.convert_to_tensor(self.update_factor)
            mean = running_mean + factor * (batch_mean - running_mean)
            variance = running_variance + factor * (unbiased * tf.maximum(count - 1.0, 1.0) / count - running_variance)
        if inputs.shape[0] is None:  # an empty batch (a skipped block) has no statistics: keep the running ones
            has_images = tf.shape(inputs)[0] > 0
            mean = tf.where(has_images, mean, running_mean)
            variance = tf.where(has_images, variance, running_variance)
        self._assign_leading(self.moving_mean, mean, channels)
        self._assign_leading(self.moving_variance, variance, channels)
        return outputs

    def sliced_weights(self, channels: int) -> list[np.ndarray]:
        """[gamma, beta, moving_mean, moving_variance] of a stock `BatchNormalization`."""
        return [w.numpy()[:channels] for w in (self.gamma, self.beta, self.moving_mean, self.moving_variance)]

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, epsilon=self.epsilon)
        return config
