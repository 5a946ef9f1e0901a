"""Where int8 stands against fp32 on this host, layer by layer (LiteRT XNNPACK, 1 thread, CPU time).

Issue 17 asks for int8 at <= 0.8x fp32 at 224 px, or for the per-layer figures
that show why this runtime forbids it and what helps. Each row is one op of
OFA-MobileNetV3's subnets at a shape it has at 224 px, converted alone to
fp32 and to full-integer int8 (int8 input and output, so no quantize /
dequantize op is timed) and timed interleaved. Unless `--no-subnet`, the
bench_export subnet (216M MACs, 224 px) is also timed whole: fp32 and int8 in
their fastest depthwise forms, and int8 with the depthwise convolutions left
in float (selective quantization through the converter's quantization
debugger), the one mix this table suggests.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_export import WINDOWED, benchmark_subnet, interleaved_medians_ms  # noqa: E402
from results_io import published_run, write_results  # noqa: E402

# name -> (input H = W at 224 px, channels, layer); spatial sizes scale with --scale
OPS = {
    "1x1 conv 56x56 24->72 (expand)": (56, 24, ("conv", 72)),
    "1x1 conv 28x28 120->40 (project)": (28, 120, ("conv", 40)),
    "1x1 conv 14x14 80->480 (expand)": (14, 80, ("conv", 480)),
    "depthwise 3x3 56x56x72": (56, 72, ("depthwise", 3, 1, 1)),
    "depthwise 3x3 stride 2 56x56x72": (56, 72, ("depthwise", 3, 2, 1)),
    "depthwise 5x5 56x56x72": (56, 72, ("depthwise", 5, 1, 1)),
    "depthwise 3x3 dilation 3 56x56x72 (7x7 dilated form)": (56, 72, ("depthwise", 3, 1, 3)),
    "depthwise 5x5 14x14x480": (14, 480, ("depthwise", 5, 1, 1)),
    "squeeze-excite 28x28x120": (28, 120, ("se", 32)),
    "add 56x56x24": (56, 24, ("add",)),
}


def _op_model(size: int, channels: int, layer: tuple):
    from ofa_tf._backend import keras

    layers = keras.layers
    x = keras.Input((size, size, channels))
    kind = layer[0]
    if kind == "conv":
        y = layers.Conv2D(layer[1], 1)(x)
    elif kind == "depthwise":
        y = layers.DepthwiseConv2D(layer[1], strides=layer[2], dilation_rate=layer[3], padding="same")(x)
    elif kind == "se":
        s = layers.GlobalAveragePooling2D(keepdims=True)(x)
        s = layers.Conv2D(channels, 1, activation="hard_sigmoid")(layers.Conv2D(layer[1], 1, activation="relu")(s))
        y = layers.Multiply()([x, s])
    else:
        y = layers.Add()([x, layers.Rescaling(0.5)(x)])
    return keras.Model(x, y)


def _subnet_exports(calibration_count: int) -> dict:
    """fp32 / int8 / int8 with float depthwise of the bench_export subnet, in their fastest forms."""
    from ofa_tf._backend import tf
    from ofa_tf.export.forms import for_int8
    from ofa_tf.export.rewrite import rebuild
    from ofa_tf.export.tflite import convert_to_tflite

    size = 224
    _, _, _, subnet, calibration = benchmark_subnet(1.0, size, calibration_count)
    form = WINDOWED["fp32 7x7 as 5x5 + dilated 3x3"]
    int8_model = rebuild(subnet, int8_friendly=True, depthwise_form=for_int8(form))

    spec = tf.TensorSpec((1, size, size, 3), tf.float32)
    function = tf.function(lambda image: int8_model(image, training=False))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function(spec)], function)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=calibration,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=["DEPTHWISE_CONV_2D"]),
    )
    return {
        "subnet fp32, fastest form": convert_to_tflite(rebuild(subnet, depthwise_form=form)),
        "subnet int8, fastest form": convert_to_tflite(int8_model, "int8", calibration),
        "subnet int8 with float depthwise": debugger.get_nondebug_quantized_model(),
    }


@click.command()
@click.option("--scale", default=1.0, show_default=True, help="of the spatial sizes (below 1 for a smoke run)")
@click.option("--rounds", default=30, show_default=True)
@click.option("--runs", default=5, show_default=True)
@click.option("--subnet/--no-subnet", default=True, show_default=True, help="also time the whole 216M-MAC subnet")
@click.option("--op", "ops", multiple=True, type=click.Choice(list(OPS)), help="Default: all.")
def main(scale: float, rounds: int, runs: int, subnet: bool, ops: tuple[str, ...]):
    from ofa_tf.export.tflite import convert_to_tflite

    rng = np.random.default_rng(0)
    rows, ratios = [], {}
    for name in ops or OPS:
        size, channels, layer = OPS[name]
        size = max(int(round(size * scale)), 2)
        model = _op_model(size, channels, layer)
        samples = rng.normal(size=(16, 1, size, size, channels)).astype(np.float32)
        contents = {
            "fp32": convert_to_tflite(model),
            "int8": convert_to_tflite(model, "int8", lambda: ([sample] for sample in samples), int8_io=True),
        }
        ms = interleaved_medians_ms(contents, 1, rounds, runs, time.thread_time_ns)
        ratios[name] = round(ms["int8"] / ms["fp32"], 3)
        rows.append([name, f"{ms['fp32']:.3f}", f"{ms['int8']:.3f}", f"{ratios[name]:.2f}"])
        print(" | ".join(rows[-1]), flush=True)
    if subnet:
        contents = _subnet_exports(32)
        ms = interleaved_medians_ms(contents, 1, rounds, runs, time.thread_time_ns)
        base = ms["subnet fp32, fastest form"]
        for name, value in ms.items():
            ratios[name] = round(value / base, 3)
            rows.append([name, f"{base:.3f}", f"{value:.3f}", f"{ratios[name]:.2f}"])
            print(" | ".join(rows[-1]), flush=True)
    path = write_results(
        "bench_int8_ops",
        "int8 vs fp32 per op on this host (LiteRT XNNPACK, batch 1, 1 thread CPU time, int8 input/output)",
        ["op (shape at 224 px)", "fp32 (ms)", "int8 (ms)", "int8 / fp32"],
        rows,
        {"rounds_x_runs": f"{rounds} x {runs}", "scale": scale, "ratios": ratios,
         "note": "subnet rows: the fp32 column is the fp32 subnet in its fastest form; int8 with float depthwise = "
                 "selective quantization (tf.lite.experimental.QuantizationDebugger, denylisted DEPTHWISE_CONV_2D)"},
        published=published_run(),
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
