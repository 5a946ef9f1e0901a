"""Elastic convolution: input and output channels are leading slices of one kernel."""

from __future__ import annotations

import numpy as np

from ofa_tf._backend import keras, tf
from ofa_tf.errors import ConfigError
from ofa_tf.layers.initializers import he_fout
from ofa_tf.layers.skipping import batch_may_be_empty
from ofa_tf.layers.slicing import channels_of, leading


PADDINGS = ("symmetric", "same")


def symmetric_padding(kernel_size: int) -> list[list[int]] | str:
    """Explicit NHWC padding of `k // 2` on each side (PyTorch style, not TF 'SAME')."""
    pad = kernel_size // 2
    return "VALID" if pad == 0 else [[0, 0], [pad, pad], [pad, pad], [0, 0]]


def check_padding(padding: str) -> str:
    """`padding` if it is one of `PADDINGS`: "symmetric" (`k // 2` each side, the official OFA's)
    or "same" (TF's, one pixel more after than before at stride 2 on even sizes: Keras models')."""
    if padding not in PADDINGS:
        raise ConfigError(f"padding={padding!r}: expected one of {PADDINGS}")
    return padding


class ElasticConv2D(keras.layers.Layer):
    """A convolution whose active width is a slice of the max kernel.

    The input channel count is read from the input; the output channel count
    is `active_filters` (a Python int or an int32 scalar tensor), so a small
    subnet convolves with a small kernel instead of masking the big one.

    Args:
        max_filters: output channels of the full kernel.
        kernel_size: square kernel size (odd); padding is `kernel_size // 2`.
        strides: convolution stride.
        use_bias: whether to add a bias.
        padding: "symmetric" (`kernel_size // 2` each side) or "same" (TF's).
        **kwargs: base `Layer` arguments (name, dtype).
    """

    def __init__(
        self, max_filters: int, kernel_size: int = 1, strides: int = 1, use_bias: bool = False, padding: str = "symmetric",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.max_filters = int(max_filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.use_bias = bool(use_bias)
        self.padding = check_padding(padding)

    def build(self, input_shape):
        self.max_in_channels = int(input_shape[-1])
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, self.kernel_size, self.max_in_channels, self.max_filters),
            initializer=he_fout(self.kernel_size, self.max_filters),
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.max_filters,), initializer="zeros") if self.use_bias else None
        )

    def call(self, inputs, active_filters=None):
        out_channels = self.max_filters if active_filters is None else active_filters
        kernel = leading(self.kernel, [None, None, channels_of(inputs), out_channels])
        padding = "SAME" if self.padding == "same" else symmetric_padding(self.kernel_size)
        outputs = tf.nn.conv2d(inputs, kernel, self.strides, padding)
        if batch_may_be_empty():
            outputs = self._with_output_shape(outputs, inputs, out_channels)
        if self.bias is not None:
            outputs = outputs + leading(self.bias, [out_channels])
        return outputs

    def _with_output_shape(self, outputs, inputs, out_channels):
        """`outputs` reshaped to the convolution's output shape, which changes nothing
        unless the batch is empty: TF 2.21's oneDNN `Conv2D` (on by default on CPUs
        with AVX-512) returns an empty input unchanged, with its channels and size,
        and the next layer's slices then fail."""
        batch, height, width, _ = tf.unstack(tf.shape(inputs), num=4)
        if self.strides > 1:  # symmetric padding of an odd kernel, or 'SAME': ceil(size / stride)
            height, width = (height - 1) // self.strides + 1, (width - 1) // self.strides + 1
        reshaped = tf.reshape(outputs, tf.stack([batch, height, width, out_channels]))
        if not tf.executing_eagerly():
            reshaped.set_shape(outputs.shape)
        return reshaped

    def sliced_weights(self, in_channels: int, out_channels: int) -> list[np.ndarray]:
        """Weights of the equivalent stock `Conv2D` for the given widths."""
        weights = [self.kernel.numpy()[:, :, :in_channels, :out_channels]]
        if self.bias is not None:
            weights.append(self.bias.numpy()[:out_channels])
        return weights

    def get_config(self):
        config = super().get_config()
        config.update(
            max_filters=self.max_filters, kernel_size=self.kernel_size, strides=self.strides, use_bias=self.use_bias,
            padding=self.padding,
        )
        return config
