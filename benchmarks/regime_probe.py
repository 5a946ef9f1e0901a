"""Does the full network beat the smallest one when each is trained alone? (OFA's premise)

Progressive shrinking starts from a strong full network and distils it into
the smaller ones; where the largest subnet trained alone is no better than the
smallest, the premise fails and PS cannot pay off. For each regime (input
resolution, images upsampled from 32 px; epochs; width; crop scale) and seed,
the full (max) and the smallest (min) architecture of the bundled-data
supernet are trained from scratch as stock Keras models with the same
schedule (SGD Nesterov, cosine from --lr, label smoothing 0.1, no weight
decay), then measured on the test split and on 1,000 training images (eval
transform) to tell under- from over-fitting.

Resumable: every (regime, seed, architecture) result is kept in --work and
skipped when present; seeds run in order, so seed 0 of every regime comes
first. Writes benchmarks/results/regime_probe.{json,md} with 3 seeds or more
(fewer: results/custom/).

    python benchmarks/regime_probe.py --work benchmarks/results/regime_probe_work
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_results  # noqa: E402

from ofa_tf.data.sources import open_source  # noqa: E402
from ofa_tf.supernet.extract import extract_subnet
from ofa_tf.io import atomic_write_json  # noqa: E402
from ofa_tf.families.mbconv.network import OFAMobileNetV3
from ofa_tf.training.finetune import FinetuneConfig, finetune, keras_top1  # noqa: E402

ARCHITECTURES = ("full", "smallest")
TRAIN_SAMPLE = 1000  # training images measured with the eval transform


def parse_regime(text: str) -> dict:
    """'64px/30ep' or '64px/30ep/w1.0/crop0.2' -> settings (defaults: w0.5, crop 0.35)."""
    regime = {"resolution": None, "epochs": None, "width_mult": 0.5, "crop_min": 0.35}
    for part in text.split("/"):
        if part.endswith("px"):
            regime["resolution"] = int(part[:-2])
        elif part.endswith("ep"):
            regime["epochs"] = float(part[:-2])
        elif part.startswith("w"):
            regime["width_mult"] = float(part[1:])
        elif part.startswith("crop"):
            regime["crop_min"] = float(part[4:])
        else:
            raise SystemExit(f"regime part {part!r} not understood: use e.g. 64px/30ep/w0.5/crop0.35")
    if regime["resolution"] is None or regime["epochs"] is None:
        raise SystemExit(f"regime {text!r} needs a resolution and epochs, e.g. 64px/30ep")
    return regime


def train_one(regime: dict, architecture: str, seed: int, lr: float, source) -> dict:
    net = OFAMobileNetV3(width_mult=regime["width_mult"], n_classes=source.n_classes, dropout_rate=0.1)
    net.build((None, None, None, 3))
    space = net.space
    config = space.max_config() if architecture == "full" else space.min_config()
    model = extract_subnet(net, config.with_resolution(regime["resolution"]))
    started = time.perf_counter()
    tune = FinetuneConfig(epochs=regime["epochs"], base_lr=lr, kd_ratio=0.0, crop_scale=(regime["crop_min"], 1.0), seed=seed)
    finetune(model, None, source.train_examples(), source.n_train, tune)
    seconds = time.perf_counter() - started
    sample = source.train_examples().take(TRAIN_SAMPLE)
    return {"test_top1": keras_top1(model, source.test_examples()), "train_top1": keras_top1(model, sample),
            "seconds": round(seconds, 1)}


def summarize(results: dict, regimes: list[str], seeds: list[int]) -> tuple[list[list[str]], dict]:
    rows, summary = [], {}
    for name in regimes:
        cells, entry = [name], {}
        for architecture in ARCHITECTURES:
            runs = [results[f"{name}|{seed}|{architecture}"] for seed in seeds if f"{name}|{seed}|{architecture}" in results]
            test = [r["test_top1"] for r in runs]
            train = [r["train_top1"] for r in runs]
            entry[architecture] = {"test_mean": float(np.mean(test)) if test else None, "test_std": float(np.std(test)) if test else None,
                                   "train_mean": float(np.mean(train)) if train else None, "n": len(runs),
                                   "seconds_mean": float(np.mean([r["seconds"] for r in runs])) if runs else None}
            cells.append(f"{np.mean(test):.1f} ± {np.std(test):.1f} (n={len(test)})" if test else "-")
            cells.append(f"{np.mean(train):.1f}" if train else "-")
            cells.append(f"{np.mean([r['seconds'] for r in runs]):.0f}" if runs else "-")
        both = entry["full"]["test_mean"] is not None and entry["smallest"]["test_mean"] is not None
        entry["full_minus_smallest"] = entry["full"]["test_mean"] - entry["smallest"]["test_mean"] if both else None
        cells.append(f"{entry['full_minus_smallest']:+.1f}" if both else "-")
        rows.append(cells)
        summary[name] = entry
    return rows, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regimes", default="64px/30ep,48px/30ep,64px/30ep/crop0.2")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--architectures", default=",".join(ARCHITECTURES), help="full, smallest or both")
    parser.add_argument("--work", type=Path, default=Path("/tmp/regime_probe"))
    args = parser.parse_args()
    regimes = [r for r in args.regimes.split(",") if r]
    settings = {name: parse_regime(name) for name in regimes}
    seeds = [int(s) for s in args.seeds.split(",")]
    architectures = [a for a in args.architectures.split(",") if a]
    if not set(architectures) <= set(ARCHITECTURES):
        raise SystemExit(f"--architectures {args.architectures!r}: choose from {', '.join(ARCHITECTURES)}")
    args.work.mkdir(parents=True, exist_ok=True)
    store = args.work / "results.json"
    results = json.loads(store.read_text()) if store.is_file() else {}
    source = open_source(None)
    for seed in seeds:
        for name in regimes:
            for architecture in architectures:
                key = f"{name}|{seed}|{architecture}"
                if key in results:
                    continue
                results[key] = train_one(settings[name], architecture, seed, args.lr, source)
                atomic_write_json(store, results)
                print(f"{key}: {results[key]}", flush=True)
    rows, summary = summarize(results, regimes, seeds)
    header = ["regime", "full test top-1 %", "full train %", "full s", "smallest test top-1 %", "smallest train %",
              "smallest s", "full - smallest"]
    path = write_results(
        "regime_probe",
        f"Full vs smallest architecture trained alone on the bundled CIFAR-10 subset ({source.n_train} train / "
        f"{len(list(source.test_examples()))} test images), from scratch, SGD Nesterov cosine from LR {args.lr}, "
        f"label smoothing 0.1, no weight decay, seeds {args.seeds}",
        header,
        rows,
        {"summary": summary, "runs": results, "command": " ".join(["python"] + sys.argv)},
        published=len(seeds) >= 3,  # fewer seeds (a smoke run, a first look) never replace the published table
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
