"""The search space of an OFA supernet, described once.

Every other part of ofa-tf reads the architecture from here: the supernet
builds its layers from `SearchSpace.blocks` and the family's stem and head
(`ofa_tf.families.mbconv.description`), the extractor walks the same list, the MAC/parameter
counter sums over it, the latency-table keys and the accuracy-predictor
encoding enumerate it. Constants follow the official `ofa` package
(`elastic_nn/networks/ofa_mbv3.py`, `ofa_proxyless.py`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar, Sequence

import numpy as np

from ofa_tf.errors import ConfigError
from ofa_tf.space.choices import (
    CHANNEL_DIVISIBLE, DEFAULT_RESOLUTIONS, ArchRows, Choice, ElasticChoices, arch_scopes, conv_output_size, leaning_choice,
    make_divisible, pick_extreme, space_from_fields,
)
from ofa_tf.families.mbconv.description import Family, HeadConv
from ofa_tf.space.registry import registered

def mbconv_description(family: str) -> Family:
    """The description of the MBConv family registered as `family`."""
    description = registered(family).description
    if not isinstance(description, Family):
        raise ConfigError(f"supernet family {family!r} is not made of MBConv blocks: it has no MBConv description")
    return description


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One elastic MBConv block of the supernet.

    Args:
        index: position among the elastic blocks (0..n_blocks-1).
        stage: elastic stage (0..4) the block belongs to.
        depth_index: position inside its stage; the block runs iff
            `depth_index < d[stage]`.
        in_channels: input channels (fixed: widths are not elastic).
        out_channels: output channels.
        stride: 2 for the first block of a downsampling stage, else 1.
        activation: "relu" or "h_swish".
        use_se: whether the block has squeeze-and-excitation.
        mid_channels: middle width for each ratio of `expand_ratio_list`.
    """

    index: int
    stage: int
    depth_index: int
    in_channels: int
    out_channels: int
    stride: int
    activation: str
    use_se: bool
    mid_channels: tuple[int, ...]

    @property
    def max_mid_channels(self) -> int:
        return max(self.mid_channels)

    @property
    def has_expand(self) -> bool:
        """Whether it has a 1x1 expand conv (not for expand ratio 1 only, e.g. the first block)."""
        return self.mid_channels != (self.in_channels,)

    @property
    def has_residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


@dataclasses.dataclass(frozen=True)
class SubnetConfig:
    """One subnet: a kernel size and expand ratio per block, a depth per stage.

    Args:
        ks: kernel size of each elastic block (20 for OFA-MobileNetV3).
        e: expand ratio of each elastic block.
        d: depth of each stage (5).
        resolution: input resolution, or None when not part of the choice.
    """

    ks: tuple[int, ...]
    e: tuple[int, ...]
    d: tuple[int, ...]
    resolution: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ks": list(self.ks), "e": list(self.e), "d": list(self.d)}
        if self.resolution is not None:
            out["r"] = self.resolution
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SubnetConfig":
        missing = [key for key in ("ks", "e", "d") if key not in data]
        if missing:
            raise ConfigError(f"subnet config lacks {missing}: expected keys ks, e, d (and optionally r)")
        resolution = data.get("r", data.get("resolution"))
        if isinstance(resolution, (list, tuple)):
            resolution = resolution[0]
        return cls(
            ks=tuple(int(v) for v in data["ks"]),
            e=tuple(int(v) if float(v).is_integer() else float(v) for v in data["e"]),
            d=tuple(int(v) for v in data["d"]),
            resolution=None if resolution is None else int(resolution),
        )

    def with_resolution(self, resolution: int | None) -> "SubnetConfig":
        return dataclasses.replace(self, resolution=resolution)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


# the MBConv families' choices, in the order progressive shrinking opens them
MBCONV_CHOICES = (
    Choice("ks", "ks_list", "kernel_index", "block"),
    Choice("d", "depth_list", "depth", "stage"),
    Choice("e", "expand_ratio_list", "expand_index", "block"),
)


