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

    def predict(self, arch: ArchIndices) -> np.ndarray:
        """[N] predicted accuracies, computed in numpy from the model's current weights.

        A search calls this hundreds of times on ~100 rows; a numpy forward
        pass avoids a Keras call per generation.
        """
        x = self.encoder.encode(arch)
        dense = [layer for layer in self.model.layers if isinstance(layer, keras.layers.Dense)]
        for i, layer in enumerate(dense):
            x = x @ layer.kernel.numpy() + layer.bias.numpy()
            if i < len(dense) - 1:
                x = np.maximum(x, 0.0)
        return x[:, 0]
