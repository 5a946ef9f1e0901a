"""Latency lookup table on this CPU: how well the LUT sum predicts measured whole-subnet latency.

Builds a host LUT (LiteRT, XNNPACK, 1 thread; timed by default by the CPU
time of the invoking thread, which other jobs on a shared machine do not
inflate) of OFA-MobileNetV3 at one resolution, then extracts random subnets,
converts each to TFLite, times the whole model on the same backend and
compares it with its LUT sum: Pearson r,
Spearman ρ, MAPE of the raw sum, and MAPE after the linear correction
(in-sample and leave-one-out). Goal: MAPE ≤ 10% after correction.

Usage: python benchmarks/bench_lut.py [--width-mult 1.0] [--resolution 128] [--n 40] [--clock cpu|wall]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent))

GOAL_MAPE_PCT = 10.0


@click.command()
@click.option("--width-mult", default=1.0, show_default=True)
@click.option("--resolution", default=128, show_default=True)
@click.option("--n", "n_subnets", default=40, show_default=True, help="Random subnets to validate on (>= 30).")
@click.option("--num-runs", default=50, show_default=True, help="Timed runs per key and per subnet.")
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--clock",
    type=click.Choice(["wall", "cpu"]),
    default="cpu",
    show_default=True,
    help="cpu: CPU time of the invoking thread, unaffected by other jobs on a shared machine.",
)
def main(width_mult: float, resolution: int, n_subnets: int, num_runs: int, seed: int, clock: str):
    from results_io import published_run, results_dir, write_results

    from ofa_tf.android_bench.backend import BenchSettings
    from ofa_tf.android_bench.host import HostBackend
    from ofa_tf.android_bench.lut import LutConfig, build_lut
    from ofa_tf.android_bench.plot import scatter_plot
    from ofa_tf.android_bench.validate import ValidateConfig, validate_lut

    settings = BenchSettings(num_threads=1, warmup_runs=5, num_runs=num_runs, host_clock=clock)
    backend = HostBackend(settings)
    lut_path = Path(tempfile.mkdtemp(prefix="bench_lut_")) / "host.yaml"
    start = time.perf_counter()
    card = build_lut(
        LutConfig(width_mult, (resolution,), settings=settings),
        backend,
        lut_path,
        on_progress=lambda done, total, key: print(f"\rLUT {done}/{total}", end="", flush=True),
    )
    lut_seconds = time.perf_counter() - start
    print(f"\nLUT: {card['n_entries']} keys in {lut_seconds:.0f} s")
    start = time.perf_counter()
    validation = validate_lut(
        ValidateConfig(str(lut_path), width_mult, resolution, n_subnets, seed=seed),
        backend,
        on_progress=lambda done, total, _: print(f"\rsubnets {done}/{total}", end="", flush=True),
    )
    validate_seconds = time.perf_counter() - start
    s = validation.summary()
    print(f"\n{s}")
    scatter_plot(validation.predicted_ms, validation.measured_ms, validation.correction, s, results_dir(published_run()) / "bench_lut.png")
    rows = [
        ["LUT keys measured", card["n_entries"]],
        ["LUT build time (s)", round(lut_seconds, 1)],
        ["subnets validated", s["n"]],
        ["measured latency range (ms)", f"{validation.measured_ms.min():.2f}–{validation.measured_ms.max():.2f}"],
        ["Pearson r (LUT sum vs measured)", round(s["pearson_r"], 4)],
        ["Spearman ρ", round(s["spearman_rho"], 4)],
        ["MAPE, raw LUT sum (%)", round(s["mape_pct"], 2)],
        ["bias, raw LUT sum (%)", round(s["bias_pct"], 2)],
        ["MAPE after correction, in-sample (%)", round(s["mape_corrected_pct"], 2)],
        ["MAPE after correction, leave-one-out (%)", round(s["mape_corrected_loo_pct"], 2)],
        ["correction: scale", round(s["correction"]["scale"], 4)],
        ["correction: offset (ms)", round(s["correction"]["offset"], 4)],
    ]
    path = write_results(
        "bench_lut",
        f"Host LUT (LiteRT, XNNPACK, 1 thread, {clock} clock): OFA-MobileNetV3 w{width_mult} at {resolution} px",
        ["metric", "value"],
        rows,
        {
            "settings": settings.to_dict(),
            "validate_seconds": round(validate_seconds, 1),
            "goal": f"MAPE <= {GOAL_MAPE_PCT}% after correction (leave-one-out)",
            "goal_met": s["mape_corrected_loo_pct"] <= GOAL_MAPE_PCT,
            "plot": "bench_lut.png",
        },
        published=published_run(),
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
