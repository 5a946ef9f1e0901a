"""The accuracy predictor: a 3x400 ReLU MLP on one-hot subnet encodings (Keras)."""

from __future__ import annotations

import numpy as np

from ofa_tf._backend import keras
from ofa_tf.nas.arch_encoding import ArchEncoder
from ofa_tf.space import ArchIndices


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

    def predict(self, arch: ArchIndices, batch_size: int = 4096) -> np.ndarray:
        """[N] predicted accuracies."""
        features = self.encoder.encode(arch)
        outputs = [
            self.model(features[i : i + batch_size], training=False).numpy()[:, 0]
            for i in range(0, len(features), batch_size)
        ]
        return np.concatenate(outputs) if outputs else np.zeros(0, np.float32)
