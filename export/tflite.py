"""Keras -> TFLite conversion and inspection of the converted graph."""

from __future__ import annotations

import collections
import contextlib
import io
from typing import Any

from ofa_tf._backend import tf


def convert_to_tflite(model: Any) -> bytes:
    """Converts a Keras model to a float32 TFLite flatbuffer with builtin ops only.

    The converter is restricted to `TFLITE_BUILTINS`, so a graph that would
    need Flex (TensorFlow) or custom ops fails here instead of on the phone.
    """
    if None in model.inputs[0].shape[1:]:
        raise ValueError("TFLite export needs a fixed input resolution: extract the subnet with resolution=R")
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the SavedModel signature listing
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter.convert()


def load_interpreter(model_content: bytes, num_threads: int | None = None) -> Any:
    """A LiteRT interpreter (`ai-edge-litert`), falling back to `tf.lite`."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - depends on the installed extras
        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_content=model_content, num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter


def op_histogram(model_content: bytes) -> dict[str, int]:
    """Operator name -> count in a TFLite model."""
    interpreter = load_interpreter(model_content)
    return dict(collections.Counter(op["op_name"] for op in interpreter._get_ops_details()))


BUILTIN_EXCLUDED_PREFIXES = ("Flex", "CUSTOM")


def non_builtin_ops(model_content: bytes) -> list[str]:
    """Names of Flex or custom ops in a TFLite model (empty when all ops are builtin)."""
    return sorted(op for op in op_histogram(model_content) if op.startswith(BUILTIN_EXCLUDED_PREFIXES))
