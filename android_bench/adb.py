"""Android devices over adb: find adb, pick a device, push files, run `benchmark_model`."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Sequence

from ofa_tf.android_bench.backend import BenchSettings
from ofa_tf.android_bench.measurement import Measurement
from ofa_tf.android_bench.parse import parse_benchmark_output
from ofa_tf.errors import ConfigError, OFAError

REMOTE_DIR = "/data/local/tmp"
REMOTE_BINARY = f"{REMOTE_DIR}/benchmark_model"
REMOTE_MODEL = f"{REMOTE_DIR}/ofa_tf_model.tflite"
BINARY_HELP = (
    "pass --benchmark-binary PATH: the prebuilt android_aarch64_benchmark_model of a TensorFlow/LiteRT "
    "release, or bazel build -c opt --config=android_arm64 //tensorflow/lite/tools/benchmark:benchmark_model "
    "(see docs/android_bench.md)"
)


class DeviceError(OFAError):
    """adb is missing, no usable device is connected, or an adb command failed."""


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    """One line of `adb devices -l`.

    Args:
        serial: device serial.
        state: "device" (usable), "unauthorized", "offline", ...
        properties: key:value fields such as model, product, transport_id.
    """

    serial: str
    state: str
    properties: dict[str, str]


def find_adb(adb: str | None = None) -> str:
    """Path of the adb executable: `adb` if given, else PATH, else $ANDROID_HOME/platform-tools.

    Args:
        adb: explicit path (`--adb`).
    """
    if adb is not None:
        if os.path.isfile(adb) and os.access(adb, os.X_OK):
            return adb
        raise DeviceError(f"--adb {adb} is not an executable file")
    found = shutil.which("adb")
    if found:
        return found
    for variable in ("ANDROID_HOME", "ANDROID_SDK_ROOT"):
        candidate = Path(os.environ.get(variable, "")) / "platform-tools" / "adb"
        if os.environ.get(variable) and candidate.is_file():
            return str(candidate)
    raise DeviceError(
        "adb not found: install Android platform-tools (https://developer.android.com/tools/releases/platform-tools) "
        "and put adb on PATH, or pass --adb PATH"
    )


def _run(command: Sequence[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"`{' '.join(command)}` did not finish within {timeout:.0f} s") from None


def parse_devices(text: str) -> list[DeviceInfo]:
    """Devices listed by `adb devices -l` (daemon start-up lines are skipped)."""
    devices = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or line.startswith(("*", "List of devices")):
            continue
        properties = dict(field.split(":", 1) for field in fields[2:] if ":" in field)
        devices.append(DeviceInfo(fields[0], fields[1], properties))
    return devices


def list_devices(adb: str | None = None) -> list[DeviceInfo]:
    """Connected devices, in any state.

    Args:
        adb: explicit adb path, or None to find it.
    """
    result = _run([find_adb(adb), "devices", "-l"], timeout=30)
    if result.returncode != 0:
        raise DeviceError(f"`adb devices -l` failed: {(result.stderr or result.stdout).strip()}")
    return parse_devices(result.stdout)


_STATE_HELP = {
    "unauthorized": "accept the 'Allow USB debugging' prompt on the phone (or revoke authorizations and re-plug)",
    "offline": "reconnect the cable or restart the adb server (adb kill-server)",
    "no permissions": "fix the udev rules for this phone (see adb devices -l)",
}


def select_device(devices: Sequence[DeviceInfo], serial: str | None = None) -> DeviceInfo:
    """The device to use: the one with `serial`, or the only one connected.

    Args:
        devices: from `list_devices`.
        serial: wanted serial, or None when exactly one device is connected.
    """
    if not devices:
        raise DeviceError("no Android device connected: enable USB debugging, plug the phone in and check `adb devices`")
    if serial is None:
        if len(devices) > 1:
            listed = ", ".join(f"{d.serial} ({d.state})" for d in devices)
            raise DeviceError(f"{len(devices)} devices connected ({listed}): choose one with --device adb:SERIAL")
        chosen = devices[0]
    else:
        matches = [d for d in devices if d.serial == serial]
        if not matches:
            listed = ", ".join(d.serial for d in devices)
            raise DeviceError(f"device {serial} is not connected (connected: {listed})")
        chosen = matches[0]
    if chosen.state != "device":
        fix = _STATE_HELP.get(chosen.state, "check `adb devices -l`")
        raise DeviceError(f"device {chosen.serial} is {chosen.state}: {fix}")
    return chosen


class AdbDevice:
    """One usable device, addressed by serial.

    Args:
        adb: path of the adb executable.
        info: the device, from `select_device`.
    """

    def __init__(self, adb: str, info: DeviceInfo):
        self.adb = adb
        self.info = info

    def _adb(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        result = _run([self.adb, "-s", self.info.serial, *args], timeout=timeout)
        if result.returncode != 0:
            output = (result.stderr + result.stdout).strip()
            raise DeviceError(f"`adb {' '.join(args)}` on {self.info.serial} failed: {output}")
        return result

    def push(self, local: str | os.PathLike, remote: str, timeout: float = 300) -> None:
        self._adb("push", str(local), remote, timeout=timeout)

    def shell(self, command: Sequence[str], timeout: float = 600) -> str:
        """Runs `command` on the device; returns stdout and stderr together."""
        result = _run([self.adb, "-s", self.info.serial, "shell", *command], timeout=timeout)
        return result.stdout + result.stderr


def connect(adb: str | None = None, serial: str | None = None) -> AdbDevice:
    """The usable device `serial` (or the only one), with clear errors otherwise.

    Args:
        adb: explicit adb path, or None to find it.
        serial: wanted serial, or None.
    """
    path = find_adb(adb)
    return AdbDevice(path, select_device(list_devices(path), serial))


def benchmark_command(settings: BenchSettings, remote_model: str = REMOTE_MODEL) -> list[str]:
    """The `benchmark_model` command line (with `taskset` when a core mask is set).

    Args:
        settings: run settings.
        remote_model: model path on the device.
    """
    command = [] if settings.cpu_mask is None else ["taskset", settings.cpu_mask]
    command += [
        REMOTE_BINARY,
        f"--graph={remote_model}",
        f"--num_threads={settings.num_threads}",
        f"--warmup_runs={settings.warmup_runs}",
        f"--num_runs={settings.num_runs}",
    ]
    if settings.use_xnnpack is not None:
        command.append(f"--use_xnnpack={str(settings.use_xnnpack).lower()}")
    for flag in ("use_gpu", "use_nnapi", "enable_op_profiling"):
        if getattr(settings, flag):
            command.append(f"--{flag}=true")
    return command


class AdbBackend:
    """Times models with `benchmark_model` on a phone.

    The binary is pushed once to /data/local/tmp and made executable; every
    model is pushed to the same remote file, run, and its output parsed.

    Args:
        device: the connected phone.
        benchmark_binary: local path of the Android `benchmark_model` binary.
        settings: run settings.
    """

    def __init__(self, device: AdbDevice, benchmark_binary: str | None, settings: BenchSettings):
        if benchmark_binary is None:
            raise ConfigError(f"benchmarking on a phone needs the benchmark_model binary: {BINARY_HELP}")
        if not os.path.isfile(benchmark_binary):
            raise ConfigError(f"--benchmark-binary {benchmark_binary} does not exist: {BINARY_HELP}")
        if settings.host_clock != "wall":
            raise ConfigError("--host-clock only applies to --device host; phones report elapsed time")
        self.device = device
        self.benchmark_binary = benchmark_binary
        self.settings = settings
        self._binary_ready = False

    def _prepare(self) -> None:
        if not self._binary_ready:
            self.device.push(self.benchmark_binary, REMOTE_BINARY)
            self.device.shell(["chmod", "+x", REMOTE_BINARY])
            self._binary_ready = True

    def measure(self, model: bytes, name: str = "model") -> Measurement:
        """Latency of `model` on the phone.

        Args:
            model: TFLite flatbuffer.
            name: label used in error messages.
        """
        self._prepare()
        with tempfile.TemporaryDirectory(prefix="ofa_tf_bench_") as folder:
            local = Path(folder) / "model.tflite"
            local.write_bytes(model)
            self.device.push(local, REMOTE_MODEL)
        output = self.device.shell(benchmark_command(self.settings))
        try:
            return parse_benchmark_output(output)
        except OFAError as error:
            raise DeviceError(f"{name} on {self.device.info.serial}: {error}") from None

    def describe(self) -> dict[str, Any]:
        return {
            "device": f"adb:{self.device.info.serial}",
            "model": self.device.info.properties.get("model", ""),
            "benchmark_binary": os.path.basename(self.benchmark_binary),
            "settings": self.settings.to_dict(),
        }
