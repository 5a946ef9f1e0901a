"""Activations by their OFA names, with the Keras name used in extracted models."""

from ofa_tf._backend import tf

# OFA name -> Keras activation identifier (same formulas: hard_silu = x * relu6(x + 3) / 6).
KERAS_ACTIVATION = {"relu": "relu", "h_swish": "hard_silu", "h_sigmoid": "hard_sigmoid"}


def hard_sigmoid(x: tf.Tensor) -> tf.Tensor:
    """`relu6(x + 3) / 6`, as the official `Hsigmoid`."""
    return tf.nn.relu6(x + 3.0) / 6.0


def hard_swish(x: tf.Tensor) -> tf.Tensor:
    """`x * relu6(x + 3) / 6`, as the official `Hswish`."""
    return x * hard_sigmoid(x)


_FUNCTIONS = {"relu": tf.nn.relu, "h_swish": hard_swish, "h_sigmoid": hard_sigmoid}


def get(name: str):
    """Returns the activation function for an OFA activation name."""
    try:
        return _FUNCTIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}: expected one of {sorted(_FUNCTIONS)}") from None
