"""Forms of depthwise convolutions with kernels above 5x5, and which one a layer gets.

XNNPACK, LiteRT's CPU delegate, runs 3x3 and 5x5 depthwise kernels on fast
paths and OFA's 7x7 on a slow one on x86. `export.rewrite` can write a 7x7
kernel as the sum of 5x5 or of 3x3 depthwise windows over crops of its padded
input ("windows5", "windows3"), or without any crop or padding copy ("dilated"): at stride 1 as a centred
5x5 kernel plus five dilated 3x3 kernels that hold the outer ring of taps, at
stride 2 as the sum over the four phases of the input (even / odd rows and
columns, picked by one-hot 2x2 stride-2 kernels) of stride-1 convolutions with
the taps that reach each phase, all "same" on the unpadded input (5x5 windows
where neither applies: other strides, odd input sizes at stride 2). Every form is exact in float, and faster or
slower depending on the runtime, the shape and the stride. The form is chosen by measurement on the target: for a whole model
by the export (`--depthwise-large auto`), or per layer shape from a latency
table built with every form (`ofa-tf bench lut`), which `ofa-tf export
--target NAME` and `ofa-tf bench validate` apply layer by layer.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, NamedTuple

from ofa_tf.errors import ConfigError

FORMS = ("plain", "windows5", "windows3", "dilated")
# the window size a form's large kernels are written with where they are windowed
# ("dilated" where neither its stride-1 ring nor its stride-2 phases apply)
WINDOW_SIZES = {"windows5": 5, "windows3": 3, "dilated": 5}
LARGEST_FAST_KERNEL = 5  # XNNPACK's fast depthwise paths stop here


class DepthwiseLayer(NamedTuple):
    """What the speed of a depthwise form depends on: a square kernel, its stride, output size, channels."""

    kernel: int
    stride: int
    output_size: int
    channels: int

    @classmethod
    def of(cls, config: dict[str, Any], input_shape) -> "DepthwiseLayer":
        """The layer of a Keras `DepthwiseConv2D` config applied to inputs of shape [batch, H, W, C]."""
        (kernel, _), (stride, _) = config["kernel_size"], config["strides"]
        height = int(input_shape[1])
        output = -(-height // stride) if config["padding"] == "same" else (height - kernel) // stride + 1
        return cls(int(kernel), int(stride), int(output), int(input_shape[-1]) * int(config["depth_multiplier"]))

    @property
    def large(self) -> bool:
        return self.kernel > LARGEST_FAST_KERNEL


# A form for every layer: one name, or a choice per layer.
FormChoice = str | Callable[[DepthwiseLayer], str]


def check_form(form: str) -> str:
    if form not in FORMS:
        raise ConfigError(f"depthwise form {form!r}: choose among {', '.join(FORMS)}")
    return form


def form_of(choice: FormChoice, layer: DepthwiseLayer) -> str:
    """The form `choice` gives `layer` (plain for kernels that have a fast path)."""
    if not layer.large:
        return "plain"
    return check_form(choice(layer) if callable(choice) else choice)


# XNNPACK's int8 kernels fail to prepare, or crash the process (double free), on windowed depthwise
# graphs over the smallest maps (LiteRT 2.x on x86: outputs of 1-3 pixels; 4 and more run): int8 graphs
# keep those layers plain, where a 7x7 kernel costs little anyway.
INT8_MIN_WINDOWED_OUTPUT = 4


def windowable(layer: DepthwiseLayer, int8: bool) -> bool:
    """Whether `layer` may be written in windows (a large kernel, and in int8 a large enough output)."""
    return layer.large and (not int8 or layer.output_size >= INT8_MIN_WINDOWED_OUTPUT)


def for_int8(choice: FormChoice) -> FormChoice:
    """`choice` for an int8 graph: layers that are not `windowable` in int8 stay plain."""
    return lambda layer: form_of(choice, layer) if windowable(layer, int8=True) else "plain"


_BLOCK_KEY = re.compile(r"^expanded_conv-input:\d+x\d+x\d+-output:(\d+)x\d+x\d+-expand:(\d+)-kernel:(\d+)-stride:(\d+)-")


class TableForms:
    """The fastest form of each large depthwise layer shape, as a latency table measured it.

    `ofa-tf bench lut` times every block key with a large kernel in each form
    and records `form` (the fastest) and `forms_ms` in its entry; keys that
    share a depthwise shape (other input widths, SE, activations) vote with
    their summed times. A table built without forms gives every layer the
    plain form, which is what its times measured.

    Args:
        entries: latency-table entries (key -> {mean, ..., form, forms_ms}).
        source: where they come from, for messages.
    """

    def __init__(self, entries: Mapping[str, Mapping[str, Any]], source: str):
        self.source = source
        totals: dict[DepthwiseLayer, dict[str, float]] = {}
        for key, entry in entries.items():
            match = _BLOCK_KEY.match(key)
            if match is None:
                continue
            output, channels, kernel, stride = map(int, match.groups())
            layer = DepthwiseLayer(kernel, stride, output, channels)
            if not layer.large:
                continue
            times = entry.get("forms_ms") or {entry.get("form", "plain"): float(entry["mean"])}
            for form, ms in times.items():
                totals.setdefault(layer, {}).setdefault(check_form(form), 0.0)
                totals[layer][form] += float(ms)
        self.forms = {layer: min(times, key=times.get) for layer, times in totals.items()}

    @classmethod
    def from_yaml(cls, *paths: str) -> "TableForms":
        from ofa_tf.nas.latency_table import read_entries

        return cls(read_entries(*paths), ", ".join(map(str, paths)))

    def __call__(self, layer: DepthwiseLayer) -> str:
        if layer not in self.forms:
            raise ConfigError(
                f"latency table {self.source} has no block with a {layer.kernel}x{layer.kernel} depthwise layer of "
                f"{layer.channels} channels, stride {layer.stride}, {layer.output_size}x{layer.output_size} output: "
                "build it for this model's width, classes and resolution with `ofa-tf bench lut`"
            )
        return self.forms[layer]


def large_depthwise_layers(model: Any) -> dict[str, DepthwiseLayer]:
    """Name -> shape of each depthwise layer with a kernel above 5x5 in a fixed-size functional model."""
    return {
        layer.name: DepthwiseLayer.of(layer.get_config(), layer.input.shape)
        for layer in model.layers
        if type(layer).__name__ == "DepthwiseConv2D" and max(layer.kernel_size) > LARGEST_FAST_KERNEL
    }
