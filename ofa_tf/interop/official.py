"""Official OFA supernet checkpoints (PyTorch state dicts) -> `OFAMobileNetV3` / `OFAProxylessNASNets` / `OFAResNets`.

Each family with an official format reads it in its own folder (`families/<kind>/official.py`,
found through the registry): which class a state dict holds, the supernet's arguments, and the
key map. Every tensor is mapped explicitly (OIHW -> HWIO convs, (C,1,k,k) -> (k,k,C,1)
depthwise kernels, SE 1x1 convs with biases, BN statistics, kernel
transformation matrices, the head without BN). Unknown or missing keys and
shape mismatches raise an error listing them: a checkpoint is never loaded
partially.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import numpy as np

from ofa_tf.errors import ConfigError, MissingFileError
from ofa_tf.layers.official_layout import KeyMap
from ofa_tf.space.registry import RegisteredFamily, official_families, registered

_IGNORED_SUFFIXES = ("num_batches_tracked",)


def official_key_map(net) -> KeyMap:
    """Official state-dict key -> (our variable, layout conversion), from the net's family."""
    return registered(net.space.family).official().key_map(net)


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
    """Which official network a state dict holds, from its tensor names (each family with an
    official format reads its own): a supernet class ("OFAMobileNetV3", "OFAProxylessNASNets",
    "OFAResNets"), "specialized" (a standalone subnet), or "unknown"."""
    keys = set(state_dict)
    modules = dict.fromkeys(family.official() for family in official_families())
    return next((found for module in modules if (found := module.official_class(keys))), "unknown")


def _family_of_class(official_class: str) -> RegisteredFamily:
    return next(family for family in official_families() if family.official_class == official_class)


def infer_supernet_args(state_dict: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Family and constructor arguments (width multiplier, kernel and depth lists, class count) of an
    official state dict."""
    official_class = official_family(state_dict)
    if official_class == "specialized":
        raise ConfigError(
            "this is a specialized network, not a supernet: convert it with its net.config: "
            "ofa-tf convert-official --specialized NET_CONFIG WEIGHTS OUT.keras"
        )
    if official_class == "unknown":
        raise ConfigError("not an official OFA supernet state dict: it has no first_conv.conv.weight")
    family = _family_of_class(official_class)
    return {"family": family.name, **family.official().infer_args(state_dict, family.description)}


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
