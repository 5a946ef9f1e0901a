"""Every supernet family by name, with the search-space class that describes it.

A search-space class lists the families it describes (`FAMILIES`), its named
elastic choices (`CHOICES`) and builds a family's space (`for_family`); the
CLI, the trainer's configuration, the latency tables and the supernet store
look families up here and read everything else from the space. A family of
MBConv blocks is one `ofa_tf.families.Family` description; a family of a new
block kind is a new space class listed in `SPACE_CLASSES`.
"""

from __future__ import annotations

from typing import Any

from ofa_tf.errors import ConfigError
from ofa_tf.resnet_space import ResNetSpace, ResNetSubnetConfig
from ofa_tf.space import SearchSpace, SubnetConfig

Space = SearchSpace | ResNetSpace
Config = SubnetConfig | ResNetSubnetConfig  # a subnet of any family
SPACE_CLASSES: tuple[type, ...] = (SearchSpace, ResNetSpace)
SUPERNET_FAMILIES: tuple[str, ...] = tuple(family for cls in SPACE_CLASSES for family in cls.FAMILIES)
# every choice name of any family, with the field listing its values ("ks": "ks_list")
CHOICE_FIELDS: dict[str, str] = {choice.name: choice.field for cls in SPACE_CLASSES for choice in cls.CHOICES}


def space_class(family: str) -> type:
    """The search-space class describing `family`, or a `ConfigError` naming the families."""
    for cls in SPACE_CLASSES:
        if family in cls.FAMILIES:
            return cls
    raise ConfigError(f"unknown supernet family {family!r}: expected one of {list(SUPERNET_FAMILIES)}")


def make_space(family: str, width_mult: float | None = None, **fields: Any) -> Space:
    """The search space of `family` (None width: the released supernet's); `fields` as its constructor's
    (n_classes, resolutions, choice lists)."""
    return space_class(family).for_family(family, width_mult=width_mult, **fields)


def space_from_dict(data: dict[str, Any]) -> Space:
    """The search space a card or predictor records (`to_dict`), of its family."""
    return space_class(data.get("family", "mbv3")).from_dict(data)
