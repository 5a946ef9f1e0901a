"""Validation of a converted model: the `.tflite` (LiteRT) against the Keras model it came from.

Checks (a report lists every failed one):
  - only builtin ops (no Flex / custom op);
  - float32 ("none"): max |logit difference| ≤ 1e-4 × max(1, max |Keras logit|);
  - fp16 / dynamic / int8: top-1 agreement with the Keras model ≥ `MIN_AGREEMENT`
    (fp16 99%, dynamic 90%, int8 60%), top-1 at most `MAX_TOP1_DROP` (5 points)
    below the Keras model's, and finite logits.
The accuracy checks cannot judge a model whose logits are degenerate (an
untrained model whose logits are all near zero, where quantization noise
decides every prediction): such an export fails with a line naming `--latency-only`, which
exports for latency work with the op, finiteness and float checks only.

Why these int8 figures: agreement measures how often int8 flips a prediction,
which depends on the model's logit margins more than on the quantization. The
bundled-data cifar supernet (`ofa-tf train --preset cifar`, max subnet at
32 px, 29.9% top-1 on the 1017 test images) keeps its top-1 under PTQ int8
(29.2%, 300 calibration images) but agrees on only 66% of the images, the
unfolded int8-friendly graph on 49%. The top-1 drop is the criterion that
matters; on the default 500 validation images a paired top-1 difference with
~35% of predictions flipped has a standard error of ~2.7 points, so the limit
is 5 points (about 2 standard errors): a tighter one would fail sound exports
by chance, and a model that loses more than 1 point on a larger `--validate-images`
set is better served by QAT (`--qat-epochs`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ofa_tf._backend import tf
from ofa_tf.export.tflite import delegate_partitions, load_interpreter, non_builtin_ops, op_histogram

FLOAT_TOLERANCE = 1e-4
MIN_AGREEMENT = {"fp16": 0.99, "dynamic": 0.90, "int8": 0.60}
MAX_TOP1_DROP = 0.05
DEGENERATE_LOGIT = 1e-6  # max |logit| below this: the model computes nothing class-specific


@dataclasses.dataclass
class ValidationReport:
    """What validation measured, and what failed (empty `failures`: passed)."""

    quantize: str
    images: int
    keras_top1: float
    tflite_top1: float
    agreement: float
    max_abs_logit_diff: float
    max_abs_logit: float
    tolerance: float | None
    min_agreement: float | None
    file_bytes: int
    ops: dict[str, int]
    delegate: dict[str, Any]
    failures: list[str]
    latency_only: bool = False

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary_lines(self) -> list[str]:
        """Human-readable lines (the CLI prints them)."""
        lines = [
            f"validated on {self.images} test images ({self.quantize}):",
            f"  top-1 Keras {100 * self.keras_top1:.2f}%  TFLite {100 * self.tflite_top1:.2f}%  "
            f"agreement {100 * self.agreement:.2f}%",
            f"  max |logit diff| {self.max_abs_logit_diff:.3g} (max |logit| {self.max_abs_logit:.3g})",
            f"  file {self.file_bytes / 1024:.1f} KiB; XNNPACK: {self.delegate['delegated_nodes']}/"
            f"{self.delegate['nodes']} nodes in {self.delegate['partitions']} partition(s)"
            + (f", left out: {self.delegate['cut_at']}" if self.delegate["cut_at"] else ""),
            "  ops: " + ", ".join(f"{name} {count}" for name, count in sorted(self.ops.items())),
        ]
        if self.latency_only:
            lines.append("  accuracy not checked (--latency-only): ops, finiteness and float tolerance only")
        lines += [f"  FAILED: {failure}" for failure in self.failures]
        return lines


def degenerate_logits(reference: np.ndarray) -> str | None:
    """Why accuracy validation cannot judge a model with these Keras logits, or None when it can."""
    scale = float(np.abs(reference).max())
    if scale < DEGENERATE_LOGIT:
        return f"every logit is below {DEGENERATE_LOGIT:g} in magnitude (max {scale:.2g}): an untrained model?"
    return None  # one class for every image is not refused: int8 then agrees trivially, and validation passes


def run_tflite(model_content: bytes, images: np.ndarray, num_threads: int | None = None) -> np.ndarray:
    """Float logits of a TFLite model on `images` [N, H, W, 3], one image per invoke.

    int8 input/output tensors are quantized/dequantized with the tensors' scale
    and zero point.
    """
    interpreter = load_interpreter(model_content, num_threads=num_threads)
    input_detail = interpreter.get_input_details()[0]
    output_detail = interpreter.get_output_details()[0]
    in_scale, in_zero = input_detail["quantization"]
    out_scale, out_zero = output_detail["quantization"]
    outputs = []
    for image in images:
        x = image[None]
        if input_detail["dtype"] != np.float32:
            info = np.iinfo(input_detail["dtype"])
            x = np.clip(np.round(x / in_scale + in_zero), info.min, info.max)
        interpreter.set_tensor(input_detail["index"], x.astype(input_detail["dtype"]))
        interpreter.invoke()
        y = interpreter.get_tensor(output_detail["index"])[0]
        if output_detail["dtype"] != np.float32:
            y = (y.astype(np.float32) - out_zero) * out_scale
        outputs.append(y.astype(np.float32))
    return np.stack(outputs)


# images per call of `keras_logits`: at 224 px the largest OFA subnets hold ~0.4 GB of activations for 32
KERAS_BATCH = 32


def keras_logits(model: Any, images: np.ndarray, batch_size: int = KERAS_BATCH) -> np.ndarray:
    """Inference-mode logits of a Keras or tf_keras model, `batch_size` images per call.

    The model runs inside one `tf.function`: an eager functional model keeps every intermediate
    tensor of a batch alive until it returns (16 GB for 100 images of a 224 px windowed 7x7
    subnet), the graph executor frees each one after its last use.
    """
    # reduce_retracing: a smaller last batch makes one shape-generic trace instead of a second one
    forward = tf.function(lambda batch: model(batch, training=False), reduce_retracing=True)
    return np.concatenate([
        np.asarray(forward(tf.constant(images[i : i + batch_size]))) for i in range(0, len(images), batch_size)
    ])


def compare(
    quantize: str,
    reference: np.ndarray,
    logits: np.ndarray,
    labels: np.ndarray,
    model_content: bytes,
    min_agreement: float | None = None,
    tolerance: float = FLOAT_TOLERANCE,
    latency_only: bool = False,
) -> ValidationReport:
    """The report of TFLite `logits` against the Keras `reference` logits.

    Args:
        quantize: the conversion mode ("none" is checked against `tolerance`).
        reference / logits: [N, classes] Keras and TFLite logits of the same images.
        labels: [N] true labels.
        model_content: the flatbuffer (ops, delegate partitions, size).
        min_agreement: top-1 agreement needed by a quantized mode (default `MIN_AGREEMENT`).
        tolerance: float32 tolerance, relative to max(1, max |reference logit|).
        latency_only: skip the top-1 checks (an export for latency work).
    """
    diff = float(np.abs(logits - reference).max())
    scale = max(1.0, float(np.abs(reference).max()))
    agreement = float(np.mean(logits.argmax(-1) == reference.argmax(-1)))
    needed = None if quantize == "none" else (MIN_AGREEMENT[quantize] if min_agreement is None else min_agreement)
    degenerate = degenerate_logits(reference) if needed else None
    if latency_only or degenerate:
        needed = None
    failures = [f"non-builtin ops {op}" for op in non_builtin_ops(model_content)]
    if degenerate and not latency_only:
        failures.append(f"accuracy validation cannot judge this export: {degenerate} Export it with --latency-only "
                        "for latency work (ops, finiteness and float tolerance are still checked)")
    if not np.isfinite(logits).all():
        failures.append("TFLite logits are not finite")
    if quantize == "none" and not diff <= tolerance * scale:
        failures.append(f"float32 logits differ by {diff:.3g} > {tolerance:g} x {scale:.3g}")
    if needed is not None and agreement < needed:
        failures.append(f"top-1 agreement {100 * agreement:.1f}% < {100 * needed:.1f}% for {quantize}")
    keras_top1, tflite_top1 = float(np.mean(reference.argmax(-1) == labels)), float(np.mean(logits.argmax(-1) == labels))
    if needed is not None and needed > 0 and keras_top1 - tflite_top1 > MAX_TOP1_DROP:
        failures.append(f"top-1 {100 * tflite_top1:.1f}% is more than {100 * MAX_TOP1_DROP:.0f} points below Keras's {100 * keras_top1:.1f}%")
    return ValidationReport(
        quantize=quantize,
        images=len(labels),
        keras_top1=keras_top1,
        tflite_top1=tflite_top1,
        agreement=agreement,
        max_abs_logit_diff=diff,
        max_abs_logit=float(np.abs(reference).max()),
        tolerance=tolerance * scale if quantize == "none" else None,
        min_agreement=needed,
        file_bytes=len(model_content),
        ops=op_histogram(model_content),
        delegate=delegate_partitions(model_content),
        failures=failures,
        latency_only=latency_only,
    )


def validate(
    model: Any,
    model_content: bytes,
    images: np.ndarray,
    labels: np.ndarray,
    quantize: str,
    min_agreement: float | None = None,
    reference: np.ndarray | None = None,
    latency_only: bool = False,
) -> ValidationReport:
    """Runs `model` (Keras) and `model_content` (LiteRT) on `images` and compares them.

    Args:
        model: the Keras model that was converted (float; for QAT the QAT model).
        model_content: the `.tflite` flatbuffer.
        images / labels: eval-transformed test images and their labels.
        quantize: the conversion mode.
        min_agreement: overrides the mode's default top-1 agreement.
        reference: precomputed Keras logits (skips running `model`).
        latency_only: skip the top-1 checks (an export for latency work).
    """
    reference = keras_logits(model, images) if reference is None else reference
    logits = run_tflite(model_content, images)
    return compare(quantize, reference, logits, labels, model_content, min_agreement, latency_only=latency_only)
