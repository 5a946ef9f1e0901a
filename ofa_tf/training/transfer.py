"""Starting a supernet from a pretrained one: its weights, a new classifier for new classes.

The transfer keeps every weight of the pretrained supernet (the elastic layers,
the kernel transformation matrices, the BN statistics) and the classifier
when the classes match; for other classes the classifier is the new
supernet's own (freshly initialized), which the transfer preset's first phase
trains alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ofa_tf.errors import ConfigError
from ofa_tf.io import read_json
from ofa_tf.space.registry import choice_fields, register_described
from ofa_tf.supernet.storage import CARD_FILE, Supernet


def pretrained_space(supernet_dir: str | Path) -> dict[str, Any]:
    """The search space a supernet folder's card records (family, width, choice lists, trained resolutions);
    a family the card carries as data (a network converted from Keras) is registered."""
    space = read_json(Path(supernet_dir) / CARD_FILE, "write the supernet folder again (`ofa-tf train`, `supernet from-keras`)")["search_space"]
    register_described(space)
    return space


def pretrained_architecture(space: dict[str, Any]) -> dict[str, Any]:
    """What a pretrained supernet fixes of a run besides its family: the width multiplier and the
    choices (by name) of a card's search space."""
    choices = {name: tuple(space[field]) for name, field in choice_fields().items() if space.get(field)}
    return {"width_mult": space["width_mult"], "choices": choices} if "width_mult" in space else {"choices": choices}


def transfer_weights(source: Supernet, target: Supernet) -> bool:
    """Copies `source`'s weights into `target` (same family, width and choices); returns
    whether the classifier was copied too (it is when the class counts match).

    Raises:
        ConfigError: a weight's shape differs (the supernets' architectures differ).
    """
    keep_classifier = source.classifier.max_units == target.classifier.max_units
    classifier = {id(v) for v in target.classifier.weights}
    if len(source.weights) != len(target.weights):
        raise ConfigError(
            f"the pretrained supernet has {len(source.weights)} weights but this run's {len(target.weights)}: "
            "leave --arch, --width-mult and the choice lists to the pretrained supernet's card"
        )
    for theirs, ours in zip(source.weights, target.weights):
        if id(ours) in classifier and not keep_classifier:
            continue
        if tuple(theirs.shape) != tuple(ours.shape):
            raise ConfigError(
                f"the pretrained supernet's {theirs.path} is {tuple(theirs.shape)}, this run's {tuple(ours.shape)}: "
                "leave --arch, --width-mult and the choice lists to the pretrained supernet's card"
            )
        ours.assign(theirs)
    return keep_classifier


__all__ = ["pretrained_architecture", "pretrained_space", "transfer_weights"]
