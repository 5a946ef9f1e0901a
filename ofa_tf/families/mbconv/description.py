"""Supernet families as data: the fixed structure around the elastic MBConv stages.

A family says what every subnet of a supernet shares (a 3x3 stride-2 stem
conv, a fixed first MBConv block of kernel 3 and expand 1, the head convs and
the classifier) and how its elastic stages are laid out (base width, stride,
activation, squeeze-excite, and whether the stage's depth is elastic). Widths
are the base widths before the width multiplier. The search space
(`ofa_tf.families.mbconv.space.SearchSpace`) combines a family with the choice lists (kernel
sizes, expand ratios, depths) and the task (classes); the supernet, the
extractor, the MAC counter, the official key map and the latency-table keys
all read the structure from here, so adding a family is one description
(plus its checkpoint naming where it differs).

Stages are written as compact strings in the manner of timm's block strings:
`"c40_s2_relu_se"` is a stage of 40 base channels whose first block has
stride 2, ReLU activations and squeeze-excite; `"..._n1"` fixes the stage to
one block whatever the depth choice (ProxylessNAS's last stage).
"""

from __future__ import annotations

import dataclasses

from ofa_tf.errors import ConfigError

ACTIVATION_TOKENS = {"relu": "relu", "relu6": "relu6", "hswish": "h_swish"}
POOL = "pool"  # the global average pooling in `Family.head_sequence`


@dataclasses.dataclass(frozen=True)
class Stage:
    """A stage of MBConv blocks (or the stem conv / first block, which use width, stride and activation).

    Args:
        width: base output channels, before the width multiplier.
        stride: stride of the stage's first block.
        activation: OFA activation name ("relu", "relu6" or "h_swish").
        use_se: whether its blocks have squeeze-and-excitation.
        blocks: a fixed block count; None for an elastic depth (up to the largest depth choice).
    """

    width: int
    stride: int
    activation: str
    use_se: bool = False
    blocks: int | None = None

    @classmethod
    def parse(cls, text: str) -> "Stage":
        """Reads a compact stage string such as `"c112_s1_hswish_se"` or `"c320_s1_relu6_n1"`."""
        fields: dict = {"use_se": False}
        for token in text.split("_"):
            if token in ACTIVATION_TOKENS:
                fields["activation"] = ACTIVATION_TOKENS[token]
            elif token == "se":
                fields["use_se"] = True
            elif token[:1] in ("c", "s", "n") and token[1:].isdigit():
                fields[{"c": "width", "s": "stride", "n": "blocks"}[token[0]]] = int(token[1:])
            else:
                raise ConfigError(f"stage {text!r}: unknown token {token!r} (expected cN, sN, nN, se, or {sorted(ACTIVATION_TOKENS)})")
        missing = {"width", "stride", "activation"} - set(fields)
        if missing:
            raise ConfigError(f"stage {text!r} lacks {sorted(missing)}: e.g. c24_s2_relu")
        return cls(**fields)


@dataclasses.dataclass(frozen=True)
class HeadConv:
    """A 1x1 conv of the head.

    Args:
        name: attribute and layer name ("final_expand", "feature_mix"); the official
            state dict calls the module `{name}_layer`.
        width: base output channels, before the width multiplier.
        activation: OFA activation name.
        use_bn: whether a batch norm follows the conv.
        pooled: whether it runs on the globally pooled 1x1 features (after pooling).
        lut_kind: its latency-table key prefix ("Conv_1", "Conv_2").
    """

    name: str
    width: int
    activation: str
    use_bn: bool
    pooled: bool
    lut_kind: str


@dataclasses.dataclass(frozen=True)
class Family:
    """The fixed structure of one supernet family.

    Args:
        name: short name used on the command line ("mbv3", "proxyless").
        title: human name ("OFA-MobileNetV3").
        official_class: the upstream class (`ofa.imagenet_classification.elastic_nn.networks`).
        stem: the 3x3 first conv (its width, stride and activation).
        first_block: the fixed MBConv block of kernel 3, expand 1 after the stem.
        stages: the elastic stages, as compact strings (see `Stage.parse`).
        head: the head convs in order; pooling sits between the unpooled and the pooled ones.
        bn_epsilon: the official batch-norm epsilon.
        default_width_mult: the width of the released supernet.
    """

    name: str
    title: str
    official_class: str
    stem: str
    first_block: str
    stages: tuple[str, ...]
    head: tuple[HeadConv, ...]
    bn_epsilon: float
    default_width_mult: float

    @property
    def stem_stage(self) -> Stage:
        return Stage.parse(self.stem)

    @property
    def first_block_stage(self) -> Stage:
        return Stage.parse(self.first_block)

    @property
    def elastic_stages(self) -> tuple[Stage, ...]:
        return tuple(Stage.parse(text) for text in self.stages)

    @property
    def head_sequence(self) -> tuple[HeadConv | str, ...]:
        """The head in order: the convs on feature maps, `POOL`, the convs on pooled features."""
        return tuple(c for c in self.head if not c.pooled) + (POOL,) + tuple(c for c in self.head if c.pooled)


MOBILENET_V3 = Family(
    name="mbv3",
    title="OFA-MobileNetV3",
    official_class="OFAMobileNetV3",
    stem="c16_s2_hswish",
    first_block="c16_s1_relu",
    stages=("c24_s2_relu", "c40_s2_relu_se", "c80_s2_hswish", "c112_s1_hswish_se", "c160_s2_hswish_se"),
    head=(
        HeadConv("final_expand", 960, "h_swish", use_bn=True, pooled=False, lut_kind="Conv_1"),
        HeadConv("feature_mix", 1280, "h_swish", use_bn=False, pooled=True, lut_kind="Conv_2"),
    ),
    bn_epsilon=1e-5,
    default_width_mult=1.0,
)

PROXYLESS = Family(
    name="proxyless",
    title="OFA-ProxylessNAS",
    official_class="OFAProxylessNASNets",
    stem="c32_s2_relu6",
    first_block="c16_s1_relu6",
    stages=("c24_s2_relu6", "c40_s2_relu6", "c80_s2_relu6", "c96_s1_relu6", "c192_s2_relu6", "c320_s1_relu6_n1"),
    head=(HeadConv("feature_mix", 1280, "relu6", use_bn=True, pooled=False, lut_kind="Conv_1"),),
    bn_epsilon=1e-3,
    default_width_mult=1.3,
)
