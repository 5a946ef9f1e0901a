"""What every supernet class shares: arch entries as scalars, depth skipping without
control flow, and upstream's active-subnet methods on top of `space` and
`set_active_config`."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Callable, Iterator

import numpy as np

from ofa_tf._backend import tf


def per_entry(arch: dict) -> dict[str, list]:
    """Each arch entry as a list of scalars: one `Unpack` op per tensor instead of a
    strided slice (and three constants) per block, which traces and starts faster."""
    return {key: value if isinstance(value, list) else tf.unstack(value) for key, value in arch.items()}


_BRANCH = threading.local()


def batch_may_be_empty() -> bool:
    """Whether the ops being traced run inside a block that may depth skip (on zero images)."""
    return getattr(_BRANCH, "depth", 0) > 0


@contextlib.contextmanager
def _skippable_branch() -> Iterator[None]:
    _BRANCH.depth = getattr(_BRANCH, "depth", 0) + 1
    try:
        yield
    finally:
        _BRANCH.depth -= 1


def residual_or_skip(
    branch: Callable[[tf.Tensor], tf.Tensor], x: tf.Tensor, active, activation: Callable | None = None
) -> tf.Tensor:
    """`activation(x + branch(x))` if `active` else `x`, without control flow, for a residual block.

    A Python bool (the depth is known) decides in Python. For a tensor, the
    branch runs on the first n images, n = the batch size or 0, and is
    zero-padded back to the batch before the shortcut is added. A skipped block
    thus runs its ops on an empty batch: no arithmetic, no gradient, BN
    statistics kept (two TF kernels need help there: see
    `ofa_tf.layers.depthwise.depthwise_conv2d` and `ofa_tf.layers.conv.ElasticConv2D`).
    For an active block the slice and the pad cut nothing. This is not a
    `tf.cond` per block because its branch functions and `If` gradients make
    the graph larger and the first training step slower to trace and start
    (benchmarks/README.md). With an `activation`, a skipped block gives
    `activation(x)`: callers pass one only where that equals `x` (ReLU after
    ReLU outputs).
    """
    if isinstance(active, (bool, np.bool_)):
        if not active:
            return x
        out = x + branch(x)
    else:
        batch = tf.shape(x)[0]
        n = tf.where(active, batch, 0)
        with _skippable_branch():
            out = branch(tf.slice(x, [0, 0, 0, 0], tf.stack([n, -1, -1, -1])))
        out = x + tf.pad(out, tf.stack([tf.stack([0, batch - n]), [0, 0], [0, 0], [0, 0]]))
    return out if activation is None else activation(out)


class ActiveSubnetMethods:
    """Upstream's `set_max_net` / `sample_active_subnet` / `get_active_subnet`, for a Keras
    supernet with a `space` (`max_config`, `sample`, `supernet_args`), `set_active_config`
    and `extract`."""

    @classmethod
    def from_space(cls, space: Any, **kwargs: Any) -> Any:
        """The supernet of `space`'s choice lists and classes (`kwargs`: other constructor arguments)."""
        return cls(**space.supernet_args(), **kwargs)

    def get_active_subnet(self, resolution: int | None = None, name: str | None = None) -> Any:
        """A standalone functional Keras model of stock layers with the active weights."""
        if not self.built:  # weights are made when a network is built: a fresh one has none yet
            self.build((None, None, None, 3))
        return self.extract(self.active_config.with_resolution(resolution), name=name)

    def set_max_net(self) -> None:
        """Activates the largest subnet."""
        self.set_active_config(self.space.max_config())

    def sample_active_subnet(self, seed: int | np.random.Generator | None = None) -> dict[str, list]:
        """Samples a subnet as upstream, activates it and returns it as a dict
        ({"ks", "e", "d"}; ResNets {"d", "e", "w"})."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        config = self.space.sample(rng)
        self.set_active_config(config)
        return config.to_dict()
