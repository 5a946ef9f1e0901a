"""Reads a functional Keras CNN of MBConv blocks into a converted family's description and its layers.

The reader walks the model from its input: preprocessing layers (`Rescaling`, `Normalization`),
the stem (a conv + batch norm + activation), inverted-residual blocks (optional 1x1 expand conv,
depthwise conv, optional squeeze-excite, linear 1x1 project conv, optional residual `Add`; a
`Dropout` before the `Add` is EfficientNet's drop-connect, identity at inference), then the head
(1x1 convs, global average pooling, dropout, a `Dense` or 1x1 conv classifier, a final
`Flatten`/`Activation`). The first layer that fits none of these stops it with a one-line
`NotRecognised` naming the layer and why. Padding is read as TF 'same' (Keras' `correct_pad`
`ZeroPadding2D` + "valid" at stride 2 computes the same) or as `k // 2` on each side (models
ported from PyTorch); a model must use one of them throughout.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

import numpy as np

from ofa_tf.elastic.graph import Graph, Node, NotRecognised
from ofa_tf.errors import ConfigError
from ofa_tf.families.keras.description import INPUT_CONVENTIONS, Block, Conv, KerasFamily, SqueezeExcite
from ofa_tf.space.choices import se_mid_channels

# Keras activation names -> the names of `ofa_tf.layers.activations`
ACTIVATIONS = {
    "relu": "relu", "relu6": "relu6", "hard_silu": "h_swish", "hard_swish": "h_swish", "silu": "swish", "swish": "swish",
    "sigmoid": "sigmoid", "hard_sigmoid": "h_sigmoid", "linear": "linear",
}
SOFTMAX = "softmax"  # allowed on the classifier only, and left out (the supernet outputs logits)
KERAS_EPSILON = 1e-7  # `keras.backend.epsilon()`, the floor of `Normalization`'s standard deviation


@dataclasses.dataclass
class ConvRead:
    """A conv (optionally padded before, batch-normalized and activated after) as read from the graph."""

    conv: Node
    bn: Node | None
    activation: str
    output: int
    paddings: frozenset[str]

    @property
    def layer(self) -> Any:
        return self.conv.operation

    @property
    def kernel_size(self) -> int:
        return 1 if self.conv.kind == "Dense" else int(self.layer.kernel_size[0])

    @property
    def stride(self) -> int:
        return 1 if self.conv.kind == "Dense" else int(self.layer.strides[0])

    @property
    def filters(self) -> int:
        return int(self.conv.output_shape[-1])

    @property
    def use_bias(self) -> bool:
        return bool(self.layer.use_bias)


@dataclasses.dataclass
class Reading:
    """What the reader found.

    Args:
        description: the converted family's description.
        layers: per supernet layer path ("first_conv", "blocks_3/expand_conv", "classifier"), the Keras layer
            whose weights it takes.
        n_classes: the classifier's outputs.
        notes: what the conversion leaves out or reads in its own way (a final softmax), one line each.
    """

    description: KerasFamily
    layers: dict[str, Any]
    n_classes: int
    notes: list[str]


class Reader:
    """Reads one model (`read_keras_model`)."""

    def __init__(self, model: Any):
        self.model = model
        self.graph = Graph(model)
        self.paddings = frozenset({"same", "symmetric"})
        self.epsilons: set[float] = set()
        self.layers: dict[str, Any] = {}
        self.notes: list[str] = []
        self.dropout_rate = 0.0

    # ----- single layers ------------------------------------------------------
    def _merge(self, node: Node, kind: str) -> bool:
        """Whether `node` merges two tensors (the `Add` layer of a residual, the SE `Multiply`)."""
        return node.kind == kind and len(node.inputs) == 2

    def _activation(self, tensor: int) -> tuple[str, int]:
        """The activation applied to `tensor` (if it feeds one only), and its output."""
        consumers = self.graph.consumers_of(tensor)
        if len(consumers) != 1:
            return "linear", tensor
        node = consumers[0]
        if node.kind == "Activation":
            name = node.config()["activation"]
            if name == SOFTMAX:
                return SOFTMAX, node.output
            if name not in ACTIVATIONS:
                raise NotRecognised(node, f"applies {name!r}: supported activations are {sorted(ACTIVATIONS)}")
            return ACTIVATIONS[name], node.output
        if node.kind == "ReLU":
            config = node.config()
            if config.get("negative_slope", 0) or config.get("threshold", 0) or config.get("max_value") not in (None, 6, 6.0):
                raise NotRecognised(node, "is a ReLU with a slope, threshold or ceiling other than 6: no elastic form")
            return ("relu" if config.get("max_value") is None else "relu6"), node.output
        if node.kind == "Add" and len(node.inputs) == 1 and node.constants == (3.0,):
            return self._hard_sigmoid(node)
        return "linear", tensor

    def _hard_sigmoid(self, add: Node) -> tuple[str, int]:
        """`relu6(x + 3) * (1 / 6)`, Keras' MobileNetV3 `hard_sigmoid`, written as three ops."""
        relu = self.graph.next_node(add.output, add)
        if relu is None or relu.kind != "ReLU" or relu.config().get("max_value") != 6.0:
            raise NotRecognised(add, "adds 3 but is not followed by ReLU(6) and a multiplication by 1/6 (a hard sigmoid)")
        scale = self.graph.next_node(relu.output, relu)
        if scale is None or scale.kind != "Multiply" or len(scale.inputs) != 1 or not np.isclose(scale.constants[0], 1 / 6):
            raise NotRecognised(relu, "is not followed by a multiplication by 1/6 (a hard sigmoid)")
        return "h_sigmoid", scale.output

    def _padding(self, pad: Node | None, conv: Node, input_tensor: int) -> frozenset[str]:
        """The padding modes ("same", "symmetric") a (padded) conv's padding agrees with."""
        k, s = int(conv.operation.kernel_size[0]), int(conv.operation.strides[0])
        padding = conv.config()["padding"]
        if pad is None:
            if padding == "same":
                return frozenset({"same"}) if s > 1 and k > 1 else frozenset({"same", "symmetric"})
            if k == 1:
                return frozenset({"same", "symmetric"})
            raise NotRecognised(conv, f"pads nothing around its {k}x{k} kernel (padding 'valid'): the reader needs 'same'-sized layers")
        if padding != "valid":
            raise NotRecognised(conv, "pads again after a ZeroPadding2D")
        pads = tuple(tuple(int(p) for p in side) for side in pad.config()["padding"])
        symmetric = ((k // 2, k // 2),) * 2
        sizes = self.graph.shape(input_tensor)[1:3]
        same = tuple(_same_padding(n, k, s) for n in sizes) if None not in sizes else None
        modes = frozenset(mode for mode, expected in (("symmetric", symmetric), ("same", same)) if pads == expected)
        if not modes:
            raise NotRecognised(pad, f"pads {pads}: neither TF 'same' ({same}) nor {k // 2} on each side for the {k}x{k} conv after it")
        return modes

    def _conv(self, tensor: int, kinds: tuple[str, ...] = ("Conv2D",), need_bn: bool = True, start: Node | None = None) -> ConvRead:
        """The conv `tensor` feeds (through a `ZeroPadding2D`; or `start`, one of its consumers), its batch
        norm and activation; a residual `Add` that `tensor` feeds as well is the block's, not the conv's."""
        consumers = [n for n in self.graph.consumers_of(tensor) if not self._merge(n, "Add")]
        node = start or (consumers[0] if len(consumers) == 1 else self.graph.next_node(tensor))
        pad = None
        if node is not None and node.kind == "ZeroPadding2D":
            pad, node = node, self.graph.next_node(node.output, node)
        if node is None or node.kind not in kinds:
            where = node or self.graph.producer.get(tensor)
            raise NotRecognised(where, f"is where a {' or '.join(kinds)} was expected") if where else NotRecognised(pad, "ends the model")
        config = node.config()
        if node.kind == "Dense":
            paddings = frozenset({"same", "symmetric"})
        else:
            if config.get("groups", 1) != 1:
                raise NotRecognised(node, f"is a grouped convolution (groups={config['groups']}): no elastic form")
            if tuple(config.get("dilation_rate", (1, 1))) != (1, 1) or config.get("depth_multiplier", 1) != 1:
                raise NotRecognised(node, "is dilated or has a depth multiplier: no elastic form")
            if len(set(config["kernel_size"])) != 1 or len(set(config["strides"])) != 1:
                raise NotRecognised(node, "has a non-square kernel or stride")
            if config.get("data_format", "channels_last") != "channels_last":
                raise NotRecognised(node, "is channels_first: the reader needs channels_last")
            paddings = self._padding(pad, node, tensor)
        own_activation = ACTIVATIONS.get(config.get("activation", "linear"), {SOFTMAX: SOFTMAX}.get(config.get("activation")))
        if own_activation is None:
            raise NotRecognised(node, f"applies {config['activation']!r}: supported activations are {sorted(ACTIVATIONS)}")
        bn = self.graph.consumers_of(node.output)
        bn = bn[0] if len(bn) == 1 and bn[0].kind == "BatchNormalization" else None
        if bn is not None and own_activation != "linear":
            raise NotRecognised(node, "activates before its batch norm")
        if bn is None and need_bn:
            raise NotRecognised(node, "has no BatchNormalization after it")
        if bn is not None:
            axis = bn.config()["axis"]
            if (axis if isinstance(axis, int) else axis[0]) not in (-1, 3):
                raise NotRecognised(bn, f"normalizes axis {axis}: the reader needs the channels (-1)")
            activation, output = self._activation(bn.output)
        else:
            activation, output = own_activation, node.output
            if own_activation == "linear":
                activation, output = self._activation(node.output)
        return ConvRead(node, bn, activation, output, paddings)

    def _accept(self, read: ConvRead, path: str, bn_path: str | None = None) -> None:
        """Keeps a read conv: its layers for the supernet's `path`, its padding and epsilon for the model's."""
        if read.activation == SOFTMAX:
            raise NotRecognised(read.conv, "applies a softmax before the classifier")
        paddings = self.paddings & read.paddings
        if not paddings:
            raise NotRecognised(read.conv, "pads as TF 'same' where earlier layers pad k // 2 on each side (or the reverse)")
        self.paddings = paddings
        self.layers[path] = read.layer
        if read.bn is not None:
            self.epsilons.add(float(read.bn.operation.epsilon))
            self.layers[bn_path or f"{path}_bn"] = read.bn.operation

    # ----- the parts of the network -------------------------------------------
    def preprocessing(self) -> tuple[int, np.ndarray, np.ndarray]:
        """The input's `Rescaling` / `Normalization` layers folded into one per-channel scale and offset."""
        tensor, channels = self.graph.input, self.graph.input_shape[-1]
        scale, offset = np.ones(channels), np.zeros(channels)
        while True:
            node = self.graph.next_node(tensor)
            if node is None or node.kind not in ("Rescaling", "Normalization"):
                return tensor, scale, offset
            layer = node.operation
            if node.kind == "Rescaling":
                a, b = np.broadcast_to(np.asarray(layer.scale, np.float64), channels), np.broadcast_to(np.asarray(layer.offset, np.float64), channels)
                scale, offset = scale * a, offset * a + b
            else:
                if getattr(layer, "invert", False):
                    raise NotRecognised(node, "inverts a normalization: only forward preprocessing is supported")
                mean = np.asarray(layer.mean, np.float64).reshape(-1)
                std = np.maximum(np.sqrt(np.asarray(layer.variance, np.float64).reshape(-1)), KERAS_EPSILON)
                scale, offset = scale / std, (offset - mean) / std
            tensor = node.output

    def _state(self) -> tuple:
        return dict(self.layers), self.paddings, set(self.epsilons), list(self.notes)

    def _restore(self, state: tuple) -> None:
        self.layers, self.paddings, self.epsilons, self.notes = dict(state[0]), state[1], set(state[2]), list(state[3])

    def block(self, tensor: int, path: str) -> tuple[Block, int]:
        """One block from its input `tensor`: an inverted residual or a bottleneck; where it is neither,
        the reason of the reading that got further into the model."""
        errors = []
        for read in (self.inverted_residual, self.bottleneck):
            state = self._state()
            try:
                return read(tensor, path)
            except NotRecognised as error:
                self._restore(state)
                errors.append(error)
        raise max(errors, key=lambda error: self.graph.position(error.node))

    def starts_block(self, tensor: int) -> bool:
        """Whether a block (of either kind) reads from `tensor`, the reader's state unchanged."""
        state = self._state()
        try:
            self.block(tensor, "probe")
            return True
        except NotRecognised:
            return False
        finally:
            self._restore(state)

    def bottleneck(self, tensor: int, path: str) -> tuple[Block, int]:
        """1x1 conv -> kxk conv -> 1x1 conv (each batch-normalized, ReLU after the first two), the input or a
        1x1 conv + batch norm shortcut added, ReLU."""
        consumers = self.graph.consumers_of(tensor)
        adds = [node for node in consumers if self._merge(node, "Add")]
        convs = [node for node in consumers if node.kind == "Conv2D"]
        if len(consumers) != 2 or not (len(adds) == 1 and len(convs) == 1 or len(convs) == 2):
            raise NotRecognised(consumers[0], "is not a bottleneck's start (its input feeds its first conv and a shortcut)")
        shortcut = None
        if len(convs) == 2:  # one of them is the shortcut: a 1x1 conv + BN into an Add
            for candidate, main in ((convs[0], convs[1]), (convs[1], convs[0])):
                read = self._conv(tensor, start=candidate)
                into = self.graph.consumers_of(read.output)
                if read.kernel_size == 1 and read.activation == "linear" and len(into) == 1 and self._merge(into[0], "Add"):
                    shortcut, adds, convs = read, into, [main]
                    break
            if shortcut is None:
                raise NotRecognised(convs[0], "shares its input with another conv, and neither is a bottleneck's shortcut")
        first = self._conv(tensor, start=convs[0])
        middle = self._conv(first.output)
        last = self._conv(middle.output)
        for read, activation in ((first, "relu"), (middle, "relu"), (last, "linear")):
            if read.activation != activation:
                raise NotRecognised(read.conv, f"is activated by {read.activation} where a bottleneck's conv has {activation}")
        if first.kernel_size != 1 or last.kernel_size != 1 or last.stride != 1 or (first.stride > 1 and middle.stride > 1):
            raise NotRecognised(middle.conv, "is not the middle of a bottleneck (1x1 conv, kxk conv, 1x1 conv; one of the first two strided)")
        if first.filters != middle.filters:
            raise NotRecognised(middle.conv, f"has {middle.filters} outputs where the bottleneck's first conv has {first.filters}")
        reads = [first, middle, last] + ([shortcut] if shortcut else [])
        if len({read.use_bias for read in reads}) != 1:
            raise NotRecognised(first.conv, "is in a bottleneck whose convs do not all (or all not) add biases")
        add = adds[0]
        if set(add.inputs) != {last.output, shortcut.output if shortcut else tensor}:
            raise NotRecognised(add, "adds tensors that are not one bottleneck's branch and shortcut")
        activation, output = self._activation(add.output)
        if activation != "relu":
            raise NotRecognised(add, f"is followed by {activation} where a bottleneck has ReLU after its addition")
        for read, name in ((first, "conv1"), (middle, "conv2"), (last, "conv3"), (shortcut, "shortcut_conv")):
            if read is not None:
                self._accept(read, f"{path}/{name}", f"{path}/{name.replace('conv', 'bn') if name != 'shortcut_conv' else 'shortcut_bn'}")
        block = Block(
            in_channels=int(self.graph.shape(tensor)[-1]), out_channels=last.filters, mid_channels=first.filters,
            kernel_size=middle.kernel_size, stride=max(first.stride, middle.stride), activation="relu", expand=True,
            residual=shortcut is None, kind="bottleneck", stride_on="conv2" if middle.stride > 1 else "conv1",
            shortcut=shortcut is not None, use_bias=first.use_bias,
        )
        return block, output

    def stem_pool(self, tensor: int) -> tuple[bool, int]:
        """A 3x3 stride-2 max pooling after the stem (ResNet50's `ZeroPadding2D(1)` + `MaxPooling2D(3, 2)`)."""
        consumers = self.graph.consumers_of(tensor)
        if len(consumers) != 1:  # the first block is a residual one
            return False, tensor
        node, pad = consumers[0], None
        if node is not None and node.kind == "ZeroPadding2D":
            after = self.graph.next_node(node.output, node)
            if after is None or after.kind != "MaxPooling2D":
                return False, tensor
            pad, node = node, after
        if node is None or node.kind != "MaxPooling2D":
            return False, tensor
        config = node.config()
        if tuple(config["pool_size"]) != (3, 3) or tuple(config["strides"]) != (2, 2):
            raise NotRecognised(node, "pools other than 3x3 at stride 2: the reader knows ResNet50's stem pooling only")
        if pad is not None:
            if tuple(tuple(side) for side in pad.config()["padding"]) != ((1, 1), (1, 1)) or config["padding"] != "valid":
                raise NotRecognised(pad, "pads the stem pooling other than by 1 on each side")
            modes = frozenset({"symmetric"})
        elif config["padding"] == "same":
            modes = frozenset({"same"})
        else:
            raise NotRecognised(node, "pools without padding: the reader needs 'same'-sized pooling")
        if not self.paddings & modes:
            raise NotRecognised(node, "pads as TF 'same' where earlier layers pad k // 2 on each side (or the reverse)")
        self.paddings &= modes
        return True, node.output

    def inverted_residual(self, tensor: int, path: str) -> tuple[Block, int]:
        """One inverted-residual block from its input `tensor`."""
        consumers = self.graph.consumers_of(tensor)
        adds = [node for node in consumers if self._merge(node, "Add")]
        main = [node for node in consumers if node not in adds]
        if len(main) != 1 or len(adds) > 1:
            others = ", ".join(repr(node.name) for node in consumers[1:])
            raise NotRecognised(consumers[0], f"shares its input with {others}: a branch that is neither a residual nor a squeeze-excite")
        in_channels = self.graph.shape(tensor)[-1]
        x, expand, mid = tensor, main[0].kind == "Conv2D", in_channels
        if expand:
            read = self._conv(x)
            if read.kernel_size != 1 or read.stride != 1 or read.use_bias:
                raise NotRecognised(read.conv, "expands a block but is not a 1x1, stride-1 conv without bias")
            self._accept(read, f"{path}/expand_conv", f"{path}/expand_bn")
            x, mid, activation = read.output, read.filters, read.activation
        depthwise = self._conv(x, ("DepthwiseConv2D",))
        if depthwise.use_bias:
            raise NotRecognised(depthwise.conv, "is a depthwise conv with a bias: no elastic form")
        if expand and depthwise.activation != activation:
            raise NotRecognised(depthwise.conv, f"is activated by {depthwise.activation} where the block's expand conv uses {activation}")
        self._accept(depthwise, f"{path}/depthwise", f"{path}/depthwise_bn")
        x = depthwise.output
        se = None
        if len(self.graph.consumers_of(x)) > 1:
            se, x = self.squeeze_excite(x, mid, path)
        project = self._conv(x)
        if project.kernel_size != 1 or project.stride != 1 or project.use_bias:
            raise NotRecognised(project.conv, "projects a block but is not a 1x1, stride-1 conv without bias")
        if project.activation != "linear":
            raise NotRecognised(project.conv, f"activates ({project.activation}) a block's projection: an inverted residual's is linear")
        self._accept(project, f"{path}/project_conv", f"{path}/project_bn")
        x = self._skip_dropout(project.output)
        residual = False
        if adds:
            if set(adds[0].inputs) != {tensor, x}:
                raise NotRecognised(adds[0], "adds tensors that are not one block's input and output")
            x, residual = adds[0].output, True
        block = Block(
            in_channels=int(in_channels), out_channels=project.filters, mid_channels=int(mid), kernel_size=depthwise.kernel_size,
            stride=depthwise.stride, activation=depthwise.activation, expand=expand, residual=residual, se=se,
        )
        return block, x

    def squeeze_excite(self, tensor: int, mid: int, path: str) -> tuple[SqueezeExcite, int]:
        """Global pooling -> 1x1 conv -> activation -> 1x1 conv -> gate, multiplied into `tensor`."""
        consumers = self.graph.consumers_of(tensor)
        pools = [n for n in consumers if n.kind == "GlobalAveragePooling2D"]
        multiplies = [n for n in consumers if self._merge(n, "Multiply")]
        if len(consumers) != 2 or len(pools) != 1 or len(multiplies) != 1:
            raise NotRecognised(consumers[0], "starts a branch that is neither a residual nor a squeeze-excite")
        x = pools[0].output
        reshape = self.graph.next_node(x, pools[0])
        if reshape is not None and reshape.kind == "Reshape":
            x = reshape.output
        reduce = self._conv(x, need_bn=False)
        expand = self._conv(reduce.output, need_bn=False)
        for read in (reduce, expand):
            if read.kernel_size != 1 or not read.use_bias:
                raise NotRecognised(read.conv, "is a squeeze-excite conv but not 1x1 with a bias")
        if expand.output not in multiplies[0].inputs:
            raise NotRecognised(multiplies[0], "multiplies by something other than the squeeze-excite gate")
        self.layers[f"{path}/se_reduce"], self.layers[f"{path}/se_expand"] = reduce.layer, expand.layer
        hidden = reduce.filters
        follows = "mid" if hidden == se_mid_channels(mid) else "fixed"
        return SqueezeExcite(hidden, follows, reduce.activation, expand.activation), multiplies[0].output

    def _skip_dropout(self, tensor: int) -> int:
        consumers = self.graph.consumers_of(tensor)
        while len(consumers) == 1 and consumers[0].kind == "Dropout":
            tensor = consumers[0].output
            consumers = self.graph.consumers_of(tensor)
        return tensor

    def head(self, tensor: int) -> tuple[tuple[Conv, ...], int]:
        """The convs after the blocks, the pooling, dropout and the classifier; returns the head convs
        and the classifier's outputs."""
        convs: list[Conv] = []
        x, pooled = tensor, False
        while True:
            node = self.graph.next_node(x)
            if node is None:
                raise NotRecognised(self.graph.producer[x], "ends the model before a classifier")
            if node.kind == "GlobalAveragePooling2D" and not pooled:
                x, pooled = node.output, True
            elif node.kind in ("Reshape", "Flatten") and pooled:
                x = node.output
            elif node.kind == "Dropout":
                self.dropout_rate, x = float(node.config()["rate"]), node.output
            elif node.kind in ("Conv2D", "Dense") and (pooled or node.kind == "Conv2D"):
                read = self._conv(x, ("Conv2D", "Dense"), need_bn=False)
                if read.kernel_size != 1 or read.stride != 1:
                    raise NotRecognised(read.conv, "is a head conv but not 1x1 with stride 1")
                if pooled and read.bn is None and read.activation in ("linear", SOFTMAX) and self._ends_model(read.output):
                    if read.activation == SOFTMAX:
                        self.notes.append(f"the classifier's softmax ({read.conv.name!r}) is left out: the supernet outputs logits")
                    return tuple(convs), self._classifier(read)
                name = f"head{len(convs) + 1}"
                self._accept(read, name + "_conv", name + "_bn")
                convs.append(Conv(name, read.filters, activation=read.activation, use_bn=read.bn is not None, use_bias=read.use_bias, pooled=pooled))
                x = read.output
            else:
                raise NotRecognised(node, "does not fit the head (1x1 convs, global average pooling, dropout, a Dense or 1x1-conv classifier)")

    def _ends_model(self, tensor: int) -> bool:
        """Whether only `Flatten`/`Reshape`/a final `Activation` lie between `tensor` and the output."""
        while tensor != self.graph.output:
            consumers = self.graph.consumers_of(tensor)
            if len(consumers) != 1 or consumers[0].kind not in ("Flatten", "Reshape", "Activation"):
                return False
            if consumers[0].kind == "Activation" and consumers[0].config()["activation"] not in ("linear", SOFTMAX):
                return False
            if consumers[0].kind == "Activation" and consumers[0].config()["activation"] == SOFTMAX:
                self.notes.append(f"the model's final softmax ({consumers[0].name!r}) is left out: the supernet outputs logits")
            tensor = consumers[0].output
        return True

    def _classifier(self, read: ConvRead) -> int:
        self.layers["classifier"] = read.layer
        self.classifier_bias = read.use_bias
        return read.filters


def _head_or_why_not(reader: Reader, tensor: int, path: str) -> tuple[tuple[Conv, ...], int]:
    """The head at `tensor`; where it does not fit, the reason of whichever reading (as the head, or as one
    more block) got further into the model, which names the layer that fits neither."""
    try:
        return reader.head(tensor)
    except NotRecognised as head_error:
        try:
            reader.block(tensor, path)
        except NotRecognised as block_error:
            graph = reader.graph
            raise block_error if graph.position(block_error.node) >= graph.position(head_error.node) else head_error from None
        raise


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF 'same' padding (before, after) of a `kernel` at `stride` over `size`."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def read_keras_model(model: Any, inputs: str | None = None) -> Reading:
    """Reads `model` (a functional Keras CNN of MBConv blocks) into a converted family's description.

    Args:
        model: the functional Keras model.
        inputs: what its input is (`ofa_tf.families.keras.description.INPUT_CONVENTIONS`: "torch",
            "pixels", "unit", "tf", "caffe"); None: "pixels" for a model whose preprocessing layers
            are inside it (Keras' MobileNetV3 and EfficientNet), else it must be given.

    Raises:
        NotRecognised: naming the first layer that does not fit, and why.
        ConfigError: `inputs` is None for a model without preprocessing layers.
    """
    reader = Reader(model)
    graph = reader.graph
    if len(graph.input_shape) != 4 or graph.input_shape[-1] != 3:
        raise NotRecognised(graph.next_node(graph.input) or graph.producer[graph.output], f"reads inputs of shape {graph.input_shape}: expected (None, H, W, 3) images")
    tensor, scale, offset = reader.preprocessing()
    if inputs is None:
        if tensor == graph.input:
            raise ConfigError(
                f"model {model.name!r} has no preprocessing layer at its input: say what its input is, inputs= (--inputs) "
                f"one of {list(INPUT_CONVENTIONS)} (keras.applications MobileNetV2: tf, ResNet50: caffe; trained on ofa-tf's input: torch)"
            )
        inputs = "pixels"
    stem = reader._conv(tensor)
    if stem.activation == "linear":
        raise NotRecognised(stem.conv, "is the stem but has no activation after its batch norm")
    reader._accept(stem, "first_conv", "first_conv_bn")
    stem_pool, x = reader.stem_pool(stem.output)
    blocks = []
    while reader.starts_block(x):
        block, x = reader.block(x, "first_block" if not blocks else f"blocks_{len(blocks) - 1}")
        blocks.append(block)
    if len(blocks) < 2:
        reader.block(x, "blocks_0")  # raises, naming the layer that does not fit a block
        raise NotRecognised(graph.producer[x], "is followed by one MBConv block only: a converted network needs two")
    head, n_classes = _head_or_why_not(reader, x, f"blocks_{len(blocks) - 1}")
    if len(reader.epsilons) != 1:
        raise NotRecognised(stem.bn, f"the model's batch norms use several epsilons {sorted(reader.epsilons)}: one is supported")
    size = graph.input_shape[1] if graph.input_shape[1] == graph.input_shape[2] else None
    fields = dict(
        source=model.name, resolution=size, inputs=inputs, input_scale=tuple(float(v) for v in scale), input_offset=tuple(float(v) for v in offset),
        stem=Conv("first_conv", stem.filters, stem.kernel_size, stem.stride, stem.activation, use_bn=True, use_bias=stem.use_bias),
        blocks=tuple(blocks), head=head, classifier_bias=reader.classifier_bias, dropout_rate=reader.dropout_rate,
        bn_epsilon=reader.epsilons.pop(), padding="same" if "same" in reader.paddings else "symmetric", stem_pool=stem_pool,
    )
    digest = hashlib.sha1(json.dumps(KerasFamily(name="", title="", **fields).to_dict(), sort_keys=True).encode()).hexdigest()[:8]
    name = f"keras_{re.sub(r'[^a-z0-9]+', '_', model.name.lower()).strip('_')}_{digest}"
    description = KerasFamily(name=name, title=f"Keras {model.name}", **fields)
    return Reading(description, reader.layers, n_classes, reader.notes)
