"""Copies a read Keras model's weights into its converted supernet (the largest subnet is the model)."""

from __future__ import annotations

from typing import Any

import numpy as np

BN_WEIGHTS = ("gamma", "beta", "moving_mean", "moving_variance")


def _assign(variable: Any, value: np.ndarray, where: str) -> None:
    value, shape = np.asarray(value, np.float32), tuple(variable.shape)
    if value.size != np.prod(shape):
        raise AssertionError(f"{where}: the Keras weight of shape {value.shape} does not fit {shape}")
    variable.assign(value.reshape(shape))  # 1x1 conv kernels <-> matrices


def _copy_batch_norm(target: Any, layer: Any, where: str) -> None:
    channels = target.gamma.shape[0]
    defaults = {"gamma": np.ones(channels), "beta": np.zeros(channels)}  # a BN without scale or centre
    for name in BN_WEIGHTS:
        weight = getattr(layer, name)
        _assign(getattr(target, name), defaults[name] if weight is None else weight.numpy(), f"{where}.{name}")


def _copy_conv(target: Any, layer: Any, where: str, reversed_inputs: bool = False) -> None:
    kernel = layer.kernel.numpy()
    _assign(target.kernel, kernel[:, :, ::-1, :] if reversed_inputs else kernel, f"{where}.kernel")
    if getattr(target, "bias", None) is not None:
        _assign(target.bias, layer.bias.numpy(), f"{where}.bias")


def _copy_squeeze_excite(target: Any, reduce: Any, expand: Any, where: str) -> None:
    _assign(target.reduce_kernel, reduce.kernel.numpy(), f"{where}.reduce_kernel")
    _assign(target.reduce_bias, reduce.bias.numpy(), f"{where}.reduce_bias")
    _assign(target.expand_kernel, expand.kernel.numpy(), f"{where}.expand_kernel")
    _assign(target.expand_bias, expand.bias.numpy(), f"{where}.expand_bias")


def _module(supernet: Any, owner: str) -> Any:
    """The supernet block a path names ("first_block", "blocks_3"), or the supernet itself ("")."""
    if owner.startswith("blocks_"):
        return supernet.blocks[int(owner.split("_")[1])]
    return getattr(supernet, owner) if owner else supernet


def copy_keras_weights(supernet: Any, layers: dict[str, Any]) -> None:
    """Sets `supernet`'s weights from the Keras layers the reader found (`Reading.layers`, by supernet
    layer path: "first_conv", "blocks_3/expand_conv", "blocks_3/se_reduce", "classifier")."""
    if not supernet.built:
        supernet.build((None, None, None, 3))
    bgr = supernet.space.family_spec.network_input()[2]
    for path, layer in layers.items():
        owner, _, part = path.rpartition("/")
        if part == "se_expand":
            continue  # copied with its reduce conv
        module = _module(supernet, owner)
        if part == "se_reduce":
            _copy_squeeze_excite(module.se, layer, layers[f"{owner}/se_expand"], path)
        elif hasattr(getattr(module, part), "moving_mean"):
            _copy_batch_norm(getattr(module, part), layer, path)
        else:  # a BGR model's stem reads ofa-tf's RGB images with its input channels reversed
            _copy_conv(getattr(module, part), layer, path, reversed_inputs=path == "first_conv" and bgr)
