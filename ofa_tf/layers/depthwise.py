"""Elastic depthwise convolution with OFA's kernel transformation matrices."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ofa_tf._backend import keras, tf
from ofa_tf.layers.conv import symmetric_padding
from ofa_tf.layers.initializers import he_fout


def transform_matrix_name(source_size: int, target_size: int) -> str:
    """Official parameter name of the matrix mapping a `source` to a `target` kernel."""
    return f"{source_size}to{target_size}_matrix"


def centre_crop_bounds(kernel_size: int, sub_kernel_size: int) -> tuple[int, int]:
    """Start/end of the centred `sub_kernel_size` window (`sub_filter_start_end`)."""
    centre, deviation = kernel_size // 2, sub_kernel_size // 2
    return centre - deviation, centre + deviation + 1


class ElasticDepthwiseConv2D(keras.layers.Layer):
    """Depthwise convolution with elastic kernel size and channel count.

    One kernel of the largest size is stored. A smaller kernel is its centre
    crop, transformed by a per-layer matrix (`7to5_matrix` 25x25, `5to3_matrix`
    9x9, identity at init), chained from the largest size down, exactly as
    `DynamicSeparableConv2d` with `KERNEL_TRANSFORM_MODE = 1`.

    The active kernel is chosen with `tf.switch_case` on an int32 index, so
    one traced graph serves every kernel size and only the chosen branch runs.

    Args:
        kernel_size_list: the elastic kernel sizes (odd), e.g. (3, 5, 7).
        strides: convolution stride.
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, kernel_size_list: Sequence[int] = (3, 5, 7), strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size_list = tuple(sorted(set(int(k) for k in kernel_size_list)))
        self.strides = int(strides)

    @property
    def max_kernel_size(self) -> int:
        return self.kernel_size_list[-1]

    def build(self, input_shape):
        self.max_channels = int(input_shape[-1])
        k = self.max_kernel_size
        self.kernel = self.add_weight(
            name="kernel", shape=(k, k, self.max_channels, 1), initializer=he_fout(k, self.max_channels)
        )
        self.transform_matrices = {}
        for small, big in zip(self.kernel_size_list[:-1], self.kernel_size_list[1:]):
            name = transform_matrix_name(big, small)
            self.transform_matrices[name] = self.add_weight(
                name=name, shape=(small * small, small * small), initializer="identity"
            )

    def active_kernel(self, channels, kernel_size: int) -> tf.Tensor:
        """The (k, k, channels, 1) kernel used for `kernel_size`."""
        kernel = tf.convert_to_tensor(self.kernel)[:, :, :channels, :]
        sizes = self.kernel_size_list
        for big, small in zip(reversed(sizes[1:]), reversed(sizes[:-1])):
            if big <= kernel_size:
                break
            start, end = centre_crop_bounds(big, small)
            crop = tf.reshape(kernel[start:end, start:end], (small * small, -1))
            matrix = tf.convert_to_tensor(self.transform_matrices[transform_matrix_name(big, small)])
            kernel = tf.reshape(tf.matmul(matrix, crop), (small, small, -1, 1))
        return kernel

    def _convolve(self, inputs, kernel_size: int):
        kernel = self.active_kernel(tf.shape(inputs)[-1], kernel_size)
        return tf.nn.depthwise_conv2d(
            inputs, kernel, (1, self.strides, self.strides, 1), symmetric_padding(kernel_size)
        )

    def call(self, inputs, kernel_index=None):
        """Convolves with the kernel `kernel_size_list[kernel_index]` (the largest when None)."""
        if kernel_index is None:
            return self._convolve(inputs, self.max_kernel_size)
        if isinstance(kernel_index, (int, np.integer)):
            return self._convolve(inputs, self.kernel_size_list[int(kernel_index)])
        if len(self.kernel_size_list) == 1:
            return self._convolve(inputs, self.max_kernel_size)
        branches = [lambda k=k: self._convolve(inputs, k) for k in self.kernel_size_list]
        return tf.switch_case(kernel_index, branches)

    def sliced_weights(self, channels: int, kernel_size: int) -> list[np.ndarray]:
        """Weights of the equivalent stock `DepthwiseConv2D`."""
        return [self.active_kernel(channels, kernel_size).numpy()]

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size_list=list(self.kernel_size_list), strides=self.strides)
        return config
