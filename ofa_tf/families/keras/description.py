"""A network read from a Keras model, as data: its preprocessing, stem, MBConv blocks and head.

`ofa_tf.elastic.from_keras` writes one of these for the model it reads; the converted family's
space, supernet, extractor and counters read the structure from here, as the released
families read theirs from `ofa_tf.families.mbconv.description`. Where those describe stages
of uniform blocks whose widths follow a multiplier, a converted network lists every block as
the model has it (its own kernel, middle width, activation and squeeze-excite), because
Keras' MobileNetV3 and EfficientNet vary them inside a stage. It is stored as JSON (in the
supernet card and in `family.json`), never as pickled code, and registers itself again when a
card or predictor that names it is read (`register_keras_family`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ofa_tf.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ofa_tf.errors import ConfigError
from ofa_tf.families.mbconv.description import POOL

DESCRIPTION_MODULE = "ofa_tf.families.keras"  # the module a card names to register the family again

# What a model's input is. ofa-tf feeds every network RGB images normalized with ImageNet's mean and
# std ("torch"); a converted network turns them into its model's own input first (folded into one
# per-channel scale and offset, and for BGR models into the stem kernel's channel order).
INPUT_CONVENTIONS = {
    "torch": "RGB, ImageNet mean/std normalized (ofa-tf's own; keras.applications' 'torch' mode)",
    "pixels": "RGB 0..255 (models with their preprocessing inside: MobileNetV3, EfficientNet)",
    "unit": "RGB 0..1",
    "tf": "RGB -1..1 (keras.applications' 'tf' mode: MobileNetV2, MobileNet)",
    "caffe": "BGR 0..255 minus the ImageNet mean (keras.applications' 'caffe' mode: ResNet50, VGG)",
}
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def convention_affine(inputs: str) -> tuple[np.ndarray, np.ndarray, bool]:
    """(scale, offset, bgr): the model's input per RGB channel is `normalized * scale + offset`, reversed
    to BGR where `bgr`."""
    if inputs not in INPUT_CONVENTIONS:
        raise ConfigError(f"inputs={inputs!r}: expected one of {list(INPUT_CONVENTIONS)} ({'; '.join(f'{k}: {v}' for k, v in INPUT_CONVENTIONS.items())})")
    mean, std = np.asarray(IMAGENET_MEAN, np.float64), np.asarray(IMAGENET_STD, np.float64)
    scale, offset = {
        "torch": (np.ones(3), np.zeros(3)), "pixels": (255 * std, 255 * mean), "unit": (std, mean),
        "tf": (2 * std, 2 * mean - 1), "caffe": (255 * std, 255 * mean - np.asarray(CAFFE_MEAN_BGR)[::-1]),
    }[inputs]
    return scale, offset, inputs == "caffe"


def model_inputs(normalized: np.ndarray, inputs: str) -> np.ndarray:
    """What a model of input convention `inputs` takes for images ofa-tf normalizes (NHWC RGB)."""
    scale, offset, bgr = convention_affine(inputs)
    images = np.asarray(normalized, np.float64) * scale + offset
    return (images[..., ::-1] if bgr else images).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class SqueezeExcite:
    """A block's squeeze-and-excitation.

    Args:
        mid_channels: the model's hidden width.
        follows: "mid": a smaller middle width gets `make_divisible(mid // 4, 8)` hidden channels
            (OFA's and MobileNetV3's rule); "fixed": the hidden width stays (EfficientNet's, a
            quarter of the block's input).
        activation: the reduce conv's activation.
        gate: the expand conv's activation ("h_sigmoid", "sigmoid").
    """

    mid_channels: int
    follows: str
    activation: str
    gate: str

    def options(self) -> dict[str, Any]:
        """`ElasticSqueezeExcite` arguments."""
        return dict(mid_channels=self.mid_channels if self.follows == "fixed" else None, activation=self.activation, gate=self.gate)


@dataclasses.dataclass(frozen=True)
class Block:
    """One block as the model has it: an inverted residual (MobileNetV2/V3, EfficientNet) or a bottleneck (ResNet).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        mid_channels: middle (expanded) channels; the input's where there is no expand conv.
        kernel_size: depthwise (a bottleneck's middle conv's) kernel size.
        stride: the block's stride.
        activation: the expand and depthwise activation (a bottleneck's: ReLU).
        expand: whether it has a 1x1 expand conv (not MobileNetV2's or EfficientNet's first block).
        residual: whether its input is added, unchanged, to its output.
        se: its squeeze-and-excitation, or None.
        kind: "mbconv" or "bottleneck".
        stride_on: a bottleneck's strided conv, "conv1" (Keras' ResNets) or "conv2" (torchvision's).
        shortcut: a bottleneck's 1x1 conv + batch norm shortcut (where it changes shape).
        use_bias: whether a bottleneck's convs add biases.
    """

    in_channels: int
    out_channels: int
    mid_channels: int
    kernel_size: int
    stride: int
    activation: str
    expand: bool
    residual: bool
    se: SqueezeExcite | None = None
    kind: str = "mbconv"
    stride_on: str = "conv1"
    shortcut: bool = False
    use_bias: bool = False


@dataclasses.dataclass(frozen=True)
class Conv:
    """A plain convolution of the stem or the head.

    Args:
        name: layer name in the supernet and in extracted subnets.
        width: output channels.
        kernel_size: square kernel size.
        stride: stride.
        activation: its activation, or "linear".
        use_bn: whether a batch norm follows it.
        use_bias: whether it adds a bias.
        pooled: a head conv after global pooling (it runs on 1x1 features).
    """

    name: str
    width: int
    kernel_size: int = 1
    stride: int = 1
    activation: str = "linear"
    use_bn: bool = True
    use_bias: bool = False
    pooled: bool = False


@dataclasses.dataclass(frozen=True)
class KerasFamily:
    """The fixed structure of a network converted from Keras.

    Args:
        name: the family's registered name ("keras_mobilenetv2_1.00_224").
        title: human name.
        source: the Keras model's name.
        resolution: the model's input size (None where it takes any).
        inputs: what the model's input is (a key of `INPUT_CONVENTIONS`).
        input_scale: per channel of the model's input, its preprocessing layers' scale (x * scale + offset).
        input_offset: per channel, their offset.
        stem: the first conv.
        blocks: every MBConv block; the first is the fixed first block.
        head: the convs after the blocks, in order.
        classifier_bias: whether the classifier adds a bias.
        dropout_rate: dropout before the classifier.
        bn_epsilon: the model's batch-norm epsilon.
        padding: "same": TF's padding, which is Keras' `correct_pad` + "valid" at stride 2; "symmetric":
            `k // 2` on each side (ResNet50's `ZeroPadding2D` + "valid").
        stem_pool: a 3x3 stride-2 max pooling after the stem (ResNet50's).
    """

    name: str
    title: str
    source: str
    resolution: int | None
    inputs: str
    input_scale: tuple[float, ...]
    input_offset: tuple[float, ...]
    stem: Conv
    blocks: tuple[Block, ...]
    head: tuple[Conv, ...]
    classifier_bias: bool = True
    dropout_rate: float = 0.0
    bn_epsilon: float = 1e-3
    padding: str = "same"
    stem_pool: bool = False
    default_width_mult: float = 1.0  # widths are the model's: there is no multiplier

    def __post_init__(self) -> None:
        convention_affine(self.inputs)
        if len(self.blocks) < 2:
            raise ConfigError(f"{self.source}: a converted network needs at least two MBConv blocks, it has {len(self.blocks)}")

    def network_input(self) -> tuple[tuple[float, ...], tuple[float, ...], bool]:
        """(scale, offset, bgr): per RGB channel, the affine map from ofa-tf's normalized images to what
        the model's stem convolves (its input convention, then its preprocessing layers), and whether
        the stem kernel reads the channels reversed (a BGR model's, stored that way in the supernet)."""
        scale, offset, bgr = convention_affine(self.inputs)
        own_scale, own_offset = np.asarray(self.input_scale), np.asarray(self.input_offset)
        if bgr:  # the model's channel c is RGB channel 2 - c
            own_scale, own_offset = own_scale[::-1], own_offset[::-1]
        return tuple(float(v) for v in own_scale * scale), tuple(float(v) for v in own_scale * offset + own_offset), bgr

    @property
    def has_preprocessing(self) -> bool:
        scale, offset, _ = self.network_input()
        return any(s != 1.0 for s in scale) or any(o != 0.0 for o in offset)

    @property
    def first_block(self) -> Block:
        return self.blocks[0]

    @property
    def elastic_blocks(self) -> tuple[Block, ...]:
        return self.blocks[1:]

    @property
    def stage_sizes(self) -> tuple[int, ...]:
        """Blocks per stage: a block without a residual starts a stage, the residual ones after it join it."""
        sizes: list[int] = []
        for block in self.elastic_blocks:
            if block.residual and sizes:
                sizes[-1] += 1
            else:
                sizes.append(1)
        return tuple(sizes)

    @property
    def head_sequence(self) -> tuple[Conv | str, ...]:
        """The head in order: the convs on feature maps, `POOL`, the convs on pooled features."""
        return tuple(c for c in self.head if not c.pooled) + (POOL,) + tuple(c for c in self.head if c.pooled)

    def to_dict(self) -> dict[str, Any]:
        return {"module": DESCRIPTION_MODULE, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "KerasFamily":
        fields = {k: v for k, v in data.items() if k != "module"}
        try:
            blocks = tuple(
                Block(**{**b, "se": None if b.get("se") is None else SqueezeExcite(**b["se"])}) for b in fields.pop("blocks")
            )
            stem, head = Conv(**fields.pop("stem")), tuple(Conv(**c) for c in fields.pop("head"))
            scale, offset = tuple(fields.pop("input_scale")), tuple(fields.pop("input_offset"))
            return cls(**fields, input_scale=scale, input_offset=offset, stem=stem, blocks=blocks, head=head)
        except (KeyError, TypeError) as error:
            raise ConfigError(
                f"a converted family's description is malformed ({error}): write it again with `ofa-tf supernet from-keras`"
            ) from None
