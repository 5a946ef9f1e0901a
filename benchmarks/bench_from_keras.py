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
Writes benchmarks/results/bench_from_keras.{json,md} (`--smoke`: tiny step counts, written elsewhere).

    python benchmarks/bench_from_keras.py --work /tmp/bench_from_keras
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_results  # noqa: E402

RESOLUTION = 56  # the cifar preset's largest training and evaluation resolution
BUDGETS = ("2.0M-MACs", "2.8M-MACs", "3.6M-MACs")  # the model: 4.18M MACs at 56 px, its smallest subnet 1.56M at 40 px


def _ofa_tf(work: Path, name: str, *args) -> float:
    """Runs `ofa-tf ARGS` once (a rerun reuses the result); its wall time in seconds."""
    done = work / f"{name}.seconds"
    if not done.exists():
        command = [sys.executable, "-m", "ofa_tf.cli", *map(str, args)]
        print(f"[{name}] ofa-tf {' '.join(map(str, args))}", flush=True)
        started = time.perf_counter()
        with (work / f"{name}.log").open("w") as log:
            code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
        if code != 0:
            tail = (work / f"{name}.log").read_text().strip().splitlines()[-3:]
            raise SystemExit(f"{name} exited {code}: {' / '.join(tail)}")
        done.write_text(f"{time.perf_counter() - started:.1f}")
    return float(done.read_text())


def _random_model(path: Path) -> None:
    from ofa_tf._backend import keras

    if not path.is_file():
        keras.utils.set_random_seed(0)
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


def _teacher_top1(run: Path) -> float:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [row for r in records if r.get("event") == "evaluation" and r.get("phase") == "teacher" for row in r["rows"]]
    return [row["top1"] for row in rows if row["resolution"] == RESOLUTION and row["subnet"] == "max"][-1]


def _from_scratch(work: Path, folder: Path, teacher_epochs: float, teacher_lr: float, batch: int, crop: tuple) -> float:
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
        keras.utils.set_random_seed(0)
        model = extract_subnet(fresh, config)
        source, _ = open_source(None).split_holdout(1000, 0)
        tune = FinetuneConfig(epochs=teacher_epochs, base_lr=teacher_lr * batch / 64, kd_ratio=0.0, crop_scale=crop, batch_size=batch)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/bench_from_keras", help="working folder (kept: reruns resume)")
    parser.add_argument("--smoke", action="store_true", help="a few steps per phase, results outside benchmarks/results")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    steps = ["--max-steps", 3] if args.smoke else []
    from ofa_tf.training.presets import cifar_preset

    preset = cifar_preset()
    teacher = preset.phases[0]
    started = time.perf_counter()
    seconds = {}

    _random_model(work / "random.keras")
    seconds["convert_random"] = _ofa_tf(work, "convert_random", "supernet", "from-keras", work / "random.keras", "--inputs", "torch",
                                        "--resolutions", "40,48,56", "--out", work / "random_supernet")
    seconds["own_training"] = _ofa_tf(work, "own_training", "train", "--init", work / "random_supernet", "--preset", "cifar",
                                      "--phases", "teacher", "--out", work / "own", *steps)
    _trained_model(work / "own", work / "model.keras")
    seconds["convert"] = _ofa_tf(work, "convert", "supernet", "from-keras", work / "model.keras", "--inputs", "torch",
                                 "--resolutions", "40,48,56", "--out", work / "elastic")
    seconds["shrinking"] = _ofa_tf(work, "shrinking", "train", "--init", work / "elastic", "--teacher", work / "elastic",
                                   "--preset", "cifar", "--phases", "depth,expand_1,expand_2", "--out", work / "ps", *steps)
    n_subnets = 12 if args.smoke else 60
    seconds["predictor"] = _ofa_tf(work, "predictor_build", "predictor", "build", "--supernet", work / "ps", "--n-subnets", n_subnets, "--bn-images", 500)
    seconds["predictor"] += _ofa_tf(work, "predictor_train", "predictor", "train", "--supernet", work / "ps")
    seconds["specialize"] = _ofa_tf(work, "specialize", "specialize", "--supernet", work / "ps", "--budget", ",".join(BUDGETS),
                                    "--bn-images", 500, "--finalists", 6, "--out", work / "ps" / "specialized")
    scratch_epochs = 0.05 if args.smoke else teacher.epochs
    model_top1 = _teacher_top1(work / "own")
    model_int8, model_ms = _latency_ms(work, "model", work / "model.keras")
    rows = [["the model (trained on its own)", "4.18", RESOLUTION, "-", f"{model_top1:.2f}", "-", f"{model_int8:.2f}", f"{model_ms:.3f}"]]
    for budget in BUDGETS:
        folder = work / "ps" / "specialized" / budget
        summary = json.loads((folder / "subnet.json").read_text())
        scratch = _from_scratch(work, folder, scratch_epochs, teacher.base_lr, preset.batch_size, preset.crop_scale)
        int8, ms = _latency_ms(work, budget, folder)
        rows.append([budget, f"{summary['macs'] / 1e6:.2f}", summary["config"].get("r"), summary["config"]["d"], f"{summary['measured_top1']:.2f}",
                     f"{scratch:.2f}", f"{int8:.2f}", f"{ms:.3f}"])
        print(rows[-1], flush=True)
    columns = ("subnet", "MMACs", "px", "depths", "elastic (PS from the model) top-1 %", "from scratch top-1 %", "int8 top-1 %", "host int8 ms")
    extra = {
        "setup": (f"keras.applications.MobileNetV2(alpha=0.35, classes=10) at {RESOLUTION} px; bundled CIFAR-10 subset (hold-out 1000); "
                  f"own training: the cifar preset's teacher phase ({teacher.epochs:g} epochs at {teacher.base_lr}); shrinking: its depth, "
                  f"expand_1, expand_2 phases with the model as teacher; from scratch: {scratch_epochs:g} epochs at the teacher's LR"),
        "seconds": seconds, "wall_seconds_this_invocation": round(time.perf_counter() - started, 1),
        "latency": "ofa-tf bench model --device host (LiteRT, 1 thread), 200 runs, mean",
    }
    path = write_results("bench_from_keras", "A Keras MobileNetV2-0.35 made elastic (bundled CIFAR-10)", columns, rows, extra, published=not args.smoke)
    print(path.read_text())


if __name__ == "__main__":
    main()
