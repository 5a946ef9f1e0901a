"""Leading slices of weights, with as few graph ops as the sizes allow.

Elastic layers use the first `n` entries of a weight along some axes. When
the sizes are Python ints equal to the weight's (the full network, the
static teacher graph) no op is added; otherwise one `tf.slice`.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator, Sequence

from ofa_tf._backend import tf


def channels_of(tensor: tf.Tensor):
    """The last dimension: a Python int when known at trace time, else an int32 scalar tensor."""
    static = tensor.shape[-1]
    if static is not None:
        return int(static)
    return tf.unstack(tf.shape(tensor), num=tensor.shape.rank)[-1]  # two ops, no constants


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
    size = tuple([-1 if s is None else s for s in full] + [-1] * (len(shape) - len(full)))
    if all(isinstance(s, int) for s in size):
        return tf.slice(value, [0] * len(shape), size)
    sliced = tf.slice(value, _graph_cached(("zeros", len(shape)), lambda: tf.zeros([len(shape)], tf.int32)),
                      _graph_cached(("size",) + tuple(_key(s) for s in size), lambda: _stack(size)))
    sliced.set_shape([(dim if s == -1 else s) if isinstance(s, int) else None for dim, s in zip(shape, size)])
    return sliced


def _key(size):
    return size if isinstance(size, int) else size.ref()


def _stack(size: tuple) -> tf.Tensor:
    return tf.stack([s if isinstance(s, int) else tf.cast(s, tf.int32) for s in size])


_SHARED = threading.local()


@contextlib.contextmanager
def shared_slice_vectors() -> Iterator[None]:
    """Within this context (a supernet's forward), `leading` makes each begin and size
    vector once per graph and thread, and every slice that needs it reuses it (e.g. the
    four statistics of a BN layer share one): fewer ops to trace, optimize and start.
    The vectors are forgotten when the outermost context exits."""
    outermost = getattr(_SHARED, "vectors", None) is None
    if outermost:
        _SHARED.vectors = {}
    try:
        yield
    finally:
        if outermost:
            _SHARED.vectors = None


def _graph_cached(key: tuple, make) -> tf.Tensor:
    vectors = getattr(_SHARED, "vectors", None)
    if vectors is None or tf.executing_eagerly():
        return make()
    key = (id(tf.compat.v1.get_default_graph()),) + key  # the graph lives as long as the context
    if key not in vectors:
        vectors[key] = make()
    return vectors[key]
