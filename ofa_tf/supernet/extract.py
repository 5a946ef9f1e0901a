"""A subnet of any supernet as a standalone Keras model of stock layers."""

from __future__ import annotations

from typing import Any

from ofa_tf._backend import keras


def extract_subnet(supernet: Any, config: Any = None, lib: Any = keras, name: str | None = None) -> Any:
    """The subnet `config` (default: the active one) of `supernet` as a stock Keras model.

    Inference outputs equal the supernet's for that config. Dropout is kept at
    the supernet's rate (inactive at inference). Each supernet class extracts
    its own block kind (`extract`).

    Args:
        supernet: a supernet of any registered family (`OFAMobileNetV3`, `OFAResNets`, ...).
        config: the subnet; `config.resolution` fixes the input size (None: any size).
        lib: the Keras module to build with (`keras`, or `tf_keras` for QAT).
        name: model name.
    """
    if not supernet.built:  # weights are made when a network is built: a fresh one has none yet
        supernet.build((None, None, None, 3))
    return supernet.extract(config, lib=lib, name=name)
