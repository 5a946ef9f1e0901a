"""The backend a `--device` value names: this CPU (LiteRT) or a phone over adb."""

from __future__ import annotations

from ofa_tf.android_bench.adb import AdbBackend, connect
from ofa_tf.android_bench.backend import Backend, BenchSettings
from ofa_tf.android_bench.host import HostBackend
from ofa_tf.errors import ConfigError


def open_backend(
    device: str, settings: BenchSettings, adb: str | None = None, benchmark_binary: str | None = None
) -> Backend:
    """The backend a `--device` value names.

    Args:
        device: "host", "adb" (the only connected phone) or "adb:SERIAL".
        settings: run settings.
        adb: path of the adb executable (default: found on PATH or in $ANDROID_HOME).
        benchmark_binary: local path of the Android `benchmark_model` binary (adb devices only).
    """
    if device == "host":
        return HostBackend(settings)
    if device == "adb" or device.startswith("adb:"):
        serial = device.partition(":")[2] or None
        return AdbBackend(connect(adb, serial), benchmark_binary, settings)
    raise ConfigError(f"--device {device!r}: use host, adb (the only connected phone) or adb:SERIAL")


def open_form_timer(device: str) -> Backend:
    """The backend `ofa-tf export` times depthwise forms on: one thread, 3 warm-up and 20 timed runs."""
    settings = BenchSettings(num_threads=1, warmup_runs=3, num_runs=20, host_clock="cpu" if device == "host" else "wall")
    return open_backend(device, settings)
