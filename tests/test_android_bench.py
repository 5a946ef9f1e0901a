"""android_bench: benchmark_model output parsing, the adb path against a fake adb, LUTs and validation.

The fake `adb` is a Python script on PATH: it records every call, keeps pushed
files in a folder standing for the phone, and answers `shell ... benchmark_model
...` by timing the pushed model with LiteRT and printing benchmark_model's
output format.
"""

import dataclasses
import json
import os
import re
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from ofa_tf.android_bench import metrics
from ofa_tf.android_bench.adb import DeviceError, benchmark_command, find_adb, parse_devices, select_device
from ofa_tf.android_bench.backend import BenchSettings
from ofa_tf.nas.latency_correction import LinearCorrection, load_correction, save_correction
from ofa_tf.android_bench.devices import open_backend
from ofa_tf.android_bench.host import HostBackend
from ofa_tf.android_bench.layer_models import layer_specs
from ofa_tf.android_bench.lut import LutConfig, build_lut
from ofa_tf.android_bench.measurement import Measurement
from ofa_tf.android_bench.parse import BenchmarkOutputError, parse_benchmark_output
from ofa_tf.cli.main import main
from ofa_tf.errors import ConfigError
from ofa_tf.nas.latency_table import LatencyTable, all_keys
from ofa_tf.families.mbconv.space import SearchSpace, SubnetConfig

DATA = Path(__file__).parent / "data" / "benchmark_model"
TINY_SPACE = SearchSpace(width_mult=0.25, n_classes=10, resolutions=(32,))
# plain forms only: timing each 7x7 key in three forms triples its conversions (test_lut_times_large_kernels_in_every_form)
TINY_LUT_ARGS = ["--width-mult", "0.25", "--n-classes", "10", "--num-runs", "3", "--warmup-runs", "1", "--depthwise-forms", "plain"]

