"""Builds a device latency lookup table in the official OFA YAML format.

One small TFLite model per key (`layer_models`), each timed on a backend;
the table maps key -> {mean, std, count, [median]} in ms and is readable by
`ofa_tf.nas.latency_table.LatencyTable.from_yaml`. The build is resumable:
the YAML is rewritten atomically every few keys, and keys already in it are
skipped. A JSON card `NAME.json` beside the table records the configuration.

With `quantize="int8"` each layer model is converted as `ofa-tf export
--quantize int8 --int8-io` converts a subnet (int8-friendly rewrite,
full-integer, int8 input and output, so no QUANTIZE/DEQUANTIZE per key),
calibrated on random-normal tensors of the layer's input shape: latency
depends on the shapes and kernels, not on the calibrated scales. The `/ 6`
of hard-swish stays a MUL (`fold_scales=False`): folding it would leave it at
the output of the keys that end in hard-swish, where the converter fuses it
back into a float HARD_SWISH; a folded whole subnet is so up to one int8 MUL
per hard-swish faster than the sum of its keys.

A block key whose depthwise kernel is above 5x5 is timed in each of
`depthwise_forms` (`ofa_tf.export.forms`: as it is, as sums of 5x5 or 3x3
windows); its entry holds the fastest (`mean` etc.), `form` (which one) and
`forms_ms` (every form's mean), which `ofa-tf export --target` and `ofa-tf
bench validate` apply layer by layer.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from ofa_tf.android_bench.backend import Backend, BenchSettings
from ofa_tf.android_bench.layer_models import FIRST_BLOCK, LayerSpec, build_layer_model, layer_specs, needs_supernet
from ofa_tf.errors import ConfigError
from ofa_tf.export.forms import FORMS, DepthwiseLayer, check_form, windowable
from ofa_tf.io import atomic_write_json, atomic_write_text, read_json
from ofa_tf.space.registry import Space, make_space
from ofa_tf.space.choices import conv_output_size

Progress = Callable[[int, int, str], None]
QUANTIZE_MODES = (None, "int8")
CALIBRATION_SAMPLES = 8


@dataclasses.dataclass(frozen=True)
class LutConfig:
    """What a table is built for.

    Args:
        width_mult: supernet width multiplier.
        resolutions: input resolutions whose keys are measured.
        n_classes: classifier outputs (part of the `Logits` key).
        quantize: None (float32) or "int8" (full-integer layer models).
        device: "host", "adb" or "adb:SERIAL".
        settings: benchmark run settings.
        depthwise_forms: forms each key with a depthwise kernel above 5x5 is timed in.
        family: the supernet family ("mbv3", "proxyless", "resnet50": whose widths are choices,
            so `width_mult` stays 1.0).
    """

    width_mult: float = 1.0
    resolutions: tuple[int, ...] = (160, 176, 192, 208, 224)
    n_classes: int = 1000
    quantize: str | None = None
    device: str = "host"
    settings: BenchSettings = BenchSettings()
    depthwise_forms: tuple[str, ...] = tuple(FORMS)
    family: str = "mbv3"

    def __post_init__(self) -> None:
        if self.quantize not in QUANTIZE_MODES:
            raise ConfigError(f"--quantize {self.quantize}: LUTs are built for float32 (default) or int8 models")
        if "plain" not in self.depthwise_forms:
            raise ConfigError("--depthwise-forms must include plain (every runtime runs it)")
        for form in self.depthwise_forms:
            check_form(form)
        self.space  # a family, width and classes that make a search space

    @property
    def space(self) -> Space:
        """The search space (default choice lists) whose keys the table holds."""
        return make_space(self.family, self.width_mult, n_classes=self.n_classes, resolutions=self.resolutions)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["resolutions"] = list(self.resolutions)
        out["depthwise_forms"] = list(self.depthwise_forms)
        return out

    def same_table(self, other: dict[str, Any]) -> bool:
        """Whether a card's config measures the same keys the same way (resolutions may differ)."""
        mine = {k: v for k, v in self.to_dict().items() if k != "resolutions"}
        other = {"family": "mbv3", **other}  # cards written before families existed
        return mine == {k: v for k, v in other.items() if k != "resolutions"}


def card_path(lut_path: str | os.PathLike) -> Path:
    """`luts/NAME.json` for `luts/NAME.yaml`."""
    return Path(lut_path).with_suffix(".json")


def built_config(lut_path: str | os.PathLike) -> dict[str, Any] | None:
    """The `LutConfig` (as a dict) a table was built with, from its card; None for a table without one."""
    card = card_path(lut_path)
    return read_json(card, f"remove it and {lut_path} and build the table again").get("config") if card.is_file() else None


def _load_existing(config: LutConfig, out: Path) -> dict[str, Any]:
    """Entries of a partial table at `out` built with the same config (empty when none)."""
    if not out.exists():
        return {}
    card = card_path(out)
    stored = built_config(out)
    if stored is None or not config.same_table(stored):
        raise ConfigError(
            f"{out} exists but was built with other settings ({card.name} differs or is missing): "
            "choose another --out, or delete it to rebuild"
        )
    try:
        entries = yaml.safe_load(out.read_text()) or {}
    except yaml.YAMLError:
        raise ConfigError(f"{out} is not valid YAML: delete it to rebuild") from None
    return {key: value for key, value in entries.items() if isinstance(value, dict) and "mean" in value}


