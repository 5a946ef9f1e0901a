"""The export job: model file -> validated `.tflite` + JSON card beside it.

Steps: load the Keras model (a `.keras` file or a specialize run folder
holding `subnet.keras`), rebuild it (int8-friendly activations for int8),
optionally fine-tune it with QAT, convert, validate on the test split, and
write `OUT.tflite` and `OUT.json` (labels, normalization, input size,
quantization parameters, the validation report). A model that fails
validation is written as `OUT.tflite.unverified` instead.
"""

from __future__ import annotations

import dataclasses
import platform
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ofa_tf.errors import ConfigError
from ofa_tf.io import load_model, read_json
from ofa_tf.export.qat import QATConfig
from ofa_tf.export.tflite import QUANTIZE_MODES
from ofa_tf.export.validate import ValidationReport

DEPTHWISE_CHOICES = ("auto", "plain", "windows5", "windows3", "dilated")

VALIDATE_IMAGES = 500
# an export for latency work checks ops, finiteness and the float tolerance only, which a few images show;
# 500 would cost a 224 px w1.2 subnet over a minute of Keras and LiteRT inference
LATENCY_ONLY_VALIDATE_IMAGES = 32
UNVERIFIED_SUFFIX = ".unverified"
SUMMARY_REMEDY = "run `ofa-tf specialize` again for this subnet (it writes subnet.json)"


@dataclasses.dataclass
class ExportConfig:
    """One export (saved in the JSON card).

    Args:
        model: a `.keras` file or a folder holding `subnet.keras`.
        out: the `.tflite` file to write.
        quantize: one of "none", "fp16", "dynamic", "int8".
        int8_io: int8 input and output tensors (int8 only).
        int8_friendly: rewrite hard-swish/hard-sigmoid for XNNPACK int8 (None: on for int8).
        calibration_samples: training images of the representative dataset (int8).
        calibration_seed: chooses them.
        resolution: input size; must match a model with a fixed one.
        data: "bundled", or a dataset path as in `ofa-tf train --data`.
        validate_images: test images of the validation (None: `VALIDATE_IMAGES`, or
            `LATENCY_ONLY_VALIDATE_IMAGES` with `latency_only`).
        min_agreement: top-1 agreement a quantized model needs (None: the mode's default).
        latency_only: skip the top-1 checks (an untrained model exported for latency work).
        qat_epochs: quantization-aware fine-tuning epochs (0: post-training quantization).
        qat: the fine-tuning settings (its `epochs` is set from `qat_epochs`).
        depthwise_large: how depthwise kernels above 5x5 are written (`export.forms`): "plain",
            "windows5" / "windows3" (sums of 5x5 / 3x3 windows), "dilated" (crop-free: a 5x5 plus five dilated 3x3
            kernels at stride 1, the four phases of the input at stride 2; all exact) or "auto" (every form converted and timed on `device`, the
            fastest kept; with QAT: plain, the only form tensorflow-model-optimization quantizes).
        device: where "auto" measures: "host" (LiteRT, 1 thread, CPU time) or "adb[:SERIAL]" (a phone).
        target: a latency table (luts/NAME.yaml, or a YAML path) built by `ofa-tf bench lut`: each large
            depthwise layer gets the form the table measured fastest for its shape (nothing is timed).
    """

    model: str
    out: str
    quantize: str = "none"
    int8_io: bool = False
    int8_friendly: bool | None = None
    calibration_samples: int = 300
    calibration_seed: int = 0
    resolution: int | None = None
    data: str = "bundled"
    validate_images: int | None = None
    min_agreement: float | None = None
    latency_only: bool = False
    qat_epochs: int = 0
    qat: QATConfig = dataclasses.field(default_factory=QATConfig)
    depthwise_large: str = "auto"
    device: str = "host"
    target: str | None = None

    def __post_init__(self):
        if self.depthwise_large not in DEPTHWISE_CHOICES:
            raise ConfigError(f"--depthwise-large {self.depthwise_large}: expected one of {', '.join(DEPTHWISE_CHOICES)}")
        if self.target is not None and self.depthwise_large != "auto":
            raise ConfigError(f"--target {self.target} chooses the depthwise forms: drop --depthwise-large {self.depthwise_large}")
        if self.quantize not in QUANTIZE_MODES:
            raise ConfigError(f"--quantize {self.quantize}: expected one of {', '.join(QUANTIZE_MODES)}")
        if self.int8_io and self.quantize != "int8":
            raise ConfigError(f"--int8-io needs --quantize int8 (got --quantize {self.quantize})")
        if self.qat_epochs and self.quantize != "int8":
            raise ConfigError(f"--qat-epochs trains for int8: use --quantize int8 (got --quantize {self.quantize})")
        if self.qat_epochs < 0:
            raise ConfigError(f"--qat-epochs {self.qat_epochs}: use 0 (no QAT) or more")
        # tensorflow-model-optimization quantizes the plain form only (not the split forms' batch norms)
        if self.qat_epochs and self.depthwise_large not in ("auto", "plain"):
            raise ConfigError(f"--qat-epochs keeps depthwise kernels above 5x5 plain: drop --depthwise-large {self.depthwise_large}")
        if self.qat_epochs and self.target is not None:
            raise ConfigError(f"--qat-epochs keeps depthwise kernels above 5x5 plain: drop --target {self.target}")
        if self.resolution is not None and self.resolution < 8:
            raise ConfigError(f"--resolution {self.resolution} is too small: use at least 8 pixels, e.g. 224")
        if not str(self.out).endswith(".tflite"):
            raise ConfigError(f"--out {self.out}: name the output FILE.tflite")
        if self.validate_images is None:
            self.validate_images = LATENCY_ONLY_VALIDATE_IMAGES if self.latency_only else VALIDATE_IMAGES
        if self.int8_friendly is None:
            self.int8_friendly = self.quantize == "int8"
        self.qat = dataclasses.replace(self.qat, epochs=max(self.qat_epochs, 1))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ExportResult:
    """Where the model went and how validation went."""

    tflite_path: Path
    metadata_path: Path
    report: ValidationReport
    float_report: ValidationReport | None

    @property
    def passed(self) -> bool:
        return self.report.passed and (self.float_report is None or self.float_report.passed)


