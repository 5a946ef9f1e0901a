"""The search space of a network converted from Keras: the released MBConv space over the model's own blocks.

The choices keep OFA's names and meaning where a model allows them without inventing weights:
`ks` a depthwise kernel size per block, up to the block's own (smaller ones through OFA's kernel
transform), `e` a fraction of each block's own middle width (1.0: the model's; channels sorted by
importance as `re_organize_middle_weights`), `d` the blocks a stage runs (its first always, up to
the stage's own count). The largest subnet is the model.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Sequence

import numpy as np

from ofa_tf.errors import ConfigError
from ofa_tf.families.keras.description import KerasFamily, SqueezeExcite
from ofa_tf.families.mbconv.space import ArchIndices, BlockSpec, SearchSpace, SubnetConfig
from ofa_tf.space.choices import CHANNEL_DIVISIBLE, leaning_choice, make_divisible, pick_extreme
from ofa_tf.space.registry import registered

DEFAULT_EXPAND_FRACTIONS = (0.5, 0.75, 1.0)


def keras_description(family: str) -> KerasFamily:
    """The description of the converted family registered as `family`."""
    description = registered(family).description
    if not isinstance(description, KerasFamily):
        raise ConfigError(f"supernet family {family!r} was not converted from a Keras model")
    return description


def default_choices(description: KerasFamily) -> dict[str, tuple]:
    """The choices a model allows: every odd kernel from 3 to its largest, expand fractions of
    its blocks down to a half, depths down to 2 blocks a stage, resolutions down to 4/7 of its own
    (OFA's 128 of 224, in steps of 4)."""
    largest_kernel = max(block.kernel_size for block in description.blocks)
    longest = max(description.stage_sizes)
    resolution = description.resolution or 224
    smallest = max(8, int(np.ceil(resolution * 4 / 7 / 4)) * 4)
    return {
        "ks_list": tuple(range(3, largest_kernel + 1, 2)) or (largest_kernel,),
        "expand_ratio_list": DEFAULT_EXPAND_FRACTIONS,
        "depth_list": tuple(range(min(2, longest), longest + 1)),
        "resolutions": tuple(sorted({*range(smallest, resolution + 1, 4), resolution})),
    }


@dataclasses.dataclass(frozen=True)
class KerasBlockSpec(BlockSpec):
    """A `BlockSpec` with what a converted block holds itself.

    Args:
        kernel_size_list: the kernel sizes it may run (those of `ks_list` up to its own).
        se: its squeeze-and-excitation, or None.
        expand: whether it has an expand conv.
        residual: whether its input is added to its output.
    """

    kernel_size_list: tuple[int, ...] = ()
    se: SqueezeExcite | None = None
    expand: bool = True
    residual: bool = False
    kind: str = "mbconv"
    stride_on: str = "conv1"
    shortcut: bool = False
    use_bias: bool = False

    @property
    def has_expand(self) -> bool:
        return self.expand

    @property
    def has_residual(self) -> bool:
        return self.residual


@dataclasses.dataclass(frozen=True)
class KerasSpace(SearchSpace):
    """The search space of a network converted from Keras (choice lists left empty: the model's defaults).

    Args:
        width_mult: always 1.0 (the widths are the model's).
        ks_list: depthwise kernel sizes; must hold every kernel size of the model.
        expand_ratio_list: fractions of each block's middle width; the largest must be 1.0.
        depth_list: blocks a stage runs (capped at the stage's own count); must reach the longest stage.
        resolutions: input resolutions the search may choose.
        n_classes: classifier outputs.
        family: the registered converted family.
    """

    SCALABLE_WIDTH: ClassVar[bool] = False

    ks_list: tuple[int, ...] = ()
    expand_ratio_list: tuple[float, ...] = ()
    depth_list: tuple[int, ...] = ()
    resolutions: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        description = self.family_spec
        for name, default in default_choices(description).items():
            if not getattr(self, name):
                object.__setattr__(self, name, default)
        super().__post_init__()
        if self.width_mult != 1.0:
            raise ConfigError(f"width_mult={self.width_mult}: a network converted from Keras keeps its widths (1.0)")
        missing = sorted({block.kernel_size for block in description.blocks} - set(self.ks_list))
        if missing:
            raise ConfigError(f"ks_list={list(self.ks_list)} lacks the model's kernel sizes {missing}: the largest subnet is the model")
        if max(self.expand_ratio_list) != 1.0 or min(self.expand_ratio_list) <= 0:
            raise ConfigError(f"expand_ratio_list={list(self.expand_ratio_list)}: give fractions of each block's width in (0, 1], ending at 1.0")
        if self.max_depth < max(description.stage_sizes):
            raise ConfigError(f"depth_list={list(self.depth_list)} must reach {max(description.stage_sizes)}, the model's longest stage")

    @classmethod
    def for_family(cls, family: str, width_mult: float | None = None, **fields: Any) -> "KerasSpace":
        return cls(family=family, width_mult=1.0 if width_mult is None else width_mult, **fields)

    @property
    def family_spec(self) -> KerasFamily:
        return keras_description(self.family)

    # ----- widths and blocks -------------------------------------------------
    @property
    def stage_widths(self) -> tuple[int, ...]:
        """Channel widths: the stem, the first block, each stage, the head convs."""
        stage_outputs, start = [], 0
        for size in self.stage_block_counts:
            stage_outputs.append(self.family_spec.elastic_blocks[start].out_channels)
            start += size
        return (self.first_conv_channels, self.first_block_channels, *stage_outputs, *self.head_channels)

    @property
    def first_conv_channels(self) -> int:
        return self.family_spec.stem.width

    @property
    def first_block_channels(self) -> int:
        return self.family_spec.first_block.out_channels

    def head_width(self, conv: Any) -> int:
        return conv.width

    @property
    def classifier_in_channels(self) -> int:
        """The last head conv's width, or the last block's where the head has no conv (ResNet50)."""
        return self.head_channels[-1] if self.head_channels else self.family_spec.blocks[-1].out_channels

    @property
    def n_stages(self) -> int:
        return len(self.family_spec.stage_sizes)

    @property
    def stage_block_counts(self) -> tuple[int, ...]:
        return self.family_spec.stage_sizes

    @property
    def stage_depth_choices(self) -> tuple[tuple[int, ...], ...]:
        """Per stage, the block counts it may run: each depth choice capped at its own count."""
        return tuple(tuple(sorted({min(d, n) for d in self.depth_list})) for n in self.stage_block_counts)

    @property
    def fixed_depths(self) -> tuple[int | None, ...]:
        return tuple(choices[0] if len(choices) == 1 else None for choices in self.stage_depth_choices)

    def stage_depths(self, depth: int) -> tuple[int, ...]:
        return tuple(min(depth, n) for n in self.stage_block_counts)

    def _spec(self, block: Any, mid_channels: tuple[int, ...], **position: int) -> KerasBlockSpec:
        return KerasBlockSpec(
            **position, in_channels=block.in_channels, out_channels=block.out_channels, stride=block.stride,
            activation=block.activation, use_se=block.se is not None, mid_channels=mid_channels,
            kernel_size_list=tuple(k for k in self.ks_list if k <= block.kernel_size) if block.kind == "mbconv" else (block.kernel_size,),
            se=block.se, expand=block.expand, residual=block.residual, kind=block.kind, stride_on=block.stride_on,
            shortcut=block.shortcut, use_bias=block.use_bias,
        )

    def _mid_channels(self, mid: int) -> tuple[int, ...]:
        return tuple(mid if e == 1.0 else min(mid, make_divisible(mid * e, CHANNEL_DIVISIBLE)) for e in self.expand_ratio_list)

    @property
    def blocks(self) -> tuple[KerasBlockSpec, ...]:
        specs, blocks = [], iter(self.family_spec.elastic_blocks)
        for stage, count in enumerate(self.stage_block_counts):
            for depth_index in range(count):
                block = next(blocks)
                # a block without expand conv (EfficientNet-B1's second) has its input's width whatever `e`
                mids = self._mid_channels(block.mid_channels) if block.expand else (block.mid_channels,) * len(self.expand_ratio_list)
                specs.append(self._spec(block, mids, index=len(specs), stage=stage, depth_index=depth_index))
        return tuple(specs)

    def first_block(self) -> KerasBlockSpec:
        block = self.family_spec.first_block
        spec = self._spec(block, (block.mid_channels,), index=-1, stage=-1, depth_index=0)
        return dataclasses.replace(spec, kernel_size_list=(block.kernel_size,))

    @property
    def kernel_caps(self) -> np.ndarray:
        """[n_blocks] how many of `ks_list` each block may run."""
        return np.array([len(spec.kernel_size_list) for spec in self.blocks])

    @property
    def summary(self) -> str:
        return (
            f"{self.family_spec.title}, {self.n_classes} classes, kernels {list(self.ks_list)}, "
            f"expand fractions {list(self.expand_ratio_list)}, depths {list(self.depth_list)}"
        )

    def describe(self) -> list[str]:
        return [
            f"{self.family_spec.title} made elastic: widths {list(self.stage_widths)}",
            f"kernel {list(self.ks_list)} (each block up to its own), expand fractions {list(self.expand_ratio_list)}, "
            f"depth {list(self.depth_list)}, {self.n_blocks} elastic blocks in {self.n_stages} stages "
            f"(blocks per stage {list(self.stage_block_counts)})",
        ]

    def stem_output_size(self, resolution: int) -> int:
        size = self.conv_output_size(resolution, self.family_spec.stem.stride)
        return self.conv_output_size(size, 2) if self.family_spec.stem_pool else size

    # ----- counting and configs ----------------------------------------------
    @property
    def n_subnets(self) -> int:
        per_block = [len(spec.kernel_size_list) * len(self.expand_ratio_list) for spec in self.blocks]
        total, start = 1, 0
        for count, choices in zip(self.stage_block_counts, self.stage_depth_choices):
            total *= sum(int(np.prod(per_block[start : start + d])) for d in choices)
            start += count
        return total

    def _capped_kernels(self, kernel_size: int) -> tuple[int, ...]:
        """`kernel_size` for every block, or the block's largest where that is smaller."""
        return tuple(max((k for k in spec.kernel_size_list if k <= kernel_size), default=spec.kernel_size_list[0])
                     for spec in self.blocks)

    def max_config(self, resolution: int | None = None) -> SubnetConfig:
        return SubnetConfig(
            tuple(spec.kernel_size_list[-1] for spec in self.blocks), (1.0,) * self.n_blocks,
            self.stage_depths(self.max_depth), resolution,
        )

    def min_config(self, resolution: int | None = None) -> SubnetConfig:
        return SubnetConfig(
            (min(self.ks_list),) * self.n_blocks, (min(self.expand_ratio_list),) * self.n_blocks,
            self.stage_depths(min(self.depth_list)), resolution,
        )

    def normalize(self, ks=None, e=None, d=None, base: SubnetConfig | None = None) -> SubnetConfig:
        """As `SearchSpace.normalize`; an int kernel or depth applies to each block or stage up to its own."""
        if isinstance(ks, (int, np.integer)):
            ks = self._capped_kernels(int(ks))
        if isinstance(d, (int, np.integer)):
            d = self.stage_depths(int(d))
        return super().normalize(ks, e, d, base)

    def validate(self, config: SubnetConfig, check_resolution: bool = False) -> None:
        for name, values, length in (("ks", config.ks, self.n_blocks), ("e", config.e, self.n_blocks), ("d", config.d, self.n_stages)):
            if len(values) != length:
                raise ConfigError(f"{name} has {len(values)} entries, expected {length}")
        for spec, k, e in zip(self.blocks, config.ks, config.e):
            if k not in spec.kernel_size_list:
                raise ConfigError(f"ks[{spec.index}]={k}: block {spec.index} runs kernels {list(spec.kernel_size_list)}")
            if e not in self.expand_ratio_list:
                raise ConfigError(f"e[{spec.index}]={e} is not in e choices {list(self.expand_ratio_list)}")
        for stage, (d, choices) in enumerate(zip(config.d, self.stage_depth_choices)):
            if d not in choices:
                raise ConfigError(f"d[{stage}]={d}: stage {stage} runs {list(choices)} blocks")
        if check_resolution and config.resolution not in self.resolutions:
            raise ConfigError(f"resolution={config.resolution} is not in the search space ({self.resolutions[0]}..{self.resolutions[-1]})")

    def sample_restricted(self, rng: np.random.Generator, ks_list: Sequence[int], expand_ratio_list: Sequence[float], depth_list: Sequence[int]) -> SubnetConfig:
        """A uniform sample over a phase's values; a block (stage) takes the largest it has where a value exceeds it."""
        ks, e, d = (np.asarray(sorted(set(values))) for values in (ks_list, expand_ratio_list, depth_list))
        kernels = ks[rng.integers(0, len(ks), size=self.n_blocks)]
        config = SubnetConfig(
            ks=tuple(self._capped_kernels(int(k))[i] for i, k in enumerate(kernels)),
            e=tuple(v.item() for v in e[rng.integers(0, len(e), size=self.n_blocks)]),
            d=tuple(min(int(v), n) for v, n in zip(rng.choice(d, size=self.n_stages), self.stage_block_counts)),
        )
        self.validate(config)
        return config

    def phase_config(self, choices: dict[str, Sequence], which: str) -> SubnetConfig:
        return SubnetConfig(
            ks=self._capped_kernels(pick_extreme(choices["ks"], which)),
            e=(pick_extreme(choices["e"], which),) * self.n_blocks,
            d=self.stage_depths(pick_extreme(choices["d"], which)),
        )

    def sample_indices(self, rng: np.random.Generator, n: int, with_resolution: bool = True, size_spread: bool = False) -> ArchIndices:
        """As `SearchSpace.sample_indices`, each block's kernel and each stage's depth among its own."""
        arch = super().sample_indices(rng, n, with_resolution=with_resolution, size_spread=size_spread)
        caps, choices = self.kernel_caps, self.stage_depth_choices
        counts = np.array([len(c) for c in choices])
        if size_spread:
            kernel = np.minimum(arch.kernel_index, caps - 1)
            level = rng.uniform(size=(n, 1, 1))
            depth_index = np.minimum(leaning_choice(rng, level, counts.max(), self.n_stages), counts - 1)
        else:
            kernel = rng.integers(0, caps, size=(n, self.n_blocks))
            depth_index = rng.integers(0, counts, size=(n, self.n_stages))
        depth = np.array([[choices[s][i] for s, i in enumerate(row)] for row in depth_index], dtype=np.int64).reshape(n, self.n_stages)
        return dataclasses.replace(arch, kernel_index=kernel, depth=depth)

    # ----- layer slots and serialization --------------------------------------
    def layer_slots(self, resolution: int) -> tuple:
        from ofa_tf.families.keras.slots import keras_layer_slots

        return keras_layer_slots(self, resolution)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "description": self.family_spec.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "KerasSpace":
        return super().from_dict({k: v for k, v in data.items() if k != "description"})
