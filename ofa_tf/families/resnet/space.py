"""The OFA-ResNet50-D search space (`ofa_resnet50`), its subnets and their exact costs.

Upstream (`ofa/imagenet_classification/elastic_nn/networks/ofa_resnets.py`):
an input stem of three 3x3 convs (the middle one a residual block that the
first depth entry switches off), a 3x3 stride-2 max pooling, four stages of
bottleneck blocks (2, 2, 4, 2 base blocks plus up to `max(depth_list)`
elastic ones; the stride sits in the middle 3x3 conv, ResNet-D style, and
downsampling shortcuts average-pool before their 1x1 conv), global pooling
and a linear classifier. A subnet is {"d": 5, "e": 18, "w": 6}: the stem
depth (max: the residual stem conv runs) and one depth per stage; one
expand ratio per block (middle width = out width x ratio); one width index
per stem conv pair, last stem conv and stage.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar, Sequence

import numpy as np

from ofa_tf.errors import ConfigError
from ofa_tf.space.choices import DEFAULT_RESOLUTIONS, ArchRows, Choice, ElasticChoices, arch_scopes, conv_output_size, leaning_choice, make_divisible, pick_extreme, space_from_fields

BASE_DEPTHS = (2, 2, 4, 2)
STAGE_WIDTHS = (256, 512, 1024, 2048)
STAGE_STRIDES = (1, 2, 2, 2)
STEM_WIDTH = 64


@dataclasses.dataclass(frozen=True)
class ResNetSubnetConfig:
    """One ResNet subnet, in upstream's `sample_active_subnet` layout.

    Args:
        d: the stem's depth (the residual stem conv runs iff it is the largest depth),
            then each stage's elastic depth (blocks beyond the base ones).
        e: expand ratio of each block (18 for depths up to 2).
        w: width index (into `width_mult_list`) of the first two stem convs, the last
            stem conv and each stage.
        resolution: input resolution, or None.
    """

    d: tuple[int, ...]
    e: tuple[float, ...]
    w: tuple[int, ...]
    resolution: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"d": list(self.d), "e": list(self.e), "w": list(self.w)}
        if self.resolution is not None:
            out["r"] = self.resolution
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ResNetSubnetConfig":
        missing = [key for key in ("d", "e", "w") if key not in data]
        if missing:
            raise ConfigError(f"ResNet subnet config lacks {missing}: expected keys d, e, w (and optionally r)")
        resolution = data.get("r", data.get("resolution"))
        return cls(
            d=tuple(int(v) for v in data["d"]),
            e=tuple(float(v) for v in data["e"]),
            w=tuple(int(v) for v in data["w"]),
            resolution=None if resolution is None else int(resolution),
        )

    def with_resolution(self, resolution: int | None) -> "ResNetSubnetConfig":
        return dataclasses.replace(self, resolution=resolution)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


# depth per stage (the stem first), expand per block, width per stem conv pair, last stem conv and stage
RESNET_CHOICES = (
    Choice("d", "depth_list", "depth", "stage"),
    Choice("e", "expand_ratio_list", "expand_index", "block"),
    Choice("w", "width_mult_list", "width_index", "width"),
)


@dataclasses.dataclass(frozen=True)
class ResNetArchIndices(ArchRows):
    """ResNet subnets as integer arrays: the supernet's arch tensors plus a resolution column.

    Args:
        depth: [N, 1 + n_stages] the stem's depth, then each stage's.
        expand_index: [N, n_blocks] index into `expand_ratio_list`.
        width_index: [N, 2 + n_stages] index into `width_mult_list`.
        resolution: [N] resolutions (0 where unset).
    """

    SCOPES: ClassVar[dict[str, str]] = arch_scopes(RESNET_CHOICES)

    depth: np.ndarray
    expand_index: np.ndarray
    width_index: np.ndarray
    resolution: np.ndarray


@dataclasses.dataclass(frozen=True)
class BottleneckSpec:
    """One bottleneck block of the supernet.

    Args:
        index: position among the blocks.
        stage: stage 0..3.
        depth_index: position inside its stage; it runs iff `depth_index < BASE_DEPTHS[stage] + d[stage + 1]`.
        in_widths: input channels per width index (the last stem conv's, or the previous stage's).
        out_widths: output channels per width index.
        in_width_entry: the `w` entry its input width follows.
        stride: of its middle 3x3 conv (and of its shortcut's pooling).
        has_downsample: whether its shortcut is an average pooling + 1x1 conv + BN (else identity).
    """

    index: int
    stage: int
    depth_index: int
    in_widths: tuple[int, ...]
    out_widths: tuple[int, ...]
    in_width_entry: int
    stride: int
    has_downsample: bool


@dataclasses.dataclass(frozen=True)
class ResNetSpace(ElasticChoices):
    """OFA-ResNet50-D search space.

    Args:
        depth_list: elastic depths per stage (blocks beyond the base 2, 2, 4, 2).
        expand_ratio_list: middle width / output width of a block.
        width_mult_list: width multipliers each stem conv pair and stage chooses from.
        resolutions: input resolutions the search may choose.
        n_classes: classifier outputs.
    """

    ENCODING_LAYOUTS: ClassVar[tuple[str, ...]] = ("library",)
    CHOICES: ClassVar[tuple[Choice, ...]] = RESNET_CHOICES
    SCALABLE_WIDTH: ClassVar[bool] = False  # widths are a choice of every subnet (`width_mult_list`)

    depth_list: tuple[int, ...] = (0, 1, 2)
    expand_ratio_list: tuple[float, ...] = (0.2, 0.25, 0.35)
    width_mult_list: tuple[float, ...] = (0.65, 0.8, 1.0)
    resolutions: tuple[int, ...] = DEFAULT_RESOLUTIONS
    n_classes: int = 1000
    family: str = "resnet50"

    def __post_init__(self) -> None:
        for name in ("depth_list", "expand_ratio_list", "width_mult_list", "resolutions"):
            values = getattr(self, name)
            values = tuple(sorted(set(values if isinstance(values, (list, tuple)) else (values,))))
            if not values:
                raise ConfigError(f"{name} is empty: give at least one value")
            object.__setattr__(self, name, values)
        if any(d < 0 for d in self.depth_list):
            raise ConfigError(f"depth_list={self.depth_list}: depths must be >= 0, e.g. 0,1,2")
        if any(e <= 0 for e in self.expand_ratio_list) or any(w <= 0 for w in self.width_mult_list):
            raise ConfigError("expand ratios and width multipliers must be > 0, e.g. 0.2,0.25,0.35 and 0.65,0.8,1.0")
        if self.n_classes < 1:
            raise ConfigError(f"n_classes={self.n_classes}: must be >= 1")

    @classmethod
    def for_family(cls, family: str = "resnet50", width_mult: float | None = None, **fields: Any) -> "ResNetSpace":
        """As `SearchSpace.for_family`; a whole-network width multiplier other than 1 is refused."""
        if width_mult not in (None, 1.0):
            raise ConfigError(
                f"width multiplier {width_mult} (--width-mult, width_mult): OFA-ResNet50-D's widths are choices "
                "of every subnet (width_mult_list); leave it at 1.0"
            )
        return cls(family=family, **fields)

    def supernet_args(self) -> dict[str, Any]:
        """Constructor arguments of `OFAResNets` for this space."""
        return dict(n_classes=self.n_classes, **self.choice_fields)

    # ----- widths and blocks -------------------------------------------------
    @property
    def stem_widths(self) -> tuple[int, ...]:
        """Output channels of the last stem conv, per width index."""
        return tuple(make_divisible(STEM_WIDTH * w) for w in self.width_mult_list)

    @property
    def stem_mid_widths(self) -> tuple[int, ...]:
        """Output channels of the first two stem convs, per width index."""
        return tuple(make_divisible(c // 2) for c in self.stem_widths)

    def stage_widths(self, stage: int) -> tuple[int, ...]:
        return tuple(make_divisible(STAGE_WIDTHS[stage] * w) for w in self.width_mult_list)

    @staticmethod
    def mid_channels(out_channels: int, expand_ratio: float) -> int:
        """Middle width of a bottleneck block, as upstream's `active_middle_channels`."""
        return make_divisible(round(out_channels * expand_ratio))

    def mid_table(self, stage: int) -> np.ndarray:
        """[width index, expand index] middle widths of the blocks of `stage`."""
        return np.array([[self.mid_channels(out, e) for e in self.expand_ratio_list] for out in self.stage_widths(stage)])

    @property
    def max_depth(self) -> int:
        return max(self.depth_list)

    @property
    def n_stages(self) -> int:
        return len(BASE_DEPTHS)

    @property
    def n_blocks(self) -> int:
        return sum(BASE_DEPTHS) + self.n_stages * self.max_depth

    @property
    def blocks(self) -> tuple[BottleneckSpec, ...]:
        specs = []
        in_widths, in_entry = self.stem_widths, 1
        for stage in range(self.n_stages):
            out_widths = self.stage_widths(stage)
            for depth_index in range(BASE_DEPTHS[stage] + self.max_depth):
                stride = STAGE_STRIDES[stage] if depth_index == 0 else 1
                specs.append(BottleneckSpec(
                    index=len(specs), stage=stage, depth_index=depth_index, in_widths=in_widths,
                    out_widths=out_widths, in_width_entry=in_entry, stride=stride,
                    has_downsample=stride != 1 or in_widths != out_widths,
                ))
                in_widths, in_entry = out_widths, 2 + stage
        return tuple(specs)

    @property
    def summary(self) -> str:
        """One line naming the family, classes and choices."""
        return (
            f"OFA-ResNet50-D, {self.n_classes} classes, depths {list(self.depth_list)}, "
            f"expand {list(self.expand_ratio_list)}, width multipliers {list(self.width_mult_list)}"
        )

    def describe(self) -> list[str]:
        """Lines describing the widths and choices (`ofa-tf info`)."""
        return [
            f"OFA-ResNet50-D: stem widths {list(self.stem_mid_widths)} / {list(self.stem_widths)}, "
            f"stage widths {[list(self.stage_widths(s)) for s in range(self.n_stages)]}",
            f"depth {list(self.depth_list)} beyond base depths {list(BASE_DEPTHS)}, expand {list(self.expand_ratio_list)}, "
            f"width multipliers {list(self.width_mult_list)}, {self.n_blocks} bottleneck blocks in {self.n_stages} stages",
        ]

    @property
    def n_subnets(self) -> int:
        """Distinct architectures (resolution excluded): stem depth, widths, then per stage its
        depth and the expand ratios of the blocks that run."""
        n_e = len(self.expand_ratio_list)
        total = (2 if len(self.depth_list) > 1 else 1) * len(self.width_mult_list) ** (2 + self.n_stages)
        for base in BASE_DEPTHS:
            total *= sum(n_e ** (base + d) for d in self.depth_list)
        return total

    def stem_runs_residual_conv(self, stem_depth: int) -> bool:
        """Upstream skips the residual stem conv unless the stem depth is the largest."""
        return stem_depth == self.max_depth

    # ----- spatial sizes -----------------------------------------------------
    conv_output_size = staticmethod(conv_output_size)

    def stem_output_size(self, resolution: int) -> int:
        return self.conv_output_size(resolution, 2)

    def pooled_size(self, resolution: int) -> int:
        """After the 3x3 stride-2 max pooling (padding 1)."""
        return self.conv_output_size(self.stem_output_size(resolution), 2)

    # ----- configs -----------------------------------------------------------
    def _config(self, depth: int, expand: float, width: int, resolution: int | None) -> ResNetSubnetConfig:
        return ResNetSubnetConfig((depth,) * (1 + self.n_stages), (expand,) * self.n_blocks, (width,) * (2 + self.n_stages), resolution)

    def max_config(self, resolution: int | None = None) -> ResNetSubnetConfig:
        return self._config(self.max_depth, max(self.expand_ratio_list), len(self.width_mult_list) - 1, resolution)

    def min_config(self, resolution: int | None = None) -> ResNetSubnetConfig:
        return self._config(min(self.depth_list), min(self.expand_ratio_list), 0, resolution)

    def sample(self, rng: np.random.Generator, with_resolution: bool = False) -> ResNetSubnetConfig:
        """As upstream's `sample_active_subnet`: the stem depth is the smallest or largest depth."""
        config = self.sample_phase(rng, {"d": self.depth_list, "e": self.expand_ratio_list, "w": self.width_mult_list})
        return config.with_resolution(int(rng.choice(self.resolutions)) if with_resolution else None)

    def sample_phase(self, rng: np.random.Generator, choices: dict[str, Sequence]) -> ResNetSubnetConfig:
        """A sample over a training phase's values per choice ("d", "e", "w" as multipliers), as
        upstream's `sample_active_subnet` (the stem depth is the phase's smallest or largest)."""
        depths, expands = sorted(choices["d"]), sorted(choices["e"])
        widths = [self.width_mult_list.index(w) for w in sorted(choices["w"])]
        d = [int(rng.choice([depths[-1], depths[0]]))] + [int(v) for v in rng.choice(depths, size=self.n_stages)]
        e = tuple(float(expands[i]) for i in rng.integers(0, len(expands), self.n_blocks))
        w = tuple(widths[i] for i in rng.integers(0, len(widths), 2 + self.n_stages))
        return ResNetSubnetConfig(tuple(d), e, w)

    def phase_config(self, choices: dict[str, Sequence], which: str) -> ResNetSubnetConfig:
        """The "min", "mid" or "max" subnet of a phase's values per choice."""
        width = self.width_mult_list.index(pick_extreme(choices["w"], which))
        return self._config(pick_extreme(choices["d"], which), float(pick_extreme(choices["e"], which)), width, None)

    def normalize(self, d=None, e=None, w=None, base: ResNetSubnetConfig | None = None) -> ResNetSubnetConfig:
        """Builds a validated config from ints or lists, as upstream `set_active_subnet`
        (an int applies to every entry; None keeps `base`'s, the max net by default)."""
        base = base or self.max_config()

        def expand(name, value, current):
            if value is None:
                return current
            values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value] * len(current)
            if len(values) != len(current):
                raise ConfigError(f"{name} has {len(values)} entries, expected {len(current)}")
            return tuple(c if v is None else v for c, v in zip(current, values))

        config = ResNetSubnetConfig(expand("d", d, base.d), expand("e", e, base.e), expand("w", w, base.w), base.resolution)
        self.validate(config)
        return config

    def sample_indices(
        self, rng: np.random.Generator, n: int, with_resolution: bool = True, size_spread: bool = False
    ) -> ResNetArchIndices:
        """`n` subnets as index arrays, as `SearchSpace.sample_indices` (the stem depth the smallest or largest)."""
        resolution = rng.choice(np.asarray(self.resolutions), size=n) if with_resolution else np.zeros(n, dtype=np.int64)
        if size_spread:
            level = rng.uniform(size=(n, 1, 1))
            choose = lambda k, count: leaning_choice(rng, level, k, count)  # noqa: E731
        else:
            choose = lambda k, count: rng.integers(0, k, size=(n, count))  # noqa: E731
        depths = np.asarray(self.depth_list)
        stem = np.where(choose(2, 1) > 0, depths[-1], depths[0])
        return ResNetArchIndices(
            depth=np.concatenate([stem, depths[choose(len(depths), self.n_stages)]], axis=1),
            expand_index=choose(len(self.expand_ratio_list), self.n_blocks),
            width_index=choose(len(self.width_mult_list), 2 + self.n_stages),
            resolution=resolution,
        )

    def to_indices(self, configs: Sequence[ResNetSubnetConfig]) -> ResNetArchIndices:
        """Validated configs as index arrays."""
        arrays = to_arrays(configs, self, with_resolution=True)
        return ResNetArchIndices(**{name: values.astype(np.int64) for name, values in arrays.items()})

    def from_indices(self, arch: ResNetArchIndices) -> list[ResNetSubnetConfig]:
        expands = np.asarray(self.expand_ratio_list)[arch.expand_index]
        return [
            ResNetSubnetConfig(
                d=tuple(int(v) for v in arch.depth[i]),
                e=tuple(float(v) for v in expands[i]),
                w=tuple(int(v) for v in arch.width_index[i]),
                resolution=int(arch.resolution[i]) or None,
            )
            for i in range(len(arch))
        ]

    @staticmethod
    def config_from_dict(data: dict[str, Any]) -> ResNetSubnetConfig:
        return ResNetSubnetConfig.from_dict(data)

    def validate(self, config: ResNetSubnetConfig) -> None:
        """Raises `ConfigError` naming the first bad field."""
        for name, values, allowed in (
            ("d", config.d, self.depth_list),
            ("e", config.e, self.expand_ratio_list),
            ("w", config.w, tuple(range(len(self.width_mult_list)))),
        ):
            length = {"d": 1 + self.n_stages, "e": self.n_blocks, "w": 2 + self.n_stages}[name]
            if len(values) != length:
                raise ConfigError(f"{name} has {len(values)} entries, expected {length}")
            for i, v in enumerate(values):
                if v not in allowed:
                    raise ConfigError(f"{name}[{i}]={v} is not in {name} choices {list(allowed)}")

    def active_blocks(self, config: ResNetSubnetConfig) -> list[BottleneckSpec]:
        runs = self.active_block_mask(np.asarray(config.d))[0]
        return [b for b in self.blocks if runs[b.index]]

    def active_block_mask(self, depth: np.ndarray) -> np.ndarray:
        """[N, n_blocks] whether each block runs, for depth rows (the stem's, then each stage's)."""
        depth = np.asarray(depth).reshape(-1, 1 + self.n_stages)
        depth_index = np.array([b.depth_index for b in self.blocks])
        base = np.array([BASE_DEPTHS[b.stage] for b in self.blocks])
        return depth_index[None, :] < base[None, :] + depth[:, [1 + b.stage for b in self.blocks]]

    # ----- predictor encoding (`ofa_tf.nas.arch_encoding`) ------------------
    def encoding_groups(self, arch: ResNetArchIndices) -> list:
        """As upstream's `ResNetArchEncoder`: the input stem (slot 1 where its depth is above 0), a width
        one-hot per entry, an expand one-hot per block (zero where depth skips it)."""
        from ofa_tf.space.encoding import OneHotGroup

        depth = np.asarray(arch.depth)
        return [
            OneHotGroup(2, (depth[:, :1] > 0).astype(np.int64)),
            OneHotGroup(len(self.width_mult_list), np.asarray(arch.width_index)),
            OneHotGroup(len(self.expand_ratio_list), np.asarray(arch.expand_index), self.active_block_mask(depth)),
        ]

    # ----- layer slots (costs and latency-table keys: `ofa_tf.space.slots`) ---
    def layer_slots(self, resolution: int) -> tuple:
        """The `LayerSlot`s of a subnet at `resolution`, in network order."""
        from ofa_tf.families.resnet.slots import resnet_layer_slots

        return resnet_layer_slots(self, resolution)

    def slot_variants(self, arch: ResNetArchIndices) -> np.ndarray:
        """[N, n_slots] the variant of each slot each subnet runs (-1: skipped)."""
        from ofa_tf.families.resnet.slots import resnet_slot_variants

        return resnet_slot_variants(self, arch)

    # ----- serialization -----------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ResNetSpace":
        return space_from_fields(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return {
            "depth_list": list(self.depth_list),
            "expand_ratio_list": list(self.expand_ratio_list),
            "width_mult_list": list(self.width_mult_list),
            "resolutions": list(self.resolutions),
            "n_classes": self.n_classes,
            "family": self.family,
        }


def to_arrays(
    configs: Sequence[ResNetSubnetConfig], space: ResNetSpace, with_resolution: bool = False
) -> dict[str, np.ndarray]:
    """The configs as int arrays in the layout of the supernet's arch tensors (and, with
    `with_resolution`, a "resolution" column, 0 where unset: the predictor's input)."""
    e_pos = {e: i for i, e in enumerate(space.expand_ratio_list)}
    for config in configs:
        space.validate(config)
    arrays = {
        "depth": np.array([c.d for c in configs], dtype=np.int32).reshape(-1, 1 + space.n_stages),
        "expand_index": np.array([[e_pos[e] for e in c.e] for c in configs], dtype=np.int32).reshape(-1, space.n_blocks),
        "width_index": np.array([c.w for c in configs], dtype=np.int32).reshape(-1, 2 + space.n_stages),
    }
    if with_resolution:
        arrays["resolution"] = np.array([c.resolution or 0 for c in configs], dtype=np.int64)
    return arrays
