"""How fast does the full network learn in a short schedule? Teacher-phase probes for the main job's preset.

Each setting trains `--preset cifar` (in this process) with only a teacher phase (the
full network, no KD) for --epochs at one resolution, varying the base LR (per
64 images), the batch size and the crop's lower area bound, then reads its
end-of-phase top-1 (test split, trained BN statistics) and median images/s from
the run folder. Resumable: a run folder under --work whose config.json equals
the setting's is reused. The full network is the official depth-4 one (the
probes that chose the preset; the preset now stops at depth 3). Writes benchmarks/results/teacher_probe.{json,md}.

    python benchmarks/teacher_probe.py --work /tmp/teacher_probe
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_results  # noqa: E402

from ofa_tf.training.config import apply_overrides  # noqa: E402
from ofa_tf.training.presets import cifar_preset
from ofa_tf.training.trainer import ProgressiveShrinkingTrainer  # noqa: E402

# label: (base LR per 64 images, batch size, crop lower bound)
SETTINGS = {
    "lr0.05_b64_crop0.35": (0.05, 64, 0.35),
    "lr0.05_b32_crop0.35": (0.05, 32, 0.35),
    "lr0.15_b64_crop0.35": (0.15, 64, 0.35),
    "lr0.05_b64_crop0.8": (0.05, 64, 0.8),
    "lr0.05_b32_crop0.8": (0.05, 32, 0.8),
    "lr0.025_b32_crop0.8": (0.025, 32, 0.8),
}


def setting_config(lr: float, batch: int, crop: float, epochs: float, resolution: int, width_mult: float, depth: int = 4) -> dict:
    teacher = dict(name="teacher", ks_list=[7], expand_ratio_list=[6], depth_list=[depth], epochs=epochs,
                   warmup_epochs=0, base_lr=lr, subnets_per_step=1, kd=False)
    return dict(width_mult=width_mult, depth_list=list(range(2, depth + 1)), resolutions=[resolution], eval_resolutions=[resolution], holdout_images=1000,
                batch_size=batch, crop_scale=[crop, 1.0], phases=[teacher])


def matches(run_dir: Path, overrides: dict) -> bool:
    """Whether `run_dir` holds a finished run of exactly these overrides."""
    if not (run_dir / "phase_results.json").is_file():
        return False
    config = json.loads((run_dir / "config.json").read_text())
    phase = config["phases"][0]
    wanted = overrides["phases"][0]
    return (
        config["width_mult"] == overrides["width_mult"]
        and config["batch_size"] == overrides["batch_size"]
        and config["crop_scale"] == overrides["crop_scale"]
        and config["resolutions"] == overrides["resolutions"]
        and config["choices"]["d"] == overrides["depth_list"]
        and config["holdout_images"] == overrides["holdout_images"]
        and len(config["phases"]) == 1
        and all(phase[key] == value for key, value in wanted.items() if key != "name")
    )


def run_setting(label: str, overrides: dict, work: Path) -> dict:
    run_dir = work / label
    seconds = None
    if not matches(run_dir, overrides):
        if run_dir.exists():
            raise SystemExit(f"{run_dir} holds another run: remove it or pick another --work")
        started = time.perf_counter()
        ProgressiveShrinkingTrainer(apply_overrides(cifar_preset(), overrides), run_dir).run()
        seconds = round(time.perf_counter() - started, 1)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    speeds = [r["images_per_second"] for r in rows if r["event"] == "step" and r["images_per_second"] > 0]
    top1 = json.loads((run_dir / "phase_results.json").read_text())[0]["top1"]
    return {"top1": round(top1, 2), "images_per_second": round(statistics.median(speeds), 1), "wall_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/teacher_probe", help="folder of the runs (resumable)")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--resolution", type=int, default=48)
    parser.add_argument("--width-mult", type=float, default=0.5)
    parser.add_argument("--depth", type=int, default=4, help="blocks per stage of the full network (a smoke run uses 2)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated labels of SETTINGS")
    args = parser.parse_args()
    labels = args.settings.split(",")
    unknown = sorted(set(labels) - set(SETTINGS))
    if unknown:
        raise SystemExit(f"unknown settings {unknown}: choose from {list(SETTINGS)}")
    results, rows = {}, []
    for label in labels:
        lr, batch, crop = SETTINGS[label]
        result = run_setting(label, setting_config(lr, batch, crop, args.epochs, args.resolution, args.width_mult, args.depth), Path(args.work))
        results[label] = result
        rows.append([lr, batch, crop, result["top1"], result["images_per_second"]])
        print(label, result, flush=True)
    published = vars(args) == {**vars(parser.parse_args([])), "work": args.work}
    write_results(
        "teacher_probe",
        f"Full network alone, {args.epochs:g} epochs at {args.resolution} px (bundled data, seed 0, test top-1 %)",
        ["base LR / 64 images", "batch", "crop min area", "top-1 %", "images/s (median step)"],
        rows,
        {"results": results, "setup": f"ofa-tf train --preset cifar, teacher phase only, w{args.width_mult:g}, depth {args.depth}, hold-out 1000, "
                                      "no warm-up, cosine LR; wall_seconds null = run reused from --work"},
        published=published,
    )


if __name__ == "__main__":
    main()
