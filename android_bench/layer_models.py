"""One small Keras model per latency-table key.

The keys are the layer slots' (`ofa_tf.space.slots`): each model is the
slice of an extracted subnet the key stands for, so a whole subnet is the
concatenation of its keys' models. The MBConv families' models are built by
the supernet (`slot_output`, `ofa_tf.families.mbconv.extract`) from its weights:

- `Conv`: first conv (stride 2) + BN + activation;
- `expanded_conv`: one MBConv block (expand, depthwise, SE, project, residual);
- the head convs of the family (`Conv_1`, `Conv_2`: 1x1 conv, BN where it has one, activation);
- `AvgPool2D`: global average pooling;
- `Logits`: flatten + classifier.

OFA-ResNet50-D's keys carry the official layer config they stand for (stem
convs, the residual stem conv, bottleneck blocks, the classifier), built by
the translator of official networks (`ofa_tf.layers.net_config`) with
random weights (latency does not depend on them); `MaxPool2D` is the stem's
3x3 stride-2 max pooling.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ofa_tf.space.slots import FIRST_BLOCK, LayerSpec, layer_specs

__all__ = ["FIRST_BLOCK", "LayerSpec", "build_layer_model", "layer_specs", "needs_supernet"]

WEIGHTLESS_KINDS = ("AvgPool2D", "MaxPool2D")


def needs_supernet(spec: LayerSpec) -> bool:
    """Whether the key's model copies supernet weights (the MBConv families' layers)."""
    return spec.config is None and spec.kind not in WEIGHTLESS_KINDS


class _RandomWeights:
    """Stands in for a state dict: random tensors of whatever shape a layer asks for."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def take(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        values = 0.1 * self.rng.standard_normal(shape).astype(np.float32)
        return np.abs(values) + 1.0 if key.endswith("running_var") else values


def _from_layer_config(keras: Any, x: Any, spec: LayerSpec) -> Any:
    from ofa_tf.layers.net_config import NetConfigTranslator

    translator = NetConfigTranslator(_RandomWeights(), bn_momentum=0.1, bn_epsilon=1e-5)
    if spec.kind == "Logits":
        x = keras.layers.Flatten(name="flatten")(x)
    return translator.layer(x, spec.config, "layer")


def build_layer_model(supernet: Any, spec: LayerSpec) -> Any:
    """The Keras model of one key, with `supernet`'s weights.

    Args:
        supernet: a built supernet of the table's family, width and class count (None where
            `needs_supernet(spec)` is false).
        spec: from `layer_specs`.
    """
    from ofa_tf._backend import keras

    inputs = keras.layers.Input(spec.input_shape, name="features")
    if spec.kind == "MaxPool2D":
        x = keras.layers.ZeroPadding2D(1, name="max_pooling_pad")(inputs)  # after relu, as the extracted ResNets
        return keras.Model(inputs, keras.layers.MaxPooling2D(3, 2, name="max_pooling")(x), name=spec.kind)
    if spec.config is not None:
        return keras.Model(inputs, _from_layer_config(keras, inputs, spec), name=spec.kind)
    if spec.kind == "AvgPool2D":
        return keras.Model(inputs, keras.layers.GlobalAveragePooling2D(keepdims=True, name="pool")(inputs), name=spec.kind)
    return keras.Model(inputs, supernet.slot_output(inputs, spec), name=spec.kind)