FAKE_ADB = '''#!{python}
"""Fake adb: devices per FAKE_ADB_MODE, push into a folder, benchmark_model through LiteRT."""
import json, os, shutil, sys, time

state = os.environ["FAKE_ADB_STATE"]
mode = os.environ.get("FAKE_ADB_MODE", "one")
args = sys.argv[1:]
with open(os.path.join(state, "calls.jsonl"), "a") as log:
    log.write(json.dumps(args) + "\\n")
DEVICES = {{
    "none": [],
    "one": [("FAKE123", "device usb:1-1 product:fake model:Fake_Phone device:fake transport_id:1")],
    "garbage": [("FAKE123", "device usb:1-1 model:Fake_Phone transport_id:1")],
    "several": [("FAKE123", "device usb:1-1 model:Fake_Phone transport_id:1"),
                ("emulator-5554", "device product:sdk model:sdk_gphone64 transport_id:2")],
    "unauthorized": [("FAKE123", "unauthorized usb:1-1 transport_id:1")],
}}
if args[:2] == ["devices", "-l"]:
    print("* daemon not running; starting now at tcp:5037")
    print("* daemon started successfully")
    print("List of devices attached")
    for serial, rest in DEVICES[mode]:
        print(f"{{serial:22s}} {{rest}}")
    print()
    sys.exit(0)
if args[0] != "-s" or args[1] not in [serial for serial, _ in DEVICES[mode]]:
    print(f"adb: device '{{args[1]}}' not found", file=sys.stderr)
    sys.exit(1)
args = args[2:]
phone = os.path.join(state, "phone")

def on_phone(remote):
    return os.path.join(phone, remote.lstrip("/"))

if args[0] == "push":
    target = on_phone(args[2])
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(args[1], target)
    print(f"{{args[1]}}: 1 file pushed, 0 skipped. 38.2 MB/s ({{os.path.getsize(target)}} bytes in 0.001s)")
    sys.exit(0)
command = args[1:]
if command[0] == "chmod":
    os.chmod(on_phone(command[2]), 0o755)
    sys.exit(0)
if command[0] == "taskset":
    command = command[2:]
if not os.access(on_phone(command[0]), os.X_OK):
    print(f"/system/bin/sh: {{command[0]}}: can't execute: Permission denied")
    sys.exit(126)
if mode == "garbage":
    print("INFO: STARTING!")
    print("ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'")
    print("Segmentation fault")
    sys.exit(139)
flags = dict(arg[2:].split("=", 1) for arg in command[1:])
import numpy as np
from ai_edge_litert.interpreter import Interpreter

start = time.perf_counter()
interpreter = Interpreter(model_path=on_phone(flags["graph"]), num_threads=int(flags["num_threads"]))
interpreter.allocate_tensors()
init_us = int((time.perf_counter() - start) * 1e6)

def timed(n):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1e6)
    return np.array(times)

def stats(t):
    return (f"count={{len(t)}} first={{int(t[0])}} curr={{int(t[-1])}} min={{int(t.min())}} max={{int(t.max())}} "
            f"avg={{t.mean():g}} std={{int(t.std())}} p5={{int(np.percentile(t, 5))}} median={{int(np.median(t))}} "
            f"p95={{int(np.percentile(t, 95))}}")

warmup, runs = timed(max(1, int(flags["warmup_runs"]))), timed(int(flags["num_runs"]))
log = sys.stderr
for line in ["STARTING!", "Log parameter values verbosely: [0]", f"Graph: [{{flags['graph']}}]",
             f"Loaded model {{flags['graph']}}", "Initialized TensorFlow Lite runtime.",
             "Created TensorFlow Lite XNNPACK delegate for CPU.", f"Initialized session in {{init_us / 1000}}ms.",
             "Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.",
             stats(warmup), "",
             f"Running benchmark for at least {{flags['num_runs']}} iterations and at least 1 seconds but terminate if exceeding 150 seconds.",
             stats(runs), "",
             f"Inference timings in us: Init: {{init_us}}, First inference: {{int(warmup[0])}}, "
             f"Warmup (avg): {{warmup.mean():g}}, Inference (avg): {{runs.mean():g}}"]:
    print(f"INFO: {{line}}" if line else "", file=log)
'''


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    """A fake adb on PATH; returns (state folder, benchmark binary path, recorded calls reader)."""
    bin_dir, state = tmp_path / "bin", tmp_path / "adb_state"
    bin_dir.mkdir()
    state.mkdir()
    adb = bin_dir / "adb"
    adb.write_text(FAKE_ADB.format(python=sys.executable))
    adb.chmod(adb.stat().st_mode | stat.S_IEXEC)
    binary = tmp_path / "android_aarch64_benchmark_model"
    binary.write_bytes(b"\x7fELF fake benchmark_model")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_STATE", str(state))
    monkeypatch.setenv("FAKE_ADB_MODE", "one")

    def calls():
        return [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]

    return state, binary, calls


@pytest.fixture(scope="module")
def tiny_lut(tmp_path_factory):
    """A complete host LUT of the width-0.25, 10-class space at 32 px, built through the CLI for a
    supernet folder trained at 32 px (its width, classes and resolutions; the table in its luts/)."""
    from conftest import build_tiny
    from ofa_tf import save_supernet

    run = tmp_path_factory.mktemp("run")
    save_supernet(build_tiny(), run / "supernet", resolutions=[32])
    result = CliRunner().invoke(main, ["bench", "lut", "--device", "host", "--supernet", str(run), *TINY_LUT_ARGS[4:]])
    assert result.exit_code == 0, result.output
    assert "96/96 keys (96 measured now" in result.output
    return run / "luts" / "host.yaml"


def test_lut_without_a_supernet_or_out_names_both():
    for args, message in ((["--device", "host"], "give --out luts/NAME.yaml (or --supernet RUN"),
                          (["--device", "adb", "--supernet", "runs/x"], "give --out runs/x/luts/PHONE.yaml")):
        result = CliRunner().invoke(main, ["bench", "lut", *args])
        assert result.exit_code == 2 and message in result.output, result.output


@pytest.fixture(scope="module")
def tiny_tflite():
    from ofa_tf._backend import keras
    from ofa_tf.export.tflite import convert_to_tflite

    inputs = keras.Input((8, 8, 4))
    outputs = keras.layers.DepthwiseConv2D(3, padding="same")(keras.layers.Conv2D(8, 1)(inputs))
    return convert_to_tflite(keras.Model(inputs, outputs))


