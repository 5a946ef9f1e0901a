"""Every supernet family by name: the search-space class that describes it and its supernet class.

A family's package registers each of its families once (`register_family`, in the package's
`__init__`); the built-in families (`ofa_tf.families`) are imported on the first lookup. The CLI,
the trainer's configuration, the supernet store and the latency tables find a family here by name
and read everything else from its space, so nothing outside a family's folder branches on its name.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from ofa_tf.errors import ConfigError

BUILTIN_FAMILIES = "ofa_tf.families"  # the package whose import registers the released families
Space = Any  # the search space of a registered family (an instance of its `space_class`)
Config = Any  # one subnet of any family (its space's subnet config)


@dataclasses.dataclass(frozen=True)
class RegisteredFamily:
    """One supernet family.

    Args:
        name: the name on the command line and in cards ("mbv3").
        title: the human name ("OFA-MobileNetV3").
        space_class: its search-space class (`for_family`, `from_dict`, `CHOICES`, `SCALABLE_WIDTH`).
        network: its supernet class as "module:Class", imported when a supernet is built (so that
            reading a family does not import TensorFlow).
        description: what its space reads beyond the name (an MBConv family's `Family`), or None.
        official_class: the official OFA package's supernet class it matches ("OFAResNets"), or "".
        official_module: the module reading that class's checkpoints, or "": `official_class(keys)`
            (which class a state dict's tensor names are), `infer_args(state_dict, description)` (the
            supernet's arguments), `key_map(net)` (official key -> our variable and layout conversion).
    """

    name: str
    title: str
    space_class: type
    network: str
    description: Any = None
    official_class: str = ""
    official_module: str = ""

    def network_class(self) -> type:
        module, _, cls = self.network.partition(":")
        return getattr(importlib.import_module(module), cls)

    def official(self) -> Any:
        """The module reading this family's official checkpoints (`official_module`)."""
        if not self.official_module:
            raise ConfigError(f"the {self.title} family has no official OFA checkpoint format")
        return importlib.import_module(self.official_module)


_REGISTRY: dict[str, RegisteredFamily] = {}


def register_family(family: RegisteredFamily) -> RegisteredFamily:
    """Adds `family`; registering the same name again with a different entry is refused."""
    known = _REGISTRY.get(family.name)
    if known is not None and known != family:
        raise ConfigError(f"a supernet family named {family.name!r} is registered already: choose another name")
    _REGISTRY[family.name] = family
    return family


def _families() -> dict[str, RegisteredFamily]:
    importlib.import_module(BUILTIN_FAMILIES)
    return _REGISTRY


def family_names() -> tuple[str, ...]:
    """The registered families' names, in registration order."""
    return tuple(_families())


def registered(name: str) -> RegisteredFamily:
    """The family called `name`, or a `ConfigError` naming the families."""
    families = _families()
    if name not in families:
        raise ConfigError(f"unknown supernet family {name!r}: expected one of {list(families)}")
    return families[name]


def official_families() -> tuple[RegisteredFamily, ...]:
    """The registered families with an official OFA checkpoint format."""
    return tuple(family for family in _families().values() if family.official_module)


def space_class(family: str) -> type:
    """The search-space class describing `family`."""
    return registered(family).space_class


def make_space(family: str, width_mult: float | None = None, **fields: Any) -> Any:
    """The search space of `family` (None width: the released supernet's); `fields` as its constructor's
    (n_classes, resolutions, choice lists)."""
    return space_class(family).for_family(family, width_mult=width_mult, **fields)


def register_described(space_data: dict[str, Any]) -> None:
    """Registers the family a recorded search space carries as data (a network converted from Keras:
    its `description` names the module that registers it), so a card read in a new process builds."""
    description = space_data.get("description")
    if isinstance(description, dict) and description.get("module"):
        importlib.import_module(description["module"]).register_description(description)


def space_from_dict(data: dict[str, Any]) -> Any:
    """The search space a card or predictor records (`to_dict`), of its family."""
    register_described(data)
    return space_class(data.get("family", "mbv3")).from_dict(data)


def choice_fields() -> dict[str, str]:
    """Every choice name of any family, with the field listing its values ("ks": "ks_list")."""
    classes = dict.fromkeys(family.space_class for family in _families().values())
    return {choice.name: choice.field for cls in classes for choice in cls.CHOICES}