@dataclasses.dataclass(frozen=True)
class ArchIndices(ArchRows):
    """MBConv subnets as integer arrays.

    Args:
        kernel_index: [N, n_blocks] index into `ks_list`.
        expand_index: [N, n_blocks] index into `expand_ratio_list`.
        depth: [N, n_stages] depth values.
        resolution: [N] resolutions (0 where unset).
    """

    SCOPES: ClassVar[dict[str, str]] = arch_scopes(MBCONV_CHOICES)

    kernel_index: np.ndarray
    expand_index: np.ndarray
    depth: np.ndarray
    resolution: np.ndarray


@dataclasses.dataclass(frozen=True)
class SearchSpace(ElasticChoices):
    """The search space of an OFA supernet of MBConv blocks.

    Args:
        width_mult: width multiplier applied to the family's base widths.
        ks_list: elastic depthwise kernel sizes.
        expand_ratio_list: elastic expand ratios.
        depth_list: elastic stage depths.
        resolutions: input resolutions the search may choose.
        n_classes: classifier outputs.
        family: the fixed structure, a name of `ofa_tf.families.mbconv.description.DESCRIPTIONS` ("mbv3", "proxyless").
    """

    ENCODING_LAYOUTS: ClassVar[tuple[str, ...]] = ("library", "tutorial")
    CHOICES: ClassVar[tuple[Choice, ...]] = MBCONV_CHOICES
    SCALABLE_WIDTH: ClassVar[bool] = True  # whether `width_mult` scales the whole supernet

    width_mult: float = 1.0
    ks_list: tuple[int, ...] = (3, 5, 7)
    expand_ratio_list: tuple[int, ...] = (3, 4, 6)
    depth_list: tuple[int, ...] = (2, 3, 4)
    resolutions: tuple[int, ...] = DEFAULT_RESOLUTIONS
    n_classes: int = 1000
    family: str = "mbv3"

    def __post_init__(self) -> None:
        self.family_spec  # noqa: B018 -- refuses a family that is not this space's kind
        for name in ("ks_list", "expand_ratio_list", "depth_list", "resolutions"):
            values = getattr(self, name)
            if isinstance(values, (int, float)):
                values = (values,)
            values = tuple(sorted(set(values)))
            if not values:
                raise ConfigError(f"{name} is empty: give at least one value")
            object.__setattr__(self, name, values)
        if any(k % 2 == 0 or k < 1 for k in self.ks_list):
            raise ConfigError(f"ks_list={self.ks_list}: kernel sizes must be odd positive integers, e.g. 3,5,7")
        if any(e <= 0 for e in self.expand_ratio_list):
            raise ConfigError(f"expand_ratio_list={self.expand_ratio_list}: ratios must be positive, e.g. 3,4,6")
        if any(d < 1 for d in self.depth_list):
            raise ConfigError(f"depth_list={self.depth_list}: depths must be >= 1, e.g. 2,3,4")
        if any(r < 8 for r in self.resolutions):
            raise ConfigError(f"resolutions={self.resolutions}: resolutions must be >= 8 pixels")
        if self.width_mult <= 0:
            raise ConfigError(f"width_mult={self.width_mult}: must be > 0, e.g. 1.0 or 1.2")
        if self.n_classes < 1:
            raise ConfigError(f"n_classes={self.n_classes}: must be >= 1")

    @classmethod
    def for_family(cls, family: str, width_mult: float | None = None, **fields: Any) -> "SearchSpace":
        """The space of `family` (None width: the released supernet's); `fields` as the constructor's."""
        width_mult = mbconv_description(family).default_width_mult if width_mult is None else width_mult
        return cls(family=family, width_mult=width_mult, **fields)

    def supernet_args(self) -> dict[str, Any]:
        """Constructor arguments of the family's supernet class for this space."""
        return dict(family=self.family, width_mult=self.width_mult, n_classes=self.n_classes, **self.choice_fields)

    # ----- widths and blocks -------------------------------------------------
    @property
    def family_spec(self) -> Family:
        """The family's fixed structure (stem, first block, stages, head)."""
        return mbconv_description(self.family)

    def _width(self, base: int) -> int:
        return make_divisible(base * self.width_mult, CHANNEL_DIVISIBLE)

    @property
    def stage_widths(self) -> tuple[int, ...]:
        """Channel widths: first conv, first block, the elastic stages, the head convs."""
        family = self.family_spec
        stages = (family.stem_stage, family.first_block_stage) + family.elastic_stages
        return tuple(self._width(stage.width) for stage in stages) + self.head_channels

    @property
    def first_conv_channels(self) -> int:
        return self._width(self.family_spec.stem_stage.width)

    @property
    def first_block_channels(self) -> int:
        return self._width(self.family_spec.first_block_stage.width)

    @property
    def head_channels(self) -> tuple[int, ...]:
        """Output channels of each head conv (`family_spec.head`)."""
        return tuple(self.head_width(conv) for conv in self.family_spec.head)

    def head_width(self, conv: HeadConv) -> int:
        """Output channels of one head conv."""
        return self._width(conv.width)

    @property
    def classifier_in_channels(self) -> int:
        return self.head_channels[-1]

    @property
    def n_stages(self) -> int:
        return len(self.family_spec.stages)

    @property
    def max_depth(self) -> int:
        return max(self.depth_list)

    @property
    def fixed_depths(self) -> tuple[int | None, ...]:
        """Per stage, its fixed block count, or None where the depth is a choice."""
        return tuple(stage.blocks for stage in self.family_spec.elastic_stages)

    @property
    def stage_block_counts(self) -> tuple[int, ...]:
        """Blocks the supernet holds per stage."""
        return tuple(self.max_depth if fixed is None else fixed for fixed in self.fixed_depths)

    @property
    def n_blocks(self) -> int:
        return sum(self.stage_block_counts)

    @property
    def blocks(self) -> tuple[BlockSpec, ...]:
        """The elastic blocks in order (20 for OFA-MobileNetV3 with depths up to 4)."""
        specs = []
        in_channels = self.first_block_channels
        for stage_index, (stage, count) in enumerate(zip(self.family_spec.elastic_stages, self.stage_block_counts)):
            out_channels = self._width(stage.width)
            for depth_index in range(count):
                specs.append(
                    BlockSpec(
                        index=len(specs),
                        stage=stage_index,
                        depth_index=depth_index,
                        in_channels=in_channels,
                        out_channels=out_channels,
                        stride=stage.stride if depth_index == 0 else 1,
                        activation=stage.activation,
                        use_se=stage.use_se,
                        mid_channels=tuple(
                            make_divisible(round(in_channels * e), CHANNEL_DIVISIBLE)
                            for e in self.expand_ratio_list
                        ),
                    )
                )
                in_channels = out_channels
        return tuple(specs)

    def first_block(self) -> BlockSpec:
        """The fixed first MBConv block (kernel 3, expand 1)."""
        stage = self.family_spec.first_block_stage
        return BlockSpec(
            index=-1,
            stage=-1,
            depth_index=0,
            in_channels=self.first_conv_channels,
            out_channels=self.first_block_channels,
            stride=stage.stride,
            activation=stage.activation,
            use_se=stage.use_se,
            mid_channels=(self.first_conv_channels,),
        )

    @property
    def summary(self) -> str:
        """One line naming the family, width, classes and choices."""
        return (
            f"{self.family_spec.title} w{self.width_mult}, {self.n_classes} classes, kernels {list(self.ks_list)}, "
            f"expand {list(self.expand_ratio_list)}, depths {list(self.depth_list)}"
        )

    def describe(self) -> list[str]:
        """Lines describing the widths and choices (`ofa-tf info`)."""
        return [
            f"{self.family_spec.title} w{self.width_mult}: widths {list(self.stage_widths)}",
            f"kernel {list(self.ks_list)}, expand {list(self.expand_ratio_list)}, depth {list(self.depth_list)}, "
            f"{self.n_blocks} elastic blocks in {self.n_stages} stages "
            f"(blocks per stage {list(self.stage_block_counts)}, depth choices where the count is {self.max_depth})",
        ]

    # ----- spatial sizes -----------------------------------------------------
    conv_output_size = staticmethod(conv_output_size)

    def stem_output_size(self, resolution: int) -> int:
        return self.conv_output_size(resolution, self.family_spec.stem_stage.stride)

    def block_input_sizes(self, resolution: int) -> tuple[int, ...]:
        """Feature-map size entering each elastic block at `resolution`."""
        size = self.conv_output_size(self.stem_output_size(resolution), self.first_block().stride)
        sizes = []
        for spec in self.blocks:
            sizes.append(size)
            size = self.conv_output_size(size, spec.stride)
        return tuple(sizes)

    def final_feature_size(self, resolution: int) -> int:
        size = self.block_input_sizes(resolution)[-1]
        return self.conv_output_size(size, self.blocks[-1].stride)

    # ----- counting --------------------------------------------------------
    @property
    def n_subnets(self) -> int:
        """Number of distinct architectures (resolution excluded)."""
        per_block = len(self.ks_list) * len(self.expand_ratio_list)
        total = 1
        for fixed in self.fixed_depths:
            total *= per_block**fixed if fixed is not None else sum(per_block**d for d in self.depth_list)
        return total

    # ----- configs ---------------------------------------------------------
    def stage_depths(self, depth: int) -> tuple[int, ...]:
        """`depth` for every stage whose depth is a choice, the fixed count elsewhere."""
        return tuple(depth if fixed is None else fixed for fixed in self.fixed_depths)

    def max_config(self, resolution: int | None = None) -> SubnetConfig:
        n = self.n_blocks
        return SubnetConfig(
            (max(self.ks_list),) * n, (max(self.expand_ratio_list),) * n, self.stage_depths(self.max_depth), resolution
        )

    def min_config(self, resolution: int | None = None) -> SubnetConfig:
        n = self.n_blocks
        return SubnetConfig(
            (min(self.ks_list),) * n, (min(self.expand_ratio_list),) * n, self.stage_depths(min(self.depth_list)), resolution
        )

    def normalize(
        self,
        ks: int | Sequence[int] | None = None,
        e: int | Sequence[int] | None = None,
        d: int | Sequence[int] | None = None,
        base: SubnetConfig | None = None,
    ) -> SubnetConfig:
        """Builds a validated config from ints or lists, as upstream `set_active_subnet`.

        An int applies to every block (or stage); `None`, or a `None` entry,
        keeps the value of `base` (the max net when `base` is None). A stage of a
        fixed block count runs its blocks whatever its depth entry (upstream's
        `min(len(stage), d)`).
        """
        base = base or self.max_config()

        def expand(name: str, value: Any, current: tuple, length: int) -> tuple:
            if value is None:
                return current
            values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value] * length
            if len(values) != length:
                raise ConfigError(f"{name} has {len(values)} entries, expected {length}")
            return tuple(current[i] if v is None else v for i, v in enumerate(values))

        depths = expand("d", d, base.d, self.n_stages)
        config = SubnetConfig(
            ks=expand("ks", ks, base.ks, self.n_blocks),
            e=expand("e", e, base.e, self.n_blocks),
            d=tuple(v if fixed is None else fixed for v, fixed in zip(depths, self.fixed_depths)),
            resolution=base.resolution,
        )
        self.validate(config)
        return config

    def validate(self, config: SubnetConfig, check_resolution: bool = False) -> None:
        """Raises `ConfigError` (a `ValueError`) naming the first bad field."""
        for name, values, allowed, length in (
            ("ks", config.ks, self.ks_list, self.n_blocks),
            ("e", config.e, self.expand_ratio_list, self.n_blocks),
            ("d", config.d, self.depth_list, self.n_stages),
        ):
            if len(values) != length:
                raise ConfigError(f"{name} has {len(values)} entries, expected {length}")
            for i, v in enumerate(values):
                fixed = self.fixed_depths[i] if name == "d" else None
                if fixed is not None and v != fixed:
                    raise ConfigError(f"d[{i}]={v}: stage {i} has a fixed depth of {fixed}")
                if fixed is None and v not in allowed:
                    raise ConfigError(f"{name}[{i}]={v} is not in {name} choices {list(allowed)}")
        if check_resolution and config.resolution not in self.resolutions:
            raise ConfigError(
                f"resolution={config.resolution} is not in the search space "
                f"({self.resolutions[0]}..{self.resolutions[-1]})"
            )

    def sample(self, rng: np.random.Generator, with_resolution: bool = False) -> SubnetConfig:
        """Uniformly samples one subnet (kernel and expand per block, depth per stage)."""
        return self.from_indices(self.sample_indices(rng, 1, with_resolution=with_resolution))[0]

    def sample_restricted(
        self,
        rng: np.random.Generator,
        ks_list: Sequence[int],
        expand_ratio_list: Sequence[float],
        depth_list: Sequence[int],
    ) -> SubnetConfig:
        """A uniform sample over a subset of the choices (a progressive-shrinking phase's),
        shaped as this space's subnets (`n_blocks` entries whatever the subset's largest depth)."""
        ks, e, d = (np.asarray(sorted(set(values))) for values in (ks_list, expand_ratio_list, depth_list))
        config = SubnetConfig(
            ks=tuple(int(v) for v in ks[rng.integers(0, len(ks), size=self.n_blocks)]),
            e=tuple(v.item() for v in e[rng.integers(0, len(e), size=self.n_blocks)]),
            d=tuple(int(v) if fixed is None else fixed for v, fixed in zip(rng.choice(d, size=self.n_stages), self.fixed_depths)),
        )
        self.validate(config)
        return config

    def sample_phase(self, rng: np.random.Generator, choices: dict[str, Sequence]) -> SubnetConfig:
        """A uniform sample over a training phase's values per choice ("ks", "e", "d")."""
        return self.sample_restricted(rng, choices["ks"], choices["e"], choices["d"])

    def phase_config(self, choices: dict[str, Sequence], which: str) -> SubnetConfig:
        """The "min", "mid" or "max" subnet of a phase's values per choice."""
        return SubnetConfig(
            ks=(pick_extreme(choices["ks"], which),) * self.n_blocks,
            e=(pick_extreme(choices["e"], which),) * self.n_blocks,
            d=self.stage_depths(pick_extreme(choices["d"], which)),
        )

    def sample_indices(
        self, rng: np.random.Generator, n: int, with_resolution: bool = True, size_spread: bool = False
    ) -> ArchIndices:
        """Samples `n` subnets as index arrays.

        Args:
            rng: the generator.
            n: how many.
            with_resolution: draw a resolution per subnet (else 0).
            size_spread: False: every choice uniform (nearly every subnet is mid-sized).
                True: each subnet draws a size level q ~ U(0, 1) and every choice leans to
                the smaller (q < 0.5) or larger options (q > 0.5), so the samples spread
                from nearly all-smallest to nearly all-largest.
        """
        resolution = (
            rng.choice(np.asarray(self.resolutions), size=n) if with_resolution else np.zeros(n, dtype=np.int64)
        )
        if size_spread:
            level = rng.uniform(size=(n, 1, 1))
            choose = lambda k, count: leaning_choice(rng, level, k, count)  # noqa: E731
        else:
            choose = lambda k, count: rng.integers(0, k, size=(n, count))  # noqa: E731
        return ArchIndices(
            kernel_index=choose(len(self.ks_list), self.n_blocks),
            expand_index=choose(len(self.expand_ratio_list), self.n_blocks),
            depth=self._with_fixed_depths(np.asarray(self.depth_list)[choose(len(self.depth_list), self.n_stages)]),
            resolution=resolution,
        )

    def _with_fixed_depths(self, depth: np.ndarray) -> np.ndarray:
        """[N, n_stages] depths with the fixed stages' columns set to their block counts."""
        for stage, fixed in enumerate(self.fixed_depths):
            if fixed is not None:
                depth[:, stage] = fixed
        return depth

    def to_indices(self, configs: Sequence[SubnetConfig]) -> ArchIndices:
        """Converts validated configs to index arrays."""
        for config in configs:
            self.validate(config)
        ks_pos = {k: i for i, k in enumerate(self.ks_list)}
        e_pos = {e: i for i, e in enumerate(self.expand_ratio_list)}
        return ArchIndices(
            kernel_index=np.array([[ks_pos[k] for k in c.ks] for c in configs], dtype=np.int64).reshape(-1, self.n_blocks),
            expand_index=np.array([[e_pos[e] for e in c.e] for c in configs], dtype=np.int64).reshape(-1, self.n_blocks),
            depth=np.array([c.d for c in configs], dtype=np.int64).reshape(-1, self.n_stages),
            resolution=np.array([c.resolution or 0 for c in configs], dtype=np.int64),
        )

    def from_indices(self, arch: ArchIndices) -> list[SubnetConfig]:
        ks = np.asarray(self.ks_list)[arch.kernel_index]
        e = np.asarray(self.expand_ratio_list)[arch.expand_index]
        return [
            SubnetConfig(
                ks=tuple(int(v) for v in ks[i]),
                e=tuple(v.item() for v in e[i]),
                d=tuple(int(v) for v in arch.depth[i]),
                resolution=int(arch.resolution[i]) or None,
            )
            for i in range(len(arch))
        ]

    @staticmethod
    def config_from_dict(data: dict[str, Any]) -> SubnetConfig:
        return SubnetConfig.from_dict(data)

    def active_block_mask(self, depth: np.ndarray) -> np.ndarray:
        """[N, n_blocks] boolean mask of blocks that run for each depth row."""
        depth = np.asarray(depth).reshape(-1, self.n_stages)
        depth_index = np.array([b.depth_index for b in self.blocks])
        stage = np.array([b.stage for b in self.blocks])
        return depth_index[None, :] < depth[:, stage]

    # ----- predictor encoding (`ofa_tf.nas.arch_encoding`) ------------------
    def encoding_groups(self, arch: ArchIndices) -> list:
        """As upstream's `MobileNetArchEncoder`: a kernel one-hot per block, then an expand one-hot per
        block, both zero where depth skips the block."""
        from ofa_tf.space.encoding import OneHotGroup

        active = self.active_block_mask(arch.depth)
        return [OneHotGroup(len(self.ks_list), arch.kernel_index, active), OneHotGroup(len(self.expand_ratio_list), arch.expand_index, active)]

    # ----- layer slots (costs and latency-table keys: `ofa_tf.space.slots`) ---
    def layer_slots(self, resolution: int) -> tuple:
        """The `LayerSlot`s of a subnet at `resolution`, in network order."""
        from ofa_tf.families.mbconv.slots import mbconv_layer_slots

        return mbconv_layer_slots(self, resolution)

    def slot_variants(self, arch: ArchIndices) -> np.ndarray:
        """[N, n_slots] the variant of each slot each subnet runs (-1: skipped)."""
        from ofa_tf.families.mbconv.slots import mbconv_slot_variants

        return mbconv_slot_variants(self, arch)

    # ----- serialization ---------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "width_mult": self.width_mult,
            "ks_list": list(self.ks_list),
            "expand_ratio_list": list(self.expand_ratio_list),
            "depth_list": list(self.depth_list),
            "resolutions": list(self.resolutions),
            "n_classes": self.n_classes,
            "family": self.family,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchSpace":
        return space_from_fields(cls, data)
