"""The family-independent vocabulary of search spaces: elastic choices as data, batches of
subnets as arrays, channel rounding and the sampling helpers every family's space shares."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Sequence

import numpy as np

from ofa_tf.errors import ConfigError

CHANNEL_DIVISIBLE = 8
SE_REDUCTION = 4

DEFAULT_RESOLUTIONS = tuple(range(128, 225, 4))


def make_divisible(value: float, divisor: int = CHANNEL_DIVISIBLE, min_value: int | None = None) -> int:
    """Rounds `value` to a multiple of `divisor`, as the official `make_divisible`."""
    if min_value is None:
        min_value = divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value



def se_mid_channels(channels: int) -> int:
    """Hidden width of the squeeze-and-excitation block for `channels` inputs."""
    return make_divisible(channels // SE_REDUCTION, CHANNEL_DIVISIBLE)


@dataclasses.dataclass(frozen=True)
class Choice:
    """One elastic choice of a family, as data.

    Args:
        name: its key in a subnet (upstream's "ks", "e", "d", "w").
        field: the search-space field listing its values ("ks_list").
        column: the `ArchRows` field holding it per subnet ("kernel_index").
        scope: what one entry of it chooses for: "block", "stage" or "width" (a width unit).
    """

    name: str
    field: str
    column: str
    scope: str


def arch_scopes(choices: Sequence[Choice]) -> dict[str, str]:
    """`ArchRows.SCOPES` of a family's choices: each column's scope, then the resolution's."""
    return {**{choice.column: choice.scope for choice in choices}, "resolution": "resolution"}


@dataclasses.dataclass(frozen=True)
class ArchRows:
    """A batch of subnets as integer arrays, one field per choice (the form the vectorized tools use).

    Subclasses name a family's choices as fields of [N, positions] arrays plus `resolution` ([N]);
    `SCOPES` says what each field's positions are ("block", "stage", "width", "resolution"): the
    search mutates the fields of one scope together, position by position.
    """

    SCOPES: ClassVar[dict[str, str]] = {}

    def __len__(self) -> int:
        return int(self.resolution.shape[0])

    def arrays(self) -> tuple[np.ndarray, ...]:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self))

    def take(self, rows: np.ndarray) -> "ArchRows":
        """The subnets at `rows` (integer indices)."""
        return type(self)(*(values[rows] for values in self.arrays()))

    def where(self, mask: np.ndarray, other: "ArchRows") -> "ArchRows":
        """Rows of `self` where `mask`, else rows of `other`."""
        return type(self)(*(
            np.where(mask.reshape(-1, *[1] * (mine.ndim - 1)), mine, theirs)
            for mine, theirs in zip(self.arrays(), other.arrays())
        ))

    @staticmethod
    def concat(parts: Sequence["ArchRows"]) -> "ArchRows":
        return type(parts[0])(*(np.concatenate(columns) for columns in zip(*(p.arrays() for p in parts))))


def conv_output_size(size: int, stride: int) -> int:
    """Output size of a conv with symmetric `k // 2` padding."""
    return (size - 1) // stride + 1


def pick_extreme(values: Sequence, which: str):
    """The smallest ("min"), middle ("mid") or largest ("max") of `values`."""
    values = sorted(values)
    return {"min": values[0], "mid": values[len(values) // 2], "max": values[-1]}[which]


SIZE_LEAN = 6.0  # log-odds between neighbouring options at the extreme size levels (q = 0 or 1)


def leaning_choice(rng: np.random.Generator, level: np.ndarray, k: int, count: int) -> np.ndarray:
    """[n, count] option indices in 0..k-1, each row leaning to larger indices as its `level` ([n, 1, 1]) grows."""
    logits = SIZE_LEAN * (level - 0.5) * np.arange(k)  # [n, 1, k]
    weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
    cdf = np.cumsum(weights / weights.sum(axis=-1, keepdims=True), axis=-1)
    return np.minimum((rng.uniform(size=(level.shape[0], count, 1)) > cdf).sum(axis=-1), k - 1)


class ElasticChoices:
    """The elastic choices of a search space, `CHOICES`, in the order progressive shrinking opens them."""

    CHOICES: ClassVar[tuple[Choice, ...]] = ()

    @property
    def choice_fields(self) -> dict[str, tuple]:
        """The values of each elastic choice by field name ("ks_list", ...)."""
        return {choice.field: getattr(self, choice.field) for choice in self.CHOICES}

    @property
    def choice_values(self) -> dict[str, tuple]:
        """The values of each elastic choice by choice name ("ks", ...)."""
        return {choice.name: getattr(self, choice.field) for choice in self.CHOICES}


def space_from_fields(cls: type, data: dict[str, Any]) -> Any:
    """A search-space dataclass `cls` from its `to_dict()` (lists back to tuples); unknown keys are refused."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown search-space keys {unknown}: expected {sorted(known)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
