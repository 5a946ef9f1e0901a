"""The README's main job run as a new user runs it, timed stage by stage, then its artifacts measured.

Clones this repository (its committed state) into --work, creates a fresh venv
there (no system site packages), and runs the README's first command split at
`&&` into stages, each timed. Then, in the same venv: exports the subnet it exports to int8
as fp32 TFLite too (the README exports int8) and times both `.tflite` files on
this CPU with `ofa-tf bench model --device host`. Records the wall time of each
stage, the predictor's RMSE and Kendall's tau, each specialized subnet's MACs
and predicted / measured top-1, and top-1 of the Keras, TFLite fp32 and int8
models. Writes benchmarks/results/end_to_end.{json,md,log}.

    python benchmarks/end_to_end.py --work /tmp/e2e
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import RESULTS_DIR, write_results  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RUN = "runs/cifar"


def extra_stages(main_command: str) -> list[str]:
    """The subnet the README exports to int8, exported to fp32 too, and both timed on the host."""
    match = re.search(r"ofa-tf export (\S+) .*--quantize int8", main_command)
    if match is None:
        raise SystemExit("the README's main command exports no int8 subnet")
    return [
        f"ofa-tf export {match.group(1)} --tflite --quantize none --out {RUN}/subnet_fp32.tflite",
        f"ofa-tf bench model {RUN}/subnet_fp32.tflite --device host --num-threads 1 --num-runs 200 --json {RUN}/latency_fp32.json",
        f"ofa-tf bench model {RUN}/subnet_int8.tflite --device host --num-threads 1 --num-runs 200 --json {RUN}/latency_int8.json",
    ]


def readme_main_command(readme: Path) -> str:
    """The first ```bash block of the README: the main job."""
    match = re.search(r"```bash\n(.+?)\n```", readme.read_text(), re.S)
    if match is None:
        raise SystemExit(f"{readme} has no ```bash block")
    return match.group(1).strip()


def run_stage(command: str, cwd: Path, env: dict[str, str], log) -> float:
    """Runs one shell stage, streaming its output to stdout and the log; returns its wall seconds."""
    log.write(f"\n$ {command}\n")
    log.flush()
    print(f"$ {command}", flush=True)
    start = time.perf_counter()
    process = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        sys.stdout.write(line)
        log.write(line)
    seconds = time.perf_counter() - start
    log.write(f"[{seconds:.1f} s, exit {process.wait()}]\n")
    if process.returncode:
        raise SystemExit(f"stage failed (exit {process.returncode}): {command}")
    return seconds


def fresh_checkout(work: Path) -> tuple[Path, dict[str, str]]:
    """A clean clone of the committed repository with an empty venv; returns (clone, env using the venv)."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    clone = work / "ofa-tf"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env["VIRTUAL_ENV"] = str(work / "venv")
    env["PATH"] = f"{work / 'venv' / 'bin'}:{env['PATH']}"
    return clone, env


def artifact_figures(clone: Path) -> dict:
    """Accuracies and latencies read from the files the stages wrote."""
    run = clone / RUN
    read = lambda path: json.loads((clone / path).read_text())  # noqa: E731
    subnets = {}
    for folder in sorted((run / "specialized").iterdir()):
        if (folder / "subnet.json").is_file():
            summary = json.loads((folder / "subnet.json").read_text())
            subnets[folder.name] = {key: summary[key] for key in ("macs", "params", "resolution", "predicted_top1", "measured_top1")}
    exports = {name: read(f"{RUN}/subnet_{name}.json")["validation"] for name in ("fp32", "int8")}
    latency = {name: read(f"{RUN}/latency_{name}.json") for name in ("fp32", "int8")}
    return {
        "predictor": read(f"{RUN}/predictor/accuracy_predictor.json")["metrics"],
        "specialized": subnets,
        "exports": {name: {key: report[key] for key in ("images", "keras_top1", "tflite_top1", "agreement", "file_bytes")}
                    for name, report in exports.items()},
        "host_latency_ms": {name: {key: value[key] for key in ("mean_ms", "median_ms", "std_ms", "count")}
                            for name, value in latency.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/ofa_tf_end_to_end", help="scratch folder (emptied first)")
    args = parser.parse_args()
    clone, env = fresh_checkout(Path(args.work))
    commit = subprocess.check_output(["git", "-C", str(clone), "rev-parse", "HEAD"], text=True).strip()
    main_command = readme_main_command(clone / "README.md")
    extra_commands = extra_stages(main_command)
    stages = main_command.split(" && ") + extra_commands
    times = []
    with open(RESULTS_DIR / "end_to_end.log", "w") as log:
        log.write(f"clean clone of {commit}\n")
        for stage in stages:
            times.append(run_stage(stage, clone, env, log))
    figures = artifact_figures(clone)
    rows = [[f"`{stage}`", f"{seconds:.1f}"] for stage, seconds in zip(stages, times)]
    readme_seconds = sum(times[: len(stages) - len(extra_commands)])
    rows.append(["README main command, total", f"{readme_seconds:.1f}"])
    latency = figures["host_latency_ms"]
    extra = {
        "readme_command_seconds": round(readme_seconds, 1),
        "ratios": {"int8 / fp32 host latency (median, 1 thread)":
                   round(latency["int8"]["median_ms"] / latency["fp32"]["median_ms"], 3)},
        **figures,
        "commit": commit,
    }
    path = write_results("end_to_end", "README main job in a fresh venv from a clean clone (wall time per stage)",
                         ["stage", "seconds"], rows, extra)
    print(path.read_text())


if __name__ == "__main__":
    main()
