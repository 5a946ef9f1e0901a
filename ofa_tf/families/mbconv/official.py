"""The official OFA checkpoints of MBConv supernets (`OFAMobileNetV3`, `OFAProxylessNASNets`): which
class a state dict holds, its constructor arguments, and every tensor's place in our network."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ofa_tf.errors import ConfigError
from ofa_tf.families.mbconv.description import Family
from ofa_tf.families.mbconv.space import SearchSpace
from ofa_tf.layers.official_layout import KeyMap, bn_entries, conv_kernel, depthwise_kernel, pointwise_matrix, same


def official_class(keys: set[str]) -> str | None:
    """The official class of a state dict's tensor names: "OFAMobileNetV3", "OFAProxylessNASNets" (elastic
    layers store their weights one level deeper, `conv.conv.weight`), "specialized" (a standalone subnet
    of MBConv blocks), or None (not an MBConv network)."""
    if "first_conv.conv.weight" not in keys:
        return None
    if not any(k.endswith(".conv.conv.weight") and ".depth_conv." in k for k in keys):
        return "specialized"
    return "OFAMobileNetV3" if "final_expand_layer.conv.weight" in keys else "OFAProxylessNASNets"


def infer_args(state_dict: Mapping[str, np.ndarray], family: Family) -> dict[str, Any]:
    """Width multiplier, kernel list, depth list and class count of `family`'s official state dict."""
    try:
        first_conv = state_dict["first_conv.conv.weight"].shape[0]
        head = tuple(state_dict[f"{conv.name}_layer.conv.weight"].shape[0] for conv in family.head)
        n_classes = state_dict["classifier.linear.weight"].shape[0]
        kernel = state_dict["blocks.1.conv.depth_conv.conv.conv.weight"].shape[-1]
    except KeyError as error:
        raise ConfigError(f"not an {family.title} state dict: key {error} is missing") from None
    n_blocks = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("blocks."))
    fixed_depths = SearchSpace(family=family.name).fixed_depths
    fixed_blocks = sum(d for d in fixed_depths if d is not None)
    elastic_stages = sum(d is None for d in fixed_depths)
    if (n_blocks - 1 - fixed_blocks) % elastic_stages:
        raise ConfigError(
            f"state dict has {n_blocks} blocks; {family.title} has 1 + {elastic_stages} x max depth + {fixed_blocks}"
        )
    max_depth = (n_blocks - 1 - fixed_blocks) // elastic_stages
    matrices = sorted(
        int(k.split(".")[-1].split("to")[1].split("_")[0])
        for k in state_dict
        if k.startswith("blocks.1.conv.depth_conv.conv.") and k.endswith("_matrix")
    )
    ks_list = tuple(matrices) + (kernel,)
    widths = (first_conv,) + head
    for step in range(1, 401):
        width_mult = round(step * 0.01, 2)
        space = SearchSpace(width_mult=width_mult, family=family.name)
        if (space.first_conv_channels,) + space.head_channels == widths:
            break
    else:
        raise ConfigError(f"no width multiplier gives {family.title} widths {widths}")
    return {
        "width_mult": width_mult,
        "ks_list": ks_list,
        "depth_list": tuple(range(min(2, max_depth), max_depth + 1)),
        "n_classes": int(n_classes),
    }


def key_map(net) -> KeyMap:
    """Official state-dict key -> (our variable, layout conversion) of an MBConv supernet."""
    mapping = {"first_conv.conv.weight": (net.first_conv.kernel, conv_kernel)}
    mapping.update(bn_entries("first_conv.bn", net.first_conv_bn))
    first = net.first_block
    mapping["blocks.0.conv.depth_conv.conv.weight"] = (first.depthwise.kernel, depthwise_kernel)
    mapping.update(bn_entries("blocks.0.conv.depth_conv.bn", first.depthwise_bn))
    mapping["blocks.0.conv.point_linear.conv.weight"] = (first.project_conv.kernel, conv_kernel)
    mapping.update(bn_entries("blocks.0.conv.point_linear.bn", first.project_bn))
    for index, block in enumerate(net.blocks, start=1):
        p = f"blocks.{index}.conv"
        if block.has_expand:
            mapping[f"{p}.inverted_bottleneck.conv.conv.weight"] = (block.expand_conv.kernel, conv_kernel)
            mapping.update(bn_entries(f"{p}.inverted_bottleneck.bn.bn", block.expand_bn))
        mapping[f"{p}.depth_conv.conv.conv.weight"] = (block.depthwise.kernel, depthwise_kernel)
        for name, matrix in block.depthwise.transform_matrices.items():
            mapping[f"{p}.depth_conv.conv.{name}"] = (matrix, same)
        mapping.update(bn_entries(f"{p}.depth_conv.bn.bn", block.depthwise_bn))
        if block.use_se:
            se = block.se
            mapping[f"{p}.depth_conv.se.fc.reduce.weight"] = (se.reduce_kernel, pointwise_matrix)
            mapping[f"{p}.depth_conv.se.fc.reduce.bias"] = (se.reduce_bias, same)
            mapping[f"{p}.depth_conv.se.fc.expand.weight"] = (se.expand_kernel, pointwise_matrix)
            mapping[f"{p}.depth_conv.se.fc.expand.bias"] = (se.expand_bias, same)
        mapping[f"{p}.point_linear.conv.conv.weight"] = (block.project_conv.kernel, conv_kernel)
        mapping.update(bn_entries(f"{p}.point_linear.bn.bn", block.project_bn))
    for conv in net.space.family_spec.head:  # final_expand_layer, feature_mix_layer
        mapping[f"{conv.name}_layer.conv.weight"] = (getattr(net, f"{conv.name}_conv").kernel, conv_kernel)
        if conv.use_bn:
            mapping.update(bn_entries(f"{conv.name}_layer.bn", getattr(net, f"{conv.name}_bn")))
    mapping["classifier.linear.weight"] = (net.classifier.kernel, lambda w: w.T)
    mapping["classifier.linear.bias"] = (net.classifier.bias, same)
    return mapping
