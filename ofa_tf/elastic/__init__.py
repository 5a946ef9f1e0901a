"""Bring your own Keras network: make a functional Keras CNN of MBConv blocks an OFA supernet, exactly.

`from_keras(model)` reads the model's graph (`ofa_tf.elastic.reader`), registers a converted
family whose description is the model's structure (`ofa_tf.families.keras`), builds its supernet
and copies the model's weights in, so the largest subnet is the model: its logits, its MACs and
parameters, its preprocessing. Smaller subnets use fewer blocks per stage, fractions of each
block's middle width and smaller depthwise kernels (OFA's kernel transform, identity at first);
progressive shrinking (`ofa-tf train --init`) teaches them, with the model as the teacher, and
sorts middle channels by importance (`re_organize_middle_weights`) as each expand phase begins.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from ofa_tf.elastic.graph import NotRecognised
from ofa_tf.elastic.reader import Reading, read_keras_model
from ofa_tf.elastic.weights import copy_keras_weights

__all__ = ["NotRecognised", "Reading", "from_keras", "load_keras_model", "read_keras_model"]


def load_keras_model(path: str | os.PathLike) -> Any:
    """A saved Keras model (`.keras`, or a legacy `.h5`), uncompiled.

    Raises:
        MissingFileError: there is no such file.
        ConfigError: Keras cannot read it (e.g. it needs custom objects).
    """
    from ofa_tf._backend import keras
    from ofa_tf.errors import ConfigError, MissingFileError

    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such Keras model file (save one with model.save('model.keras'))")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises ValueError, TypeError, OSError ... on files it cannot read
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"{path}: Keras cannot load it ({reason[:300]}); save it with model.save('model.keras')") from None


def from_keras(
    model: Any,
    ks_list: Sequence[int] = (),
    expand_ratio_list: Sequence[float] = (),
    depth_list: Sequence[int] = (),
    inputs: str | None = None,
    reading: Reading | None = None,
) -> Any:
    """The OFA supernet whose largest subnet is `model`.

    Args:
        model: a functional Keras model (e.g. `keras.applications.MobileNetV2(weights=None)`).
        ks_list: depthwise kernel sizes (empty: every odd size from 3 to the model's largest); each
            block runs those up to its own.
        expand_ratio_list: fractions of each block's middle width (empty: 0.5, 0.75, 1.0).
        depth_list: blocks a stage may run, capped at its own count (empty: 2 up to the longest stage).
        inputs: what the model's input is: "torch" (ofa-tf's ImageNet-normalized RGB), "pixels" (0..255),
            "unit" (0..1), "tf" (-1..1), "caffe" (BGR minus the mean); None: "pixels" where the model's
            preprocessing layers are inside it, else required. The supernet takes ofa-tf's normalized images.
        reading: the model's `read_keras_model` result, where the caller has it already.

    Returns:
        a built `ofa_tf.families.keras.network.KerasMBConvNetwork` holding the model's weights.

    Raises:
        NotRecognised: the model has a layer the reader cannot place (the message names it).
    """
    from ofa_tf.families.keras import register_keras_family
    from ofa_tf.families.keras.network import KerasMBConvNetwork

    reading = reading or read_keras_model(model, inputs)
    register_keras_family(reading.description)
    net = KerasMBConvNetwork(
        family=reading.description.name, ks_list=ks_list, expand_ratio_list=expand_ratio_list, depth_list=depth_list,
        n_classes=reading.n_classes, name=f"ofa_{reading.description.name}",
    )
    net.build((None, None, None, 3))
    copy_keras_weights(net, reading.layers)
    return net
