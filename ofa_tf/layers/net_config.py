"""Networks in upstream's `net.config` layout (+ weights) -> stock Keras models.

The official model zoo ships each specialized subnet (`note10_lat@...`,
`flops@595M_top1@80.0_finetune@75`, `resnet50D_MAC@...`, ...) as a `net.config`
(the layer configs of a `MobileNetV3`, `ProxylessNASNets` or `ResNets`, as
`get_active_subnet().config` writes them) and a PyTorch state dict.
`from_official_specialized` builds that network layer by layer with stock Keras
layers (`ZeroPadding2D`, `Conv2D`, `DepthwiseConv2D`, `BatchNormalization`,
`Activation`, pooling, `Add`, `Multiply`, `Dense`) and copies every tensor into
it: unknown, missing or misshapen tensors raise, so a network is never loaded
partially. The model saves as `.keras` without custom objects, ready for
`ofa-tf export`.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ofa_tf._backend import keras
from ofa_tf.errors import ConfigError
from ofa_tf.layers.official_layout import conv_kernel, depthwise_kernel
from ofa_tf.space.choices import make_divisible
from ofa_tf.space.choices import se_mid_channels

FAMILIES = ("MobileNetV3", "ProxylessNASNets", "ResNets")

_ACTIVATIONS = {
    "relu": "relu",
    "relu6": "relu6",
    "h_swish": "hard_silu",
    "h_sigmoid": "hard_sigmoid",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
}
_LAYER_ALIASES = {"MBInvertedConvLayer": "MBConvLayer"}
_IGNORED_SUFFIXES = ("num_batches_tracked",)


class _Weights:
    """The state dict, consumed tensor by tensor; what is left at the end is an error."""

    def __init__(self, state_dict: Mapping[str, np.ndarray]):
        # zoo checkpoints written before the rename call the MBConv `mobile_inverted_conv`
        self.arrays = {
            key.replace(".mobile_inverted_conv.", ".conv."): np.asarray(value)
            for key, value in state_dict.items()
            if not key.endswith(_IGNORED_SUFFIXES)
        }
        self.unused = set(self.arrays)

    def take(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        if key not in self.arrays:
            raise ConfigError(f"the weights have no tensor {key}: do the weights belong to this net.config?")
        value = self.arrays[key]
        if tuple(value.shape) != tuple(shape):
            raise ConfigError(
                f"tensor {key} has shape {tuple(value.shape)}, the net.config needs {tuple(shape)}: "
                "do the weights belong to this net.config?"
            )
        self.unused.discard(key)
        return value

    def check_all_used(self) -> None:
        if self.unused:
            names = ", ".join(sorted(self.unused)[:5])
            raise ConfigError(
                f"{len(self.unused)} tensors of the weights are not in the net.config (e.g. {names}): "
                "do the weights belong to this net.config?"
            )


def _require(config: Mapping[str, Any], key: str, supported: Any, what: str) -> None:
    value = config.get(key, supported)
    if value != supported:
        raise ConfigError(f"{what} with {key}={value!r} is not supported (only {supported!r})")


class NetConfigTranslator:
    """Adds the stock layers of official layer configs to a functional graph."""

    def __init__(self, weights: _Weights, bn_momentum: float, bn_epsilon: float):
        self.weights = weights
        self.bn_args = dict(momentum=1.0 - bn_momentum, epsilon=bn_epsilon)

    @staticmethod
    def _name(prefix: str) -> str:
        return prefix.replace(".", "_")

    def _set(self, layer, x, weights: list[np.ndarray]):
        y = layer(x)
        layer.set_weights(weights)
        return y

    def conv(self, x, prefix: str, filters: int, kernel_size: int, stride: int = 1, dilation: int = 1, bias: bool = False):
        """`{prefix}.weight` (OIHW) as ZeroPadding2D + Conv2D (symmetric padding, as PyTorch)."""
        in_channels = int(x.shape[-1])
        pad = kernel_size // 2 * dilation
        if pad:
            x = keras.layers.ZeroPadding2D(pad, name=self._name(prefix) + "_pad")(x)
        kernel = self.weights.take(f"{prefix}.weight", (filters, in_channels, kernel_size, kernel_size))
        weights = [conv_kernel(kernel)]
        if bias:
            weights.append(self.weights.take(f"{prefix}.bias", (filters,)))
        layer = keras.layers.Conv2D(
            filters, kernel_size, strides=stride, dilation_rate=dilation, use_bias=bias, name=self._name(prefix)
        )
        return self._set(layer, x, weights)

    def depthwise(self, x, prefix: str, kernel_size: int, stride: int):
        channels = int(x.shape[-1])
        pad = kernel_size // 2
        if pad:
            x = keras.layers.ZeroPadding2D(pad, name=self._name(prefix) + "_pad")(x)
        kernel = self.weights.take(f"{prefix}.weight", (channels, 1, kernel_size, kernel_size))
        layer = keras.layers.DepthwiseConv2D(kernel_size, strides=stride, use_bias=False, name=self._name(prefix))
        return self._set(layer, x, [depthwise_kernel(kernel)])

    def bn(self, x, prefix: str):
        channels = (int(x.shape[-1]),)
        weights = [self.weights.take(f"{prefix}.{key}", channels) for key in ("weight", "bias", "running_mean", "running_var")]
        return self._set(keras.layers.BatchNormalization(**self.bn_args, name=self._name(prefix)), x, weights)

    def act(self, x, prefix: str, act_func: str | None):
        if act_func is None:
            return x
        if act_func not in _ACTIVATIONS:
            raise ConfigError(f"activation {act_func!r} is not supported (only {', '.join(_ACTIVATIONS)})")
        return keras.layers.Activation(_ACTIVATIONS[act_func], name=self._name(prefix) + "_act")(x)

    def squeeze_excite(self, x, prefix: str):
        channels = int(x.shape[-1])
        mid = se_mid_channels(channels)
        s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=self._name(prefix) + "_pool")(x)
        s = self.act(self.conv(s, f"{prefix}.fc.reduce", mid, 1, bias=True), f"{prefix}.fc.reduce", "relu")
        s = self.act(self.conv(s, f"{prefix}.fc.expand", channels, 1, bias=True), f"{prefix}.fc.expand", "h_sigmoid")
        return keras.layers.Multiply(name=self._name(prefix) + "_multiply")([x, s])

    # ----- official layer configs ---------------------------------------------
    def layer(self, x, config: Mapping[str, Any] | None, prefix: str):
        """Any official layer config (`set_layer_from_config`); None and ZeroLayer give None."""
        if config is None:
            return None
        name = _LAYER_ALIASES.get(config.get("name"), config.get("name"))
        builders = {
            "ConvLayer": self.conv_layer,
            "MBConvLayer": self.mbconv_layer,
            "ResidualBlock": self.residual_block,
            "ResNetBottleneckBlock": self.bottleneck_block,
            "LinearLayer": self.linear_layer,
            "IdentityLayer": lambda x, config, prefix: x,
            "ZeroLayer": lambda x, config, prefix: None,
        }
        if name not in builders:
            raise ConfigError(f"layer {name!r} at {prefix} is not supported (only {', '.join(builders)})")
        return builders[name](x, config, prefix)

    def conv_layer(self, x, config: Mapping[str, Any], prefix: str):
        for key, supported in (("groups", 1), ("has_shuffle", False), ("ops_order", "weight_bn_act")):
            _require(config, key, supported, f"ConvLayer {prefix}")
        if config.get("dropout_rate", 0) > 0:
            x = keras.layers.Dropout(config["dropout_rate"], name=self._name(prefix) + "_dropout")(x)
        x = self.conv(
            x, f"{prefix}.conv", config["out_channels"], config["kernel_size"], config.get("stride", 1),
            config.get("dilation", 1), config.get("bias", False),
        )
        if config.get("use_bn", True):
            x = self.bn(x, f"{prefix}.bn")
        x = self.act(x, prefix, config.get("act_func", "relu"))
        if config.get("use_se", False):
            x = self.squeeze_excite(x, f"{prefix}.se")
        return x

    def mbconv_layer(self, x, config: Mapping[str, Any], prefix: str):
        _require(config, "groups", None, f"MBConvLayer {prefix}")
        act = config.get("act_func", "relu6")
        mid = config.get("mid_channels") or round(config["in_channels"] * config["expand_ratio"])
        if config["expand_ratio"] != 1:
            x = self.conv(x, f"{prefix}.inverted_bottleneck.conv", mid, 1)
            x = self.act(self.bn(x, f"{prefix}.inverted_bottleneck.bn"), f"{prefix}.inverted_bottleneck", act)
        x = self.depthwise(x, f"{prefix}.depth_conv.conv", config["kernel_size"], config.get("stride", 1))
        x = self.act(self.bn(x, f"{prefix}.depth_conv.bn"), f"{prefix}.depth_conv", act)
        if config.get("use_se", False):
            x = self.squeeze_excite(x, f"{prefix}.depth_conv.se")
        x = self.conv(x, f"{prefix}.point_linear.conv", config["out_channels"], 1)
        return self.bn(x, f"{prefix}.point_linear.bn")

    def residual_block(self, x, config: Mapping[str, Any], prefix: str):
        conv_config = config["conv"] if "conv" in config else config.get("mobile_inverted_conv")
        branch = self.layer(x, conv_config, f"{prefix}.conv")
        shortcut = self.layer(x, config.get("shortcut"), f"{prefix}.shortcut")
        if branch is None:
            return x
        if shortcut is None:
            return branch
        return keras.layers.Add(name=self._name(prefix) + "_add")([branch, shortcut])

    def bottleneck_block(self, x, config: Mapping[str, Any], prefix: str):
        _require(config, "groups", 1, f"ResNetBottleneckBlock {prefix}")
        act, stride, out = config.get("act_func", "relu"), config.get("stride", 1), config["out_channels"]
        mid = config.get("mid_channels") or make_divisible(round(out * config["expand_ratio"]))
        in_channels = int(x.shape[-1])
        if stride == 1 and in_channels == out:
            residual = x
        elif config.get("downsample_mode", "avgpool_conv") == "avgpool_conv":
            # AvgPool2d(stride, stride, ceil_mode=True): 'same' averages the partial last window over its inputs too
            residual = keras.layers.AveragePooling2D(stride, stride, padding="same", name=self._name(prefix) + "_downsample_pool")(x)
            residual = self.bn(self.conv(residual, f"{prefix}.downsample.conv", out, 1), f"{prefix}.downsample.bn")
        elif config["downsample_mode"] == "conv":
            residual = self.bn(self.conv(x, f"{prefix}.downsample.conv", out, 1, stride), f"{prefix}.downsample.bn")
        else:
            raise ConfigError(f"ResNetBottleneckBlock {prefix} with downsample_mode={config['downsample_mode']!r} is not supported")
        x = self.act(self.bn(self.conv(x, f"{prefix}.conv1.conv", mid, 1), f"{prefix}.conv1.bn"), f"{prefix}.conv1", act)
        x = self.bn(self.conv(x, f"{prefix}.conv2.conv", mid, config.get("kernel_size", 3), stride), f"{prefix}.conv2.bn")
        x = self.act(x, f"{prefix}.conv2", act)
        x = self.bn(self.conv(x, f"{prefix}.conv3.conv", out, 1), f"{prefix}.conv3.bn")
        x = keras.layers.Add(name=self._name(prefix) + "_add")([x, residual])
        return self.act(x, prefix, act)

    def linear_layer(self, x, config: Mapping[str, Any], prefix: str):
        _require(config, "use_bn", False, f"LinearLayer {prefix}")
        _require(config, "ops_order", "weight_bn_act", f"LinearLayer {prefix}")
        if config.get("dropout_rate", 0) > 0:
            x = keras.layers.Dropout(config["dropout_rate"], name=self._name(prefix) + "_dropout")(x)
        units, bias = config["out_features"], config.get("bias", True)
        weights = [self.weights.take(f"{prefix}.linear.weight", (units, int(x.shape[-1]))).T]
        if bias:
            weights.append(self.weights.take(f"{prefix}.linear.bias", (units,)))
        x = self._set(keras.layers.Dense(units, use_bias=bias, name=self._name(prefix)), x, weights)
        return self.act(x, prefix, config.get("act_func"))


def _network(translator: NetConfigTranslator, config: Mapping[str, Any], inputs):
    """The network's head-to-tail graph, per family (their `forward`)."""
    layers = keras.layers
    family = config.get("name")
    if family == "ResNets":
        x = inputs
        for index, layer_config in enumerate(config["input_stem"]):
            x = translator.layer(x, layer_config, f"input_stem.{index}")
        if config["input_stem"][-1].get("act_func") not in ("relu", "relu6"):
            raise ConfigError("the ResNets input stem must end in relu: its max pooling pads with zeros")
        x = layers.ZeroPadding2D(1, name="max_pooling_pad")(x)  # inputs >= 0 after relu: zeros pad as -inf does
        x = layers.MaxPooling2D(3, 2, name="max_pooling")(x)
        for index, block_config in enumerate(config["blocks"]):
            x = translator.layer(x, block_config, f"blocks.{index}")
        x = layers.GlobalAveragePooling2D(name="global_avg_pool")(x)
        return translator.layer(x, config["classifier"], "classifier")
    x = translator.layer(inputs, config["first_conv"], "first_conv")
    for index, block_config in enumerate(config["blocks"]):
        x = translator.layer(x, block_config, f"blocks.{index}")
    if family == "MobileNetV3":
        x = translator.layer(x, config["final_expand_layer"], "final_expand_layer")
        x = layers.GlobalAveragePooling2D(keepdims=True, name="global_avg_pool")(x)
        x = translator.layer(x, config["feature_mix_layer"], "feature_mix_layer")
        x = layers.Flatten(name="flatten")(x)
    else:
        if config.get("feature_mix_layer") is not None:  # ProxylessNASNets may have none
            x = translator.layer(x, config["feature_mix_layer"], "feature_mix_layer")
        x = layers.GlobalAveragePooling2D(name="global_avg_pool")(x)
    return translator.layer(x, config["classifier"], "classifier")


def from_official_specialized(
    net_config: Mapping[str, Any], state_dict: Mapping[str, np.ndarray], resolution: int | None = 224, name: str | None = None
):
    """The official specialized network `net_config` with `state_dict` as a stock Keras model.

    Args:
        net_config: an official `net.config` (`MobileNetV3`, `ProxylessNASNets` or `ResNets`).
        state_dict: its weights as numpy arrays (official key names).
        resolution: the input size (None: any size).
        name: model name (default: the family's).

    Returns:
        a `keras.Model` whose logits equal the official network's in eval mode.
    """
    family = net_config.get("name")
    if family not in FAMILIES:
        raise ConfigError(f"net.config names the network {family!r}: expected one of {', '.join(FAMILIES)}")
    bn = net_config.get("bn") or {"momentum": 0.1, "eps": 1e-5}
    weights = _Weights(state_dict)
    translator = NetConfigTranslator(weights, float(bn.get("momentum") or 0.1), float(bn["eps"]))
    inputs = keras.layers.Input((resolution, resolution, 3), name="image")
    outputs = _network(translator, net_config, inputs)
    weights.check_all_used()
    return keras.Model(inputs, outputs, name=name or family)
