"""Leading slices of weights, with as few graph ops as the sizes allow.

Elastic layers use the first `n` entries of a weight along some axes. When
the sizes are Python ints equal to the weight's (the full network, the
static teacher graph) no op is added; otherwise one `tf.slice`.
"""

from __future__ import annotations

from typing import Sequence

from ofa_tf._backend import tf


def channels_of(tensor: tf.Tensor):
    """The last dimension: a Python int when known at trace time, else an int32 scalar tensor."""
    static = tensor.shape[-1]
    return int(static) if static is not None else tf.shape(tensor)[-1]


def leading(weight, sizes: Sequence) -> tf.Tensor:
    """`weight[:sizes[0], :sizes[1], ...]`; a `None` size keeps the whole axis.

    Args:
        weight: a variable or tensor.
        sizes: one entry per leading axis to cut (fewer than the rank is fine):
            None, a Python int or an int32 scalar tensor.
    """
    value = tf.convert_to_tensor(weight)
    shape = value.shape
    full = [None if size is None or (isinstance(size, int) and size == shape[i]) else size for i, size in enumerate(sizes)]
    if all(size is None for size in full):
        return value
    size = [-1 if s is None else s for s in full] + [-1] * (len(shape) - len(full))
    if all(isinstance(s, int) for s in size):
        return tf.slice(value, [0] * len(shape), size)
    sliced = tf.slice(value, [0] * len(shape), tf.stack([tf.cast(s, tf.int32) for s in size]))
    sliced.set_shape([(dim if s == -1 else s) if isinstance(s, int) else None for dim, s in zip(shape, size)])
    return sliced
