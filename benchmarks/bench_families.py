"""Every supernet family side by side: train-step time in the supernet vs extracted, and TFLite latency.

For OFA-MobileNetV3 w1.0, OFA-ProxylessNAS w1.3 and OFA-ResNet50-D (random
weights: time does not depend on them), one random subnet each (seeded) is
  - trained for `--steps` SGD steps inside its supernet (one traced step, the
    subnet active) and as its extracted stock-Keras model, same batch and
    resolution, the two steps alternating (this machine's speed drifts by 20-30%
    between minutes), median step time (the cost of elasticity: supernet / extracted);
  - exported to TFLite fp32 and timed with LiteRT (XNNPACK) at 1 thread, CPU
    time of the invoking thread, median of `--rounds` x `--runs` invokes, the
    three models interleaved.

    python benchmarks/bench_families.py [--resolution 128] [--batch-size 16] [--steps 15]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_export import interleaved_medians_ms  # noqa: E402
from bench_supernet import _train_step  # noqa: E402
from results_io import published_run, write_results  # noqa: E402

FAMILIES = ("mbv3", "proxyless", "resnet50")
TITLES = {"mbv3": "OFA-MobileNetV3 w1.0", "proxyless": "OFA-ProxylessNAS w1.3", "resnet50": "OFA-ResNet50-D"}


def _supernet(family: str, width_scale: float):
    """The released supernet of `family` (widths scaled by `width_scale` for smoke runs)."""
    from ofa_tf import OFAMobileNetV3, OFAProxylessNASNets, OFAResNets

    if family == "resnet50":
        net = OFAResNets(width_mult_list=tuple(w * width_scale for w in (0.65, 0.8, 1.0)))
    elif family == "proxyless":
        net = OFAProxylessNASNets(width_mult=1.3 * width_scale)
    else:
        net = OFAMobileNetV3(width_mult=1.0 * width_scale)
    net.build((None, None, None, 3))
    return net


def _interleaved_step_seconds(steps: dict, images, labels, n: int) -> dict:
    """Median seconds per step of each traced step, the steps alternating (two warm-up calls each)."""
    for step in steps.values():
        step(images, labels)
        step(images, labels)
    times = {name: [] for name in steps}
    for _ in range(n):
        for name, step in steps.items():
            start = time.perf_counter()
            step(images, labels).numpy()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}


@click.command()
@click.option("--resolution", default=128, show_default=True)
@click.option("--batch-size", default=16, show_default=True)
@click.option("--steps", default=15, show_default=True)
@click.option("--rounds", default=5, show_default=True)
@click.option("--runs", default=4, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--width-scale", default=1.0, show_default=True, help="Scales every width (smoke runs: 0.25).")
@click.option("--family", "families", multiple=True, type=click.Choice(FAMILIES), help="Default: all.")
def main(resolution: int, batch_size: int, steps: int, rounds: int, runs: int, seed: int, width_scale: float,
         families: tuple[str, ...]):
    from ofa_tf._backend import tf
    from ofa_tf.export.tflite import convert_to_tflite
    from ofa_tf.supernet.counting import count_costs

    rng = np.random.default_rng(seed)
    images = tf.constant(rng.normal(size=(batch_size, resolution, resolution, 3)).astype(np.float32))
    labels = tf.constant(rng.integers(0, 1000, size=batch_size))
    rows, details, exports = [], {}, {}
    for family in families or FAMILIES:
        net = _supernet(family, width_scale)
        config = net.space.sample(np.random.default_rng(seed))
        net.set_active_config(config)
        step = _train_step(net, lambda x, net=net: net(x, training=True))
        started = time.perf_counter()
        step(images, labels)
        first_step = time.perf_counter() - started
        subnet = net.get_active_subnet(resolution=resolution)
        extracted = _train_step(subnet, lambda x, m=subnet: m(x, training=True))
        medians = _interleaved_step_seconds({"supernet": step, "extracted": extracted}, images, labels, steps)
        supernet_step, extracted_step = medians["supernet"], medians["extracted"]
        exports[family] = convert_to_tflite(subnet)
        macs, params = count_costs(net.space, config, resolution)
        details[family] = {
            "config": config.to_dict(), "macs": macs, "params": params, "first_step_s": round(first_step, 2),
            "supernet_step_ms": round(supernet_step * 1e3, 1), "extracted_step_ms": round(extracted_step * 1e3, 1),
            "supernet_over_extracted": round(supernet_step / extracted_step, 3),
            "supernet_traces": step.experimental_get_tracing_count(),
        }
        print(f"{TITLES[family]}: {macs / 1e6:.1f}M MACs, step {supernet_step * 1e3:.1f} ms in the supernet vs "
              f"{extracted_step * 1e3:.1f} ms extracted ({supernet_step / extracted_step:.2f}x), first step {first_step:.1f} s")
    latency = interleaved_medians_ms(exports, threads=1, rounds=rounds, runs=runs, clock=time.thread_time_ns)
    for family, info in details.items():
        info["tflite_fp32_ms"] = round(latency[family], 3)
        print(f"{TITLES[family]}: TFLite fp32 {latency[family]:.2f} ms (1 thread, CPU time)")
        rows.append([
            TITLES[family], f"{info['macs'] / 1e6:.1f}", f"{info['params'] / 1e6:.2f}", f"{info['supernet_step_ms']:.1f}",
            f"{info['extracted_step_ms']:.1f}", f"{info['supernet_over_extracted']:.2f}", f"{info['first_step_s']:.1f}",
            f"{info['tflite_fp32_ms']:.2f}",
        ])
    path = write_results(
        "bench_families",
        f"A random subnet of each family at {resolution} px: train step (batch {batch_size}, median of {steps}, "
        "supernet and extracted steps alternating) "
        f"in the supernet vs extracted, TFLite fp32 latency (1 thread, CPU time, median of {rounds}x{runs})",
        ["family", "MACs (M)", "params (M)", "supernet step (ms)", "extracted step (ms)", "supernet / extracted",
         "first supernet step (s)", "TFLite fp32 (ms)"],
        rows,
        {"families": details, "command": " ".join(["python"] + sys.argv)},
        published=published_run(),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
