"""Host backend: times TFLite models on this machine's CPU with the LiteRT interpreter.

Same interface as the phone backend, so LUTs, validation and tests run
without a phone. Each run is timed around `invoke()` only, by the wall clock
or (`host_clock="cpu"`, one thread) by the CPU time of the calling thread,
which other processes on a shared machine do not inflate; the statistics are
those of the timed runs after the warm-up.
"""

from __future__ import annotations

import platform
import time
from typing import Any, Callable

import numpy as np

from ofa_tf.android_bench.backend import BenchSettings
from ofa_tf.android_bench.measurement import Measurement
from ofa_tf.errors import ConfigError

_PHONE_ONLY = ("use_gpu", "use_nnapi", "enable_op_profiling", "cpu_mask")
_CLOCKS_NS = {"wall": time.perf_counter_ns, "cpu": time.thread_time_ns}


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise ConfigError('the host backend needs LiteRT: pip install "ofa-tf[export]" (ai-edge-litert)') from None
    return Interpreter, OpResolverType


class HostBackend:
    """Times models on the host CPU (XNNPACK on unless `use_xnnpack=False`).

    Args:
        settings: run settings; the phone-only ones (GPU, NNAPI, op profiling, core mask) are refused.
    """

    def __init__(self, settings: BenchSettings):
        unsupported = [name for name in _PHONE_ONLY if getattr(settings, name) not in (False, None)]
        if unsupported:
            raise ConfigError(f"{', '.join(unsupported)} only apply to a phone (--device adb[:SERIAL]), not to host")
        self.settings = settings

    def measure(self, model: bytes, name: str = "model") -> Measurement:
        """Latency of `model` on this CPU.

        Args:
            model: TFLite flatbuffer.
            name: label used in error messages.
        """
        interpreter_class, resolver = _interpreter_class()
        start = time.perf_counter()
        try:
            interpreter = interpreter_class(
                model_content=model,
                num_threads=self.settings.num_threads,
                experimental_op_resolver_type=(
                    resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES if self.settings.use_xnnpack is False else resolver.AUTO
                ),
            )
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ConfigError(f"{name} is not a runnable TFLite model: {error}") from None
        init_ms = (time.perf_counter() - start) * 1000.0
        _fill_inputs(interpreter, np.random.default_rng(0))
        clock = _CLOCKS_NS[self.settings.host_clock]
        first_ms = _time_invoke(interpreter, clock)
        warmup = [_time_invoke(interpreter, clock) for _ in range(self.settings.warmup_runs)]
        runs = np.array([_time_invoke(interpreter, clock) for _ in range(self.settings.num_runs)])
        return Measurement(
            mean_ms=float(runs.mean()),
            std_ms=float(runs.std()),
            count=len(runs),
            median_ms=float(np.median(runs)),
            min_ms=float(runs.min()),
            max_ms=float(runs.max()),
            init_ms=init_ms,
            first_ms=first_ms,
            warmup_mean_ms=float(np.mean(warmup)) if warmup else None,
        )

    def describe(self) -> dict[str, Any]:
        from importlib import metadata

        return {
            "device": "host",
            "cpu": platform.processor() or platform.machine(),
            "ai_edge_litert": metadata.version("ai-edge-litert"),
            "settings": self.settings.to_dict(),
        }


def _fill_inputs(interpreter: Any, rng: np.random.Generator) -> None:
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            value = rng.integers(info.min, info.max, size=detail["shape"], endpoint=True).astype(dtype)
        else:
            value = rng.standard_normal(detail["shape"]).astype(dtype)
        interpreter.set_tensor(detail["index"], value)


def _time_invoke(interpreter: Any, clock: Callable[[], int]) -> float:
    start = clock()
    interpreter.invoke()
    return (clock() - start) / 1e6
