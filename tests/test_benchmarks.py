"""Every benchmark script runs (tiny sizes, one step) and never overwrites the published results."""

import hashlib
import importlib.util
import shlex
import sys
from pathlib import Path

import click
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
PUBLISHED = BENCHMARKS / "results"


def _load(name: str):
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digest() -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(PUBLISHED.glob("*.*")))).hexdigest()


@pytest.mark.parametrize(
    "name, args",
    [
        ("bench_supernet", ["--width-mult", "0.25", "--resolution", "32", "--batch-size", "2", "--steps", "1",
                            "--depth-list", "2"]),
        ("bench_search", ["--generations", "2"]),
        ("bench_train", ["--resolution", "32", "--batch-size", "2", "--subnets", "1", "--steps", "1", "--depth-list", "2"]),
        ("bench_export", ["--resolution", "32", "--rounds", "1", "--runs", "1", "--no-kernel-study", "--width-mult", "0.25"]),
        ("regime_probe", ["--regimes", "32px/0.01ep/w0.25", "--seeds", "0", "--architectures", "smallest",
                          "--work", "{tmp}/probe"]),
        ("bench_input", ["--records", "300", "--throughput-records", "0", "--no-step", "--work", "{tmp}/input"]),
        ("bench_specialized", ["--resolution", "32", "--rounds", "1", "--runs", "1", "--family", "MobileNetV3 w1.0",
                               "--subnet", "min"]),
        ("bench_int8_ops", ["--scale", "0.15", "--rounds", "1", "--runs", "1", "--no-subnet",
                            "--op", "1x1 conv 28x28 120->40 (project)", "--op", "depthwise 3x3 stride 2 56x56x72",
                            "--op", "squeeze-excite 28x28x120", "--op", "add 56x56x24"]),
        ("bench_families", ["--family", "proxyless", "--width-scale", "0.25", "--resolution", "32", "--batch-size", "2",
                            "--steps", "1", "--rounds", "1", "--runs", "1"]),
        ("bench_kernel_cli", ["--resolution", "32", "--width-mult", "0.25", "--repeats", "1", "--depthwise-large", "dilated",
                              "--validate-images", "20"]),
        ("bench_export_memory", ["--resolution", "32", "--subnets", "k7e4d3_w10", "--modes", "latency-only plain",
                                 "--work", "{tmp}/memory"]),
        ("bench_transfer", ["--per-class", "12", "--max-steps", "1", "--n-subnets", "10", "--budgets", "8M-MACs",
                            "--finetune-epochs", "1", "--work", "{tmp}/transfer"]),
        ("bench_from_keras", ["--smoke", "--work", "{tmp}/from_keras"]),
        ("teacher_probe", ["--epochs", "0.005", "--resolution", "32", "--width-mult", "0.25", "--settings", "lr0.05_b64_crop0.35", "--depth", "2",
                           "--work", "{tmp}/probe"]),
    ],
)
@pytest.mark.slow
def test_benchmark_smoke_run_writes_elsewhere(name, args, tmp_path, monkeypatch):
    monkeypatch.setenv("OFA_TF_BENCH_RESULTS", str(tmp_path))
    before = _digest()
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    module = _load(name)
    if hasattr(module.main, "main"):  # a click command
        module.main.main(args, standalone_mode=False)
    else:
        monkeypatch.setattr(sys, "argv", [name, *args])
        module.main()
    assert (tmp_path / f"{name}.json").is_file() and (tmp_path / f"{name}.md").is_file()
    assert _digest() == before


def test_only_default_settings_count_as_published(monkeypatch):
    monkeypatch.delenv("OFA_TF_BENCH_RESULTS", raising=False)
    results_io = _load("results_io")
    assert results_io.results_dir(True) == PUBLISHED
    assert results_io.results_dir(False) == PUBLISHED / "custom"


def test_end_to_end_stages_parse_against_the_cli(tmp_path, monkeypatch):
    """end_to_end.py runs the README's main command plus its own stages: every one must parse (options, paths)."""
    from ofa_tf.cli.main import main

    module = _load("end_to_end")
    command = module.readme_main_command(BENCHMARKS.parent / "README.md")
    stages = command.split(" && ") + module.extra_stages(command)
    assert stages[0].startswith("pip install -e .") and len(stages) >= 6
    monkeypatch.chdir(tmp_path)
    for name in ("subnet_fp32.tflite", "subnet_int8.tflite"):  # written by earlier stages
        (tmp_path / module.RUN / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / module.RUN / name).touch()
    for stage in stages[1:]:
        program, *args = shlex.split(stage)
        assert program == "ofa-tf", stage
        group, context = main, main.make_context(program, args)
        while isinstance(group, click.Group):
            name, group, rest = group.resolve_command(context, [*context._protected_args, *context.args])
            context = group.make_context(name, rest, parent=context)
        assert context.command_path.startswith("ofa-tf "), stage
