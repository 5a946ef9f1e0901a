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

Both equal the Keras formulas in float up to rounding (tests: ≤ 1e-4 on logits).
"""

from __future__ import annotations

from typing import Any, Callable

from ofa_tf.errors import ConfigError

HARD_SIGMOID = ("hard_sigmoid",)
HARD_SWISH = ("hard_silu", "hard_swish")
PASS_THROUGH_ACTIVATIONS = ("linear", "relu", "relu6", "softmax", "sigmoid")


def _activation_name(activation: Any) -> str:
    name = activation if isinstance(activation, str) else getattr(activation, "__name__", str(activation))
    return "linear" if name in (None, "None") else name


class _Rebuilder:
    """Adds layers of `lib` to a new functional graph, one source layer at a time."""

    def __init__(self, lib: Any, int8_friendly: bool):
        self.layers = lib.layers
        # tf_keras has no hard_silu and its hard_sigmoid is 0.2x + 0.5: always use the stock formulation there
        self.int8_friendly = int8_friendly or lib.__name__.startswith("tf_keras")

    def activation(self, x, name: str, activation: str):
        """`activation` applied to `x` (friendly formulation for the hard ones when asked)."""
        if activation == "linear":
            return x
        if activation in HARD_SIGMOID + HARD_SWISH and self.int8_friendly:
            return self._friendly(x, name, activation in HARD_SWISH)
        if activation in HARD_SIGMOID + HARD_SWISH + PASS_THROUGH_ACTIVATIONS:
            return self.layers.Activation(activation, name=name)(x)
        raise ConfigError(f"layer {name}: activation {activation!r} is not supported by the export rewrite")

    def _friendly(self, x, name: str, swish: bool):
        layers = self.layers
        gate = layers.Rescaling(1.0, offset=3.0, name=f"{name}_plus3")(x)
        gate = layers.ReLU(max_value=6.0, name=f"{name}_relu6")(gate)
        if not swish:
            return layers.Rescaling(1.0 / 6.0, name=f"{name}_div6")(gate)
        scaled = layers.Rescaling(1.0 / 6.0, name=f"{name}_div6")(x)
        return layers.Multiply(name=f"{name}_mul")([scaled, gate])

    def layer(self, source: Any, inputs: list) -> Any:
        """The output of `source` re-created on `inputs`, weights copied."""
        kind = type(source).__name__
        build = _BUILDERS.get(kind)
        if build is None:
            raise ConfigError(
                f"layer {source.name} ({kind}) cannot be exported: supported layers are {sorted(_BUILDERS)}"
            )
        return build(self, source, inputs)


def _copy(layer, x, source):
    y = layer(x)
    if source.get_weights():
        layer.set_weights(source.get_weights())
    return y


def _conv(self: _Rebuilder, source, inputs):
    config = source.get_config()
    args = dict(
        kernel_size=config["kernel_size"], strides=config["strides"], padding=config["padding"],
        dilation_rate=config["dilation_rate"], use_bias=config["use_bias"], name=source.name,
    )
    if type(source).__name__ == "DepthwiseConv2D":
        layer = self.layers.DepthwiseConv2D(depth_multiplier=config["depth_multiplier"], **args)
    else:
        layer = self.layers.Conv2D(config["filters"], groups=config.get("groups", 1), **args)
    y = _copy(layer, inputs[0], source)
    return self.activation(y, f"{source.name}_act", _activation_name(config["activation"]))


def _dense(self: _Rebuilder, source, inputs):
    config = source.get_config()
    layer = self.layers.Dense(config["units"], use_bias=config["use_bias"], name=source.name)
    return self.activation(_copy(layer, inputs[0], source), f"{source.name}_act", _activation_name(config["activation"]))


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


def _activation(self: _Rebuilder, source, inputs):
    return self.activation(inputs[0], source.name, _activation_name(source.get_config()["activation"]))


_BUILDERS = {
    "Conv2D": _conv,
    "DepthwiseConv2D": _conv,
    "Dense": _dense,
    "BatchNormalization": _batch_norm,
    "Activation": _activation,
    "ZeroPadding2D": _simple(lambda L, c: L.ZeroPadding2D(tuple(map(tuple, c["padding"])), name=c["name"])),
    "GlobalAveragePooling2D": _simple(lambda L, c: L.GlobalAveragePooling2D(keepdims=c["keepdims"], name=c["name"])),
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


def rebuild(model: Any, lib: Any = None, int8_friendly: bool = False, resolution: int | None = None) -> Any:
    """`model` re-created layer by layer with the same weights.

    Args:
        model: a Keras 3 functional model of stock layers with one image input
            (an extracted subnet or its `.keras` file).
        lib: the Keras module to build with (`keras` by default, or `tf_keras`).
        int8_friendly: write hard-sigmoid / hard-swish as the stock layers
            above, which XNNPACK delegates in int8.
        resolution: input size (default: the model's own; needed when it has none).
    """
    if lib is None:
        from ofa_tf._backend import keras as lib
    size = model_resolution(model) if resolution is None else resolution
    if size is None:
        raise ConfigError("the model takes any input size: give the export resolution (--resolution R)")
    builder = _Rebuilder(lib, int8_friendly)
    inputs = lib.layers.Input((size, size, 3), name=model.inputs[0].name.split(":")[0] or "image")
    tensors = {id(model.inputs[0]): inputs}
    for source in model.layers:
        if type(source).__name__ == "InputLayer":
            continue
        nodes = [node for node in source._inbound_nodes if all(id(t) in tensors for t in node.input_tensors)]
        if len(nodes) != 1:
            raise ConfigError(f"layer {source.name} is used {len(source._inbound_nodes)} times: export needs each layer once")
        node = nodes[0]
        outputs = builder.layer(source, [tensors[id(t)] for t in node.input_tensors])
        tensors[id(node.output_tensors[0])] = outputs
    return lib.Model(inputs, tensors[id(model.outputs[0])], name=model.name)
