"""The official accuracy predictor checkpoint and latency tables, in ofa-tf's formats."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from ofa_tf.errors import ConfigError
from ofa_tf.interop.official import load_official_state_dict
from ofa_tf.nas.accuracy_predictor import AccuracyPredictor, build_accuracy_mlp
from ofa_tf.nas.arch_encoding import arch_encoder
from ofa_tf.nas.latency_table import LatencyTable
from ofa_tf.space.registry import Space, make_space

# Resolution lists the library encoder is commonly built with, by one-hot length.
_KNOWN_RESOLUTIONS = {4: (128, 160, 192, 224), 5: (160, 176, 192, 208, 224), 25: tuple(range(128, 225, 4))}


def _linear_layers(state: Mapping[str, np.ndarray]) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """[(weight (out, in), bias)] of the MLP and its layout ("tutorial" or "library")."""
    if "0.weight" in state:  # tutorial: nn.Sequential(Linear, ReLU, ..., Linear(400, 1))
        indices = sorted({int(k.split(".")[0]) for k in state})
        return [(state[f"{i}.weight"], state[f"{i}.bias"]) for i in indices], "tutorial"
    if "base_acc" in state:  # library: layers.i.0 = Linear + ReLU, last Linear without bias, + base_acc
        hidden = sorted({int(k.split(".")[1]) for k in state if k.startswith("layers.") and k.endswith(".0.weight")})
        layers = [(state[f"layers.{i}.0.weight"], state[f"layers.{i}.0.bias"]) for i in hidden]
        last = max(hidden) + 1
        layers.append((state[f"layers.{last}.weight"], np.asarray(state["base_acc"]).reshape(1)))
        return layers, "library"
    raise ConfigError(f"not an OFA accuracy predictor: unexpected keys {sorted(state)[:6]}")


def accuracy_predictor_from_state_dict(
    state: Mapping[str, np.ndarray], space: Space | None = None, resolutions: Sequence[int] | None = None
) -> AccuracyPredictor:
    """Builds our predictor from an official predictor state dict (numpy arrays).

    `space` says what it encodes: an OFA-MobileNetV3 space (the default; the tutorial or library
    layout) or an OFA-ResNet50-D one (upstream's `ResNetArchEncoder`)."""
    space = space or make_space("mbv3")
    layers, layout = _linear_layers(state)
    n_features = layers[0][0].shape[1]
    n_block_features = arch_encoder(space, (), layout).n_features if layout == "library" else 0
    if layout == "library" and resolutions is None:
        resolutions = _KNOWN_RESOLUTIONS.get(n_features - n_block_features)
        if resolutions is None:
            raise ConfigError(
                f"predictor encodes {n_features - n_block_features} resolutions: pass resolutions= (the image_size_list it was built with)"
            )
    encoder = arch_encoder(space, resolutions, layout)
    if encoder.n_features != n_features:
        raise ConfigError(f"predictor takes {n_features} features, the {layout} encoding of this space has {encoder.n_features}")
    model = build_accuracy_mlp(n_features, hidden_size=layers[0][0].shape[0], n_layers=len(layers) - 1)
    dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    for keras_layer, (weight, bias) in zip(dense, layers):
        keras_layer.set_weights([weight.T.astype(np.float32), bias.astype(np.float32)])
    return AccuracyPredictor(encoder, model)


def load_official_accuracy_predictor(
    path: str | os.PathLike, space: Space | None = None, resolutions: Sequence[int] | None = None
) -> AccuracyPredictor:
    """Loads `acc_predictor.pth` (tutorial, 128-D) or a library `AccuracyPredictor` checkpoint
    (MobileNetV3, or ResNet50-D with `space=ResNetSpace()`)."""
    return accuracy_predictor_from_state_dict(load_official_state_dict(path), space, resolutions)


def load_official_latency_tables(space: Space, *paths: str | os.PathLike) -> LatencyTable:
    """Loads official `{resolution}_lookup_table.yaml` files (e.g. note10) into one table."""
    return LatencyTable.from_yaml(space, *paths)


__all__ = [
    "accuracy_predictor_from_state_dict",
    "load_official_accuracy_predictor",
    "load_official_latency_tables",
]
