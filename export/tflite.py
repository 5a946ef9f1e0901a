"""Keras -> TFLite conversion and inspection of the converted graph.

Conversion modes (`quantize`):
  - "none": float32;
  - "fp16": float16 weights (float32 compute on CPU);
  - "dynamic": int8 weights, activations quantized on the fly;
  - "int8": full-integer, activation ranges from a representative dataset
    (or from fake-quant nodes of a QAT model); `int8_io` makes the input and
    output tensors int8 too.
The graph is traced with a fixed batch of 1, so `Flatten` becomes a static
`RESHAPE` instead of `SHAPE`/`STRIDED_SLICE`/`PACK` ops that XNNPACK cannot run.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import sys
import tempfile
import warnings
from typing import Any, Callable, Iterable

from ofa_tf._backend import tf
from ofa_tf.errors import ConfigError

QUANTIZE_MODES = ("none", "fp16", "dynamic", "int8")
# Lines the converter prints on every conversion that tell the user nothing (hidden; other output is kept).
CONVERTER_NOISE = ("fully_quantize: ",)


def _input_shape(model: Any, batch_size: int) -> list[int]:
    shape = list(model.inputs[0].shape)
    if None in shape[1:]:
        raise ConfigError("TFLite export needs a fixed input resolution: extract the subnet with resolution=R")
    return [batch_size, *shape[1:]]


def convert_to_tflite(
    model: Any,
    quantize: str = "none",
    representative_dataset: Callable[[], Iterable[list]] | None = None,
    int8_io: bool = False,
    batch_size: int = 1,
) -> bytes:
    """Converts a Keras (or tf_keras) model to a TFLite flatbuffer with builtin ops only.

    The converter is restricted to builtin ops, so a graph that would need
    Flex (TensorFlow) or custom ops fails here instead of on the phone.

    Args:
        model: a functional model with one image input of fixed size.
        quantize: one of `QUANTIZE_MODES`.
        representative_dataset: for "int8" without fake-quant nodes: a callable
            yielding `[float32 image batch of 1]` lists (calibration).
        int8_io: int8 input and output tensors (only with "int8").
        batch_size: the fixed batch of the converted graph.
    """
    if quantize not in QUANTIZE_MODES:
        raise ConfigError(f"quantize={quantize!r}: expected one of {QUANTIZE_MODES}")
    if int8_io and quantize != "int8":
        raise ConfigError("int8 input/output needs quantize='int8'")
    spec = tf.TensorSpec(_input_shape(model, batch_size), tf.float32, name="image")
    function = tf.function(lambda image: model(image, training=False))
    # Keras prints the signature listing; the converter prints CONVERTER_NOISE
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), _quiet_fd2(CONVERTER_NOISE):
        # int8 QAT models carry their input ranges in fake-quant nodes; the converter warns anyway
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        # the function is the trackable object: the converter keeps the concrete-function path (variables
        # frozen into constants, BN folded into the convs) rather than saving a SavedModel first
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function(spec)], function)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "fp16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8" and representative_dataset is not None:
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.representative_dataset = representative_dataset
        # int8 without a representative dataset: a QAT model, whose fake-quant nodes give the ranges
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        return converter.convert()


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:  # pragma: no cover - depends on the installed extras
        return tf.lite.Interpreter, tf.lite.experimental.OpResolverType
    return Interpreter, OpResolverType


def load_interpreter(model_content: bytes, num_threads: int | None = None, delegate: bool = True) -> Any:
    """A LiteRT interpreter (`ai-edge-litert`), falling back to `tf.lite`.

    Args:
        model_content: the flatbuffer.
        num_threads: CPU threads (None: the runtime's default).
        delegate: apply the default XNNPACK delegate (False: builtin kernels only).
    """
    Interpreter, OpResolverType = _interpreter_class()
    resolver = OpResolverType.AUTO if delegate else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with _quiet_fd2():
        interpreter = Interpreter(
            model_content=model_content, num_threads=num_threads, experimental_op_resolver_type=resolver
        )
        interpreter.allocate_tensors()
    return interpreter


@contextlib.contextmanager
def _quiet_fd2(noise: tuple[str, ...] | None = None):
    """Hides what the runtime writes to fd 2 meanwhile: every line (`noise` None), or only lines containing
    one of `noise` (the rest is written back, so real warnings and errors stay visible)."""
    try:
        saved = os.dup(2)
    except OSError:  # pragma: no cover - no real stderr
        yield
        return
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if noise is not None:
                sink.seek(0)
                lines = sink.read().decode(errors="replace").splitlines(keepends=True)
                sys.stderr.write("".join(line for line in lines if not any(n in line for n in noise)))


def op_histogram(model_content: bytes) -> dict[str, int]:
    """Operator name -> count in a TFLite model (as written, before any delegate)."""
    interpreter = load_interpreter(model_content, delegate=False)
    return dict(collections.Counter(op["op_name"] for op in interpreter._get_ops_details()))


BUILTIN_EXCLUDED_PREFIXES = ("Flex", "CUSTOM")


def non_builtin_ops(model_content: bytes) -> list[str]:
    """Names of Flex or custom ops in a TFLite model (empty when all ops are builtin)."""
    return sorted(op for op in op_histogram(model_content) if op.startswith(BUILTIN_EXCLUDED_PREFIXES))


def delegate_partitions(model_content: bytes, num_threads: int = 1) -> dict[str, Any]:
    """How the XNNPACK delegate splits the graph.

    Returns `{"partitions": K, "nodes": M, "delegated_nodes": N, "cut_at": {op: count}}`,
    the figures of LiteRT's "Replacing N out of M node(s) with delegate, yielding
    K partitions" log line; `cut_at` counts the ops left to the builtin kernels.
    """
    interpreter = load_interpreter(model_content, num_threads=num_threads)
    ops = interpreter._get_ops_details()
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    originals = [op for op in ops if op["op_name"] != "DELEGATE"]
    model_outputs = [detail["index"] for detail in interpreter.get_output_details()]
    plain = _undelegated(originals, delegates, model_outputs)
    return {
        "partitions": len(delegates),
        "nodes": len(originals),
        "delegated_nodes": len(originals) - len(plain),
        "cut_at": dict(sorted(collections.Counter(originals[i]["op_name"] for i in plain).items())),
    }


def _undelegated(originals: list[dict], delegates: list[dict], model_outputs: list[int]) -> set[int]:
    """Positions in `originals` of the nodes outside every delegate partition.

    A tensor that a partition reads, or that the model returns, and that no
    partition writes, comes from a node outside the partitions; so do the
    producers of that node's inputs, up to the partitions' outputs.
    """
    partition_outputs = {t for op in delegates for t in op["outputs"]}
    producer = {t: i for i, op in enumerate(originals) for t in op["outputs"]}
    pending = [t for op in delegates for t in op["inputs"]] + list(model_outputs)
    if not delegates:
        return set(range(len(originals)))
    outside: set[int] = set()
    while pending:
        tensor = pending.pop()
        if tensor in partition_outputs or tensor not in producer:
            continue
        node = producer[tensor]
        if node not in outside:
            outside.add(node)
            pending.extend(originals[node]["inputs"])
    return outside
