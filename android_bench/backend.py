"""Where a model is timed: an Android phone over adb, or this machine's CPU. Same interface for both."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from ofa_tf.android_bench.measurement import Measurement
from ofa_tf.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    """How each model is run (the `benchmark_model` flags; the host backend honours the CPU ones).

    Args:
        num_threads: interpreter threads.
        warmup_runs: untimed runs before the timed ones.
        num_runs: timed runs (`benchmark_model` also runs for at least 1 s).
        use_xnnpack: force the XNNPACK delegate on (True) or off (False); None keeps the tool's default (on).
        use_gpu: GPU delegate (phone only).
        use_nnapi: NNAPI delegate (phone only).
        enable_op_profiling: per-op timing tables (phone only).
        cpu_mask: hexadecimal core mask for `taskset`, e.g. "f0" for the big cores (phone only).
        host_clock: host only: "wall" (elapsed time) or "cpu" (CPU time of the invoking thread, with
            1 thread: unaffected by other processes competing for the cores of a shared machine).
    """

    num_threads: int = 1
    warmup_runs: int = 5
    num_runs: int = 50
    use_xnnpack: bool | None = None
    use_gpu: bool = False
    use_nnapi: bool = False
    enable_op_profiling: bool = False
    cpu_mask: str | None = None
    host_clock: str = "wall"

    def __post_init__(self) -> None:
        if self.num_threads < 1 or self.num_runs < 1 or self.warmup_runs < 0:
            raise ConfigError(
                f"num_threads={self.num_threads}, num_runs={self.num_runs}, warmup_runs={self.warmup_runs}: "
                "threads and runs must be >= 1, warm-up runs >= 0"
            )
        if self.cpu_mask is not None and not _is_hex(self.cpu_mask):
            raise ConfigError(f"--cpu-mask {self.cpu_mask!r} is not a hexadecimal core mask, e.g. f0")
        if self.host_clock not in ("wall", "cpu"):
            raise ConfigError(f"--host-clock {self.host_clock!r}: use wall or cpu")
        if self.host_clock == "cpu" and self.num_threads != 1:
            raise ConfigError("--host-clock cpu times only the calling thread: use it with --num-threads 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


class Backend(Protocol):
    """Times TFLite models on one device."""

    def measure(self, model: bytes, name: str = "model") -> Measurement:
        """Latency of the flatbuffer `model` (`name` labels it in messages)."""

    def describe(self) -> dict[str, Any]:
        """What the measurements were taken on (saved in artifact cards)."""
