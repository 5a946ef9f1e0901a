"""Per-call graph options for the training step.

Grappler's graph rewrites take most of the time of a training step's first call
and do not make its later calls faster on CPU, so the trainer and fine-tuning
call their steps with them off; forward-only functions keep them, since
inference runs faster with them (measurements: benchmarks/README.md).
The option travels with each call (thread-local `FunctionCallOptions`), so
other functions in the process keep TensorFlow's defaults.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from tensorflow.core.protobuf import config_pb2
from tensorflow.python.eager import context


@contextlib.contextmanager
def graph_rewrites_off() -> Iterator[None]:
    """Functions called inside run without grappler's meta-optimizer."""
    eager = context.context()
    saved = eager.function_call_options
    config = config_pb2.ConfigProto()
    config.ParseFromString(saved.config_proto_serialized)
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    config.graph_options.optimizer_options.opt_level = config_pb2.OptimizerOptions.L0
    eager.function_call_options = context.FunctionCallOptions(executor_type=saved.executor_type, config_proto=config)
    try:
        yield
    finally:
        eager.function_call_options = saved