# ----- parser ---------------------------------------------------------------------------------------
def test_parse_current_format():
    m = parse_benchmark_output((DATA / "current.txt").read_text())
    assert (m.mean_ms, m.std_ms, m.count, m.median_ms) == pytest.approx((11.8933, 0.262, 84, 11.831))
    assert (m.min_ms, m.max_ms, m.init_ms, m.first_ms, m.warmup_mean_ms) == pytest.approx(
        (11.617, 13.208, 38.411, 17.233, 12.2546)
    )
    assert m.ops == () and m.lut_entry() == {"mean": 11.8933, "std": 0.262, "count": 84, "median": 11.831}


def test_parse_older_format():
    m = parse_benchmark_output((DATA / "older.txt").read_text())
    assert (m.mean_ms, m.std_ms, m.count, m.min_ms, m.max_ms) == pytest.approx((80.6601, 1.129, 50, 79.233, 84.871))
    assert (m.init_ms, m.warmup_mean_ms, m.median_ms, m.first_ms) == (4.108, 91.471, None, None)


def test_parse_tf2_op_profiling_tables_and_timings_line():
    m = parse_benchmark_output((DATA / "op_profiling_tf2.txt").read_text())
    assert (m.mean_ms, m.std_ms, m.count, m.min_ms) == pytest.approx((14.0279, 0.121, 50, 13.901))
    assert [op.node_type for op in m.ops] == [
        "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "AVERAGE_POOL_2D", "CONV_2D", "RESHAPE", "SOFTMAX"
    ]
    assert m.ops[2].avg_ms == 6.107 and m.ops[2].name == "MobilenetV1/MobilenetV1/Conv2d_1_pointwise/Relu6"
    assert [(t.node_type, t.avg_ms, t.times_called) for t in m.op_types[:2]] == [
        ("CONV_2D", 11.821, 3), ("DEPTHWISE_CONV_2D", 2.15, 1)
    ]


def test_parse_current_op_profiling_skips_initialization_section():
    m = parse_benchmark_output((DATA / "op_profiling_current.txt").read_text())
    assert (m.mean_ms, m.std_ms, m.count, m.median_ms) == pytest.approx((1.7764, 0.048, 562, 1.769))
    assert len(m.ops) == 7 and len(m.op_types) == 7  # no ModifyGraphWithDelegate / AllocateTensors rows
    assert m.ops[1].node_type == "Convolution (NHWC, F32) DWConv" and m.ops[1].times_called == 20
    assert sum(t.percent for t in m.op_types) == pytest.approx(100.0, abs=0.01)


def test_parse_timings_line_alone():
    text = "Timings (microseconds): count=20 first=910 curr=880 min=870 max=930 avg=889.5 std=14\n"
    m = parse_benchmark_output("Operator-wise Profiling Info for Regular Benchmark Runs:\n" + text)
    assert (m.mean_ms, m.std_ms, m.count) == pytest.approx((0.8895, 0.014, 20))


def test_unparseable_output_quotes_the_last_lines():
    text = "INFO: STARTING!\nERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'\nAborted\n"
    with pytest.raises(BenchmarkOutputError, match="no inference timings.*builtin opcode 'CONV_2D'.*'Aborted'"):
        parse_benchmark_output(text)
    with pytest.raises(BenchmarkOutputError, match=r"\(no output\)"):
        parse_benchmark_output("")


# ----- device layer ---------------------------------------------------------------------------------------
def test_parse_and_select_devices():
    text = (DATA.parent / "adb_devices.txt").read_text()
    devices = parse_devices(text)
    assert [(d.serial, d.state) for d in devices] == [
        ("0A171FDD4000A1", "device"), ("emulator-5554", "offline"), ("R58M42ABCDE", "unauthorized")
    ]
    assert devices[0].properties["model"] == "Pixel_7"
    assert select_device(devices, "0A171FDD4000A1") is devices[0]
    with pytest.raises(DeviceError, match="3 devices connected .*--device adb:SERIAL"):
        select_device(devices)
    with pytest.raises(DeviceError, match="emulator-5554 is offline: reconnect"):
        select_device(devices, "emulator-5554")
    with pytest.raises(DeviceError, match="R58M42ABCDE is unauthorized: accept"):
        select_device(devices, "R58M42ABCDE")
    with pytest.raises(DeviceError, match="XYZ is not connected"):
        select_device(devices, "XYZ")
    with pytest.raises(DeviceError, match="no Android device connected"):
        select_device([])


