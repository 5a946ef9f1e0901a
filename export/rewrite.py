"""Rebuilds a functional model of stock layers, optionally in an int8-friendly form.

The rebuild walks a Keras 3 functional model layer by layer and re-creates it
in `keras` or `tf_keras` (tensorflow-model-optimization quantizes only
`tf_keras` models), with the same weights and a fixed input size.

With `int8_friendly=True` the hard activations are written with stock layers
the TFLite converter does not fuse back into `HARD_SWISH` (which XNNPACK runs
in float only, so an int8 graph would be cut into one delegate partition per
activation):

    hard_sigmoid(x) = relu6(x + 3) / 6            -> Rescaling, ReLU(6), Rescaling
    hard_swish(x)   = (x / 6) * relu6(x + 3)      -> Rescaling, Rescaling, ReLU(6), Multiply

and with `fold_scales=True` (the default) the `/ 6` is not computed at all:
the rebuilt graph carries `6 * hard_swish(x) = x * relu6(x + 3)` (and
`6 * hard_sigmoid(x)`) forward through scale-free layers (zero padding,
pooling, multiply, flatten, dropout) and divides the kernel of the next
convolution or dense layer by 6 instead; a residual `Add` multiplies its other
input up to the same scale (a constant the converter folds into the producing
convolution). Each hard-swish is then two int8 ops (ADD with fused RELU6, MUL)
instead of three, each hard-sigmoid one. (The zero padding in front of
stride-1 convolutions needs no rewrite: the converter already turns it into
"same" padding; only the stride-2 ones stay PAD ops.)

With `depthwise_form="windows5"` (or `"windows3"`) a depthwise convolution
with a kernel larger than 5x5 (OFA's 7x7) is written as the sum of 5x5 (3x3)
depthwise convolutions over shifted crops of its padded input, each of the 49
taps in exactly one window (the others zero); with `"dilated"` a 7x7 one at
stride 1 as its centre 5x5 kernel plus five dilated 3x3 kernels holding the
outer ring, all "same" on the unpadded input, and at stride 2 (even input size) as
the sum of its four phases: each phase of the input (even / odd rows and
columns, picked by a one-hot 2x2 stride-2 depthwise kernel) convolved at
stride 1 with the taps that reach it, "same" again (no crops, no padding
copies; 5x5 windows where neither applies). XNNPACK runs 3x3 and 5x5
depthwise kernels on fast paths and 7x7 ones on a slow one on x86 (4.37 vs
0.91 ms on 56x56x96 in the issue's measurement), while other runtimes may
not. The form can also be chosen per layer (`export.forms`): the export
measures the forms on the target, or applies a latency table's choices.

Every form equals the Keras model in float up to rounding (tests: ≤ 1e-4 on logits).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from ofa_tf.errors import ConfigError
from ofa_tf.export.forms import WINDOW_SIZES, DepthwiseLayer, FormChoice, form_of

HARD_SIGMOID = ("hard_sigmoid",)
HARD_SWISH = ("hard_silu", "hard_swish")
PASS_THROUGH_ACTIVATIONS = ("linear", "relu", "relu6", "softmax", "sigmoid")
# layers f with f(s * x) = s * f(x) for s > 0: a pending scale passes through them
SCALE_FREE = (
    "ZeroPadding2D", "Cropping2D", "GlobalAveragePooling2D", "AveragePooling2D", "MaxPooling2D", "Flatten", "Dropout"
)


class Scaled(NamedTuple):
    """A rebuilt tensor holding `scale` times the source model's tensor."""

    tensor: Any
    scale: float = 1.0


def _activation_name(activation: Any) -> str:
    name = activation if isinstance(activation, str) else getattr(activation, "__name__", str(activation))
    return "linear" if name in (None, "None") else name


