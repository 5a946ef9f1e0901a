"""Every benchmark script runs (tiny sizes, one step) and never overwrites the published results."""

import hashlib
import importlib.util
import sys
from pathlib import Path

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
        ("bench_train", ["--resolution", "32", "--batch-size", "2", "--subnets", "1", "--steps", "1"]),
        ("bench_export", ["--resolution", "32", "--rounds", "1", "--runs", "1"]),
        ("regime_probe", ["--regimes", "32px/0.01ep/w0.25", "--seeds", "0", "--architectures", "smallest",
                          "--work", "{tmp}/probe"]),
        ("teacher_probe", ["--epochs", "0.005", "--resolution", "32", "--width-mult", "0.25", "--settings", "lr0.05_b64_crop0.35",
                           "--work", "{tmp}/probe"]),
    ],
)
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
