"""Train-step time of supernet subnets (smallest vs largest) and of a subnet vs its extracted model.

Measured in one run on the same CPU, same batch and resolution:
  - one traced supernet train step (SGD) with the smallest, then the largest subnet
    active: the ratio shows that compute shrinks with the subnet (goal <= 0.4);
  - a random subnet in the supernet vs the same subnet extracted as a stock Keras
    model, both trained with the same step: the overhead of elasticity.

Usage: python benchmarks/bench_supernet.py [--width-mult 1.0] [--resolution 128] [--batch-size 32] [--steps 20] [--depth-list 2,3,4]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _train_step(model, call):
    from ofa_tf._backend import keras, tf

    optimizer = keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True)
    optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, call(images))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


def _median_step_seconds(step, images, labels, steps: int) -> float:
    step(images, labels)  # trace / warm up
    step(images, labels)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(images, labels).numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@click.command()
@click.option("--width-mult", default=1.0, show_default=True)
@click.option("--resolution", default=128, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--steps", default=20, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--depth-list", default="2,3,4", show_default=True, help="The supernet's depth choices (smoke runs: 2).")
def main(width_mult: float, resolution: int, batch_size: int, steps: int, seed: int, depth_list: str):
    from results_io import published_run, write_results

    from ofa_tf import OFAMobileNetV3, count_macs, extract_subnet
    from ofa_tf._backend import tf

    rng = np.random.default_rng(seed)
    images = tf.constant(rng.normal(size=(batch_size, resolution, resolution, 3)).astype(np.float32))
    labels = tf.constant(rng.integers(0, 1000, size=batch_size))
    net = OFAMobileNetV3(width_mult=width_mult, depth_list=[int(d) for d in depth_list.split(",")])
    net.build((None, None, None, 3))
    space = net.space
    step = _train_step(net, lambda x: net(x, training=True))
    random_config = space.sample(rng)
    timings = {}
    for label, config in (("smallest", space.min_config()), ("largest", space.max_config()), ("random", random_config)):
        net.set_active_config(config)
        timings[label] = _median_step_seconds(step, images, labels, steps)
        print(f"supernet {label:8s}: {timings[label] * 1e3:8.1f} ms/step  ({count_macs(config, resolution=resolution, space=space) / 1e6:.1f} MMACs)")
    traces = step.experimental_get_tracing_count()
    subnet = extract_subnet(net, random_config.with_resolution(resolution))
    extracted_step = _train_step(subnet, lambda x: subnet(x, training=True))
    timings["extracted"] = _median_step_seconds(extracted_step, images, labels, steps)
    print(f"extracted random: {timings['extracted'] * 1e3:8.1f} ms/step")
    small_vs_large = timings["smallest"] / timings["largest"]
    elastic_overhead = timings["random"] / timings["extracted"]
    print(f"smallest / largest step time: {small_vs_large:.3f}  (goal <= 0.4)")
    print(f"supernet random / extracted step time: {elastic_overhead:.3f}")
    print(f"supernet step traces: {traces}")
    rows = [
        [label, f"{timings[label] * 1e3:.1f}"]
        for label in ("smallest", "largest", "random", "extracted")
    ]
    path = write_results(
        "bench_supernet",
        f"Supernet train step, w{width_mult}, {resolution}px, batch {batch_size}, median of {steps}",
        ["model", "ms/step"],
        rows,
        {
            "smallest_over_largest": round(small_vs_large, 3),
            "random_supernet_over_extracted": round(elastic_overhead, 3),
            "supernet_traces": traces,
            "random_config": random_config.to_dict(),
            "command": " ".join(["python"] + sys.argv),
        },
        published=published_run(),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
