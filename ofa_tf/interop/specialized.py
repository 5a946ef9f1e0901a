"""The official model zoo's files: a specialized network's `net.config` and the input size its
`run.config` gives (the network itself is built by `ofa_tf.layers.net_config`)."""

from __future__ import annotations

import json
import os
from typing import Any

from ofa_tf.errors import ConfigError, MissingFileError


def load_net_config(path: str | os.PathLike) -> dict[str, Any]:
    """Reads an official `net.config` (JSON)."""
    if not os.path.isfile(path):
        raise MissingFileError(f"net.config {path} does not exist: pass the net.config of an official specialized network")
    try:
        with open(path, encoding="utf-8") as file:
            config = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"cannot read {path} as JSON ({error}): pass an official net.config") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path} holds a {type(config).__name__}, not a net.config object")
    return config


def zoo_resolution(net_config_path: str | os.PathLike) -> int | None:
    """The input size the model zoo gives a specialized network: `image_size` of the `run.config`
    beside its `net.config` (the largest, where training used several), or None without one."""
    path = os.path.join(os.path.dirname(os.path.abspath(net_config_path)), "run.config")
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as file:
            size = json.load(file)["image_size"]
        return int(max(size) if isinstance(size, (list, tuple)) else size)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"cannot read image_size from {path} ({error}): give --resolution") from None
