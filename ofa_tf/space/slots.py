"""Layer slots: what the subnets of a family run, position by position, as data.

A search space lists, per input resolution, its layer slots in network order
(`layer_slots(resolution)`): the stem, every block position, the head. A
slot has one variant per combination of the choices it depends on (an MBConv
block: kernel x expand; a ResNet bottleneck: input width x expand x width; the
stem of MobileNetV3: one). A variant carries its latency-table key, what
builds its layer model, and its MACs and parameters. The space maps a batch
of subnets to one variant per slot (`slot_variants(arch)`: -1 where the slot
does not run).

The MAC and parameter counters (`ofa_tf.supernet.counting`), the latency model
(`ofa_tf.nas.latency_table`) and the LUT builder (`ofa_tf.android_bench`) are
sums and unions over slots: none of them knows a family.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from ofa_tf.errors import ConfigError

FIRST_BLOCK = -1  # `LayerSpec.block` of the fixed first MBConv block


def shape_text(*dims: int) -> str:
    """`56x56x24`, as latency-table keys write shapes."""
    return "x".join(str(d) for d in dims)


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """What one latency-table key stands for: enough to build its layer model.

    Args:
        key: the latency-table key.
        kind: the key's prefix (`Conv`, `expanded_conv`, `bottleneck`, `Conv_1`, `AvgPool2D`, `Logits`, ...).
        input_shape: (height, width, channels) of the layer model's input.
        block: MBConv families: the elastic block index (`FIRST_BLOCK` for the fixed first block).
        kernel_size: MBConv blocks: the depthwise kernel size.
        mid: MBConv blocks: the middle channels.
        head: MBConv families: the `HeadConv` a `Conv_1` / `Conv_2` key stands for.
        config: families built from official layer configs (ResNets): the layer's config.
    """

    key: str
    kind: str
    input_shape: tuple[int, int, int]
    block: int | None = None
    kernel_size: int = 0
    mid: int = 0
    head: Any = None
    config: Any = None


@dataclasses.dataclass(frozen=True)
class LayerVariant:
    """One way a slot runs.

    Args:
        spec: its latency-table key and layer.
        macs: multiply-accumulates at the slot's resolution (as the official counter).
        params: trainable parameters (BN affine included, running statistics not).
    """

    spec: LayerSpec
    macs: int
    params: int

    @property
    def key(self) -> str:
        return self.spec.key


@dataclasses.dataclass(frozen=True)
class LayerSlot:
    """A layer position and its variants (indexed as `slot_variants` numbers them).

    Args:
        name: position name ("stem", "block3", "classifier", ...).
        variants: the ways it runs.
    """

    name: str
    variants: tuple[LayerVariant, ...]


class SlottedSpace(Protocol):
    """What a search space gives the slot sums."""

    def layer_slots(self, resolution: int) -> tuple[LayerSlot, ...]: ...

    def slot_variants(self, arch: Any) -> np.ndarray: ...


def each_resolution(arch: Any, resolution: int | None) -> np.ndarray:
    """[N] the resolution each row is costed at (`arch.resolution`, or `resolution` for all)."""
    resolutions = np.full(len(arch), resolution) if resolution is not None else np.asarray(arch.resolution)
    if np.any(resolutions <= 0):
        raise ConfigError("this cost depends on the resolution: set it on the configs or pass resolution=")
    return resolutions.astype(np.int64)


class SlotSums:
    """Sums one value per variant over the slots each subnet runs, for many subnets at once.

    Args:
        space: the search space (any family).
        value: the value of a variant (its MACs, its parameters, a latency table's ms).
        dtype: of the sums.
    """

    def __init__(self, space: SlottedSpace, value: Callable[[LayerVariant], float], dtype: Any = np.int64):
        self.space = space
        self.value = value
        self.dtype = dtype

    @functools.lru_cache(maxsize=None)
    def table(self, resolution: int) -> np.ndarray:
        """[n_slots, most variants] values at `resolution` (0 past a slot's variants)."""
        slots = self.space.layer_slots(resolution)
        table = np.zeros((len(slots), max(len(slot.variants) for slot in slots)), dtype=self.dtype)
        for row, slot in enumerate(slots):
            table[row, : len(slot.variants)] = [self.value(variant) for variant in slot.variants]
        return table

    def __call__(self, arch: Any, resolution: int | None = None) -> np.ndarray:
        """[N] sums, each row at its own resolution (or at `resolution`)."""
        resolutions = each_resolution(arch, resolution)
        variants = self.space.slot_variants(arch)
        out = np.zeros(len(arch), dtype=self.dtype)
        for r in np.unique(resolutions):
            rows = np.flatnonzero(resolutions == r)
            table, chosen = self.table(int(r)), variants[rows]
            picked = table[np.arange(table.shape[0]), np.maximum(chosen, 0)]
            out[rows] = np.where(chosen >= 0, picked, 0).sum(axis=1)
        return out


def slot_keys(space: SlottedSpace, resolutions: Sequence[int]) -> list[str]:
    """Every distinct key the slots of `resolutions` hold, in network order."""
    keys: dict[str, None] = {}
    for resolution in resolutions:
        for slot in space.layer_slots(resolution):
            keys.update(dict.fromkeys(variant.key for variant in slot.variants))
    return list(keys)


def layer_specs(space: SlottedSpace, resolutions: Sequence[int]) -> list[LayerSpec]:
    """One spec per distinct key of `slot_keys`, in the same order."""
    specs: dict[str, LayerSpec] = {}
    for resolution in resolutions:
        for slot in space.layer_slots(resolution):
            for variant in slot.variants:
                specs.setdefault(variant.key, variant.spec)
    return list(specs.values())


def subnet_variants(space: SlottedSpace, arch: Any, resolution: int) -> list[LayerVariant]:
    """The variants the first row of `arch` runs at `resolution`, in network order."""
    chosen = space.slot_variants(arch)[0]
    return [slot.variants[i] for slot, i in zip(space.layer_slots(resolution), chosen) if i >= 0]