def test_no_adb_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("ANDROID_HOME", raising=False)
    monkeypatch.delenv("ANDROID_SDK_ROOT", raising=False)
    with pytest.raises(DeviceError, match="adb not found.*--adb PATH"):
        find_adb()
    result = CliRunner().invoke(main, ["bench", "devices"])
    assert result.exit_code == 2 and result.output.startswith("Error: adb not found")
    assert len(result.output.strip().splitlines()) == 1


def test_benchmark_command_flags():
    settings = BenchSettings(num_threads=4, warmup_runs=2, num_runs=30, use_xnnpack=False, use_gpu=True,
                             enable_op_profiling=True, cpu_mask="f0")
    assert benchmark_command(settings) == [
        "taskset", "f0", "/data/local/tmp/benchmark_model", "--graph=/data/local/tmp/ofa_tf_model.tflite",
        "--num_threads=4", "--warmup_runs=2", "--num_runs=30", "--use_xnnpack=false", "--use_gpu=true",
        "--enable_op_profiling=true",
    ]
    with pytest.raises(ConfigError, match="not a hexadecimal core mask"):
        BenchSettings(cpu_mask="big")


def test_adb_model_benchmark_end_to_end(fake_adb, tiny_tflite, tmp_path):
    state, binary, calls = fake_adb
    model_file = tmp_path / "tiny.tflite"
    model_file.write_bytes(tiny_tflite)
    runner = CliRunner()
    listed = runner.invoke(main, ["bench", "devices"])
    assert listed.exit_code == 0 and listed.output == "FAKE123\tready\tFake_Phone\n"
    result = runner.invoke(
        main,
        ["bench", "model", str(model_file), "--device", "adb:FAKE123", "--benchmark-binary", str(binary),
         "--num-threads", "2", "--num-runs", "7", "--cpu-mask", "f0", "--json", str(tmp_path / "latency.json")],
    )
    assert result.exit_code == 0, result.output
    assert "ms over 7 runs on adb:FAKE123" in result.output and "median:" in result.output
    saved = json.loads((tmp_path / "latency.json").read_text())
    assert saved["count"] == 7 and saved["num_threads"] == 2 and saved["device"] == "adb:FAKE123"
    assert f": {saved['mean_ms']:.3f} ± " in result.output
    recorded = calls()[1:]  # after `bench devices`
    assert recorded[0] == ["devices", "-l"]
    assert recorded[1] == ["-s", "FAKE123", "push", str(binary), "/data/local/tmp/benchmark_model"]
    assert recorded[2] == ["-s", "FAKE123", "shell", "chmod", "+x", "/data/local/tmp/benchmark_model"]
    assert recorded[3][:3] == ["-s", "FAKE123", "push"] and recorded[3][4] == "/data/local/tmp/ofa_tf_model.tflite"
    assert recorded[4] == ["-s", "FAKE123", "shell", *benchmark_command(
        BenchSettings(num_threads=2, num_runs=7, cpu_mask="f0"))]
    assert (state / "phone/data/local/tmp/ofa_tf_model.tflite").read_bytes() == tiny_tflite


@pytest.mark.parametrize(
    "mode, device, message",
    [
        ("none", "adb", "no Android device connected"),
        ("unauthorized", "adb", "FAKE123 is unauthorized"),
        ("several", "adb", "2 devices connected .*choose one with --device adb:SERIAL"),
        ("one", "adb:OTHER", "device OTHER is not connected"),
        ("garbage", "adb", "no inference timings.*Segmentation fault"),
    ],
)
def test_adb_errors_are_one_line(fake_adb, tiny_tflite, tmp_path, monkeypatch, mode, device, message):
    _, binary, _ = fake_adb
    monkeypatch.setenv("FAKE_ADB_MODE", mode)
    model_file = tmp_path / "tiny.tflite"
    model_file.write_bytes(tiny_tflite)
    result = CliRunner().invoke(
        main, ["bench", "model", str(model_file), "--device", device, "--benchmark-binary", str(binary)]
    )
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("Error: ")
    assert re.search(message, result.output), result.output


