"""TFLite latency of exported subnets: float32 vs int8, and ofa-tf vs keras.applications.MobileNetV3Large.

Both networks are exported the same way (`ofa_tf.export.tflite.convert_to_tflite`,
batch 1, calibration on 32 bundled training images) and timed with LiteRT
(XNNPACK), 1 and 2 threads, median of `--runs` invokes after warm-up. The
ofa-tf subnet is the one of the w1.0 space whose MACs are closest to
MobileNetV3Large's at the same resolution (weights random: latency does not
depend on them; the subnet's BN statistics are recalibrated on bundled images
so that its activation ranges, and so its int8 scales, are those of a trained
net). "int8 friendly" is the export's int8 graph (hard-swish
rewritten so XNNPACK keeps it in one partition); "int8 plain" converts the
model as it is.

    python benchmarks/bench_export.py [--resolution 224] [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import write_results  # noqa: E402


def median_latency_ms(content: bytes, threads: int, runs: int) -> float:
    from ofa_tf.export.tflite import load_interpreter

    interpreter = load_interpreter(content, num_threads=threads)
    detail = interpreter.get_input_details()[0]
    image = np.zeros(detail["shape"], detail["dtype"])
    interpreter.set_tensor(detail["index"], image)
    for _ in range(5):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def closest_subnet(net, target_macs: float, resolution: int, n: int = 300):
    import ofa_tf

    rng = np.random.default_rng(0)
    candidates = [net.space.sample(rng) for _ in range(n)]
    return min(candidates, key=lambda c: abs(ofa_tf.count_macs(c, resolution=resolution, space=net.space) - target_macs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    import ofa_tf
    from ofa_tf._backend import keras
    from ofa_tf.data.sources import open_source
    from ofa_tf.export.quantize import calibration_images, representative_dataset
    from ofa_tf.export.rewrite import rebuild
    from ofa_tf.export.tflite import convert_to_tflite, delegate_partitions
    from ofa_tf.data.pipeline import recalibration_batches
    from ofa_tf.training.bn_recalibration import recalibrate_bn

    size = args.resolution
    reference = keras.applications.MobileNetV3Large(
        weights=None, input_shape=(size, size, 3), include_preprocessing=False, classes=1000
    )
    reference_macs = ofa_tf.count_model_macs(reference)
    net = ofa_tf.OFAMobileNetV3(width_mult=1.0, n_classes=1000)
    net.build((None, None, None, 3))
    config = closest_subnet(net, reference_macs, size).with_resolution(size)
    # random weights with BN statistics of real images: activation ranges (and so int8 scales) as in a trained net
    source = open_source(None)
    recalibrate_bn(net, recalibration_batches(source.recalibration_images(256, 0), 64, size, 0), config)
    subnet = ofa_tf.extract_subnet(net, config)
    subnet_macs = ofa_tf.count_macs(config, resolution=size, space=net.space)
    calibration = representative_dataset(calibration_images(source, size, 32))

    exports = {
        ("ofa-tf subnet", "fp32"): convert_to_tflite(subnet),
        ("ofa-tf subnet", "int8 plain"): convert_to_tflite(subnet, "int8", calibration),
        ("ofa-tf subnet", "int8 friendly"): convert_to_tflite(rebuild(subnet, int8_friendly=True), "int8", calibration),
        ("MobileNetV3Large", "fp32"): convert_to_tflite(reference),
        ("MobileNetV3Large", "int8 plain"): convert_to_tflite(reference, "int8", calibration),
    }
    rows, latency = [], {}
    for (model, mode), content in exports.items():
        partitions = delegate_partitions(content)
        for threads in (1, 2):
            latency[model, mode, threads] = median_latency_ms(content, threads, args.runs)
        cut = ", ".join(f"{op} {n}" for op, n in partitions["cut_at"].items()) or "-"
        rows.append([model, mode, f"{latency[model, mode, 1]:.2f}", f"{latency[model, mode, 2]:.2f}",
                     partitions["partitions"], f"{partitions['delegated_nodes']}/{partitions['nodes']}", cut,
                     f"{len(content) / 2**20:.2f}"])
        print(" | ".join(str(v) for v in rows[-1]), flush=True)
    ratios = {
        f"int8 friendly / fp32, ofa-tf, {t} thread(s)": round(latency["ofa-tf subnet", "int8 friendly", t] / latency["ofa-tf subnet", "fp32", t], 3)
        for t in (1, 2)
    }
    ratios.update({
        f"int8 plain / fp32, ofa-tf, {t} thread(s)": round(latency["ofa-tf subnet", "int8 plain", t] / latency["ofa-tf subnet", "fp32", t], 3)
        for t in (1, 2)
    })
    ratios.update({
        f"ofa-tf / MobileNetV3Large, {mode}, {t} thread(s)": round(latency["ofa-tf subnet", mode, t] / latency["MobileNetV3Large", "fp32" if mode == "fp32" else "int8 plain", t], 3)
        for mode in ("fp32", "int8 friendly") for t in (1, 2)
    })
    for key, value in ratios.items():
        print(f"{key}: {value}")
    path = write_results(
        "bench_export",
        f"TFLite latency (LiteRT XNNPACK, {size} px, batch 1, median of {args.runs})",
        ["model", "export", "1 thread (ms)", "2 threads (ms)", "XNNPACK partitions", "delegated nodes", "left to builtin kernels", "MiB"],
        rows,
        {
            "ratios": ratios,
            "macs": {"ofa-tf subnet": int(subnet_macs), "MobileNetV3Large": int(reference_macs)},
            "subnet": config.to_json(),
            "note": "MobileNetV3Large's Keras graph uses TF ops for hard-sigmoid, so the int8-friendly rewrite does not apply to it",
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
