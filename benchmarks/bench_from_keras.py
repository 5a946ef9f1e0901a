"""Your own network made elastic: a Keras MobileNetV2-0.35 on the bundled CIFAR-10, trained, converted, shrunk.

In one run on this machine (each step resumable: its outputs under --work are reused):
  1. the user's model: `keras.applications.MobileNetV2(alpha=0.35, weights=None, classes=10)` at
     56 px, trained on its own for the main job's teacher budget (the cifar preset's teacher phase:
     6 epochs, 40-56 px, batch 32) and saved as a `.keras` of stock layers;
  2. made elastic: `ofa-tf supernet from-keras model.keras --inputs torch` (its largest subnet is the
     model), then progressive shrinking with the model as the teacher (`train --init --teacher`, the
     cifar preset's depth and expand phases; its kernels are all 3x3, so there is no kernel phase);
  3. `predictor build/train` and `specialize` at three MAC budgets (the main job's chain);
  4. from scratch (the replication's method, benchmarks/replicate_cifar.py): each specialized
     architecture, randomly initialized, trained alone for the teacher's epochs and learning rate;
  5. host latency (LiteRT, 1 thread) of each specialized subnet's int8 export, and of the model's.
Writes benchmarks/results/bench_from_keras.{json,md} after each seed (`--smoke`: tiny step counts, written elsewhere).

    python benchmarks/bench_from_keras.py --seeds 0,1,2 --work /tmp/bench_from_keras
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import ofa_tf_once as _ofa_tf, write_results  # noqa: E402

RESOLUTION = 56  # the cifar preset's largest training and evaluation resolution
BUDGETS = ("2.0M-MACs", "2.8M-MACs", "3.6M-MACs")  # the model: 4.18M MACs at 56 px, its smallest subnet 1.56M at 40 px


def _random_model(path: Path, seed: int) -> None:
    from ofa_tf._backend import keras

    if not path.is_file():
        keras.utils.set_random_seed(seed)
        keras.applications.MobileNetV2(
            alpha=0.35, weights=None, input_shape=(RESOLUTION, RESOLUTION, 3), classes=10, classifier_activation=None
        ).save(path)


def _trained_model(run: Path, path: Path) -> None:
    """The largest subnet of the teacher run: the user's model, trained, as a `.keras` of stock layers."""
    from ofa_tf.io import atomic_save_model
    from ofa_tf.supernet.extract import extract_subnet
    from ofa_tf.supernet.storage import load_supernet

    if not path.is_file():
        net = load_supernet(run / "supernet")
        model = extract_subnet(net, net.space.max_config(RESOLUTION), name="mobilenetv2_0.35_cifar")
        atomic_save_model(model, path)


def _from_scratch(work: Path, folder: Path, teacher_epochs: float, teacher_lr: float, batch: int, crop: tuple, seed: int) -> float:
    """Top-1 of the specialized architecture in `folder`, randomly initialized and trained alone."""
    from ofa_tf._backend import keras
    from ofa_tf.data.sources import open_source
    from ofa_tf.elastic import from_keras, load_keras_model
    from ofa_tf.supernet.extract import extract_subnet
    from ofa_tf.training.finetune import FinetuneConfig, finetune, keras_top1

    done = work / f"scratch_{folder.name}.json"
    if not done.is_file():
        summary = json.loads((folder / "subnet.json").read_text())
        fresh = from_keras(load_keras_model(work / "random.keras"), inputs="torch")
        config = fresh.space.config_from_dict(summary["config"])
        config = config.with_resolution(config.resolution or RESOLUTION)
        keras.utils.set_random_seed(seed)
        model = extract_subnet(fresh, config)
        source, _ = open_source(None).split_holdout(1000, 0)
        tune = FinetuneConfig(epochs=teacher_epochs, base_lr=teacher_lr * batch / 64, kd_ratio=0.0, crop_scale=crop, batch_size=batch,
                              seed=seed)
        finetune(model, None, source.train_examples(), source.n_train, tune)
        done.write_text(json.dumps({"top1": keras_top1(model, source.test_examples())}))
    return float(json.loads(done.read_text())["top1"])