def _write(out: Path, specs: list[LayerSpec], entries: dict[str, Any], card: dict[str, Any]) -> None:
    ordered = {spec.key: entries[spec.key] for spec in specs if spec.key in entries}
    ordered.update({key: value for key, value in entries.items() if key not in ordered})
    atomic_write_text(out, yaml.safe_dump(ordered, sort_keys=False, default_flow_style=False))
    atomic_write_json(card_path(out), {**card, "n_entries": len(ordered)})


def _versions() -> dict[str, str]:
    from importlib import metadata

    import tensorflow as tf

    return {"ofa_tf": metadata.version("ofa-tf"), "tensorflow": tf.__version__}


def layer_tflite(model: Any, quantize: str | None, seed: int = 0, depthwise_form: str = "plain") -> bytes:
    """The flatbuffer of one layer model: float32, or int8 with int8 input and output.

    Args:
        model: from `build_layer_model`.
        quantize: None or "int8".
        seed: of the random-normal calibration tensors (int8).
        depthwise_form: the form of a depthwise kernel above 5x5 (`ofa_tf.export.forms`).
    """
    from ofa_tf.export.quantize import representative_dataset
    from ofa_tf.export.rewrite import rebuild
    from ofa_tf.export.tflite import convert_to_tflite

    if quantize is None:
        return convert_to_tflite(model if depthwise_form == "plain" else rebuild(model, depthwise_form=depthwise_form))
    shape = tuple(model.inputs[0].shape[1:])
    calibration = np.random.default_rng(seed).standard_normal((CALIBRATION_SAMPLES, *shape)).astype(np.float32)
    friendly = rebuild(model, int8_friendly=True, fold_scales=False, depthwise_form=depthwise_form)
    return convert_to_tflite(friendly, "int8", representative_dataset(calibration), int8_io=True)


def _windowable(spec: LayerSpec, config: LutConfig) -> bool:
    if spec.kind != "expanded_conv" or spec.block == FIRST_BLOCK:
        return False
    stride = config.space.blocks[spec.block].stride
    layer = DepthwiseLayer(spec.kernel_size, stride, conv_output_size(spec.input_shape[0], stride), spec.mid)
    return windowable(layer, int8=config.quantize == "int8")


def measure_key(model: Any, spec: LayerSpec, config: LutConfig, backend: Backend) -> dict[str, Any]:
    """The table entry of one key: its fastest form's statistics, and with several forms `form` and `forms_ms`.

    Args:
        model: the key's layer model (`build_layer_model`).
        spec: the key.
        config: the table's settings (quantization, forms).
        backend: where it is timed.
    """
    forms = config.depthwise_forms if _windowable(spec, config) else ("plain",)
    entries = {
        form: backend.measure(
            layer_tflite(model, config.quantize, depthwise_form=form), spec.key if form == "plain" else f"{spec.key} ({form})"
        ).lut_entry()
        for form in forms
    }
    if len(entries) == 1:
        return entries["plain"]
    fastest = min(entries, key=lambda form: entries[form]["mean"])
    return {**entries[fastest], "form": fastest, "forms_ms": {form: entry["mean"] for form, entry in entries.items()}}


def build_lut(
    config: LutConfig, backend: Backend, out: str | os.PathLike, save_every: int = 8, on_progress: Progress | None = None
) -> dict[str, Any]:
    """Measures every key of `config` not yet in `out` and writes the table.

    Args:
        config: widths, resolutions, device settings.
        backend: where models are timed (from `open_backend`).
        out: YAML path; an existing partial table with the same config is resumed.
        save_every: keys between atomic rewrites of the partial table.
        on_progress: called as (keys done, keys total, key) after each key.

    Returns:
        The card saved as `NAME.json`: config, device, counts, build seconds.
    """
    from ofa_tf.supernet.storage import supernet_for_space

    out = Path(out)
    specs = layer_specs(config.space, config.resolutions)
    entries = _load_existing(config, out)
    todo = [spec for spec in specs if spec.key not in entries]
    card = {
        "config": config.to_dict(),
        "backend": backend.describe(),
        "versions": _versions(),
        "n_keys": len(specs),
        "format": "official OFA latency table (key -> mean/std/count in ms)",
    }
    start = time.perf_counter()
    supernet = supernet_for_space(config.space) if any(needs_supernet(spec) for spec in todo) else None
    for number, spec in enumerate(todo, start=1):
        entries[spec.key] = measure_key(build_layer_model(supernet, spec), spec, config, backend)
        if number % save_every == 0:
            _write(out, specs, entries, card)
        if on_progress is not None:
            on_progress(len(specs) - len(todo) + number, len(specs), spec.key)
    card["measured_now"] = len(todo)
    card["seconds"] = round(time.perf_counter() - start, 1)
    _write(out, specs, entries, card)
    return {**card, "n_entries": len(entries)}
