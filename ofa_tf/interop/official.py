"""Official OFA supernet checkpoints (PyTorch state dicts) -> `OFAMobileNetV3` / `OFAProxylessNASNets` / `OFAResNets`.

Every tensor is mapped explicitly (OIHW -> HWIO convs, (C,1,k,k) -> (k,k,C,1)
depthwise kernels, SE 1x1 convs with biases, BN statistics, kernel
transformation matrices, the head without BN). Unknown or missing keys and
shape mismatches raise an error listing them: a checkpoint is never loaded
partially.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

import numpy as np

from ofa_tf.errors import ConfigError, MissingFileError
from ofa_tf.families.mbconv.description import MOBILENET_V3, PROXYLESS
from ofa_tf.families.mbconv.space import SearchSpace

_IGNORED_SUFFIXES = ("num_batches_tracked",)
_MBCONV_OF_CLASS = {family.official_class: family for family in (MOBILENET_V3, PROXYLESS)}  # the released ones


def _conv(w: np.ndarray) -> np.ndarray:  # OIHW -> HWIO
    return np.transpose(w, (2, 3, 1, 0))


def _depthwise(w: np.ndarray) -> np.ndarray:  # (C, 1, k, k) -> (k, k, C, 1)
    return np.transpose(w, (2, 3, 0, 1))


def _pointwise_matrix(w: np.ndarray) -> np.ndarray:  # (out, in, 1, 1) -> (in, out)
    return w[:, :, 0, 0].T


def _same(w: np.ndarray) -> np.ndarray:
    return w


def _bn_entries(prefix: str, bn) -> dict[str, tuple[Any, Callable]]:
    return {
        f"{prefix}.weight": (bn.gamma, _same),
        f"{prefix}.bias": (bn.beta, _same),
        f"{prefix}.running_mean": (bn.moving_mean, _same),
        f"{prefix}.running_var": (bn.moving_variance, _same),
    }


def official_key_map(net) -> dict[str, tuple[Any, Callable[[np.ndarray], np.ndarray]]]:
    """Official state-dict key -> (our variable, layout conversion)."""
    if net.space.family == "resnet50":
        return _resnet_key_map(net)
    mapping = {"first_conv.conv.weight": (net.first_conv.kernel, _conv)}
    mapping.update(_bn_entries("first_conv.bn", net.first_conv_bn))
    first = net.first_block
    mapping["blocks.0.conv.depth_conv.conv.weight"] = (first.depthwise.kernel, _depthwise)
    mapping.update(_bn_entries("blocks.0.conv.depth_conv.bn", first.depthwise_bn))
    mapping["blocks.0.conv.point_linear.conv.weight"] = (first.project_conv.kernel, _conv)
    mapping.update(_bn_entries("blocks.0.conv.point_linear.bn", first.project_bn))
    for index, block in enumerate(net.blocks, start=1):
        p = f"blocks.{index}.conv"
        if block.has_expand:
            mapping[f"{p}.inverted_bottleneck.conv.conv.weight"] = (block.expand_conv.kernel, _conv)
            mapping.update(_bn_entries(f"{p}.inverted_bottleneck.bn.bn", block.expand_bn))
        mapping[f"{p}.depth_conv.conv.conv.weight"] = (block.depthwise.kernel, _depthwise)
        for name, matrix in block.depthwise.transform_matrices.items():
            mapping[f"{p}.depth_conv.conv.{name}"] = (matrix, _same)
        mapping.update(_bn_entries(f"{p}.depth_conv.bn.bn", block.depthwise_bn))
        if block.use_se:
            se = block.se
            mapping[f"{p}.depth_conv.se.fc.reduce.weight"] = (se.reduce_kernel, _pointwise_matrix)
            mapping[f"{p}.depth_conv.se.fc.reduce.bias"] = (se.reduce_bias, _same)
            mapping[f"{p}.depth_conv.se.fc.expand.weight"] = (se.expand_kernel, _pointwise_matrix)
            mapping[f"{p}.depth_conv.se.fc.expand.bias"] = (se.expand_bias, _same)
        mapping[f"{p}.point_linear.conv.conv.weight"] = (block.project_conv.kernel, _conv)
        mapping.update(_bn_entries(f"{p}.point_linear.bn.bn", block.project_bn))
    for conv in net.space.family_spec.head:  # final_expand_layer, feature_mix_layer
        mapping[f"{conv.name}_layer.conv.weight"] = (getattr(net, f"{conv.name}_conv").kernel, _conv)
        if conv.use_bn:
            mapping.update(_bn_entries(f"{conv.name}_layer.bn", getattr(net, f"{conv.name}_bn")))
    mapping["classifier.linear.weight"] = (net.classifier.kernel, lambda w: w.T)
    mapping["classifier.linear.bias"] = (net.classifier.bias, _same)
    return mapping


def _resnet_key_map(net) -> dict[str, tuple[Any, Callable[[np.ndarray], np.ndarray]]]:
    """`OFAResNets`: dynamic layers nest their modules one level deeper (`conv.conv`, `bn.bn`)."""
    mapping = {}
    for index, (conv, bn) in enumerate(zip(net.stem_convs, net.stem_bns)):
        prefix = f"input_stem.{index}" + (".conv" if index == 1 else "")  # the residual stem conv
        mapping[f"{prefix}.conv.conv.weight"] = (conv.kernel, _conv)
        mapping.update(_bn_entries(f"{prefix}.bn.bn", bn))
    for index, block in enumerate(net.blocks):
        layers = [("conv1", block.conv1, block.bn1), ("conv2", block.conv2, block.bn2), ("conv3", block.conv3, block.bn3)]
        if block.has_downsample:
            layers.append(("downsample", block.downsample_conv, block.downsample_bn))
        for name, conv, bn in layers:
            mapping[f"blocks.{index}.{name}.conv.conv.weight"] = (conv.kernel, _conv)
            mapping.update(_bn_entries(f"blocks.{index}.{name}.bn.bn", bn))
    mapping["classifier.linear.linear.weight"] = (net.classifier.kernel, lambda w: w.T)
    mapping["classifier.linear.linear.bias"] = (net.classifier.bias, _same)
    return mapping


def load_official_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a `.pth` checkpoint (optionally wrapped in {"state_dict": ...}) as numpy arrays.

    Needs PyTorch: `pip install "ofa-tf[pytorch]"`.
    """
    if not os.path.isfile(path):
        raise MissingFileError(f"checkpoint {path} does not exist: pass the path of an official OFA .pth file")
    try:
        import torch
    except ImportError:
        raise ConfigError(
            'reading PyTorch checkpoints needs torch: pip install "ofa-tf[pytorch]" (pins torch==2.13.0)'
        ) from None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file
        raise ConfigError(f"cannot read {path} as a PyTorch checkpoint ({type(error).__name__}): is it a .pth file?") from None
    if isinstance(checkpoint, Mapping) and "state_dict" in checkpoint:
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, Mapping):
        raise ConfigError(f"{path} holds a {type(checkpoint).__name__}, not a state dict")
    return {
        key.removeprefix("module."): value.detach().cpu().numpy() for key, value in checkpoint.items() if hasattr(value, "detach")
    }


