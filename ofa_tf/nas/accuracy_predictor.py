"""The accuracy predictor: a 3x400 ReLU MLP on one-hot subnet encodings (Keras)."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ofa_tf._backend import keras
from ofa_tf.errors import ConfigError, MissingFileError
from ofa_tf.io import atomic_write_json, read_json
from ofa_tf.nas.arch_encoding import ArchEncoder, arch_encoder
from ofa_tf.space.choices import ArchRows
from ofa_tf.space.registry import Space


def build_accuracy_mlp(n_features: int, hidden_size: int = 400, n_layers: int = 3, name: str = "accuracy_mlp") -> keras.Model:
    """MLP `n_features -> [hidden, ReLU] x n_layers -> 1`.

    The output bias plays the role of upstream's `base_acc` (the mean
    accuracy of the training subnets, added to a bias-free last layer).
    """
    inputs = keras.Input((n_features,), name="arch_features")
    x = inputs
    for i in range(n_layers):
        x = keras.layers.Dense(hidden_size, activation="relu", name=f"hidden_{i}")(x)
    outputs = keras.layers.Dense(1, name="accuracy")(x)
    return keras.Model(inputs, outputs, name=name)


class AccuracyPredictor:
    """Predicts top-1 accuracy (a fraction) of many subnets at once.

    Args:
        encoder: how subnets become features.
        model: the MLP from `build_accuracy_mlp`.
    """

    def __init__(self, encoder: ArchEncoder, model: keras.Model):
        self.encoder = encoder
        self.model = model
        self._numpy_weights = None

    def predict(self, arch: ArchRows) -> np.ndarray:
        """[N] predicted accuracies, computed in numpy from the model's current weights.

        A search calls this hundreds of times on ~100 rows; a numpy forward
        pass avoids a Keras call per generation.
        """
        if self._numpy_weights is None:  # read once: the model is not trained after construction
            dense = [layer for layer in self.model.layers if isinstance(layer, keras.layers.Dense)]
            self._numpy_weights = [(layer.kernel.numpy(), layer.bias.numpy()) for layer in dense]
        x = self.encoder.encode(arch)
        for i, (kernel, bias) in enumerate(self._numpy_weights):
            x = x @ kernel + bias
            if i < len(self._numpy_weights) - 1:
                x = np.maximum(x, 0.0)
        return x[:, 0]


PREDICTOR_MODEL_FILE = "accuracy_predictor.keras"
PREDICTOR_CARD_FILE = "accuracy_predictor.json"


def save_accuracy_predictor(predictor: AccuracyPredictor, directory: str | os.PathLike, metrics: dict[str, Any]) -> Path:
    """Writes the MLP and a JSON card (encoding, resolutions, metrics) to `directory`, atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        tmp_model = Path(tmp) / PREDICTOR_MODEL_FILE
        predictor.model.save(tmp_model)
        os.replace(tmp_model, directory / PREDICTOR_MODEL_FILE)
    card = {
        "kind": "ofa_tf.AccuracyPredictor",
        "layout": predictor.encoder.layout,
        "resolutions": list(predictor.encoder.resolutions),
        "search_space": predictor.encoder.space.to_dict(),
        "metrics": metrics,
    }
    atomic_write_json(directory / PREDICTOR_CARD_FILE, card)
    return directory


def load_accuracy_predictor(directory: str | os.PathLike, space: Space) -> AccuracyPredictor:
    """Loads a predictor folder written by `save_accuracy_predictor` for the supernet's `space`."""
    directory = Path(directory)
    card_path, model_path = directory / PREDICTOR_CARD_FILE, directory / PREDICTOR_MODEL_FILE
    if not card_path.is_file() or not model_path.is_file():
        raise MissingFileError(
            f"{directory} holds no accuracy predictor: run `ofa-tf predictor build` and `ofa-tf predictor train` first"
        )
    card = read_json(card_path, "run `ofa-tf predictor train` again")
    trained_space = type(space).from_dict(card["search_space"])
    if dataclasses.replace(trained_space, resolutions=space.resolutions) != space:
        raise ConfigError(f"the predictor in {directory} was trained for another supernet ({card['search_space']})")
    encoder = arch_encoder(space, card["resolutions"], layout=card["layout"])
    return AccuracyPredictor(encoder, keras.models.load_model(model_path, compile=False))
