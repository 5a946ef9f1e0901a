"""The memory an export stage will need, checked against what the machine has before the stage runs.

A Linux process that outgrows memory is killed by the OOM killer without a
message. The stages whose need grows with an option (validation and
calibration images, QAT batches) are checked first, so that the user reads
which option to lower instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ofa_tf.errors import ConfigError

GB = 2**30
# QAT keeps every activation of the fake-quantized student for its gradients, plus their fake-quantized
# copies and the float teacher's forward pass; the batch-16 run of benchmarks/bench_export_memory.py added
# ~2.4x its layer outputs (4.0 GB peak), so 3 leaves a margin
QAT_ACTIVATION_FACTOR = 3.0


class MemoryShortError(ConfigError):
    """An export stage would need more memory than the machine has available."""


def available_bytes() -> int | None:
    """Memory this process can still take: MemAvailable, capped by a cgroup v2 limit; None off Linux."""
    try:
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    except OSError:
        return None
    available = int(meminfo["MemAvailable"].split()[0]) * 1024
    cgroup = Path("/sys/fs/cgroup")
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            available = min(available, int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return available


def peak_resident_bytes() -> int | None:
    """This process's own peak resident memory (VmHWM); None off Linux.

    `ru_maxrss` of a child does not serve: Linux carries the parent's peak across exec, so a child of a
    large process reports the parent's peak when its own is smaller.
    """
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    peak = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return int(peak) * 1024 if peak is not None else None


# inference in graph mode frees each activation once its consumers ran: a layer's input, its output, the
# residual waiting to be added and the next output are live at once
INFERENCE_LIVE_OUTPUTS = 4


def activation_bytes(model: Any) -> int:
    """float32 bytes of every layer output of `model` for one image (what a training step keeps)."""
    return 4 * sum(_output_sizes(model))


def inference_bytes(model: Any, batch_size: int) -> int:
    """float32 bytes live at once while `model` runs on `batch_size` images in graph mode."""
    return 4 * batch_size * INFERENCE_LIVE_OUTPUTS * max(_output_sizes(model))


def _output_sizes(model: Any) -> list[int]:
    """Elements per image of each layer output."""
    outputs = [layer.output for layer in model.layers]
    flat = [o for output in outputs for o in (output if isinstance(output, (list, tuple)) else [output])]
    return [int(np.prod(output.shape[1:])) for output in flat]


def image_bytes(n: int, size: int) -> int:
    """float32 bytes of `n` eval-transformed images."""
    return 4 * n * size * size * 3


def require(stage: str, need: int, lower: str) -> None:
    """Raises `MemoryShortError` naming `stage` and the option to lower when `need` bytes exceed what is free.

    Args:
        stage: what is about to run, e.g. "validation on 500 images".
        need: the bytes it will add to this process.
        lower: the options that shrink it, e.g. "--validate-images".
    """
    free = available_bytes()
    if free is not None and need > free:
        raise MemoryShortError(
            f"not enough memory for {stage}: it needs about {need / GB:.1f} GB and {free / GB:.1f} GB is free: lower {lower}"
        )