def test_phone_needs_benchmark_binary(fake_adb):
    _, binary, _ = fake_adb
    with pytest.raises(ConfigError, match="needs the benchmark_model binary.*android_aarch64_benchmark_model"):
        open_backend("adb", BenchSettings())
    with pytest.raises(ConfigError, match="--device 'phone'"):
        open_backend("phone", BenchSettings())
    with pytest.raises(ConfigError, match="--host-clock only applies to --device host"):
        open_backend("adb", BenchSettings(host_clock="cpu"), benchmark_binary=str(binary))


# ----- host backend ------------------------------------------------------------------------------------
@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_host_backend_statistics(tiny_tflite, clock):
    m = HostBackend(BenchSettings(num_runs=9, warmup_runs=2, host_clock=clock)).measure(tiny_tflite)
    assert m.count == 9 and 0 < m.min_ms <= m.median_ms <= m.max_ms and m.min_ms <= m.mean_ms <= m.max_ms
    assert m.std_ms >= 0 and m.init_ms > 0 and m.warmup_mean_ms > 0


def test_host_backend_refuses_phone_settings():
    with pytest.raises(ConfigError, match="use_gpu, cpu_mask only apply to a phone"):
        HostBackend(BenchSettings(use_gpu=True, cpu_mask="f0"))
    with pytest.raises(ConfigError, match="--host-clock cpu times only the calling thread"):
        BenchSettings(num_threads=2, host_clock="cpu")


# ----- lookup tables -----------------------------------------------------------------------------------
def test_layer_specs_cover_all_keys_once():
    space = SearchSpace(width_mult=1.0)
    specs = layer_specs(space, [160, 224])
    assert [s.key for s in specs] == all_keys(space, [160, 224])
    # per resolution: 6 fixed + per stage (first block, blocks sharing one key) x 9 variants;
    # the 1x1 head keys (Conv_2, Logits) are the same at both resolutions
    assert len(specs) == 2 * (6 + 5 * 2 * 9) - 2
    first = next(s for s in specs if s.kind == "expanded_conv" and s.block == -1 and "input:80x80" in s.key)
    assert first.key == "expanded_conv-input:80x80x16-output:80x80x16-expand:16-kernel:3-stride:1-idskip:1-se:0-hs:0"


def test_proxyless_keys_chain_from_image_to_logits():
    from ofa_tf import OFAProxylessNASNets
    from ofa_tf.android_bench.layer_models import build_layer_model
    from ofa_tf.nas.latency_table import subnet_keys

    net = OFAProxylessNASNets(width_mult=0.25, n_classes=10)
    net.build((None, None, None, 3))
    space = net.space
    specs = {spec.key: spec for spec in layer_specs(space, [48])}
    config = space.sample(np.random.default_rng(0))
    keys = subnet_keys(space, config, 48)
    fixed = keys[:2] + keys[-3:]
    # stem, first block, the blocks, then the head: one feature-mix conv with BN before pooling, no Conv_2
    assert [key.split("-")[0] for key in fixed] == ["Conv", "expanded_conv", "Conv_1", "AvgPool2D", "Logits"]
    assert fixed[2] == "Conv_1-input:2x2x80-output:2x2x320" and "-se:0-hs:0" in fixed[1]
    assert len(keys) == 5 + sum(config.d)
    x = np.zeros((1, 48, 48, 3), np.float32)
    for key in keys:
        x = build_layer_model(net, specs[key])(x).numpy()  # each key's model takes the previous one's output
    assert x.shape == (1, 10)


@pytest.mark.slow
def test_tiny_lut_is_readable_and_complete(tiny_lut):
    entries = yaml.safe_load(tiny_lut.read_text())
    assert list(entries) == all_keys(TINY_SPACE, [32])
    assert all(set(v) == {"mean", "std", "count", "median"} and v["count"] == 3 and v["mean"] > 0 for v in entries.values())
    table = LatencyTable.from_yaml(TINY_SPACE, tiny_lut)
    assert table.covers(32)
    arch = TINY_SPACE.to_indices([TINY_SPACE.min_config(32), TINY_SPACE.max_config(32)])
    low, high = table.latency(arch)
    assert 0 < low < high
    card = json.loads(tiny_lut.with_suffix(".json").read_text())
    assert card["config"]["width_mult"] == 0.25 and card["n_keys"] == 96 and card["backend"]["device"] == "host"


