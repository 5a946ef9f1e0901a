"""The official OFA checkpoint of `OFAResNets`: which class a state dict holds, its constructor
arguments, and every tensor's place in our network."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ofa_tf.errors import ConfigError
from ofa_tf.families.resnet.space import BASE_DEPTHS
from ofa_tf.layers.official_layout import KeyMap, bn_entries, conv_kernel, same


def official_class(keys: set[str]) -> str | None:
    """"OFAResNets" (elastic layers store their weights one level deeper), "specialized" (a standalone
    ResNet), or None (no `input_stem`: not a ResNet)."""
    if not any(k.startswith("input_stem.") for k in keys):
        return None
    elastic = any(k.startswith("blocks.") and ".conv1.conv.conv.weight" in k for k in keys)
    return "OFAResNets" if elastic else "specialized"


def infer_args(state_dict: Mapping[str, np.ndarray], family: Any = None) -> dict[str, Any]:
    """Depth list and class count of an `OFAResNets` state dict. The tensors hold only the largest
    widths: the released expand and width lists are assumed (other lists: pass them to
    `from_official_state_dict`; a mismatch fails the shape check, naming the tensors)."""
    n_blocks = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("blocks."))
    max_depth, rest = divmod(n_blocks - sum(BASE_DEPTHS), len(BASE_DEPTHS))
    if rest or max_depth < 0:
        raise ConfigError(f"state dict has {n_blocks} blocks; OFA-ResNet50-D has 10 + 4 x max depth")
    try:
        n_classes = int(state_dict["classifier.linear.linear.weight"].shape[0])
    except KeyError:
        raise ConfigError("not an OFAResNets state dict: classifier.linear.linear.weight is missing") from None
    return {"depth_list": tuple(range(max_depth + 1)), "n_classes": n_classes}


def key_map(net) -> KeyMap:
    """`OFAResNets`: dynamic layers nest their modules one level deeper (`conv.conv`, `bn.bn`)."""
    mapping = {}
    for index, (conv, bn) in enumerate(zip(net.stem_convs, net.stem_bns)):
        prefix = f"input_stem.{index}" + (".conv" if index == 1 else "")  # the residual stem conv
        mapping[f"{prefix}.conv.conv.weight"] = (conv.kernel, conv_kernel)
        mapping.update(bn_entries(f"{prefix}.bn.bn", bn))
    for index, block in enumerate(net.blocks):
        layers = [("conv1", block.conv1, block.bn1), ("conv2", block.conv2, block.bn2), ("conv3", block.conv3, block.bn3)]
        if block.has_downsample:
            layers.append(("downsample", block.downsample_conv, block.downsample_bn))
        for name, conv, bn in layers:
            mapping[f"blocks.{index}.{name}.conv.conv.weight"] = (conv.kernel, conv_kernel)
            mapping.update(bn_entries(f"blocks.{index}.{name}.bn.bn", bn))
    mapping["classifier.linear.linear.weight"] = (net.classifier.kernel, lambda w: w.T)
    mapping["classifier.linear.linear.bias"] = (net.classifier.bias, same)
    return mapping