class _Rebuilder:
    """Adds layers of `lib` to a new functional graph, one source layer at a time.

    Args:
        lib: `keras` or `tf_keras`.
        int8_friendly: write the hard activations with stock layers.
        fold_scales: leave their `/ 6` to the next convolution or dense layer.
        depthwise_form: the form of depthwise kernels above 5x5 (`export.forms`).
    """

    def __init__(self, lib: Any, int8_friendly: bool, fold_scales: bool, depthwise_form: FormChoice = "plain"):
        self.layers = lib.layers
        self.depthwise_form = depthwise_form
        self.tensors: dict[int, Scaled] = {}  # id of a source tensor -> its rebuilt tensor (filled by `rebuild`)
        # tf_keras has no hard_silu and its hard_sigmoid is 0.2x + 0.5: always use the stock formulation there
        self.int8_friendly = int8_friendly or lib.__name__.startswith("tf_keras")
        self.fold_scales = fold_scales

    def activation(self, x: Scaled, name: str, activation: str) -> Scaled:
        """`activation` applied to `x` (friendly formulation for the hard ones when asked)."""
        if activation == "linear":
            return x
        if activation in HARD_SIGMOID + HARD_SWISH and self.int8_friendly:
            return self._friendly(self.unscaled(x, name), name, activation in HARD_SWISH)
        if activation in HARD_SIGMOID + HARD_SWISH + PASS_THROUGH_ACTIVATIONS:
            return Scaled(self.layers.Activation(activation, name=name)(self.unscaled(x, name)))
        raise ConfigError(f"layer {name}: activation {activation!r} is not supported by the export rewrite")

    def _friendly(self, x: Any, name: str, swish: bool) -> Scaled:
        layers = self.layers
        gate = layers.Rescaling(1.0, offset=3.0, name=f"{name}_plus3")(x)
        gate = layers.ReLU(max_value=6.0, name=f"{name}_relu6")(gate)
        if self.fold_scales:
            return Scaled(layers.Multiply(name=f"{name}_mul")([x, gate]) if swish else gate, 6.0)
        if not swish:
            return Scaled(layers.Rescaling(1.0 / 6.0, name=f"{name}_div6")(gate))
        scaled = layers.Rescaling(1.0 / 6.0, name=f"{name}_div6")(x)
        return Scaled(layers.Multiply(name=f"{name}_mul")([scaled, gate]))

    def unpadded_input(self, source: Any, x: Scaled) -> tuple[Scaled, int] | None:
        """The rebuilt input of `source` (a square depthwise layer) before its zero padding, and the rows
        (= columns) of padding on top: `x` itself for padding="same", the input of an explicit symmetric
        k // 2 `ZeroPadding2D` in front of a "valid" one (as the extractor writes it); None otherwise."""
        config = source.get_config()
        kernel, stride = config["kernel_size"][0], config["strides"][0]
        if config["padding"] == "same":
            size = int(x.tensor.shape[1])
            return x, max((-(-size // stride) - 1) * stride + kernel - size, 0) // 2
        producer = source.input._keras_history[0]
        half = kernel // 2
        if type(producer).__name__ != "ZeroPadding2D" or tuple(map(tuple, producer.padding)) != ((half, half), (half, half)):
            return None
        unpadded = self.tensors.get(id(producer.input))
        return None if unpadded is None else (unpadded, half)

    def unscaled(self, x: Scaled, name: str) -> Any:
        """The tensor of `x` divided by its pending scale (a Rescaling layer when it is not 1)."""
        if x.scale == 1.0:
            return x.tensor
        return self.layers.Rescaling(1.0 / x.scale, name=f"{name}_unscale")(x.tensor)

    def _add(self, source: Any, inputs: list[Scaled]) -> Scaled:
        """A sum at the largest scale of its inputs: the others are multiplied up to it.

        That multiplication (of a linear convolution's output, in the residual
        connections of a network) folds into the convolution at conversion,
        where dividing the scaled input would leave a `/ 6` that the converter
        fuses back into a float `HARD_SWISH`.
        """
        scale = max(x.scale for x in inputs)
        terms = [
            x.tensor if x.scale == scale else self.layers.Rescaling(scale / x.scale, name=f"{source.name}_in{i}_scale")(x.tensor)
            for i, x in enumerate(inputs)
        ]
        return Scaled(_BUILDERS["Add"](self, source, terms), scale)

    def layer(self, source: Any, inputs: list[Scaled]) -> Scaled:
        """The output of `source` re-created on `inputs`, weights copied."""
        kind = type(source).__name__
        if kind in SCALE_FREE:
            return Scaled(_BUILDERS[kind](self, source, [inputs[0].tensor]), inputs[0].scale)
        build = _BUILDERS.get(kind)
        if build is None:
            raise ConfigError(
                f"layer {source.name} ({kind}) cannot be exported: supported layers are {sorted(_BUILDERS)}"
            )
        if build in (_conv, _dense, _activation):
            return build(self, source, inputs[0])
        if kind == "Multiply":
            return Scaled(build(self, source, [x.tensor for x in inputs]), _product(x.scale for x in inputs))
        if kind == "Add":
            return self._add(source, inputs)
        return Scaled(build(self, source, [self.unscaled(x, f"{source.name}_in{i}") for i, x in enumerate(inputs)]))


    def _large_depthwise(self, source: Any, x: Scaled, form: str) -> Any:
        """`source` (a square depthwise layer with a kernel above 5x5) in `form`, before its activation."""
        config = source.get_config()
        kernel, stride = config["kernel_size"][0], config["strides"][0]
        unpadded = self.unpadded_input(source, x) if form == "dilated" else None
        if unpadded is not None:
            (tensor, scale), pad = unpadded
            if kernel == 7 and stride == 1:
                return _depthwise_dilated(self, source, tensor, scale)
            if stride == 2 and int(tensor.shape[1]) % 2 == 0 and int(tensor.shape[2]) % 2 == 0:
                return _depthwise_phases(self, source, tensor, scale, pad)
        return _depthwise_windows(self, source, x.tensor, x.scale, WINDOW_SIZES[form])


def _product(values) -> float:
    out = 1.0
    for value in values:
        out *= value
    return out


def _copy(layer, x, source, input_scale: float = 1.0):
    """`layer(x)` with the weights of `source`, the kernel divided by `input_scale`."""
    y = layer(x)
    weights = source.get_weights()
    if weights:
        layer.set_weights([weights[0] / input_scale, *weights[1:]])
    return y


def _conv(self: _Rebuilder, source, x: Scaled) -> Scaled:
    config = source.get_config()
    args = dict(
        kernel_size=config["kernel_size"], strides=config["strides"], padding=config["padding"],
        dilation_rate=config["dilation_rate"], use_bias=config["use_bias"], name=source.name,
    )
    if type(source).__name__ == "DepthwiseConv2D":
        square = config["kernel_size"][0] == config["kernel_size"][1] and config["strides"][0] == config["strides"][1]
        form = form_of(self.depthwise_form, DepthwiseLayer.of(config, x.tensor.shape)) if square else "plain"
        if form != "plain" and config["dilation_rate"] in ((1, 1), 1):
            y = Scaled(self._large_depthwise(source, x, form))
            return self.activation(y, f"{source.name}_act", _activation_name(config["activation"]))
        layer = self.layers.DepthwiseConv2D(depth_multiplier=config["depth_multiplier"], **args)
    else:
        layer = self.layers.Conv2D(config["filters"], groups=config.get("groups", 1), **args)
    y = Scaled(_copy(layer, x.tensor, source, x.scale))
    return self.activation(y, f"{source.name}_act", _activation_name(config["activation"]))


# the outer ring of a 7x7 kernel (the taps outside its centre 5x5) as 3x3 kernels of these dilations,
# each centred: together they hold each of the 24 ring taps once
RING_DILATIONS = ((3, 3), (3, 1), (1, 3), (3, 2), (2, 3))


def _depthwise_dilated(self: _Rebuilder, source, x: Any, input_scale: float) -> Any:
    """`source` (a 7x7 stride-1 depthwise convolution of `x` padded by 3, "same") as the sum of its centre
    5x5 kernel and five dilated 3x3 kernels holding the outer ring, all with "same" padding on `x`."""
    import numpy as np

    kernel = source.get_weights()[0] / input_scale
    covered = {(i, j) for i in range(1, 6) for j in range(1, 6)}
    kernels = [((1, 1), kernel[1:6, 1:6])]
    for dilation in RING_DILATIONS:
        taps = np.zeros((3, 3, *kernel.shape[2:]), kernel.dtype)
        for i in range(3):
            for j in range(3):
                tap = (3 + (i - 1) * dilation[0], 3 + (j - 1) * dilation[1])
                if tap not in covered:
                    covered.add(tap)
                    taps[i, j] = kernel[tap]
        kernels.append((dilation, taps))
    assert len(covered) == 49, "the ring dilations must hold every tap"
    return _depthwise_sum(self, source, [
        (f"{source.name}_d{dilation[0]}{dilation[1]}", x, taps, dict(padding="same", dilation_rate=dilation))
        for dilation, taps in kernels
    ])


def _phase_taps(kernel: int, pad: int, parity: int) -> dict[int, int]:
    """Tap -> offset along one axis of a stride-2 convolution padded by `pad` in front, for the input
    positions of `parity`: output i reads input 2i - pad + tap, which is position i + offset of that
    parity's phase (input[parity::2])."""
    return {tap: (tap - pad - parity) // 2 for tap in range(kernel) if (tap - pad - parity) % 2 == 0}


def _depthwise_phases(self: _Rebuilder, source, x: Any, input_scale: float, pad: int) -> Any:
    """`source` (a k x k stride-2 depthwise convolution of `x` zero-padded by `pad` in front, with an output
    of half the even input size) as the sum over the four phases of `x` (even / odd rows and columns, picked
    by one-hot 2x2 stride-2 kernels) of stride-1 "same" convolutions with the taps that reach each phase."""
    import numpy as np

    kernel = source.get_weights()[0] / input_scale
    size, channels = kernel.shape[0], int(x.shape[-1])
    parts = []
    for row_parity in (0, 1):
        for col_parity in (0, 1):
            name = f"{source.name}_p{row_parity}{col_parity}"
            pick = np.zeros((2, 2, channels, 1), kernel.dtype)
            pick[row_parity, col_parity] = 1.0
            layer = self.layers.DepthwiseConv2D(2, strides=2, use_bias=False, name=f"{name}_pick")
            phase = layer(x)
            layer.set_weights([pick])
            rows, cols = _phase_taps(size, pad, row_parity), _phase_taps(size, pad, col_parity)
            half_h, half_w = max(map(abs, rows.values())), max(map(abs, cols.values()))
            taps = np.zeros((2 * half_h + 1, 2 * half_w + 1, *kernel.shape[2:]), kernel.dtype)
            for row, row_offset in rows.items():
                for col, col_offset in cols.items():
                    taps[half_h + row_offset, half_w + col_offset] = kernel[row, col]
            parts.append((name, phase, taps, dict(padding="same")))
    return _depthwise_sum(self, source, parts)


def _depthwise_sum(self: _Rebuilder, source, parts: list[tuple[str, Any, Any, dict[str, Any]]]) -> Any:
    """The sum of the depthwise convolutions `parts` ((name, input, kernel, layer options) each) that
    together stand for `source`; its bias, if any, goes to the first of them."""
    bias, multiplier = source.get_weights()[1:], source.get_config()["depth_multiplier"]
    terms = []
    for name, x, taps, options in parts:
        layer = self.layers.DepthwiseConv2D(
            taps.shape[:2], depth_multiplier=multiplier, use_bias=bool(bias) and not terms, name=name, **options
        )
        terms.append(layer(x))
        layer.set_weights([taps, *(bias if len(terms) == 1 else [])])
    return self.layers.Add(name=f"{source.name}_sum")(terms)


def _window_offsets(kernel: int, window: int) -> list[tuple[int, int, int]]:
    """(offset, first tap, last tap + 1) along one axis: windows of `window` taps at `offset`, each
    tap of the kernel counted in exactly one of them (in the last window it overlaps, a tap belongs to
    the window that reaches it first)."""
    spans, covered = [], 0
    while covered < kernel:
        offset = min(covered, kernel - window)
        spans.append((offset, covered, min(offset + window, kernel)))
        covered = offset + window
    return spans


def _depthwise_windows(self: _Rebuilder, source, x: Any, input_scale: float, window: int) -> Any:
    """`source` (a k x k depthwise convolution, k > window) as a sum of window x window depthwise
    convolutions over crops of its (explicitly) padded input."""
    import numpy as np

    config = source.get_config()
    layers = self.layers
    (kh, kw), (sh, sw) = config["kernel_size"], config["strides"]
    height, width = int(x.shape[1]), int(x.shape[2])
    if config["padding"] == "same":
        out_h, out_w = -(-height // sh), -(-width // sw)
        pad_h, pad_w = max((out_h - 1) * sh + kh - height, 0), max((out_w - 1) * sw + kw - width, 0)
        padding = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))
        x = layers.ZeroPadding2D(padding, name=f"{source.name}_pad")(x)
        height, width = height + pad_h, width + pad_w
    out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
    need_h, need_w = (out_h - 1) * sh + window, (out_w - 1) * sw + window
    kernel = source.get_weights()[0] / input_scale
    parts = []
    for row, first_row, end_row in _window_offsets(kh, window):
        for col, first_col, end_col in _window_offsets(kw, window):
            taps = np.zeros((window, window, *kernel.shape[2:]), kernel.dtype)
            rows, cols = slice(first_row - row, end_row - row), slice(first_col - col, end_col - col)
            taps[rows, cols] = kernel[first_row:end_row, first_col:end_col]
            name = f"{source.name}_w{row}{col}"
            crop = ((row, height - row - need_h), (col, width - col - need_w))
            cropped = layers.Cropping2D(crop, name=f"{name}_crop")(x) if any(map(any, crop)) else x
            parts.append((name, cropped, taps, dict(strides=(sh, sw), padding="valid")))
    return _depthwise_sum(self, source, parts)


def _dense(self: _Rebuilder, source, x: Scaled) -> Scaled:
    config = source.get_config()
    layer = self.layers.Dense(config["units"], use_bias=config["use_bias"], name=source.name)
    y = Scaled(_copy(layer, x.tensor, source, x.scale))
    return self.activation(y, f"{source.name}_act", _activation_name(config["activation"]))


def _batch_norm(self: _Rebuilder, source, inputs):
    config = source.get_config()
    layer = self.layers.BatchNormalization(
        axis=config["axis"], momentum=config["momentum"], epsilon=config["epsilon"],
        center=config["center"], scale=config["scale"], name=source.name,
    )
    return _copy(layer, inputs[0], source)


def _simple(factory: Callable[[Any, dict], Any]):
    def build(self: _Rebuilder, source, inputs):
        layer = factory(self.layers, source.get_config())
        return layer(inputs if len(inputs) > 1 else inputs[0])

    return build


def _activation(self: _Rebuilder, source, x: Scaled) -> Scaled:
    return self.activation(x, source.name, _activation_name(source.get_config()["activation"]))


_BUILDERS = {
    "Conv2D": _conv,
    "DepthwiseConv2D": _conv,
    "Dense": _dense,
    "BatchNormalization": _batch_norm,
    "Activation": _activation,
    "ZeroPadding2D": _simple(lambda L, c: L.ZeroPadding2D(tuple(map(tuple, c["padding"])), name=c["name"])),
    "Cropping2D": _simple(lambda L, c: L.Cropping2D(tuple(map(tuple, c["cropping"])), name=c["name"])),
    "GlobalAveragePooling2D": _simple(lambda L, c: L.GlobalAveragePooling2D(keepdims=c["keepdims"], name=c["name"])),
    "AveragePooling2D": _simple(lambda L, c: L.AveragePooling2D(c["pool_size"], c["strides"], c["padding"], name=c["name"])),
    "MaxPooling2D": _simple(lambda L, c: L.MaxPooling2D(c["pool_size"], c["strides"], c["padding"], name=c["name"])),
    "Multiply": _simple(lambda L, c: L.Multiply(name=c["name"])),
    "Add": _simple(lambda L, c: L.Add(name=c["name"])),
    "Flatten": _simple(lambda L, c: L.Flatten(name=c["name"])),
    "Dropout": _simple(lambda L, c: L.Dropout(c["rate"], name=c["name"])),
    "Rescaling": _simple(lambda L, c: L.Rescaling(c["scale"], offset=c["offset"], name=c["name"])),
    "ReLU": _simple(
        lambda L, c: L.ReLU(max_value=c["max_value"], negative_slope=c["negative_slope"], threshold=c["threshold"], name=c["name"])
    ),
}


def model_resolution(model: Any) -> int | None:
    """The fixed square input size of `model`, or None when it takes any size."""
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ConfigError(f"model input shape {shape}: expected images [batch, H, W, 3]")
    if shape[1] is None or shape[2] is None:
        return None
    if shape[1] != shape[2]:
        raise ConfigError(f"model input {shape[1]}x{shape[2]} is not square")
    return int(shape[1])


def _input_shape(model: Any, resolution: int | None) -> tuple[int, ...]:
    """[H, W, C] to rebuild at: a feature-map input's own fixed shape, else images at `resolution`."""
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) == 3 and shape[-1] != 3 and None not in shape and resolution is None:
        return shape
    size = model_resolution(model) if resolution is None else resolution
    if size is None:
        raise ConfigError("the model takes any input size: give the export resolution (--resolution R)")
    return (size, size, 3)


def rebuild(
    model: Any,
    lib: Any = None,
    int8_friendly: bool = False,
    resolution: int | None = None,
    fold_scales: bool = True,
    depthwise_form: FormChoice = "plain",
) -> Any:
    """`model` re-created layer by layer with the same weights.

    Args:
        model: a Keras 3 functional model of stock layers with one image input
            (an extracted subnet or its `.keras` file), or with one fixed-size
            feature-map input (a latency-table layer model).
        lib: the Keras module to build with (`keras` by default, or `tf_keras`).
        int8_friendly: write hard-sigmoid / hard-swish as the stock layers
            above, which XNNPACK delegates in int8.
        resolution: input size (default: the model's own; needed when it has none).
        fold_scales: with the friendly activations, fold their `/ 6` into the
            next convolution or dense layer.
        depthwise_form: depthwise kernels larger than 5x5 as they are ("plain"), as sums of 5x5
            ("windows5") or 3x3 ("windows3") windows, or a function of each layer's shape giving one
            of these (`export.forms`).
    """
    if lib is None:
        from ofa_tf._backend import keras as lib
    builder = _Rebuilder(lib, int8_friendly, fold_scales, depthwise_form)
    tensors = builder.tensors
    inputs = lib.layers.Input(_input_shape(model, resolution), name=model.inputs[0].name.split(":")[0] or "image")
    tensors[id(model.inputs[0])] = Scaled(inputs)
    for source in model.layers:
        if type(source).__name__ == "InputLayer":
            continue
        nodes = [node for node in source._inbound_nodes if all(id(t) in tensors for t in node.input_tensors)]
        if len(nodes) != 1:
            raise ConfigError(f"layer {source.name} is used {len(source._inbound_nodes)} times: export needs each layer once")
        node = nodes[0]
        tensors[id(node.output_tensors[0])] = builder.layer(source, [tensors[id(t)] for t in node.input_tensors])
    return lib.Model(inputs, builder.unscaled(tensors[id(model.outputs[0])], "output"), name=model.name)
