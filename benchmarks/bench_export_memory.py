"""Peak resident memory and wall time of `ofa-tf export` per mode, at 224 px, on the subnets that ran out of memory.

Two subnets of OFA-MobileNetV3 (random weights, 10 classes so that the export
runs on the bundled CIFAR-10 images): w1.0 with every kernel 7x7, expand 4,
depth 3 (killed by the OOM killer at 24.2 GB before the export was bounded)
and the largest w1.2 subnet (7x7, expand 6, depth 4). Each mode runs as its own
`ofa-tf export` child process; its peak resident set is the one the export
records in its JSON (`peak_memory_gb`, its own VmHWM: a child's `ru_maxrss`
carries this process's peak across exec), its wall time the child's. Every mode runs with
`--latency-only` (random weights: no top-1 to check) and, apart from the
latency-only rows, with 500 validation images, so the memory is that of a
trained model's export. Goal (issue 33): <= 4 GB peak for every mode, and
<= 90 s for `--latency-only`.

    python benchmarks/bench_export_memory.py [--modes latency-only,int8] [--subnets max_w12]

Resumable: each finished export is kept in `--work` and not run again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import published_run, write_results  # noqa: E402

GOAL_GB = 4.0
GOAL_LATENCY_ONLY_S = 90.0
N_CLASSES = 10  # the bundled data's
SUBNETS = {"k7e4d3_w10": (1.0, 4, 3), "max_w12": (1.2, 6, 4)}  # name -> width, expand, depth (all 7x7)
# mode -> `ofa-tf export` options (all with --latency-only)
MODES = {
    "latency-only": [],
    "latency-only plain": ["--depthwise-large", "plain"],
    "fp32": ["--validate-images", "500"],
    "fp32 plain": ["--validate-images", "500", "--depthwise-large", "plain"],
    "fp16": ["--quantize", "fp16", "--validate-images", "500"],
    "int8": ["--quantize", "int8", "--validate-images", "500", "--calibration-samples", "300"],
    "int8 plain": ["--quantize", "int8", "--validate-images", "500", "--calibration-samples", "300",
                   "--depthwise-large", "plain"],
    # plain: tensorflow-model-optimization cannot quantize the split forms' batch norms; 10 steps of 16 images
    "int8 QAT": ["--quantize", "int8", "--validate-images", "500", "--qat-epochs", "1", "--qat-max-steps", "10",
                 "--depthwise-large", "plain", "--qat-batch-size", "16"],
}
# the killed subnet runs every mode; the largest one the modes with a goal (a 224 px int8 export takes minutes)
MATRIX = {"k7e4d3_w10": list(MODES), "max_w12": ["latency-only", "fp32", "int8"]}


def _save_subnets(folder: Path, names: list[str], resolution: int) -> dict[str, float]:
    """Saves each subnet as `<name>.keras` (once); name -> its MMACs."""
    import ofa_tf

    macs = {}
    for name in names:
        width, expand, depth = SUBNETS[name]
        net = ofa_tf.OFAMobileNetV3(width_mult=width, n_classes=N_CLASSES)
        net.build((None, None, None, 3))
        net.set_active_subnet(ks=7, e=expand, d=depth)
        config = net.active_config.with_resolution(resolution)
        macs[name] = ofa_tf.count_macs(config, resolution=resolution, space=net.space) / 1e6
        path = folder / f"{name}.keras"
        if not path.exists():
            ofa_tf.extract_subnet(net, config).save(folder / f"{name}.tmp.keras")
            os.replace(folder / f"{name}.tmp.keras", path)
    return macs


def _export(model: Path, options: list[str], out: Path, log: Path) -> dict:
    """Runs `ofa-tf export` as a child process; its peak RSS (GB), wall time (s), exit code and shipped form."""
    command = [sys.executable, "-m", "ofa_tf.cli", "export", str(model), "--latency-only", *options, "--out", str(out)]
    start = time.perf_counter()
    with log.open("w") as output:
        code = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    meta = json.loads(out.with_suffix(".json").read_text()) if code == 0 else {}
    form = (meta.get("depthwise_large_kernels") or {"form": "plain"})["form"] if code == 0 else None
    return {"peak_gb": meta.get("peak_memory_gb"), "wall_s": round(wall, 1), "exit_code": code, "form": form,
            "last_line": (log.read_text().strip().splitlines() or [""])[-1][-200:]}


@click.command()
@click.option("--resolution", default=224, show_default=True)
@click.option("--subnets", "subnet_names", default=",".join(SUBNETS), show_default=True)
@click.option("--modes", "mode_names", default=None, help="Comma-separated (default: each subnet's in MATRIX).")
@click.option("--work", type=click.Path(), default="benchmarks/results/custom/export_memory", show_default=True,
              help="Keeps the subnets and each finished export (a rerun skips them).")
def main(resolution: int, subnet_names: str, mode_names: str, work: str):
    names = subnet_names.split(",")
    matrix = {name: mode_names.split(",") if mode_names else MATRIX[name] for name in names if name in SUBNETS}
    unknown = sorted(set(names) - set(SUBNETS)) + sorted({m for modes in matrix.values() for m in modes} - set(MODES))
    if unknown:
        raise click.UsageError(f"unknown subnet or mode {', '.join(unknown)}: choose from {', '.join([*SUBNETS, *MODES])}")
    folder = Path(work) / f"r{resolution}"
    folder.mkdir(parents=True, exist_ok=True)
    macs = _save_subnets(folder, names, resolution)
    results = {}
    for name, modes in matrix.items():
        for mode in modes:
            slug = f"{name}__{mode.replace(' ', '_')}"
            done = folder / f"{slug}.result.json"
            if not done.exists():
                result = _export(folder / f"{name}.keras", MODES[mode], folder / f"{slug}.tflite", folder / f"{slug}.log")
                done.write_text(json.dumps(result))
            results[(name, mode)] = json.loads(done.read_text())
            r = results[(name, mode)]
            print(f"{name} {mode}: {r['peak_gb']} GB, {r['wall_s']} s, exit {r['exit_code']}, form {r['form']}", flush=True)
    rows, met = [], True
    for (name, mode), r in results.items():
        limit_s = GOAL_LATENCY_ONLY_S if mode.startswith("latency-only") else None
        ok = r["exit_code"] == 0 and r["peak_gb"] <= GOAL_GB and (limit_s is None or r["wall_s"] <= limit_s)
        met &= ok
        rows.append([name, f"{macs[name]:.1f}", mode, " ".join(MODES[mode]) or "(defaults)", r["form"] or r["last_line"],
                     r["peak_gb"], r["wall_s"], "yes" if ok else "NO"])
    path = write_results(
        "bench_export_memory",
        f"`ofa-tf export --latency-only` peak memory and wall time per mode ({resolution} px, child processes)",
        ["subnet", "MMACs", "mode", "options", "form shipped", "peak RSS GB", "wall s", "within goal"],
        rows,
        {"goal": f"<= {GOAL_GB} GB peak per mode; <= {GOAL_LATENCY_ONLY_S:.0f} s with --latency-only",
         "goal_met": met, "weights": "random (10 classes); memory does not depend on the weights"},
        published=published_run() and resolution == 224,
    )
    print(f"goal met: {met}\nresults: {path}")


if __name__ == "__main__":
    main()
