"""Elastic MBConv block (OFA `DynamicMBConvLayer` with its residual)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ofa_tf._backend import keras, tf
from ofa_tf.layers import activations
from ofa_tf.layers.batch_norm import ElasticBatchNormalization
from ofa_tf.layers.conv import ElasticConv2D
from ofa_tf.layers.depthwise import ElasticDepthwiseConv2D
from ofa_tf.layers.se import ElasticSqueezeExcite


class ElasticMBConvBlock(keras.layers.Layer):
    """Inverted bottleneck: expand 1x1 -> depthwise kxk -> [SE] -> project 1x1.

    The kernel size and the middle width are elastic; the middle width for an
    expand index `i` is `mid_channels[i]` (computed by the search space as
    `make_divisible(round(in_channels * e), 8)`). A block with a single middle
    width equal to its input has no expand conv (the fixed first block).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size_list: elastic depthwise kernel sizes.
        mid_channels: middle width for each expand choice.
        strides: depthwise stride.
        activation: OFA activation name, "relu" or "h_swish".
        use_se: whether to apply squeeze-and-excitation after the depthwise act.
        bn_momentum: Keras-style BN momentum.
        bn_epsilon: BN epsilon.
        padding: the depthwise padding, "symmetric" (the official OFA's) or "same" (TF's, Keras models').
        se_options: `ElasticSqueezeExcite` arguments (hidden width, activations) other than OFA's.
        has_expand: whether it has an expand conv (None: unless its one middle width is its input's).
        **kwargs: base `Layer` arguments.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size_list: Sequence[int],
        mid_channels: Sequence[int],
        strides: int = 1,
        activation: str = "relu",
        use_se: bool = False,
        bn_momentum: float = 0.9,
        bn_epsilon: float = 1e-5,
        padding: str = "symmetric",
        se_options: dict | None = None,
        has_expand: bool | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size_list = tuple(int(k) for k in kernel_size_list)
        self.mid_channels = tuple(int(m) for m in mid_channels)
        self.strides = int(strides)
        self.activation = activation
        self.use_se = bool(use_se)
        self.bn_momentum = bn_momentum
        self.bn_epsilon = bn_epsilon
        self.padding = padding
        self.se_options = dict(se_options or {})
        self.has_expand = self.mid_channels != (self.in_channels,) if has_expand is None else bool(has_expand)
        self.has_residual = self.strides == 1 and self.in_channels == self.out_channels
        self._act = activations.get(activation)
        max_mid = max(self.mid_channels)
        bn = dict(momentum=bn_momentum, epsilon=bn_epsilon)
        if self.has_expand:
            self.expand_conv = ElasticConv2D(max_mid, 1, name="expand_conv")
            self.expand_bn = ElasticBatchNormalization(**bn, name="expand_bn")
        self.depthwise = ElasticDepthwiseConv2D(self.kernel_size_list, strides, padding=padding, name="depthwise")
        self.depthwise_bn = ElasticBatchNormalization(**bn, name="depthwise_bn")
        if self.use_se:
            self.se = ElasticSqueezeExcite(**self.se_options, name="se")
        self.project_conv = ElasticConv2D(self.out_channels, 1, name="project_conv")
        self.project_bn = ElasticBatchNormalization(**bn, name="project_bn")
        self._mid_table = tf.constant(self.mid_channels, tf.int32)

    def build(self, input_shape=None):
        max_mid = max(self.mid_channels)
        if self.has_expand:
            self.expand_conv.build((None, None, None, self.in_channels))
            self.expand_bn.build((None, None, None, max_mid))
        self.depthwise.build((None, None, None, max_mid))
        self.depthwise_bn.build((None, None, None, max_mid))
        if self.use_se:
            self.se.build((None, None, None, max_mid))
        self.project_conv.build((None, None, None, max_mid))
        self.project_bn.build((None, None, None, self.out_channels))

    def active_mid_channels(self, expand_index):
        if isinstance(expand_index, (int, np.integer)):
            return self.mid_channels[int(expand_index)]
        return tf.gather(self._mid_table, expand_index)

    def call(self, inputs, kernel_index=None, expand_index=None, training=None, residual=True):
        """Runs the block for `kernel_size_list[kernel_index]` and `mid_channels[expand_index]`.

        Both indices may be Python ints or int32 scalar tensors; None means the largest.
        `residual=False` leaves out the shortcut (the caller adds it).
        """
        if expand_index is None:
            expand_index = int(np.argmax(self.mid_channels))
        x = inputs
        if self.has_expand:
            x = self.expand_conv(x, active_filters=self.active_mid_channels(expand_index))
            x = self._act(self.expand_bn(x, training=training))
        x = self._act(self.depthwise_bn(self.depthwise(x, kernel_index=kernel_index), training=training))
        if self.use_se:
            x = self.se(x)
        x = self.project_bn(self.project_conv(x), training=training)
        return x + inputs if self.has_residual and residual else x

    def reorganize_middle_channels(self, expand_ratio_stage: int = 0) -> None:
        """Sorts middle channels by L1 importance, as upstream `re_organize_middle_weights`.

        Importance of a middle channel is the L1 norm of its projection
        weights. With `expand_ratio_stage > 0`, channels beyond the widths of
        the first `expand_ratio_stage + 1` ratios get large negative offsets, so
        channels only move within their nested segment. The SE hidden channels
        are then sorted by the L1 norm of their expand weights. A block without
        expand conv keeps its order: its middle channels are its input's.
        """
        if not self.has_expand:
            return
        importance = np.abs(self.project_conv.kernel.numpy()).sum(axis=(0, 1, 3))
        order = importance_order(importance, expand_ratio_stage, self.mid_channels)
        _permute(self.project_conv.kernel, order, axis=2)
        _permute_bn(self.depthwise_bn, order)
        _permute(self.depthwise.kernel, order, axis=2)
        if self.use_se:
            _permute(self.se.expand_kernel, order, axis=1)
            _permute(self.se.expand_bias, order, axis=0)
            _permute(self.se.reduce_kernel, order, axis=0)
            se_order = np.argsort(-np.abs(self.se.expand_kernel.numpy()).sum(axis=1), kind="stable")
            _permute(self.se.expand_kernel, se_order, axis=0)
            _permute(self.se.reduce_kernel, se_order, axis=1)
            _permute(self.se.reduce_bias, se_order, axis=0)
        if self.has_expand:
            _permute_bn(self.expand_bn, order)
            _permute(self.expand_conv.kernel, order, axis=3)

    def get_config(self):
        config = super().get_config()
        config.update(
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            kernel_size_list=list(self.kernel_size_list),
            mid_channels=list(self.mid_channels),
            strides=self.strides,
            activation=self.activation,
            use_se=self.use_se,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            padding=self.padding,
            se_options=self.se_options,
            has_expand=self.has_expand,
        )
        return config


def _permute(variable, order: np.ndarray, axis: int) -> None:
    variable.assign(np.take(variable.numpy(), order, axis=axis))


def _permute_bn(bn: ElasticBatchNormalization, order: np.ndarray) -> None:
    for variable in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance):
        _permute(variable, order, axis=0)


def importance_order(importance: np.ndarray, expand_ratio_stage: int, widths) -> np.ndarray:
    """Channel order by decreasing importance, as upstream's `re_organize_middle_weights`: above
    stage 0, channels beyond the first `expand_ratio_stage + 1` of `widths` (largest first) get
    offsets of -1e5 per segment, so channels only move inside their nested segment."""
    importance = np.asarray(importance, dtype=np.float32).copy()
    if expand_ratio_stage > 0:
        widths = sorted(widths, reverse=True)
        right, base = len(importance), -len(widths) * 1e5
        for i in range(expand_ratio_stage + 1):
            importance[widths[i] : right] += base
            base += 1e5
            right = widths[i]
    return np.argsort(-importance, kind="stable")
