"""OFA-ResNet50-D latency table on this CPU: how well the LUT sum predicts measured whole-subnet latency.

Builds a host LUT of OFA-ResNet50-D's keys (`ofa-tf bench lut --arch resnet50`:
LiteRT, XNNPACK, 1 thread, CPU time of the invoking thread) at one
resolution, then extracts random subnets of a randomly initialized supernet,
converts each to TFLite, times the whole model on the same backend and
compares it with its LUT sum (`ofa-tf bench validate --arch resnet50`):
Pearson r, Spearman ρ, MAPE of the raw sum and after the linear correction
(in-sample and leave-one-out), and the ratio of summed to measured latency.

Usage: python benchmarks/bench_lut_resnet.py [--resolution 128] [--n 30] [--num-runs 30]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent))


@click.command()
@click.option("--resolution", default=128, show_default=True)
@click.option("--n", "n_subnets", default=30, show_default=True, help="Random subnets to validate on.")
@click.option("--num-runs", default=30, show_default=True, help="Timed runs per key and per subnet.")
@click.option("--seed", default=0, show_default=True)
def main(resolution: int, n_subnets: int, num_runs: int, seed: int):
    from results_io import published_run, results_dir, write_results

    from ofa_tf.android_bench.backend import BenchSettings
    from ofa_tf.android_bench.host import HostBackend
    from ofa_tf.android_bench.lut import LutConfig, build_lut
    from ofa_tf.android_bench.plot import scatter_plot
    from ofa_tf.android_bench.validate import ValidateConfig, validate_lut

    settings = BenchSettings(num_threads=1, warmup_runs=5, num_runs=num_runs, host_clock="cpu")
    backend = HostBackend(settings)
    lut_path = Path(tempfile.mkdtemp(prefix="bench_lut_resnet_")) / "host_resnet50.yaml"
    start = time.perf_counter()
    card = build_lut(
        LutConfig(1.0, (resolution,), settings=settings, family="resnet50"), backend, lut_path,
        on_progress=lambda done, total, key: print(f"\rLUT {done}/{total}", end="", flush=True),
    )
    lut_seconds = time.perf_counter() - start
    start = time.perf_counter()
    validation = validate_lut(
        ValidateConfig(str(lut_path), 1.0, resolution, n_subnets, seed=seed, family="resnet50"), backend,
        on_progress=lambda done, total, _: print(f"\rsubnets {done}/{total}", end="", flush=True),
    )
    validate_seconds = time.perf_counter() - start
    summary = validation.summary()
    print(f"\n{summary}")
    predicted, measured = validation.predicted_ms, validation.measured_ms
    scatter_plot(predicted, measured, validation.correction, summary, results_dir(published_run()) / "bench_lut_resnet.png")
    rows = [
        ["LUT keys measured", card["n_entries"]],
        ["LUT build time (s)", round(lut_seconds, 1)],
        ["subnets validated", summary["n"]],
        ["measured latency range (ms)", f"{measured.min():.2f}–{measured.max():.2f}"],
        ["mean measured latency (ms)", round(float(measured.mean()), 3)],
        ["Pearson r (LUT sum vs measured)", round(summary["pearson_r"], 4)],
        ["Spearman ρ", round(summary["spearman_rho"], 4)],
        ["MAPE, raw LUT sum (%)", round(summary["mape_pct"], 2)],
        ["bias, raw LUT sum (%)", round(summary["bias_pct"], 2)],
        ["MAPE after correction, in-sample (%)", round(summary["mape_corrected_pct"], 2)],
        ["MAPE after correction, leave-one-out (%)", round(summary["mape_corrected_loo_pct"], 2)],
        ["correction: scale", round(summary["correction"]["scale"], 4)],
        ["correction: offset (ms)", round(summary["correction"]["offset"], 4)],
    ]
    path = write_results(
        "bench_lut_resnet",
        f"Host LUT (LiteRT, XNNPACK, 1 thread, cpu clock): OFA-ResNet50-D at {resolution} px, LUT sum vs measured",
        ["metric", "value"],
        rows,
        {
            "settings": settings.to_dict(),
            "validate_seconds": round(validate_seconds, 1),
            "ratios": {"summed / measured latency, median over the subnets": round(float(
                sorted(predicted / measured)[len(measured) // 2]), 4)},
            "command": f"python benchmarks/bench_lut_resnet.py --resolution {resolution} --n {n_subnets} --num-runs {num_runs}",
            "plot": "bench_lut_resnet.png",
        },
        published=published_run(),
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
