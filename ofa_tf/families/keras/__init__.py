"""Supernets whose largest subnet is a Keras model: a description read from the model's graph
(`ofa_tf.elastic.from_keras`), registered at run time, stored as JSON in the supernet's card."""

from __future__ import annotations

from typing import Any

from ofa_tf.families.keras.description import KerasFamily
from ofa_tf.families.keras.space import KerasSpace
from ofa_tf.space.registry import RegisteredFamily, register_family

NETWORK = "ofa_tf.families.keras.network:KerasMBConvNetwork"


def register_keras_family(description: KerasFamily) -> RegisteredFamily:
    """Registers a converted network's family (again, when a card that carries it is read)."""
    return register_family(RegisteredFamily(description.name, description.title, KerasSpace, NETWORK, description))


def register_description(data: dict[str, Any]) -> RegisteredFamily:
    """`register_keras_family` for a description as its card stores it (`KerasFamily.to_dict`)."""
    return register_keras_family(KerasFamily.from_dict(data))