def _latency_ms(work: Path, name: str, target) -> tuple[float, float]:
    """(int8 top-1 on the test split, host latency in ms) of a .keras model or a specialized folder."""
    tflite = work / f"{name}_int8.tflite"
    _ofa_tf(work, f"{name}_export", "export", target, "--tflite", "--quantize", "int8", "--out", tflite)
    _ofa_tf(work, f"{name}_bench", "bench", "model", tflite, "--device", "host", "--num-runs", 200, "--json", work / f"{name}_bench.json")
    measured = json.loads((work / f"{name}_bench.json").read_text())
    validation = json.loads(tflite.with_suffix(".json").read_text())
    top1 = 100 * validation["validation"]["tflite_top1"]
    return top1, measured["mean_ms"]


def _phase_top1(run: Path, phase: str) -> float:
    """Top-1 of the largest subnet at RESOLUTION when `phase` of `run` ended."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [row for r in records if r.get("event") == "evaluation" and r.get("phase") == phase for row in r["rows"]]
    return [row["top1"] for row in rows if row["resolution"] == RESOLUTION and row["subnet"] == "max"][-1]


def run_seed(work: Path, seed: int, smoke: bool) -> dict:
    """Every step for one seed (the model's initialization, the data order, the search, the from-scratch runs)."""
    from ofa_tf.training.presets import cifar_preset

    work.mkdir(parents=True, exist_ok=True)
    preset = cifar_preset()
    teacher = preset.phases[0]
    steps = ["--max-steps", 3] if smoke else []
    seconds = {}
    _random_model(work / "random.keras", seed)
    convert = ("--inputs", "torch", "--resolutions", "40,48,56")
    seconds["convert"] = _ofa_tf(work, "convert_random", "supernet", "from-keras", work / "random.keras", *convert, "--out", work / "random_supernet")
    seconds["own training"] = _ofa_tf(work, "own_training", "train", "--init", work / "random_supernet", "--preset", "cifar",
                                      "--phases", "teacher", "--seed", seed, "--out", work / "own", *steps)
    _trained_model(work / "own", work / "model.keras")
    seconds["convert"] += _ofa_tf(work, "convert", "supernet", "from-keras", work / "model.keras", *convert, "--out", work / "elastic")
    seconds["shrinking"] = _ofa_tf(work, "shrinking", "train", "--init", work / "elastic", "--teacher", work / "elastic", "--preset", "cifar",
                                   "--phases", "depth,expand_1,expand_2", "--seed", seed, "--out", work / "ps", *steps)
    seconds["predictor"] = _ofa_tf(work, "predictor_build", "predictor", "build", "--supernet", work / "ps", "--n-subnets",
                                   12 if smoke else 60, "--bn-images", 500, "--seed", seed)
    seconds["predictor"] += _ofa_tf(work, "predictor_train", "predictor", "train", "--supernet", work / "ps")
    seconds["specialize"] = _ofa_tf(work, "specialize", "specialize", "--supernet", work / "ps", "--budget", ",".join(BUDGETS),
                                    "--bn-images", 500, "--finalists", 6, "--seed", seed, "--out", work / "ps" / "specialized")
    scratch_epochs = 0.05 if smoke else teacher.epochs
    model_int8, model_ms = _latency_ms(work, "model", work / "model.keras")
    result = {
        "model": {"top1": _phase_top1(work / "own", "teacher"), "int8": model_int8, "ms": model_ms},
        "largest after shrinking": {"top1": _phase_top1(work / "ps", "expand_2")},
        "scratch_epochs": scratch_epochs, "seconds": seconds,
    }
    for budget in BUDGETS:
        folder = work / "ps" / "specialized" / budget
        summary = json.loads((folder / "subnet.json").read_text())
        scratch = _from_scratch(work, folder, scratch_epochs, teacher.base_lr, preset.batch_size, preset.crop_scale, seed)
        int8, ms = _latency_ms(work, budget, folder)
        result[budget] = {"macs": summary["macs"], "r": summary["config"].get("r"), "d": summary["config"]["d"],
                          "top1": summary["measured_top1"], "scratch": scratch, "int8": int8, "ms": ms}
        print(seed, budget, result[budget], flush=True)
    return result


def _cell(values: list[float], digits: int = 2) -> str:
    values = [v for v in values if v is not None]
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def table(results: dict[int, dict]) -> list[list]:
    seeds = list(results)
    rows = [["the model, trained on its own", "4.18", RESOLUTION, "-", "-",
             _cell([results[s]["model"]["top1"] for s in seeds]), "-", _cell([results[s]["model"]["int8"] for s in seeds]),
             _cell([results[s]["model"]["ms"] for s in seeds], 3)],
            ["its largest subnet after shrinking", "4.18", RESOLUTION, _cell([results[s]["largest after shrinking"]["top1"] for s in seeds]),
             "-", "-", "-", "-", "-"]]
    for budget in BUDGETS:
        cells = [results[s][budget] for s in seeds]
        rows.append([
            budget, _cell([c["macs"] / 1e6 for c in cells]), "/".join(str(c["r"]) for c in cells), _cell([c["top1"] for c in cells]),
            _cell([c["scratch"] for c in cells]), "-", _cell([c["top1"] - c["scratch"] for c in cells]), _cell([c["int8"] for c in cells]),
            _cell([c["ms"] for c in cells], 3),
        ])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/bench_from_keras", help="working folder (kept: reruns resume)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2 (a table is written after each)")
    parser.add_argument("--smoke", action="store_true", help="a few steps per phase, results outside benchmarks/results")
    args = parser.parse_args()
    started = time.perf_counter()
    results = {}
    columns = ("subnet", "MMACs", "px", "elastic top-1 %", "from scratch top-1 %", "own training top-1 %", "elastic - scratch (points)",
               "int8 top-1 %", "host int8 ms")
    for seed in (int(s) for s in args.seeds.split(",")):
        try:
            results[seed] = run_seed(Path(args.work) / f"seed{seed}", seed, args.smoke)
        except click.ClickException as error:  # a step failed: its message, not a traceback
            raise SystemExit(error.message) from None
        extra = {
            "seeds": list(results), "cells": "mean ± sample standard deviation over the seeds (one value: one seed)",
            "setup": (f"keras.applications.MobileNetV2(alpha=0.35, classes=10, weights=None) at {RESOLUTION} px; the bundled CIFAR-10 "
                      "subset (hold-out 1000, test split 1,017 images); own training: the cifar preset's teacher phase (6 epochs at "
                      "LR 0.05, batch 32, 40-56 px); made elastic with `ofa-tf supernet from-keras --inputs torch`; shrinking: the cifar "
                      "preset's depth, expand_1 and expand_2 phases with the model as the KD teacher; predictor of 60 subnets, "
                      f"specialize with 6 finalists; from scratch: the specialized architecture trained alone for "
                      f"{results[seed]['scratch_epochs']:g} epochs at the teacher's LR (benchmarks/replicate_cifar.py's method)"),
            "latency": "int8 exports (`ofa-tf export --quantize int8`), `ofa-tf bench model --device host` (LiteRT, 1 thread), 200 runs, mean",
            "per_seed": results, "wall_seconds_this_invocation": round(time.perf_counter() - started, 1),
        }
        path = write_results("bench_from_keras", "A Keras MobileNetV2-0.35 made elastic (bundled CIFAR-10)", columns, table(results), extra,
                             published=not args.smoke)
    print(path.read_text())


if __name__ == "__main__":
    main()