class _CountingBackend:
    def __init__(self):
        self.keys = []

    def measure(self, model: bytes, name: str = "model") -> Measurement:
        self.keys.append(name)
        return Measurement(mean_ms=1.0, std_ms=0.0, count=1)

    def describe(self):
        return {"device": "counting"}


@pytest.mark.slow
def test_lut_resumes_only_missing_keys(tiny_lut, tmp_path):
    out = tmp_path / "resumed.yaml"
    shutil.copy(tiny_lut, out)
    shutil.copy(tiny_lut.with_suffix(".json"), out.with_suffix(".json"))
    entries = yaml.safe_load(out.read_text())
    missing = list(entries)[5:8]
    out.write_text(yaml.safe_dump({k: v for k, v in entries.items() if k not in missing}, sort_keys=False))
    config = LutConfig(0.25, (32,), 10, settings=BenchSettings(num_runs=3, warmup_runs=1), depthwise_forms=("plain",))
    backend = _CountingBackend()
    card = build_lut(config, backend, out, save_every=2)
    assert backend.keys == missing and card["measured_now"] == 3 and card["n_entries"] == 96
    assert list(yaml.safe_load(out.read_text())) == list(entries)  # same order as all_keys
    with pytest.raises(ConfigError, match="built with other settings"):
        build_lut(LutConfig(0.25, (32,), 10, settings=BenchSettings(num_runs=4), depthwise_forms=("plain",)), backend, out)
    with pytest.raises(ConfigError, match="built with other settings"):  # a table of plain forms is not extended with others
        build_lut(LutConfig(0.25, (32,), 10, settings=BenchSettings(num_runs=3, warmup_runs=1)), backend, out)


def test_resnet_keys_chain_from_image_to_logits_and_a_table_sums_them(tmp_path):
    """OFA-ResNet50-D's keys on the same slots as MACs: a subnet's key models chain from the image to the
    logits; the builder times only the keys a partial table lacks (no supernet: ResNet keys carry their
    layer configs); the latency sum of a subnet is the sum of its keys' entries."""
    from ofa_tf.android_bench.layer_models import build_layer_model
    from ofa_tf.nas.latency_table import subnet_keys
    from ofa_tf.families.resnet.space import ResNetSpace

    config = LutConfig(1.0, (32,), 10, settings=BenchSettings(num_runs=3, warmup_runs=1), family="resnet50")
    space = config.space
    assert isinstance(space, ResNetSpace)
    specs = {spec.key: spec for spec in layer_specs(space, [32])}
    # stem convs 2 + 2 + 2 x 3 (the two narrower stems both halve to 24 channels), 3 max poolings, 27 variants
    # per stage's first block, 9 for the blocks after it (same shapes), 3 + 3 head
    assert space.stem_mid_widths == (24, 24, 32)
    assert len(specs) == 10 + 3 + 4 * (27 + 9) + 6
    rng = np.random.default_rng(0)
    subnet = dataclasses.replace(space.sample(rng), d=(2, 0, 0, 1, 0))  # the residual stem conv runs
    keys = subnet_keys(space, subnet, 32)
    assert [key.split("-")[0] for key in keys[:4]] == ["Conv", "ResidualConv", "Conv", "MaxPool2D"]
    assert len(keys) == 4 + 2 + 2 + 5 + 2 + 2 and keys[4].endswith("-stride:1-downsample:1")
    x = np.zeros((1, 32, 32, 3), np.float32)
    for key in keys:
        x = build_layer_model(None, specs[key])(x).numpy()
    assert x.shape == (1, 10)

    entries = {key: {"mean": float(rng.uniform(0.1, 1.0))} for key in specs}
    missing = [keys[1], keys[3], keys[4], keys[-1]]  # a residual conv, a pooling, a downsampling block, the classifier
    out = tmp_path / "resnet.yaml"
    out.write_text(yaml.safe_dump({k: v for k, v in entries.items() if k not in missing}, sort_keys=False))
    out.with_suffix(".json").write_text(json.dumps({"config": config.to_dict()}))
    backend = _CountingBackend()
    card = build_lut(config, backend, out)
    assert backend.keys == missing and card["n_entries"] == card["n_keys"] == len(specs)
    table = LatencyTable.from_yaml(space, out)
    measured = yaml.safe_load(out.read_text())
    arch = space.to_indices([subnet])
    assert table.latency(arch, 32)[0] == pytest.approx(sum(measured[key]["mean"] for key in keys))
    assert table.covers(32) and not table.covers(64)
    from ofa_tf.android_bench.validate import ValidateConfig

    for make in (lambda: LutConfig(0.5, (32,), 10, family="resnet50"), lambda: ValidateConfig(str(out), 0.5, family="resnet50")):
        with pytest.raises(ConfigError, match="OFA-ResNet50-D's widths are choices"):
            make()


