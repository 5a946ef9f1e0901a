"""Saving and loading a supernet as a folder: weights + a JSON card.

Layout of a supernet folder:
    supernet.weights.h5   Keras weights of the supernet
    supernet.json         {"kind": its class, "config": constructor args, "source": ..., "versions": ...}
Both files are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

from ofa_tf._backend import keras, tf
from ofa_tf.errors import ConfigError, MissingFileError
from ofa_tf.io import atomic_write_json, read_json
from ofa_tf.space.registry import Space, register_described, registered

WEIGHTS_FILE = "supernet.weights.h5"
CARD_FILE = "supernet.json"
Supernet = Any  # a supernet of any registered family (an instance of its network class)


def supernet_class(family: str) -> type:
    """The supernet class of a registered family ("mbv3", "proxyless", "resnet50")."""
    return registered(family).network_class()


def supernet_for_space(space: Space, **kwargs: Any) -> Supernet:
    """A built, randomly initialized supernet of `space`'s family, choice lists and classes
    (`kwargs`: its class's other constructor arguments, e.g. dropout_rate)."""
    net = supernet_class(space.family).from_space(space, **kwargs)
    net.build((None, None, None, 3))
    return net


def save_supernet(
    net: Supernet,
    directory: str | os.PathLike,
    source: dict[str, Any] | None = None,
    resolutions: Sequence[int] | None = None,
) -> Path:
    """Writes `net` to `directory` (created if needed); returns the folder.

    Args:
        net: the supernet.
        directory: the folder.
        source: provenance written to the card.
        resolutions: the resolutions it was trained at, for the card's search space
            (None: the space's own, 128..224 as the official supernets).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        tmp_weights = Path(tmp) / WEIGHTS_FILE
        net.save_weights(tmp_weights)
        os.replace(tmp_weights, directory / WEIGHTS_FILE)
    card = {
        "kind": f"ofa_tf.{type(net).__name__}",
        "config": {k: v for k, v in net.get_config().items() if k not in ("name", "trainable", "dtype")},
        "search_space": _trained_space(net.space, resolutions).to_dict(),
        "source": source or {},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    atomic_write_json(directory / CARD_FILE, card)
    return directory


def _trained_space(space: Space, resolutions: Sequence[int] | None) -> Space:
    return space if resolutions is None else dataclasses.replace(space, resolutions=tuple(sorted(resolutions)))


def load_supernet(directory: str | os.PathLike) -> Supernet:
    """Loads a supernet folder written by `save_supernet` (or `ofa-tf convert-official`)."""
    directory = Path(directory)
    card_path, weights_path = directory / CARD_FILE, directory / WEIGHTS_FILE
    if not card_path.is_file() or not weights_path.is_file():
        raise MissingFileError(
            f"{directory} is not a supernet folder: expected {CARD_FILE} and {WEIGHTS_FILE} "
            "(made by `ofa-tf convert-official` or `ofa-tf train`)"
        )
    card = read_json(card_path, "write the supernet folder again (`ofa-tf train`, `convert-official`, `supernet from-keras`)")
    try:
        register_described(card.get("search_space", {}))
        family = card.get("search_space", {}).get("family", "mbv3")
        net = supernet_class(family)(**card["config"])
    except (KeyError, TypeError) as error:
        raise ConfigError(f"{card_path} is not a valid supernet card ({error})") from None
    net.build((None, None, None, 3))
    net.load_weights(weights_path)
    return net
