"""Subnet extraction for `OFAResNets`: a config + supernet weights -> a stock Keras model.

The subnet is written as upstream's `get_active_net_config()` plus a state dict
of the sliced weights (official names and layouts), and built by the
translator of official specialized networks (`ofa_tf.layers.net_config`):
one stock-layer builder for ResNets whether the weights come from the zoo or
from an ofa-tf supernet.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ofa_tf._backend import keras
from ofa_tf.errors import ConfigError
from ofa_tf.families.resnet.slots import bottleneck_config, conv_layer_config, linear_config, residual_conv_config
from ofa_tf.families.resnet.space import ResNetSubnetConfig


class _StateDict(dict):
    """Official-layout tensors of sliced supernet weights."""

    def conv(self, prefix: str, conv, in_channels: int, out_channels: int) -> None:
        self[f"{prefix}.weight"] = np.transpose(conv.kernel.numpy()[:, :, :in_channels, :out_channels], (3, 2, 0, 1))

    def bn(self, prefix: str, bn, channels: int) -> None:
        for key, value in zip(("weight", "bias", "running_mean", "running_var"), bn.sliced_weights(channels)):
            self[f"{prefix}.{key}"] = value


def resnet_subnet_config(net, config: ResNetSubnetConfig) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(net.config, state dict) of subnet `config` of `net`, as upstream's
    `get_active_net_config()` and `get_active_subnet().state_dict()`."""
    space = net.space
    space.validate(config)
    state = _StateDict()
    c0, c1 = space.stem_mid_widths[config.w[0]], space.stem_widths[config.w[1]]
    stem = [(conv_layer_config(3, c0, 3, 2), 0, 3, c0)]
    if space.stem_runs_residual_conv(config.d[0]):
        stem.append((residual_conv_config(c0), 1, c0, c0))
    stem.append((conv_layer_config(c0, c1, 3), 2, c0, c1))
    for index, (layer, source, cin, cout) in enumerate(stem):
        prefix = f"input_stem.{index}" + (".conv" if layer["name"] == "ResidualBlock" else "")
        state.conv(f"{prefix}.conv", net.stem_convs[source], cin, cout)
        state.bn(f"{prefix}.bn", net.stem_bns[source], cout)
    blocks, channels = [], c1
    for number, spec in enumerate(space.active_blocks(config)):
        block = net.blocks[spec.index]
        out = spec.out_widths[config.w[2 + spec.stage]]
        mid = space.mid_channels(out, config.e[spec.index])
        blocks.append(bottleneck_config(channels, out, spec.stride, config.e[spec.index], mid))
        prefix = f"blocks.{number}"
        for name, conv, bn, cin, cout in (
            ("conv1", block.conv1, block.bn1, channels, mid),
            ("conv2", block.conv2, block.bn2, mid, mid),
            ("conv3", block.conv3, block.bn3, mid, out),
        ) + ((("downsample", block.downsample_conv, block.downsample_bn, channels, out),) if spec.has_downsample else ()):
            state.conv(f"{prefix}.{name}.conv", conv, cin, cout)
            state.bn(f"{prefix}.{name}.bn", bn, cout)
        channels = out
    kernel, bias = net.classifier.sliced_weights(channels, space.n_classes)
    state["classifier.linear.weight"], state["classifier.linear.bias"] = kernel.T, bias
    net_config = {
        "name": "ResNets",
        "bn": {"momentum": round(1.0 - net.bn_momentum, 6), "eps": net.bn_epsilon},
        "input_stem": [layer for layer, *_ in stem],
        "blocks": blocks,
        "classifier": linear_config(channels, space.n_classes, net.dropout_rate),
    }
    return net_config, dict(state)


def extract_resnet_subnet(net, config: ResNetSubnetConfig | None = None, lib=keras, name: str | None = None):
    """Subnet `config` (default: the active one) of an `OFAResNets` as a stock Keras model.

    Inference outputs equal the supernet's for that config.

    Args:
        net: an `OFAResNets`.
        config: the subnet; `config.resolution` fixes the input size (None: any size).
        lib: the Keras module; only `keras` (not `tf_keras`, so no QAT).
        name: model name.
    """
    from ofa_tf.layers.net_config import from_official_specialized

    if lib is not keras:
        raise ConfigError("OFA-ResNet50-D subnets are extracted with keras only")

    config = net.active_config if config is None else config
    net_config, state = resnet_subnet_config(net, config)
    return from_official_specialized(net_config, state, config.resolution, name=name or "ofa_resnet_subnet")