def table_search_dirs(path: str | Path) -> list[Path]:
    """Where `--target NAME` looks for luts/NAME.yaml: the run a specialize folder's subnet came from
    (its `subnet.json` names the supernet), as `specialize` did, then the working folder."""
    summary = Path(path) / "subnet.json"
    supernet = read_json(summary, SUMMARY_REMEDY).get("provenance", {}).get("supernet") if summary.is_file() else None
    runs = [Path(supernet).parent, Path(supernet)] if supernet else []
    return [*runs, Path(".")]


def recorded_data(path: str | Path) -> str:
    """The data a specialize folder's subnet was measured on (its `subnet.json`), else "bundled"."""
    summary = Path(path) / "subnet.json"
    if not summary.is_file():
        return "bundled"
    data = read_json(summary, SUMMARY_REMEDY).get("provenance", {}).get("data")
    return data if data and data != "run default" else "bundled"  # "run default": written before data was named


def export_resolution(model: Any, requested: int | None) -> int:
    """The input size to export at: the model's own, or `requested` when it has none."""
    from ofa_tf.export.rewrite import model_resolution

    own = model_resolution(model)
    if own is not None and requested is not None and requested != own:
        raise ConfigError(f"--resolution {requested} differs from the model's fixed input {own}: omit it or re-extract")
    if own is None and requested is None:
        raise ConfigError("the model takes any input size: give --resolution R")
    return own if own is not None else requested


