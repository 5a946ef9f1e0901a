"""Small-scale replication of the paper's central claims on the bundled CIFAR-10 subset.

For each seed, in one run on this machine:
  - PS: a supernet trained with progressive shrinking + KD: the `--preset cifar`
    teacher phase, then the reference's phases in its proportions to the
    teacher (180 teacher epochs: kernel 120+5, depth 25 and 120+5, expand 25
    and 120+5; learning rates relative to the kernel phase's 1, 1/12, 1/4);
  - naive: the same supernet, schedule length and data, every dimension elastic
    from the first step, no teacher and no KD;
and for three subnets (smallest, middle, largest at the preset's largest
evaluation resolution):
  (a) PS: top-1 as extracted from the PS supernet (after BN recalibration),
  (b) PS + a short KD fine-tune (teacher: the PS supernet's largest subnet),
  (c) the same architecture trained from scratch for the teacher's epochs,
  (d) naive: top-1 from the naive supernet (after BN recalibration).
Runs are resumable (training runs and finished seeds live under --work). Writes
benchmarks/results/replicate_cifar.{json,md,png} (`--lr-scale S`: replicate_cifar_lr_scaleS.*).

    python benchmarks/replicate_cifar.py --seeds 0,1,2 --work /tmp/replicate
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_results  # noqa: E402

from ofa_tf.io import atomic_save_figure, atomic_write_json  # noqa: E402

from ofa_tf.data.sources import open_source  # noqa: E402
from ofa_tf.supernet.extract import extract_subnet
from ofa_tf.families.mbconv.network import OFAMobileNetV3
from ofa_tf.supernet.storage import load_supernet
from ofa_tf.supernet.counting import count_macs
from ofa_tf.families.mbconv.space import SubnetConfig
from ofa_tf.training.config import PhaseConfig, apply_overrides  # noqa: E402
from ofa_tf.training.presets import cifar_preset
from ofa_tf.training.evaluation import SubnetEvaluator  # noqa: E402
from ofa_tf.training.finetune import FinetuneConfig, finetune, keras_top1  # noqa: E402
from ofa_tf.training.trainer import ProgressiveShrinkingTrainer  # noqa: E402

RESOLUTION = max(cifar_preset().eval_resolutions)
# The reference's phases after the teacher: (epochs, warm-up epochs, LR relative to the kernel phase)
# per 180 teacher epochs (train_ofa_net.py).
PAPER_TEACHER_EPOCHS = 180
PAPER_PHASES = {
    "kernel": (120, 5, 1.0),
    "depth_1": (25, 0, 1 / 12),
    "depth_2": (120, 5, 1 / 4),
    "depth": (120, 5, 1 / 4),  # one phase where the depth list has two choices (depth_1 would repeat it)
    "expand_1": (25, 0, 1 / 12),
    "expand_2": (120, 5, 1 / 4),
}
SUBNETS = ("small", "medium", "large")
METHODS = ("PS (extracted)", "PS + KD fine-tune", "from scratch", "naive (no PS, no KD)")
# OFA's premise, per seed: the largest subnet trained alone beats the smallest one trained alone; the
# from-scratch runs' top-1 on training images (eval transform) tells under- from over-fitting.
SCRATCH_TRAIN = "from scratch, top-1 on 1,000 training images"
TRAIN_SAMPLE = 1000


def ps_config(seed: int, lr_scale: float = 1.0, teacher_epochs: float | None = None, width_mult: float | None = None):
    """The cifar preset's teacher phase, then the reference's phases in its proportions; LRs x `lr_scale`."""
    preset = apply_overrides(cifar_preset(), {"seed": seed, **({"width_mult": width_mult} if width_mult else {})})
    teacher = preset.phases[0]
    teacher = dataclasses.replace(teacher, epochs=teacher_epochs or teacher.epochs, base_lr=teacher.base_lr * lr_scale)
    scale = (teacher.epochs + teacher.warmup_epochs) / PAPER_TEACHER_EPOCHS
    phases = [teacher]
    for phase in preset.phases[1:]:
        epochs, warmup, lr = PAPER_PHASES[phase.name]
        phases.append(dataclasses.replace(phase, epochs=epochs * scale, warmup_epochs=warmup * scale, base_lr=teacher.base_lr * lr))
    return dataclasses.replace(preset, phases=tuple(phases))


def total_epochs(config) -> float:
    """Epochs of a whole training run, warm-up included: the budget of the naive and from-scratch runs."""
    return sum(p.epochs + p.warmup_epochs for p in config.phases)


def naive_config(ps):
    """All dimensions elastic from the start, no KD, the PS run's total epochs, 2 subnets per step."""
    phase = PhaseConfig("naive", dict(ps.choices), total_epochs(ps), 0, ps.phases[0].base_lr, 2, kd=False)
    return dataclasses.replace(ps, phases=(phase,), kd_ratio=0.0)


