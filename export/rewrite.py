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
instead of three, each hard-sigmoid one. The zero padding in front of
stride-1 convolutions needs no rewrite: the converter turns it into "same"
padding.

Depthwise kernels above 5x5 can be written in another form (`export.forms`,
`export.large_depthwise`). Every form equals the Keras model in float up to
rounding (tests: <= 1e-4 on logits).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from ofa_tf.errors import ConfigError
from ofa_tf.export.forms import DepthwiseLayer, FormChoice, form_of
from ofa_tf.export.large_depthwise import large_depthwise

HARD_SIGMOID = ("hard_sigmoid",)
HARD_SWISH = ("hard_silu", "hard_swish")
PASS_THROUGH_ACTIVATIONS = ("linear", "relu", "relu6", "softmax", "sigmoid")

# Layers re-created from their config alone, inputs divided by their pending scale first...
SIMPLE_LAYERS: dict[str, Callable[[Any, dict], Any]] = {
    "ZeroPadding2D": lambda L, c: L.ZeroPadding2D(tuple(map(tuple, c["padding"])), name=c["name"]),
    "Cropping2D": lambda L, c: L.Cropping2D(tuple(map(tuple, c["cropping"])), name=c["name"]),
    "GlobalAveragePooling2D": lambda L, c: L.GlobalAveragePooling2D(keepdims=c["keepdims"], name=c["name"]),
    "AveragePooling2D": lambda L, c: L.AveragePooling2D(c["pool_size"], c["strides"], c["padding"], name=c["name"]),
    "MaxPooling2D": lambda L, c: L.MaxPooling2D(c["pool_size"], c["strides"], c["padding"], name=c["name"]),
    "Flatten": lambda L, c: L.Flatten(name=c["name"]),
    "Dropout": lambda L, c: L.Dropout(c["rate"], name=c["name"]),
    "Rescaling": lambda L, c: L.Rescaling(c["scale"], offset=c["offset"], name=c["name"]),
    "ReLU": lambda L, c: L.ReLU(max_value=c["max_value"], negative_slope=c["negative_slope"], threshold=c["threshold"], name=c["name"]),
}
# ...except these, f(s * x) = s * f(x) for s > 0, which pass the pending scale on
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


class Rebuilder:
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
        self._methods: dict[str, Callable[[Any, list[Scaled]], Scaled]] = {
            "Conv2D": self.conv, "DepthwiseConv2D": self.conv, "Dense": self.dense,
            "BatchNormalization": self.batch_norm, "Activation": self.activation_layer,
            "Add": self.add, "Multiply": self.multiply,
        }

    def layer(self, source: Any, inputs: list[Scaled]) -> Scaled:
        """The output of `source` re-created on `inputs`, weights copied."""
        kind = type(source).__name__
        if kind in self._methods:
            return self._methods[kind](source, inputs)
        if kind not in SIMPLE_LAYERS:
            supported = sorted({*SIMPLE_LAYERS, *self._methods})
            raise ConfigError(f"layer {source.name} ({kind}) cannot be exported: supported layers are {supported}")
        layer = SIMPLE_LAYERS[kind](self.layers, source.get_config())
        if kind in SCALE_FREE:
            return Scaled(layer(inputs[0].tensor), inputs[0].scale)
        tensors = [self.unscaled(x, f"{source.name}_in{i}") for i, x in enumerate(inputs)]
        return Scaled(layer(tensors if len(tensors) > 1 else tensors[0]))

    def unscaled(self, x: Scaled, name: str) -> Any:
        """The tensor of `x` divided by its pending scale (a Rescaling layer when it is not 1)."""
        if x.scale == 1.0:
            return x.tensor
        return self.layers.Rescaling(1.0 / x.scale, name=f"{name}_unscale")(x.tensor)

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

    def activation_layer(self, source: Any, inputs: list[Scaled]) -> Scaled:
        return self.activation(inputs[0], source.name, _activation_name(source.get_config()["activation"]))

    def conv(self, source: Any, inputs: list[Scaled]) -> Scaled:
        """A `Conv2D` or `DepthwiseConv2D` (a large depthwise kernel in its chosen form), kernel divided
        by the input's pending scale."""
        x, config = inputs[0], source.get_config()
        args = dict(
            kernel_size=config["kernel_size"], strides=config["strides"], padding=config["padding"],
            dilation_rate=config["dilation_rate"], use_bias=config["use_bias"], name=source.name,
        )
        if type(source).__name__ == "DepthwiseConv2D":
            form = self._depthwise_form(config, x)
            if form != "plain":
                unpadded = self.unpadded_input(source, x) if form == "dilated" else None
                unpadded = None if unpadded is None else (*unpadded[0], unpadded[1])
                y = Scaled(large_depthwise(self.layers, source, x.tensor, x.scale, form, unpadded))
                return self.activation(y, f"{source.name}_act", _activation_name(config["activation"]))
            layer = self.layers.DepthwiseConv2D(depth_multiplier=config["depth_multiplier"], **args)
        else:
            layer = self.layers.Conv2D(config["filters"], groups=config.get("groups", 1), **args)
        y = Scaled(_copy(layer, x.tensor, source, x.scale))
        return self.activation(y, f"{source.name}_act", _activation_name(config["activation"]))

    def _depthwise_form(self, config: dict[str, Any], x: Scaled) -> str:
        square = config["kernel_size"][0] == config["kernel_size"][1] and config["strides"][0] == config["strides"][1]
        if not square or config["dilation_rate"] not in ((1, 1), 1):
            return "plain"
        return form_of(self.depthwise_form, DepthwiseLayer.of(config, x.tensor.shape))

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

    def dense(self, source: Any, inputs: list[Scaled]) -> Scaled:
        x, config = inputs[0], source.get_config()
        layer = self.layers.Dense(config["units"], use_bias=config["use_bias"], name=source.name)
        y = Scaled(_copy(layer, x.tensor, source, x.scale))
        return self.activation(y, f"{source.name}_act", _activation_name(config["activation"]))

    def batch_norm(self, source: Any, inputs: list[Scaled]) -> Scaled:
        config = source.get_config()
        layer = self.layers.BatchNormalization(
            axis=config["axis"], momentum=config["momentum"], epsilon=config["epsilon"],
            center=config["center"], scale=config["scale"], name=source.name,
        )
        return Scaled(_copy(layer, self.unscaled(inputs[0], f"{source.name}_in0"), source))

    def multiply(self, source: Any, inputs: list[Scaled]) -> Scaled:
        """A product carries the product of its inputs' scales."""
        product = self.layers.Multiply(name=source.name)([x.tensor for x in inputs])
        return Scaled(product, _product(x.scale for x in inputs))

    def add(self, source: Any, inputs: list[Scaled]) -> Scaled:
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
        return Scaled(self.layers.Add(name=source.name)(terms), scale)


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
    builder = Rebuilder(lib, int8_friendly, fold_scales, depthwise_form)
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
