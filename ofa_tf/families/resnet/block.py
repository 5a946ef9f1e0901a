"""Elastic ResNet bottleneck block: elastic middle and output widths (OFA-ResNet50-D)."""

from __future__ import annotations

import numpy as np

from ofa_tf._backend import keras, tf
from ofa_tf.layers.batch_norm import ElasticBatchNormalization
from ofa_tf.layers.conv import ElasticConv2D
from ofa_tf.families.mbconv.block import importance_order


def downsample_pool(x: tf.Tensor, stride: int) -> tf.Tensor:
    """`AvgPool2d(stride, stride, ceil_mode=True)`: 'SAME' averages a partial last window over its inputs too."""
    return x if stride == 1 else tf.nn.avg_pool2d(x, stride, stride, "SAME")


@keras.saving.register_keras_serializable(package="ofa_tf")
class ElasticBottleneckBlock(keras.layers.Layer):
    """1x1 conv, 3x3 conv (with the stride), 1x1 conv, each with BN, ReLU after the
    first two and after the shortcut sum; the shortcut is the identity or an average
    pooling + 1x1 conv + BN. Middle and output widths are leading slices of the max
    weights, chosen per call (Python ints or int32 scalar tensors).

    Args:
        in_channels: max input channels.
        out_channels: max output channels.
        max_mid_channels: max middle channels.
        strides: stride of the 3x3 conv and of the shortcut's pooling.
        has_downsample: whether the shortcut is pooling + conv + BN (else identity).
        bn_momentum: Keras-style BN momentum.
        bn_epsilon: BN epsilon.
        **kwargs: base `Layer` arguments (name).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        max_mid_channels: int,
        strides: int = 1,
        has_downsample: bool = False,
        bn_momentum: float = 0.9,
        bn_epsilon: float = 1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.max_mid_channels = int(max_mid_channels)
        self.strides = int(strides)
        self.has_downsample = bool(has_downsample)
        self.bn_momentum = bn_momentum
        self.bn_epsilon = bn_epsilon
        bn = dict(momentum=bn_momentum, epsilon=bn_epsilon)
        self.conv1 = ElasticConv2D(self.max_mid_channels, 1, name="conv1")
        self.bn1 = ElasticBatchNormalization(**bn, name="bn1")
        self.conv2 = ElasticConv2D(self.max_mid_channels, 3, strides=self.strides, name="conv2")
        self.bn2 = ElasticBatchNormalization(**bn, name="bn2")
        self.conv3 = ElasticConv2D(self.out_channels, 1, name="conv3")
        self.bn3 = ElasticBatchNormalization(**bn, name="bn3")
        if self.has_downsample:
            self.downsample_conv = ElasticConv2D(self.out_channels, 1, name="downsample_conv")
            self.downsample_bn = ElasticBatchNormalization(**bn, name="downsample_bn")

    def build(self, input_shape=None):
        self.conv1.build((None, None, None, self.in_channels))
        self.bn1.build((None, None, None, self.max_mid_channels))
        self.conv2.build((None, None, None, self.max_mid_channels))
        self.bn2.build((None, None, None, self.max_mid_channels))
        self.conv3.build((None, None, None, self.max_mid_channels))
        self.bn3.build((None, None, None, self.out_channels))
        if self.has_downsample:
            self.downsample_conv.build((None, None, None, self.in_channels))
            self.downsample_bn.build((None, None, None, self.out_channels))

    def branch(self, inputs, mid_channels, out_channels, training=None):
        """The three convs, before the shortcut sum and the last ReLU."""
        x = tf.nn.relu(self.bn1(self.conv1(inputs, active_filters=mid_channels), training=training))
        x = tf.nn.relu(self.bn2(self.conv2(x, active_filters=mid_channels), training=training))
        return self.bn3(self.conv3(x, active_filters=out_channels), training=training)

    def shortcut(self, inputs, out_channels, training=None):
        if not self.has_downsample:
            return inputs
        x = self.downsample_conv(downsample_pool(inputs, self.strides), active_filters=out_channels)
        return self.downsample_bn(x, training=training)

    def call(self, inputs, mid_channels=None, out_channels=None, training=None):
        mid_channels = self.max_mid_channels if mid_channels is None else mid_channels
        out_channels = self.out_channels if out_channels is None else out_channels
        branch = self.branch(inputs, mid_channels, out_channels, training=training)
        return tf.nn.relu(branch + self.shortcut(inputs, out_channels, training=training))

    def reorganize_middle_channels(self, expand_ratio_stage: int = 0, mid_widths: tuple[int, ...] = ()) -> None:
        """Sorts middle channels by importance, as upstream `DynamicResNetBottleneckBlock.re_organize_middle_weights`:
        conv2's outputs by the L1 norm of conv3's weights on them, then conv1's outputs by
        the L1 norm of conv2's weights on them.

        Args:
            expand_ratio_stage: above 0, channels beyond the first `expand_ratio_stage + 1`
                of `mid_widths` (largest first) get large negative offsets, so channels
                only move inside their nested segment.
            mid_widths: the middle widths of the expand ratios at the largest output width.
        """
        order = importance_order(np.abs(self.conv3.kernel.numpy()).sum(axis=(0, 1, 3)), expand_ratio_stage, mid_widths)
        self.conv3.kernel.assign(self.conv3.kernel.numpy()[:, :, order, :])
        _permute_bn(self.bn2, order)
        self.conv2.kernel.assign(self.conv2.kernel.numpy()[:, :, :, order])
        order = importance_order(np.abs(self.conv2.kernel.numpy()).sum(axis=(0, 1, 3)), expand_ratio_stage, mid_widths)
        self.conv2.kernel.assign(self.conv2.kernel.numpy()[:, :, order, :])
        _permute_bn(self.bn1, order)
        self.conv1.kernel.assign(self.conv1.kernel.numpy()[:, :, :, order])

    def get_config(self):
        config = super().get_config()
        config.update(
            in_channels=self.in_channels, out_channels=self.out_channels, max_mid_channels=self.max_mid_channels,
            strides=self.strides, has_downsample=self.has_downsample, bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
        )
        return config


def _permute_bn(bn: ElasticBatchNormalization, order: np.ndarray) -> None:
    for variable in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance):
        variable.assign(variable.numpy()[order])