def train(config, run_dir: Path) -> OFAMobileNetV3:
    """Trains (or resumes, or reuses) the run in `run_dir`; a folder of another configuration is refused."""
    saved = run_dir / "config.json"
    if saved.is_file() and json.loads(saved.read_text())["phases"] != json.loads(config.to_json())["phases"]:
        raise SystemExit(f"{run_dir} holds a run of another schedule: remove it or pick another --work")
    if not (run_dir / "supernet" / "supernet.json").is_file():
        ProgressiveShrinkingTrainer(config, run_dir).run()
    return load_supernet(run_dir / "supernet")


def subnets(net) -> dict[str, SubnetConfig]:
    space = net.space
    middle = SubnetConfig((5,) * space.n_blocks, (4,) * space.n_blocks, (3,) * space.n_stages, RESOLUTION)
    return {"small": space.min_config(RESOLUTION), "medium": middle, "large": space.max_config(RESOLUTION)}


def evaluator(net, source, config):
    images = source.recalibration_images(config.bn_recalibration_images, seed=config.seed)
    return SubnetEvaluator(net, images, config.bn_recalibration_batch, config.seed, config.crop_scale)


def run_seed(seed: int, work: Path, finetune_epochs: float, config) -> dict[str, dict[str, float]]:
    """The table rows of one seed; cached in `work/rows_seed{seed}.json` (a rerun reuses them)."""
    cache = work / f"rows_seed{seed}.json"
    if cache.is_file():
        rows = json.loads(cache.read_text())
        if rows.get("schedule") == json.loads(config.to_json())["phases"]:
            return rows
    start = time.perf_counter()
    rows = measure_seed(seed, work, finetune_epochs, config)
    rows["seconds"] = round(time.perf_counter() - start, 1)
    rows["schedule"] = json.loads(config.to_json())["phases"]
    atomic_write_json(cache, rows)
    return rows


def measure_seed(seed: int, work: Path, finetune_epochs: float, config) -> dict[str, dict[str, float]]:
    source, _ = open_source(None).split_holdout(config.holdout_images, seed)
    test = source.test_examples()
    start = time.perf_counter()
    ps_net = train(config, work / f"ps_seed{seed}")
    naive_net = train(naive_config(config), work / f"naive_seed{seed}")
    print(f"seed {seed}: supernets ready ({time.perf_counter() - start:.0f} s)", flush=True)
    ps_eval, naive_eval = evaluator(ps_net, source, config), evaluator(naive_net, source, config)
    rows = {}
    for name, subnet in subnets(ps_net).items():
        row = {"macs": count_macs(subnet, space=ps_net.space)}
        row[METHODS[0]] = ps_eval.top1(subnet, RESOLUTION, test)
        ps_eval.recalibrate(subnet, RESOLUTION)
        model = extract_subnet(ps_net, subnet)
        ps_eval.recalibrate(ps_net.space.max_config(), RESOLUTION)
        teacher = extract_subnet(ps_net, ps_net.space.max_config(RESOLUTION))
        tune = FinetuneConfig(epochs=finetune_epochs, base_lr=0.005, crop_scale=config.crop_scale, seed=seed)
        finetune(model, teacher, source.train_examples(), source.n_train, tune)
        row[METHODS[1]] = keras_top1(model, test)
        fresh = OFAMobileNetV3(width_mult=config.width_mult, depth_list=config.choices["d"], n_classes=source.n_classes,
                               dropout_rate=config.dropout_rate)
        fresh.build((None, None, None, 3))
        scratch = extract_subnet(fresh, subnet)
        scratch_config = FinetuneConfig(
            epochs=config.phases[0].epochs, base_lr=config.phases[0].base_lr * config.batch_size / 64, kd_ratio=0.0,
            crop_scale=config.crop_scale, seed=seed, batch_size=config.batch_size,
        )
        finetune(scratch, None, source.train_examples(), source.n_train, scratch_config)
        row[METHODS[2]] = keras_top1(scratch, test)
        row[SCRATCH_TRAIN] = keras_top1(scratch, source.train_examples().take(TRAIN_SAMPLE))
        row[METHODS[3]] = naive_eval.top1(subnet, RESOLUTION, test)
        rows[name] = row
        print(f"seed {seed} {name}: {row}", flush=True)
    return rows


def phase_top1(run_dir: Path) -> dict[str, dict[str, float]]:
    """Top-1 at RESOLUTION of the min / mid / max subnets after each phase of a training run."""
    rows = json.loads((run_dir / "phase_results.json").read_text())
    table: dict[str, dict[str, float]] = {}
    for row in rows:
        if row["resolution"] == RESOLUTION:
            table.setdefault(row["phase"], {})[row["subnet"]] = round(row["top1"], 2)
    return table