class _FormBackend:
    """Times a model by its depthwise form, read from the measurement's name: windows3 fastest."""

    MS = {"plain": 3.0, "windows5": 2.0, "windows3": 1.0, "dilated": 1.5}

    def __init__(self):
        self.models = {}

    def measure(self, model: bytes, name: str = "model") -> Measurement:
        form = name.rsplit("(", 1)[1].rstrip(")") if name.endswith(")") else "plain"
        self.models[form] = model
        return Measurement(mean_ms=self.MS[form], std_ms=0.0, count=1)


def test_lut_times_large_kernels_in_every_form():
    from ofa_tf.android_bench.layer_models import build_layer_model, layer_specs
    from ofa_tf.android_bench.lut import measure_key
    from ofa_tf.export.tflite import op_histogram
    from ofa_tf.families.mbconv.network import OFAMobileNetV3

    net = OFAMobileNetV3(width_mult=0.25, n_classes=10)
    net.build((None, None, None, 3))
    specs = layer_specs(TINY_SPACE, [32])
    config = LutConfig(0.25, (32,), 10)
    large = next(spec for spec in specs if spec.kernel_size == 7)
    backend = _FormBackend()
    entry = measure_key(build_layer_model(net, large), large, config, backend)
    assert entry["mean"] == 1.0 and entry["form"] == "windows3" and entry["forms_ms"] == _FormBackend.MS
    depthwise = {form: op_histogram(model)["DEPTHWISE_CONV_2D"] for form, model in backend.models.items()}
    # "dilated": a 5x5 and five dilated 3x3 kernels at stride 1; at stride 2 a pick and a kernel per input
    # phase on an even input, else 5x5 windows
    stride, size = TINY_SPACE.blocks[large.block].stride, large.input_shape[0]
    dilated = 6 if stride == 1 else 8 if size % 2 == 0 else 4
    assert depthwise == {"plain": 1, "windows5": 4, "windows3": 9, "dilated": dilated}  # as the export writes each form
    small = next(spec for spec in specs if spec.kernel_size == 3)
    assert "form" not in measure_key(build_layer_model(net, small), small, config, _FormBackend())  # one form: plain
    with pytest.raises(ConfigError, match="must include plain"):
        LutConfig(0.25, (32,), 10, depthwise_forms=("windows5",))


class _RecordingBackend:
    """Times models on the host and keeps each flatbuffer."""

    def __init__(self):
        self.host = HostBackend(BenchSettings(num_runs=3, warmup_runs=1))
        self.models = {}

    def measure(self, model: bytes, name: str = "model") -> Measurement:
        self.models[name] = model
        return self.host.measure(model, name)

    def describe(self):
        return self.host.describe()


