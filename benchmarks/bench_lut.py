"""Latency lookup table on this CPU: how well the LUT sum predicts measured whole-subnet latency.

Builds a host LUT (LiteRT, XNNPACK, 1 thread; timed by default by the CPU
time of the invoking thread, which other jobs on a shared machine do not
inflate) of OFA-MobileNetV3 at one resolution, then extracts random subnets,
converts each to TFLite, times the whole model on the same backend and
compares it with its LUT sum: Pearson r,
Spearman ρ, MAPE of the raw sum, and MAPE after the linear correction
(in-sample and leave-one-out). Goal: MAPE ≤ 10% after correction.

Twice, side by side: "before" times each 7x7 key as it is (plain forms
only), "after" in every depthwise form (`ofa_tf.export.forms.FORMS`),
keeping the fastest; each table's subnets are exported in its forms (as
`ofa-tf export --target` does), so the same subnets' measured latencies
compare the two exports.

Usage: python benchmarks/bench_lut.py [--width-mult 1.0] [--resolution 128] [--n 40] [--clock cpu|wall]
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time
from pathlib import Path

import click
import yaml

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
    from ofa_tf.export.forms import FORMS

    settings = BenchSettings(num_threads=1, warmup_runs=5, num_runs=num_runs, host_clock=clock)
    backend = HostBackend(settings)
    work = Path(tempfile.mkdtemp(prefix="bench_lut_"))
    tables = {}  # "before": plain forms only (each 7x7 layer as it is); "after": every depthwise form, the fastest kept
    for name, forms in (("before", ("plain",)), ("after", tuple(FORMS))):
        lut_path = work / f"host_{name}.yaml"
        start = time.perf_counter()
        card = build_lut(
            LutConfig(width_mult, (resolution,), settings=settings, depthwise_forms=forms),
            backend,
            lut_path,
            on_progress=lambda done, total, key: print(f"\r{name}: LUT {done}/{total}", end="", flush=True),
        )
        lut_seconds = time.perf_counter() - start
        start = time.perf_counter()
        validation = validate_lut(
            ValidateConfig(str(lut_path), width_mult, resolution, n_subnets, seed=seed),
            backend,
            on_progress=lambda done, total, _: print(f"\r{name}: subnets {done}/{total}", end="", flush=True),
        )
        tables[name] = dict(card=card, lut_seconds=lut_seconds, validate_seconds=time.perf_counter() - start,
                            validation=validation, summary=validation.summary(), path=lut_path)
        print(f"\n{name}: {tables[name]['summary']}")
    after = tables["after"]
    chosen = collections.Counter(
        entry.get("form", "plain") for key, entry in yaml.safe_load(after["path"].read_text()).items() if "-kernel:7-" in key
    )
    scatter_plot(after["validation"].predicted_ms, after["validation"].measured_ms, after["validation"].correction,
                 after["summary"], results_dir(published_run()) / "bench_lut.png")

    def column(metric):
        return [metric(t) for t in tables.values()]

    rows = [
        ["LUT keys measured", *column(lambda t: t["card"]["n_entries"])],
        ["depthwise forms timed per 7x7 key", "plain", ", ".join(FORMS)],
        ["fastest form of the 7x7 keys", "plain (only one)", ", ".join(f"{f} {n}" for f, n in chosen.most_common())],
        ["LUT build time (s)", *column(lambda t: round(t["lut_seconds"], 1))],
        ["subnets validated (exported in the table's forms)", *column(lambda t: t["summary"]["n"])],
        ["measured latency range (ms)", *column(
            lambda t: f"{t['validation'].measured_ms.min():.2f}–{t['validation'].measured_ms.max():.2f}")],
        ["mean measured latency (ms)", *column(lambda t: round(float(t["validation"].measured_ms.mean()), 3))],
        ["Pearson r (LUT sum vs measured)", *column(lambda t: round(t["summary"]["pearson_r"], 4))],
        ["Spearman ρ", *column(lambda t: round(t["summary"]["spearman_rho"], 4))],
        ["MAPE, raw LUT sum (%)", *column(lambda t: round(t["summary"]["mape_pct"], 2))],
        ["bias, raw LUT sum (%)", *column(lambda t: round(t["summary"]["bias_pct"], 2))],
        ["MAPE after correction, in-sample (%)", *column(lambda t: round(t["summary"]["mape_corrected_pct"], 2))],
        ["MAPE after correction, leave-one-out (%)", *column(lambda t: round(t["summary"]["mape_corrected_loo_pct"], 2))],
        ["correction: scale", *column(lambda t: round(t["summary"]["correction"]["scale"], 4))],
        ["correction: offset (ms)", *column(lambda t: round(t["summary"]["correction"]["offset"], 4))],
    ]
    ratio = float(tables["after"]["validation"].measured_ms.mean() / tables["before"]["validation"].measured_ms.mean())
    path = write_results(
        "bench_lut",
        f"Host LUT (LiteRT, XNNPACK, 1 thread, {clock} clock): OFA-MobileNetV3 w{width_mult} at {resolution} px, "
        "before / after timing each 7x7 key in every depthwise form",
        ["metric", "before: plain forms", "after: fastest form per key"],
        rows,
        {
            "settings": settings.to_dict(),
            "validate_seconds": {name: round(t["validate_seconds"], 1) for name, t in tables.items()},
            "ratios": {"mean measured latency of the same subnets, after / before": round(ratio, 4)},
            "goal": f"MAPE <= {GOAL_MAPE_PCT}% after correction (leave-one-out)",
            "goal_met": {name: t["summary"]["mape_corrected_loo_pct"] <= GOAL_MAPE_PCT for name, t in tables.items()},
            "plot": "bench_lut.png (after)",
        },
        published=published_run(),
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