def summarize(per_seed: dict[int, dict], seeds: list[int]) -> tuple[list[list[str]], dict]:
    """Table rows (mean ± sample std over seeds) and the PS-vs-anchor differences."""
    table = []
    for name in SUBNETS:
        cells = [name, f"{per_seed[seeds[0]][name]['macs'] / 1e6:.2f}"]
        for method in (*METHODS, SCRATCH_TRAIN):
            values = np.array([per_seed[s][name][method] for s in seeds])
            cells.append(f"{values.mean():.2f} ± {values.std(ddof=1):.2f}" if len(seeds) > 1 else f"{values[0]:.2f}")
        table.append(cells)
    differences = {}
    for method in METHODS[1:]:
        diff = np.array([per_seed[s][n][METHODS[0]] - per_seed[s][n][method] for s in seeds for n in SUBNETS])
        differences[f"PS - {method}"] = {
            "mean_points": round(float(diff.mean()), 2),
            "std_points": round(float(diff.std(ddof=1)), 2) if diff.size > 1 else None,
            "PS_at_least_as_good": f"{int((diff >= 0).sum())}/{diff.size}",
        }
    premise = np.array([per_seed[s]["large"][METHODS[2]] - per_seed[s]["small"][METHODS[2]] for s in seeds])
    differences["premise: large - small, both from scratch"] = {
        "mean_points": round(float(premise.mean()), 2),
        "std_points": round(float(premise.std(ddof=1)), 2) if premise.size > 1 else None,
        "holds": f"{int((premise > 0).sum())}/{premise.size}",
    }
    return table, differences


def plot(per_seed: dict[int, dict], seeds: list[int], lr_scale: float, path: Path) -> None:
    """Grouped bars: mean top-1 per subnet and method, error bars = sample std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7.5, 4.2))
    width = 0.8 / len(METHODS)
    for i, method in enumerate(METHODS):
        values = np.array([[per_seed[s][n][method] for s in seeds] for n in SUBNETS])
        errors = values.std(axis=1, ddof=1) if len(seeds) > 1 else None
        axis.bar(np.arange(len(SUBNETS)) + (i - 1.5) * width, values.mean(axis=1), width, yerr=errors, capsize=3,
                 label=method)
    axis.set_xticks(range(len(SUBNETS)), [f"{n}\n{per_seed[seeds[0]][n]['macs'] / 1e6:.2f} MMACs" for n in SUBNETS])
    axis.set_ylabel("test top-1 (%)")
    scale = "" if lr_scale == 1.0 else f", learning rates x{lr_scale:g}"
    axis.set_title(f"bundled CIFAR-10 subset, {RESOLUTION} px, seeds {','.join(map(str, seeds))}{scale}")
    axis.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    figure.tight_layout()
    atomic_save_figure(figure, path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--work", default="/tmp/ofa_tf_replicate", help="folder of the training runs (resumable)")
    parser.add_argument("--finetune-epochs", type=float, default=1.0)
    parser.add_argument("--lr-scale", type=float, default=1.0,
                        help="multiplies every learning rate of the PS, naive and from-scratch training (not the fine-tune)")
    parser.add_argument("--teacher-epochs", type=float, default=None, help="default: the preset's (PS phases follow)")
    parser.add_argument("--width-mult", type=float, default=None, help="default: the preset's")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    name = "replicate_cifar" if args.lr_scale == 1.0 else f"replicate_cifar_lr_scale{args.lr_scale:g}"
    work = Path(args.work) if args.lr_scale == 1.0 else Path(args.work) / f"lr_scale{args.lr_scale:g}"
    configs = {seed: ps_config(seed, args.lr_scale, args.teacher_epochs, args.width_mult) for seed in seeds}
    start = time.perf_counter()
    per_seed = {seed: run_seed(seed, work, args.finetune_epochs, configs[seed]) for seed in seeds}
    table, differences = summarize(per_seed, seeds)
    config = configs[seeds[0]]
    schedule = ", ".join(f"{p.name} {p.warmup_epochs + p.epochs:.2f} ep @ {p.base_lr:.4g}" for p in config.phases)
    extra = {
        "seeds": seeds,
        "cells": "mean ± sample standard deviation over the seeds" if len(seeds) > 1 else "one seed",
        "differences": differences,
        "per_seed": per_seed,
        "supernet_top1_after_each_phase": {
            seed: {kind: phase_top1(work / f"{kind}_seed{seed}") for kind in ("ps", "naive")} for seed in seeds
        },
        "setup": f"bundled CIFAR-10 subset (hold-out {config.holdout_images}), width {config.width_mult:g}, "
                 f"{config.resolutions} px training, batch {config.batch_size}, evaluation at {RESOLUTION} px; "
                 f"PS: {schedule}; naive: {total_epochs(config):.2f} epochs; from scratch: {config.phases[0].epochs:g} "
                 f"epochs; learning rates x{args.lr_scale:g}",
        "seconds_per_seed": {seed: per_seed[seed].get("seconds") for seed in seeds},
        "seconds_this_invocation": round(time.perf_counter() - start, 1),
    }
    published = args.teacher_epochs is None and args.width_mult is None and args.finetune_epochs == 1.0
    path = write_results(
        name, "OFA claims on the bundled CIFAR-10 subset (top-1 %, test split)",
        ["subnet", "MMACs", *METHODS, SCRATCH_TRAIN], table, extra, published=published,
    )
    plot(per_seed, seeds, args.lr_scale, path.with_suffix(".png"))
    print(path.read_text())


if __name__ == "__main__":
    main()