def test_int8_lut_times_full_integer_layer_models(tmp_path):
    from ofa_tf.export.tflite import delegate_partitions, load_interpreter, op_histogram

    config = LutConfig(0.25, (32,), 10, quantize="int8", settings=BenchSettings(num_runs=3, warmup_runs=1))
    keys = all_keys(TINY_SPACE, [32])
    todo = [keys[0], next(k for k in keys if "se:1-hs:1" in k), keys[-1]]  # first conv, an SE + h-swish block, logits
    out = tmp_path / "int8.yaml"
    out.write_text(yaml.safe_dump({k: {"mean": 1.0, "std": 0.0, "count": 1} for k in keys if k not in todo}))
    out.with_suffix(".json").write_text(json.dumps({"config": config.to_dict()}))  # a partial int8 table to resume
    backend = _RecordingBackend()
    card = build_lut(config, backend, out)
    assert sorted(backend.models) == sorted(todo) and card["n_entries"] == 96
    assert card["config"]["quantize"] == "int8"
    entries = yaml.safe_load(out.read_text())
    for key, model in backend.models.items():
        assert entries[key]["mean"] > 0 and entries[key]["count"] == 3
        ops = op_histogram(model)
        assert load_interpreter(model).get_input_details()[0]["dtype"] == np.int8
        assert "HARD_SWISH" not in ops and "QUANTIZE" not in ops and delegate_partitions(model)["partitions"] == 1
    with pytest.raises(ConfigError, match="built with other settings"):
        build_lut(dataclasses.replace(config, quantize=None), backend, out)


def test_unknown_quantize_is_refused():
    with pytest.raises(ConfigError, match="float32 \\(default\\) or int8"):
        LutConfig(0.25, (32,), 10, quantize="int4")


# ----- validation --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_validate_on_fake_phone(tiny_lut, fake_adb, tmp_path):
    _, binary, calls = fake_adb
    lut = tmp_path / "tiny.yaml"
    shutil.copy(tiny_lut, lut)
    shutil.copy(tiny_lut.with_suffix(".json"), lut.with_suffix(".json"))  # width, classes, resolutions: the table's
    result = CliRunner().invoke(
        main,
        ["bench", "validate", "--lut", str(lut), "--device", "adb", "--benchmark-binary", str(binary), "--n", "4",
         "--num-runs", "5", "--seed", "3"],
    )
    assert result.exit_code == 0, result.output
    assert "4 subnets at 32 px: Pearson r" in result.output and "Spearman ρ" in result.output
    report = json.loads((tmp_path / "tiny.validate_32.json").read_text())
    assert (tmp_path / "tiny.validate_32.png").read_bytes()[:4] == b"\x89PNG"
    rows = report["subnets"]
    assert rows[0]["subnet"]["ks"] == list(TINY_SPACE.sample(np.random.default_rng(3)).ks)
    table = LatencyTable.from_yaml(TINY_SPACE, lut)
    predicted = table.latency(TINY_SPACE.to_indices([SubnetConfig.from_dict(r["subnet"]) for r in rows]))
    assert [r["predicted_ms"] for r in rows] == pytest.approx(predicted.tolist())
    summary = report["summary"]
    assert summary["mape_pct"] == pytest.approx(metrics.mape(predicted, [r["measured_ms"] for r in rows]))
    assert sum(1 for call in calls() if "push" in call and call[-1].endswith(".tflite")) == 4
    correction = load_correction(lut)
    assert (correction is not None) == summary["correction_helps"]


# ----- metrics -----------------------------------------------------------------------------------------
def test_correlations_and_errors():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert metrics.pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert metrics.spearman(x, x**3) == pytest.approx(1.0)
    # ties share their average rank: ranks of [1, 2, 2, 3] are [0, 1.5, 1.5, 3]
    assert metrics.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(np.corrcoef([0, 1.5, 1.5, 3], [0, 1, 2, 3])[0, 1])
    assert metrics.mape([11.0, 18.0], [10.0, 20.0]) == pytest.approx(10.0)
    assert metrics.mean_signed_error([11.0, 18.0], [10.0, 20.0]) == pytest.approx(0.0)


def test_linear_correction_fit_and_sidecar(tmp_path):
    predicted = np.array([10.0, 20.0, 30.0, 40.0])
    measured = 0.8 * predicted + 1.5
    correction = LinearCorrection.fit(predicted, measured)
    assert (correction.scale, correction.offset) == pytest.approx((0.8, 1.5))
    assert metrics.leave_one_out_mape(predicted, measured) == pytest.approx(0.0, abs=1e-9)
    lut = tmp_path / "phone.yaml"
    assert load_correction(lut) is None
    path = save_correction(lut, correction, {"n": 4})
    assert path.name == "phone.correction.json"
    assert load_correction(lut).apply([50.0]) == pytest.approx([41.5])
    with pytest.raises(ConfigError, match="at least 2 subnets"):
        LinearCorrection.fit([5.0, 5.0], [1.0, 2.0])
