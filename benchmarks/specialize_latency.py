"""Latency-budget specialization on this host, before / after timing 7x7 keys in every depthwise form.

For a trained run (its supernet and accuracy predictor), builds two host
latency tables at the run's width, classes and resolutions (LiteRT, XNNPACK,
1 thread, CPU time): "before" times each key as it is, "after" times each 7x7
key in every depthwise form (`ofa_tf.export.forms.FORMS`) and keeps the
fastest. Then runs `ofa-tf specialize --budget Xms` with each table at the
same budgets, exports every chosen subnet with `ofa-tf export --target` (the
table's forms) and times it: how the chosen subnets change (7x7 kernels,
MACs, predicted and measured top-1, predicted and measured latency).

    python benchmarks/specialize_latency.py --supernet runs/cifar [--fractions 0.3,0.5,0.8]
"""

from __future__ import annotations

import collections
import json
import sys
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent))



def _run_cli(args: list[str]) -> None:
    from ofa_tf.cli.main import main

    main.main([str(a) for a in args], standalone_mode=False)


@click.command()
@click.option("--supernet", "run_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="A training run with a predictor (the README's main job: runs/cifar).")
@click.option("--fractions", default="0.3,0.5,0.8", show_default=True,
              help="Budgets between the fastest and the slowest subnet of the 'after' table (what the export ships).")
@click.option("--num-runs", default=50, show_default=True, help="Timed runs per key and per exported model.")
@click.option("--work", default="runs/specialize_latency", show_default=True, type=click.Path(file_okay=False))
def main(run_dir: str, fractions: str, num_runs: int, work: str):
    from results_io import published_run, write_results

    from ofa_tf.android_bench.backend import BenchSettings
    from ofa_tf.android_bench.host import HostBackend
    from ofa_tf.android_bench.lut import LutConfig, build_lut
    from ofa_tf.nas.latency_table import LatencyTable
    from ofa_tf.training.run_folder import open_run
    from ofa_tf.export.forms import FORMS
    from ofa_tf.families.mbconv.space import SearchSpace, SubnetConfig

    run = open_run(run_dir)
    resolutions = tuple(json.loads((run.predictor_dir / "accuracy_predictor.json").read_text())["resolutions"])
    space = SearchSpace.from_dict(json.loads((run.supernet_dir / "supernet.json").read_text())["search_space"])
    settings = BenchSettings(num_threads=1, warmup_runs=5, num_runs=num_runs, host_clock="cpu")
    backend = HostBackend(settings)
    work_dir = Path(work)
    tables, timings = {}, {}
    for name, forms in (("before", ("plain",)), ("after", FORMS)):
        path = work_dir / "luts" / f"host_{name}.yaml"
        start = time.perf_counter()
        build_lut(LutConfig(space.width_mult, resolutions, space.n_classes, settings=settings, depthwise_forms=forms),
                  backend, path, on_progress=lambda done, total, key: print(f"\r{name}: {done}/{total}", end="", flush=True))
        timings[f"{name} table (s)"] = round(time.perf_counter() - start, 1)
        tables[name] = path
    print()
    after = LatencyTable.from_yaml(space, tables["after"])
    low = min(float(after.latency(space.to_indices([space.min_config(r)]))[0]) for r in resolutions)
    high = max(float(after.latency(space.to_indices([space.max_config(r)]))[0]) for r in resolutions)
    budgets = [round(low + float(f) * (high - low), 3) for f in fractions.split(",")]
    rows, outcomes = [], {}
    for name, path in tables.items():
        out = work_dir / name
        _run_cli(["specialize", "--supernet", run_dir, "--budget", ",".join(f"{b}ms@host_{name}" for b in budgets),
                  "--lut", path, "--bn-images", 500, "--out", out])
        for budget in budgets:
            folder = out / f"{budget}ms_host_{name}"
            summary = json.loads((folder / "subnet.json").read_text())
            config = SubnetConfig.from_dict(summary["config"])
            active = space.active_block_mask(space.to_indices([config]).depth)[0]
            large = sum(1 for k, on in zip(config.ks, active) if on and k == 7)
            tflite = work_dir / f"{name}_{budget}.tflite"
            _run_cli(["export", folder, "--target", path, "--validate-images", 200, "--out", tflite])
            measured = backend.measure(tflite.read_bytes(), tflite.name).mean_ms
            export_card = json.loads(tflite.with_suffix(".json").read_text())
            forms = export_card.get("depthwise_large_kernels", {}).get("layers", {})
            outcomes[f"{name} {budget}"] = {**summary, "measured_latency_ms": measured, "export_forms": forms}
            rows.append([
                f"{budget} ms", name, f"{large}/{int(active.sum())}", config.resolution,
                f"{summary['macs'] / 1e6:.2f}", f"{summary['predicted_top1']:.1f}",
                f"{summary['measured_top1']:.1f}" if summary.get("measured_top1") is not None else "-",
                f"{summary['latency_ms']:.3f}", f"{measured:.3f}",
                ", ".join(f"{f} {n}" for f, n in sorted(collections.Counter(forms.values()).items())) or "-",
            ])
            print(" | ".join(map(str, rows[-1])), flush=True)
    path = write_results(
        "specialize_latency",
        f"Latency-budget specialize on this host (1 thread, CPU time), tables before / after depthwise forms: {run_dir}",
        ["budget", "table", "7x7 blocks / blocks", "resolution", "MACs (M)", "predicted top-1 (%)",
         "measured top-1 (%)", "table latency (ms)", "exported, measured (ms)", "export forms of the 7x7 layers"],
        rows,
        {"budgets_ms": budgets, "range_ms": [low, high], "timings": timings, "outcomes": outcomes,
         "settings": settings.to_dict(), "supernet": run_dir},
        published=published_run(except_for=("run_dir", "work")),  # inputs and scratch, not settings
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
