"""Imports Keras on the TensorFlow backend, or fails with a clear message.

The supernet needs `tf.function`, graph ops on variables (slicing by tensors)
and `tf.distribute`, so other Keras backends cannot run it.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"ofa_tf needs the TensorFlow Keras backend, but KERAS_BACKEND={keras.backend.backend()!r}: "
        "unset KERAS_BACKEND or set it to 'tensorflow'"
    )

__all__ = ["keras", "tf"]
