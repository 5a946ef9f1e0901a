"""Elastic depthwise convolution with OFA's kernel transformation matrices."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ofa_tf._backend import keras, tf
from ofa_tf.layers.conv import check_padding, symmetric_padding
from ofa_tf.layers.slicing import channels_of, leading
from ofa_tf.layers.initializers import he_fout


def transform_matrix_name(source_size: int, target_size: int) -> str:
    """Official parameter name of the matrix mapping a `source` to a `target` kernel."""
    return f"{source_size}to{target_size}_matrix"


def centre_crop_bounds(kernel_size: int, sub_kernel_size: int) -> tuple[int, int]:
    """Start/end of the centred `sub_kernel_size` window (`sub_filter_start_end`)."""
    centre, deviation = kernel_size // 2, sub_kernel_size // 2
    return centre - deviation, centre + deviation + 1


def centre_crop_taps(kernel_size: int, sub_kernel_size: int) -> list[int]:
    """Row-major indices, in a flattened `kernel_size`² kernel, of its centred `sub_kernel_size`² window."""
    start, end = centre_crop_bounds(kernel_size, sub_kernel_size)
    return [row * kernel_size + column for row in range(start, end) for column in range(start, end)]


def depthwise_conv2d(inputs: tf.Tensor, kernel: tf.Tensor, strides: Sequence[int], padding) -> tf.Tensor:
    """`tf.nn.depthwise_conv2d` whose kernel gradient is exactly zero for an empty batch.

    A block that depth skips runs on zero images (see
    `ofa_tf.layers.skipping.residual_or_skip`). On some CPUs (seen on an AVX-only AMD EPYC)
    TF's `DepthwiseConv2dNativeBackpropFilter` leaves its output uninitialized
    for an empty batch, so the skipped block's kernel got NaN or garbage
    gradients; this gradient replaces them with zeros.
    """

    @tf.custom_gradient
    def convolve(x, k):
        def gradient(dy):
            dx = tf.nn.depthwise_conv2d_backprop_input(tf.shape(x), k, dy, strides, padding)
            dk = tf.nn.depthwise_conv2d_backprop_filter(x, tf.shape(k), dy, strides, padding)
            return dx, tf.where(tf.shape(x)[0] > 0, dk, tf.zeros_like(dk))

        return tf.nn.depthwise_conv2d(x, k, strides, padding), gradient

    return convolve(inputs, kernel)


class ElasticDepthwiseConv2D(keras.layers.Layer):
    """Depthwise convolution with elastic kernel size and channel count.

    One kernel of the largest size is stored. A smaller kernel is its centre
    crop, transformed by a per-layer matrix (`7to5_matrix` 25x25, `5to3_matrix`
    9x9, identity at init), chained from the largest size down, exactly as
    `DynamicSeparableConv2d` with `KERNEL_TRANSFORM_MODE = 1`.

    The active kernel may be chosen by an int32 tensor: every size's kernel is
    computed (small matmuls), the chosen one is gathered and sliced to its
    size, and the convolution runs at that size. No control flow is involved,
    so one traced graph serves every kernel size at the cost of that size.

    Args:
        kernel_size_list: the elastic kernel sizes (odd), e.g. (3, 5, 7).
        strides: convolution stride.
        padding: "symmetric" (`size // 2` each side, the official OFA's) or "same" (TF's).
        **kwargs: base `Layer` arguments.
    """

    def __init__(self, kernel_size_list: Sequence[int] = (3, 5, 7), strides: int = 1, padding: str = "symmetric", **kwargs):
        super().__init__(**kwargs)
        self.kernel_size_list = tuple(sorted(set(int(k) for k in kernel_size_list)))
        self.strides = int(strides)
        self.padding = check_padding(padding)

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
        return tf.reshape(self._flat_kernels(channels, kernel_size)[0], (kernel_size, kernel_size, -1, 1))

    def _flat_kernels(self, channels, smallest: int | None = None) -> list[tf.Tensor]:
        """The kernels of every size down to `smallest` (default: all), smallest first,
        each flattened to (k * k, channels) and the transformed centre of the next larger one."""
        largest = self.max_kernel_size
        kernel = tf.reshape(leading(self.kernel, [None, None, channels]), (largest * largest, -1))
        sizes = [k for k in self.kernel_size_list if smallest is None or k >= smallest]
        kernels = [kernel]
        for big, small in zip(reversed(sizes[1:]), reversed(sizes[:-1])):
            crop = tf.gather(kernel, centre_crop_taps(big, small))
            matrix = tf.convert_to_tensor(self.transform_matrices[transform_matrix_name(big, small)])
            kernel = tf.matmul(matrix, crop)
            kernels.insert(0, kernel)
        return kernels

    def matrices_in_use(self, kernel_index: tf.Tensor) -> list[tuple[Any, tf.Tensor]]:
        """(matrix, in use) pairs for int32 kernel indices (any shape): a matrix is used
        by every kernel size it helps to make, i.e. by indices up to its target size's."""
        return [
            (self.transform_matrices[transform_matrix_name(big, small)], kernel_index <= i)
            for i, (small, big) in enumerate(zip(self.kernel_size_list[:-1], self.kernel_size_list[1:]))
        ]

    def _selected_kernel(self, channels, kernel_index) -> tuple[tf.Tensor, tf.Tensor]:
        """(kernel, size) for an int32 index, without control flow: every size is
        computed (a few small matmuls), the flattened kernels are concatenated and
        the chosen one's rows are sliced out, so the convolution runs at the chosen
        size (few graph ops, which keeps tracing and the first call short)."""
        sizes = tf.constant(self.kernel_size_list, tf.int32)
        starts = tf.constant(np.cumsum([0] + [k * k for k in self.kernel_size_list[:-1]]), tf.int32)
        size = tf.gather(sizes, kernel_index)
        taps = tf.slice(tf.concat(self._flat_kernels(channels), 0), tf.stack([tf.gather(starts, kernel_index), 0]),
                        tf.stack([size * size, -1]))
        return tf.reshape(taps, tf.stack([size, size, -1, 1])), size

    def _convolve(self, inputs, kernel, size):
        """Depthwise convolution with symmetric `size // 2` padding (`size` an int or int32 tensor),
        or TF's 'SAME'."""
        if self.strides == 1 or self.padding == "same":  # for odd kernels at stride 1, 'SAME' is the symmetric padding
            return depthwise_conv2d(inputs, kernel, (1, self.strides, self.strides, 1), "SAME")
        pad = size // 2
        if isinstance(size, int):
            return depthwise_conv2d(inputs, kernel, (1, self.strides, self.strides, 1), symmetric_padding(size))
        padded = tf.pad(inputs, tf.stack([[0, 0], [pad, pad], [pad, pad], [0, 0]]))
        return depthwise_conv2d(padded, kernel, (1, self.strides, self.strides, 1), "VALID")

    def call(self, inputs, kernel_index=None):
        """Convolves with the kernel `kernel_size_list[kernel_index]` (the largest when None).

        `kernel_index` may be a Python int or an int32 scalar tensor.
        """
        channels = channels_of(inputs)
        if kernel_index is None or len(self.kernel_size_list) == 1:
            kernel_index = len(self.kernel_size_list) - 1
        if isinstance(kernel_index, (int, np.integer)):
            size = self.kernel_size_list[int(kernel_index)]
            return self._convolve(inputs, self.active_kernel(channels, size), size)
        kernel, size = self._selected_kernel(channels, kernel_index)
        return self._convolve(inputs, kernel, size)

    def sliced_weights(self, channels: int, kernel_size: int) -> list[np.ndarray]:
        """Weights of the equivalent stock `DepthwiseConv2D`."""
        return [self.active_kernel(channels, kernel_size).numpy()]

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size_list=list(self.kernel_size_list), strides=self.strides, padding=self.padding)
        return config
