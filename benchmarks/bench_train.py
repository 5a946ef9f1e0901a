"""Training throughput: ofa-tf's progressive-shrinking step vs the official OFA (PyTorch), same CPU.

Both train OFA-MobileNetV3 (w1.0, 1000 classes) on the same random batch with
the same sequence of subnets (N per step, gradients summed), label-smoothed
CE and SGD (Nesterov 0.9, weight decay 3e-5), one after the other in one run
on this machine. Images/s is the median over the timed steps after warm-up;
ofa-tf's one-time trace is reported separately.

Needs the test extras (torch==2.13.0 CPU and the official `ofa` package).
Usage: python benchmarks/bench_train.py [--resolution 128] [--batch-size 32] [--subnets 2] [--steps 8]
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

WARMUP_STEPS = 2


def official_images_per_second(step_configs, images, labels, threads: int, depth_list: list[int]) -> float:
    import official_oracle  # noqa: F401  (installs the torchvision/gdown stand-ins)
    import torch
    from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = OFAMobileNetV3(n_classes=1000, dropout_rate=0.1, width_mult=1.0, ks_list=[3, 5, 7],
                         expand_ratio_list=[3, 4, 6], depth_list=depth_list)
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=3e-5)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.from_numpy(np.transpose(images, (0, 3, 1, 2)).copy())
    y = torch.from_numpy(labels)
    times = []
    for step, configs in enumerate(step_configs):
        start = time.perf_counter()
        optimizer.zero_grad()
        for config in configs:
            net.set_active_subnet(ks=list(config.ks), e=list(config.e), d=list(config.d))
            criterion(net(x), y).backward()
        optimizer.step()
        if step >= WARMUP_STEPS:
            times.append(time.perf_counter() - start)
    return len(images) / float(np.median(times))


def ofa_tf_images_per_second(step_configs, images, labels, depth_list: list[int]) -> tuple[float, float]:
    from ofa_tf._backend import tf
    from ofa_tf.data.arrays import ArraySource
    from ofa_tf.training.config import apply_overrides
    from ofa_tf.training.presets import paper_preset
    from ofa_tf.training.trainer import ProgressiveShrinkingTrainer

    uint8 = np.zeros(images.shape, np.uint8)  # the source only shapes the pipeline; steps get `images`
    source = ArraySource(uint8, labels, uint8, labels, tuple(str(i) for i in range(1000)), "random")
    phase = dataclasses.replace(paper_preset().phases[-1], choices={**paper_preset().phases[-1].choices, "d": tuple(depth_list)})
    config = apply_overrides(
        paper_preset(), {"batch_size": len(images), "holdout_images": 0, "depth_list": depth_list, "phases": [phase]}
    )
    with tempfile.TemporaryDirectory() as tmp:
        trainer = ProgressiveShrinkingTrainer(config, tmp, source=source)
    x, y = tf.constant(images), tf.constant(labels)
    times, trace_seconds = [], 0.0
    for step, configs in enumerate(step_configs):
        start = time.perf_counter()
        trainer.train_step(x, y, configs, learning_rate=0.01, distill=False)
        elapsed = time.perf_counter() - start
        if step == 0:
            trace_seconds = elapsed
        if step >= WARMUP_STEPS:
            times.append(elapsed)
    assert trainer._step.experimental_get_tracing_count() == 1
    return len(images) / float(np.median(times)), trace_seconds


@click.command()
@click.option("--resolution", default=128, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--subnets", default=2, show_default=True, help="Subnets per step (gradients summed).")
@click.option("--steps", default=8, show_default=True, help="Timed steps (after 2 warm-up steps).")
@click.option("--seed", default=0, show_default=True)
@click.option("--depth-list", default="2,3,4", show_default=True,
              help="Elastic depths of both supernets (a smoke run uses 2: no skippable blocks, a shorter trace).")
def main(resolution: int, batch_size: int, subnets: int, steps: int, seed: int, depth_list: str):
    from results_io import published_run, write_results

    from ofa_tf import SearchSpace

    rng = np.random.default_rng(seed)
    images = rng.normal(size=(batch_size, resolution, resolution, 3)).astype(np.float32)
    labels = rng.integers(0, 1000, size=batch_size).astype(np.int64)
    depths = [int(d) for d in depth_list.split(",")]
    space = SearchSpace(depth_list=tuple(depths))
    step_configs = [[space.sample(rng) for _ in range(subnets)] for _ in range(steps + WARMUP_STEPS)]
    ours, trace = ofa_tf_images_per_second(step_configs, images, labels, depths)
    print(f"ofa-tf  : {ours:7.1f} images/s  (first step, with the one-time trace: {trace:.1f} s)")
    theirs = official_images_per_second(step_configs, images, labels, os.cpu_count() or 1, depths)
    print(f"official: {theirs:7.1f} images/s  (PyTorch {__import__('torch').__version__}, {os.cpu_count()} threads)")
    ratio = ours / theirs
    print(f"ofa-tf / official training throughput: {ratio:.2f}x  (goal >= 1.0)")
    path = write_results(
        "bench_train",
        f"Training throughput, OFA-MobileNetV3 w1.0, depths {depth_list}, {resolution}px, batch {batch_size}, {subnets} subnets/step",
        ["implementation", "images/s"],
        [["ofa-tf (TensorFlow)", f"{ours:.1f}"], ["official ofa (PyTorch)", f"{theirs:.1f}"]],
        {"ratio_ofa_tf_over_official": round(ratio, 3), "ofa_tf_first_step_seconds": round(trace, 1),
         "timed_steps": steps, "command": " ".join(["python"] + sys.argv)},
        published=published_run(),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