def official_family(state_dict: Mapping[str, np.ndarray]) -> str:
    """Which official network a state dict holds, from its tensor names.

    Returns one of "OFAMobileNetV3", "OFAProxylessNASNets", "OFAResNets" (supernets:
    elastic layers store their weights one level deeper, `conv.conv.weight`) or
    "specialized" (a standalone subnet), or "unknown".
    """
    keys = set(state_dict)
    elastic = any(k.endswith(".conv.conv.weight") and ".depth_conv." in k for k in keys) or any(
        k.startswith("blocks.") and ".conv1.conv.conv.weight" in k for k in keys
    )
    if any(k.startswith("input_stem.") for k in keys):
        return "OFAResNets" if elastic else "specialized"
    if "first_conv.conv.weight" not in keys:
        return "unknown"
    if not elastic:
        return "specialized"
    return "OFAMobileNetV3" if "final_expand_layer.conv.weight" in keys else "OFAProxylessNASNets"


def infer_supernet_args(state_dict: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Family, width multiplier, kernel list, depth list and class count of an official state dict."""
    official_class = official_family(state_dict)
    if official_class == "OFAResNets":
        return _infer_resnet_args(state_dict)
    if official_class == "specialized":
        raise ConfigError(
            "this is a specialized network, not a supernet: convert it with its net.config: "
            "ofa-tf convert-official --specialized NET_CONFIG WEIGHTS OUT.keras"
        )
    if official_class not in _MBCONV_OF_CLASS:
        raise ConfigError("not an official OFA supernet state dict: it has no first_conv.conv.weight")
    family = _MBCONV_OF_CLASS[official_class]
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
        "family": family.name,
        "width_mult": width_mult,
        "ks_list": ks_list,
        "depth_list": tuple(range(min(2, max_depth), max_depth + 1)),
        "n_classes": int(n_classes),
    }


def _infer_resnet_args(state_dict: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Depth list and class count of an `OFAResNets` state dict. The tensors hold only the largest
    widths: the released expand and width lists are assumed (other lists: pass them to
    `from_official_state_dict`; a mismatch fails the shape check, naming the tensors)."""
    from ofa_tf.families.resnet.space import BASE_DEPTHS

    n_blocks = 1 + max(int(k.split(".")[1]) for k in state_dict if k.startswith("blocks."))
    max_depth, rest = divmod(n_blocks - sum(BASE_DEPTHS), len(BASE_DEPTHS))
    if rest or max_depth < 0:
        raise ConfigError(f"state dict has {n_blocks} blocks; OFA-ResNet50-D has 10 + 4 x max depth")
    try:
        n_classes = int(state_dict["classifier.linear.linear.weight"].shape[0])
    except KeyError:
        raise ConfigError("not an OFAResNets state dict: classifier.linear.linear.weight is missing") from None
    return {"family": "resnet50", "depth_list": tuple(range(max_depth + 1)), "n_classes": n_classes}


def assign_official_state_dict(net, state_dict: Mapping[str, np.ndarray]) -> None:
    """Copies every tensor of `state_dict` into `net`, or raises listing what does not fit."""
    mapping = official_key_map(net)
    keys = {k for k in state_dict if not k.endswith(_IGNORED_SUFFIXES)}
    unknown, missing = sorted(keys - set(mapping)), sorted(set(mapping) - keys)
    if unknown or missing:
        raise ConfigError(
            f"checkpoint does not match the {type(net).__name__} built for it: "
            f"unknown keys {unknown[:10]}{'...' if len(unknown) > 10 else ''} ({len(unknown)}), "
            f"missing keys {missing[:10]}{'...' if len(missing) > 10 else ''} ({len(missing)})"
        )
    converted = {}
    bad_shapes = []
    for key, (variable, convert) in mapping.items():
        value = np.array(convert(np.asarray(state_dict[key], dtype=np.float32)), dtype=np.float32, copy=True)
        if tuple(value.shape) != tuple(variable.shape):
            bad_shapes.append(f"{key}: {value.shape} vs {tuple(variable.shape)}")
        converted[key] = value
    if bad_shapes:
        raise ConfigError(f"checkpoint shapes do not match: {bad_shapes[:5]} ({len(bad_shapes)} in all)")
    for key, (variable, _) in mapping.items():
        variable.assign(converted[key])


def _current_names(state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Zoo checkpoints written before upstream's rename call the MBConv `mobile_inverted_conv`."""
    return {key.replace(".mobile_inverted_conv.", ".conv."): value for key, value in state_dict.items()}


def from_official_state_dict(state_dict: Mapping[str, np.ndarray], width_mult: float | None = None, **kwargs):
    """Builds the supernet (`OFAMobileNetV3`, `OFAProxylessNASNets` or `OFAResNets`, inferred
    from the tensors) holding the weights of an official state dict (numpy arrays)."""
    from ofa_tf.supernet.storage import supernet_class

    state_dict = _current_names(state_dict)
    args = {**infer_supernet_args(state_dict), **kwargs}
    family = args.pop("family")
    if width_mult is not None:
        args["width_mult"] = width_mult
    net = supernet_class(family)(**args)
    net.build((None, None, None, 3))
    assign_official_state_dict(net, state_dict)
    return net


def from_official_checkpoint(path: str | os.PathLike, width_mult: float | None = None, **kwargs):
    """Loads an official OFA supernet `.pth` checkpoint as an `OFAMobileNetV3`, `OFAProxylessNASNets` or `OFAResNets`.

    Args:
        path: the checkpoint (e.g. `ofa_mbv3_d234_e346_k357_w1.2`, `ofa_proxyless_d234_e346_k357_w1.3`, `ofa_resnet50`).
        width_mult: the width multiplier; inferred from the tensors when None.
        **kwargs: further supernet arguments (e.g. `dropout_rate`).
    """
    return from_official_state_dict(load_official_state_dict(path), width_mult=width_mult, **kwargs)