def _metadata(config: ExportConfig, content: bytes, source: Any, size: int, result: dict) -> dict[str, Any]:
    from ofa_tf._backend import tf
    from ofa_tf.data.transforms import EVAL_CROP_FRACTION, IMAGENET_MEAN, IMAGENET_STD
    from ofa_tf.export.tflite import load_interpreter

    interpreter = load_interpreter(content, delegate=False)

    def tensor(detail):
        scale, zero_point = detail["quantization"]
        return {"name": detail["name"], "shape": [int(v) for v in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name,
                "scale": float(scale), "zero_point": int(zero_point)}

    return {
        "format": "ofa-tf tflite export",
        "class_names": list(source.class_names),
        "input_size": size,
        "preprocessing": {
            "resize_shorter_side": f"ceil(input_size / {EVAL_CROP_FRACTION})", "center_crop": size,
            "scale": "1/255", "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "layout": "NHWC RGB",
        },
        "quantization": config.quantize if not config.qat_epochs else "int8 (QAT)",
        "input": tensor(interpreter.get_input_details()[0]),
        "output": tensor(interpreter.get_output_details()[0]),
        "config": config.to_dict(),
        "versions": {"tensorflow": tf.__version__, "python": platform.python_version()},
        **result,
    }


# a faster form is shipped only if its top-1 agreement with the float model is at most this much lower
# (int8: each window's partial sum is quantized on its own, which can add rounding), or within two
# standard errors of the best form's agreement on the validation images, whichever is larger
MAX_AGREEMENT_LOSS = 0.01


def agreement_tolerance(best: float, n_images: int | None) -> float:
    """How much lower than `best` a form's agreement may be: MAX_AGREEMENT_LOSS, or two standard
    errors of an agreement of `best` measured on `n_images` (a difference the sample cannot tell)."""
    if not n_images:
        return MAX_AGREEMENT_LOSS
    return max(MAX_AGREEMENT_LOSS, 2.0 * float(np.sqrt(best * (1.0 - best) / n_images)))


def _choose_form(
    contents: dict[str, bytes], device: str, agreement: Callable[[bytes], float] | None = None, table: Any = None,
    n_images: int | None = None, open_timer: Callable[[str], Any] | None = None,
) -> tuple[str, dict[str, Any] | None]:
    """The form to ship: the only one, the table's (`table` given), or the fastest measured on `device`;
    unless it agrees with the float model less often (by more than `agreement_tolerance`) than another.

    Args:
        contents: form -> flatbuffer.
        device: "host" or "adb[:SERIAL]".
        agreement: flatbuffer -> top-1 agreement with the float Keras model (None: not compared, float exports).
        table: the `TableForms` behind the "table" form, which is then chosen without timing.
        n_images: how many images `agreement` measures on.
        open_timer: device -> a backend that times flatbuffers (`ofa_tf.android_bench.devices.open_form_timer`).
    """
    if len(contents) == 1:
        (form,) = contents
        return form, None if form == "plain" else {"form": form, "why": "asked for"}
    if table is not None:
        form, why, card = "table", f"each layer in the form {table.source} measured fastest", {"table": table.source}
    else:
        if open_timer is None:
            raise ConfigError("choosing a depthwise form by measurement needs a device: pass open_timer, or use --depthwise-large plain")
        backend = open_timer(device)
        latency = {form: backend.measure(content, name=f"{form} form").median_ms for form, content in contents.items()}
        form = min(latency, key=latency.get)
        why = ", ".join(f"{name} {ms:.2f} ms" for name, ms in latency.items()) + f" on {device}, 1 thread"
        card = {"latency_ms": latency, "device": backend.describe()}
    if agreement is not None:
        card["agreement"] = agreed = {name: agreement(content) for name, content in contents.items()}
        best = max(agreed.values())
        tolerance = agreement_tolerance(best, n_images)
        if agreed[form] < best - tolerance:
            fastest, form = form, max(agreed, key=agreed.get)
            why += (f"; {fastest} agrees with the float model on {100 * agreed[fastest]:.1f}% vs {form}'s "
                    f"{100 * best:.1f}%, more than {100 * tolerance:.1f} points lower")
    return form, {"form": form, "why": why, **card}


def _candidate_forms(layers: dict[str, Any], config: ExportConfig) -> tuple[dict[str, Any], Any]:
    """form -> the `depthwise_form` to rebuild with, for each form to consider; and the table applied
    (`config.target`), or None. `layers`: the model's large depthwise layers (`large_depthwise_layers`)."""
    from ofa_tf.export.forms import FORMS, TableForms, for_int8, form_of, windowable

    int8 = config.quantize == "int8"
    layers = {name: layer for name, layer in layers.items() if windowable(layer, int8)}
    if not layers:
        return {"plain": "plain"}, None
    if config.target is not None:
        from ofa_tf.nas.efficiency_predictor import find_latency_tables

        table = TableForms.from_yaml(*find_latency_tables(config.target, table_search_dirs(config.model)))
        if all(form_of(table, layer) == "plain" for layer in layers.values()):
            return {"plain": "plain"}, None
        return {"plain": "plain", "table": for_int8(table) if int8 else table}, table
    if config.qat_epochs:  # the only form tensorflow-model-optimization can quantize
        return {"plain": "plain"}, None
    forms = FORMS if config.depthwise_large == "auto" else [config.depthwise_large]
    return {form: for_int8(form) if int8 and form != "plain" else form for form in forms}, None


# images on which each depthwise form's float model is checked against the source model: a rewrite is an
# identity of the weights, which any input exposes; the shipped .tflite is then checked against the source
# model on every validation image
REWRITE_CHECK_IMAGES = 16


def _float_forms(
    model: Any, config: ExportConfig, size: int, images: np.ndarray, log: Callable[[str], None] = lambda line: None
) -> tuple[dict[str, Any], Any, dict]:
    """form -> the float model rebuilt in that depthwise form, for each form to consider, each checked
    against `model` in float on the first `REWRITE_CHECK_IMAGES` of `images`; the latency table whose
    forms are applied, or None; and form -> {layer name: the form each large depthwise layer got}."""
    from ofa_tf.export.forms import form_of, large_depthwise_layers
    from ofa_tf.export.rewrite import rebuild
    from ofa_tf.export.validate import keras_logits

    probe = images[:REWRITE_CHECK_IMAGES]
    original = keras_logits(model, probe)
    plain = rebuild(model, int8_friendly=config.int8_friendly, resolution=size)
    layers = large_depthwise_layers(plain)
    forms, table = _candidate_forms(layers, config)
    rebuilt = {}
    layer_forms = {form: {name: form_of(choice, layer) for name, layer in layers.items()} for form, choice in forms.items()}
    for form, choice in forms.items():
        candidate = plain if form == "plain" else rebuild(
            model, int8_friendly=config.int8_friendly, resolution=size, depthwise_form=choice
        )
        rewrite_diff = float(np.abs(keras_logits(candidate, probe) - original).max())
        if rewrite_diff <= 1e-4 * max(1.0, float(np.abs(original).max())):
            rebuilt[form] = candidate
        elif form == "plain" or len(forms) == 1:  # the form asked for, or the one every export falls back on
            raise ConfigError(f"the export rewrite ({form}) changed the float logits by {rewrite_diff:.3g}: export without it")
        else:  # a model this sensitive to summation order keeps the forms that equal it
            log(f"depthwise form {form} left out: it changed the float logits by {rewrite_diff:.3g} "
                f"(max |logit| {float(np.abs(original).max()):.3g})")
            del layer_forms[form]
    return rebuilt, table, layer_forms


def run_export(
    config: ExportConfig, log: Callable[[str], None] | None = None, open_timer: Callable[[str], Any] | None = None
) -> ExportResult:
    """Runs the export job described by `config`: validation images, each depthwise form in float
    (`_float_forms`), conversion, the form chosen, QAT where asked, validation, the files written.

    Args:
        config: what to export, how, and where.
        log: called with progress lines (the CLI prints them).
        open_timer: device -> a backend timing flatbuffers, for `depthwise_large="auto"`
            (`ofa_tf.android_bench.devices.open_form_timer`).
    """
    from ofa_tf.export.validate import keras_logits, run_tflite, validate

    log = log or (lambda line: None)
    model = load_model(config.model)
    size = export_resolution(model, config.resolution)
    source, images, labels = _validation_data(config, model, size)
    reference = keras_logits(model, images)  # every form's float model equals `model` (checked by `_float_forms`)
    rebuilt, table, layer_forms = _float_forms(model, config, size, images, log)
    mode = "none" if config.qat_epochs else config.quantize  # QAT: the forms are compared in float
    contents = _converted_forms(config, rebuilt, mode, source, size)
    agreement = None
    if mode not in ("none", "fp16") and len(contents) > 1:
        expected = reference.argmax(-1)
        agreement = lambda content: float(np.mean(run_tflite(content, images).argmax(-1) == expected))  # noqa: E731
    form, depthwise = _choose_form(contents, config.device, agreement, table, n_images=len(images), open_timer=open_timer)
    float_model = rebuilt[form]
    if depthwise is not None:
        depthwise["layers"] = layer_forms[form]
        log(f"depthwise kernels above 5x5: {form} form ({depthwise['why']})")
    float_report = None
    if config.qat_epochs:
        content, report, float_report = _quantization_aware(config, float_model, source, images, labels, reference, log)
    else:
        content = contents[form]
        report = validate(float_model, content, images, labels, config.quantize, config.min_agreement, reference=reference,
                          latency_only=config.latency_only)
    result = {"validation": report.to_dict(), "float_keras_top1": float(np.mean(reference.argmax(-1) == labels))}
    if depthwise is not None:
        result["depthwise_large_kernels"] = depthwise
    if float_report is not None:
        result["validation_against_float"] = float_report.to_dict()
    tflite_path, metadata_path = _write(config, content, report.passed, result, source, size)
    return ExportResult(tflite_path, metadata_path, report, float_report)


def _validation_data(config: ExportConfig, model: Any, size: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """(the image source, validation images, their labels), in the memory the machine has."""
    from ofa_tf.data.sources import open_source, require_classes
    from ofa_tf.export import memory
    from ofa_tf.export import quantize as images_for
    from ofa_tf.export.validate import KERAS_BATCH

    source = require_classes(open_source(config.data), int(model.output_shape[-1]), f"the model {config.model}",
        f"ofa-tf finetune {config.model} --data {config.data or 'DATA'} --out DIR",
    )
    several_forms = " or use --depthwise-large plain (one form, not four)" if config.depthwise_large == "auto" else ""
    memory.require(f"validation on {config.validate_images} images",
                   memory.image_bytes(config.validate_images, size) + memory.inference_bytes(model, KERAS_BATCH),
                   "--validate-images" + several_forms)
    images, labels = images_for.validation_images(source, size, config.validate_images)
    return source, images, labels


def _converted_forms(config: ExportConfig, rebuilt: dict[str, Any], mode: str, source: Any, size: int) -> dict[str, Any]:
    """Each form's flatbuffer in `mode` (int8: calibrated on the configured images); with QAT and a
    single form, nothing (QAT converts its own model)."""
    from ofa_tf.export import memory
    from ofa_tf.export import quantize as images_for
    from ofa_tf.export.tflite import convert_to_tflite

    if config.qat_epochs and len(rebuilt) == 1:
        return dict.fromkeys(rebuilt)
    representative = None
    if mode == "int8":
        # the converter's calibration keeps a copy of the images it is given
        memory.require(f"int8 calibration on {config.calibration_samples} images",
                       2 * memory.image_bytes(config.calibration_samples, size), "--calibration-samples")
        calibration = images_for.calibration_images(source, size, config.calibration_samples, config.calibration_seed)
        representative = images_for.representative_dataset(calibration)
    int8_io = config.int8_io and not config.qat_epochs
    return {form: convert_to_tflite(m, mode, representative, int8_io=int8_io) for form, m in rebuilt.items()}


def _quantization_aware(config: ExportConfig, float_model: Any, source: Any, images, labels, reference, log):
    """(int8 flatbuffer, its report against the QAT model, its report against the float model)."""
    from ofa_tf.export import memory
    from ofa_tf.export.qat import quantization_aware_training
    from ofa_tf.export.tflite import convert_to_tflite
    from ofa_tf.export.validate import compare, keras_logits, run_tflite

    memory.require(f"quantization-aware training on batches of {config.qat.batch_size}",
                   int(memory.QAT_ACTIVATION_FACTOR * config.qat.batch_size * memory.activation_bytes(float_model)),
                   "--qat-batch-size")
    log(f"quantization-aware training: {config.qat_epochs} epoch(s)")
    keras_model = quantization_aware_training(float_model, source, config.qat, log=log)
    content = convert_to_tflite(keras_model, "int8", int8_io=config.int8_io)
    qat_reference, logits = keras_logits(keras_model, images), run_tflite(content, images)
    report = compare("int8", qat_reference, logits, labels, content, config.min_agreement, latency_only=config.latency_only)
    return content, report, compare("int8", reference, logits, labels, content, 0.0)


def _write(config: ExportConfig, content: bytes, passed: bool, result: dict[str, Any], source: Any, size: int) -> tuple[Path, Path]:
    """Writes the flatbuffer and its card, atomically; a model that failed validation gets the
    unverified names."""
    from ofa_tf.export import memory
    from ofa_tf.io import atomic_write_bytes, atomic_write_json

    out = Path(config.out)
    tflite_path = out if passed else out.with_name(out.name + UNVERIFIED_SUFFIX)
    metadata_path = out.with_suffix(".json") if passed else out.with_name(out.name + UNVERIFIED_SUFFIX + ".json")
    atomic_write_bytes(tflite_path, content)
    peak = memory.peak_resident_bytes()
    result["peak_memory_gb"] = round(peak / memory.GB, 2) if peak is not None else None
    atomic_write_json(metadata_path, _metadata(config, content, source, size, result))
    return tflite_path, metadata_path

