"""Activations by their OFA names, with the Keras name used in extracted models."""

from ofa_tf._backend import tf
from ofa_tf.errors import ConfigError

# OFA name -> Keras activation identifier (same formulas: hard_silu = x * relu6(x + 3) / 6).
KERAS_ACTIVATION = {
    "relu": "relu", "relu6": "relu6", "h_swish": "hard_silu", "h_sigmoid": "hard_sigmoid",
    "swish": "silu", "sigmoid": "sigmoid", "linear": "linear",  # networks converted from Keras
}


# Both carry their derivative as a custom gradient: the same values as the
# composite's (the official modules' autograd, relu6 flat at 0 and 6), in a few
# element-wise ops instead of a broadcast-reduction chain per op, which keeps
# the training step's graph small (it is traced and instantiated once).


@tf.custom_gradient
def hard_sigmoid(x: tf.Tensor) -> tf.Tensor:
    """`relu6(x + 3) / 6`, as the official `Hsigmoid`."""

    def gradient(upstream):
        inside = tf.logical_and(x > -3.0, x < 3.0)
        return upstream * tf.cast(inside, upstream.dtype) * (1.0 / 6.0)

    return tf.nn.relu6(x + 3.0) / 6.0, gradient


@tf.custom_gradient
def hard_swish(x: tf.Tensor) -> tf.Tensor:
    """`x * relu6(x + 3) / 6`, as the official `Hswish`."""

    def gradient(upstream):
        # d/dx = relu6(x + 3) / 6 + x relu6'(x + 3) / 6: x / 3 + 1 / 2 on (-3, 3), 0 up to -3, 1 from 3.
        slope = tf.where(x < 3.0, x * (1.0 / 3.0) + 0.5, tf.ones_like(x))
        return upstream * tf.where(x > -3.0, slope, tf.zeros_like(x))

    return x * tf.nn.relu6(x + 3.0) / 6.0, gradient


_FUNCTIONS = {
    "relu": tf.nn.relu, "relu6": tf.nn.relu6, "h_swish": hard_swish, "h_sigmoid": hard_sigmoid,
    "swish": tf.nn.silu, "sigmoid": tf.sigmoid, "linear": tf.identity,
}


def get(name: str):
    """Returns the activation function for an OFA activation name."""
    try:
        return _FUNCTIONS[name]
    except KeyError:
        raise ConfigError(f"unknown activation {name!r}: expected one of {sorted(_FUNCTIONS)}") from None
