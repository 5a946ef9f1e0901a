"""The OFA supernet of elastic MBConv blocks as a Keras model, for any family of `ofa_tf.families.mbconv.description`."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ofa_tf._backend import keras, tf
from ofa_tf.families.mbconv.description import POOL
from ofa_tf.layers import activations
from ofa_tf.layers.batch_norm import ElasticBatchNormalization
from ofa_tf.layers.conv import ElasticConv2D
from ofa_tf.layers.dense import ElasticDense
from ofa_tf.families.mbconv.block import ElasticMBConvBlock
from ofa_tf.layers.slicing import shared_slice_vectors
from ofa_tf.layers.skipping import ActiveSubnetMethods, per_entry, residual_or_skip
from ofa_tf.families.mbconv.space import SearchSpace, SubnetConfig


class OFAMBConvNetwork(ActiveSubnetMethods, keras.Model):
    """Once-for-All supernet of MBConv blocks with elastic kernel, expand ratio and depth.

    The fixed structure (stem, first block, stage widths and activations, head)
    is the family description `FAMILY` names (`ofa_tf.families.mbconv.description`); the subclasses
    `OFAMobileNetV3` and `OFAProxylessNASNets` set it.

    The active subnet lives in three int32 `tf.Variable`s (kernel index and
    expand index per block, depth per stage) read inside the graph, so one
    `tf.function` trace serves every subnet: the depthwise kernel is chosen
    by index (gather and slice), widths are slices of the shared weights and
    a block beyond its stage's depth runs on an empty batch (its input is
    sliced to zero images and passed around it), so the graph has no control
    flow. A small subnet therefore computes less, it is not a masked large
    one. Any input resolution works.

    Args:
        width_mult: width multiplier (1.0 and 1.2 are the released supernets).
        ks_list: elastic depthwise kernel sizes.
        expand_ratio_list: elastic expand ratios.
        depth_list: elastic stage depths.
        n_classes: classifier outputs.
        dropout_rate: dropout before the classifier.
        bn_momentum: Keras-style BN momentum (0.9 = PyTorch momentum 0.1).
        bn_epsilon: BN epsilon (None: the family's official one).
        family: the registered MBConv family to build (None: the class's `FAMILY`).
        **kwargs: base `keras.Model` arguments (name).
    """

    FAMILY = "mbv3"

    def __init__(
        self,
        width_mult: float = 1.0,
        ks_list: Sequence[int] = (3, 5, 7),
        expand_ratio_list: Sequence[int] = (3, 4, 6),
        depth_list: Sequence[int] = (2, 3, 4),
        n_classes: int = 1000,
        dropout_rate: float = 0.1,
        bn_momentum: float = 0.9,
        bn_epsilon: float | None = None,
        family: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.space = SearchSpace(
            width_mult=width_mult,
            ks_list=tuple(ks_list),
            expand_ratio_list=tuple(expand_ratio_list),
            depth_list=tuple(depth_list),
            n_classes=n_classes,
            family=self.FAMILY if family is None else family,
        )
        family = self.space.family_spec
        self.dropout_rate = float(dropout_rate)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(family.bn_epsilon if bn_epsilon is None else bn_epsilon)
        space = self.space
        bn = dict(momentum=bn_momentum, epsilon=self.bn_epsilon)
        stem = family.stem_stage
        self.first_conv = ElasticConv2D(space.first_conv_channels, 3, strides=stem.stride, name="first_conv")
        self.first_conv_bn = ElasticBatchNormalization(**bn, name="first_conv_bn")
        first = space.first_block()
        self.first_block = self._make_block(first, (3,), "first_block")
        self.blocks = [self._make_block(spec, space.ks_list, f"blocks_{spec.index}") for spec in space.blocks]
        for conv, channels in zip(family.head, space.head_channels):  # attributes final_expand_conv, ...
            setattr(self, f"{conv.name}_conv", ElasticConv2D(channels, 1, name=f"{conv.name}_conv"))
            if conv.use_bn:
                setattr(self, f"{conv.name}_bn", ElasticBatchNormalization(**bn, name=f"{conv.name}_bn"))
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")
        self.classifier = ElasticDense(n_classes, name="classifier")
        self._make_arch_variables()

    def _make_arch_variables(self) -> None:
        """The active subnet's int32 variables (kernel and expand index per block, depth per stage),
        set to the largest subnet."""
        largest = self.space.to_indices([self.space.max_config()])
        arch_var = dict(trainable=False, dtype=tf.int32, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.active_kernel_index = tf.Variable(largest.kernel_index[0].astype(np.int32), name="active_kernel_index", **arch_var)
        self.active_expand_index = tf.Variable(largest.expand_index[0].astype(np.int32), name="active_expand_index", **arch_var)
        self.active_depth = tf.Variable(largest.depth[0].astype(np.int32), name="active_depth", **arch_var)

    def _make_block(self, spec, ks_list, name) -> ElasticMBConvBlock:
        return ElasticMBConvBlock(
            spec.in_channels,
            spec.out_channels,
            ks_list,
            spec.mid_channels,
            strides=spec.stride,
            activation=spec.activation,
            use_se=spec.use_se,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            name=name,
        )

    def build(self, input_shape=None):
        space = self.space
        self.first_conv.build((None, None, None, 3))
        self.first_conv_bn.build((None, None, None, space.first_conv_channels))
        self.first_block.build()
        for block in self.blocks:
            block.build()
        channels = space.blocks[-1].out_channels
        for conv, out_channels in zip(space.family_spec.head, space.head_channels):
            getattr(self, f"{conv.name}_conv").build((None, None, None, channels))
            if conv.use_bn:
                getattr(self, f"{conv.name}_bn").build((None, None, None, out_channels))
            channels = out_channels
        self.classifier.build((None, channels))
        self.built = True

    # ----- forward -----------------------------------------------------------
    def arch_tensors(self, config: SubnetConfig | None = None) -> dict[str, tf.Tensor]:
        """The subnet as int32 tensors, the form `call(..., arch=)` takes.

        With no config, reads the active-subnet variables (inside a graph the
        read happens at run time, so the graph follows `set_active_subnet`).
        """
        if config is None:
            return {
                "kernel_index": tf.convert_to_tensor(self.active_kernel_index),
                "expand_index": tf.convert_to_tensor(self.active_expand_index),
                "depth": tf.convert_to_tensor(self.active_depth),
            }
        arch = self.space.to_indices([config])
        return {
            "kernel_index": tf.constant(arch.kernel_index[0], tf.int32),
            "expand_index": tf.constant(arch.expand_index[0], tf.int32),
            "depth": tf.constant(arch.depth[0], tf.int32),
        }

    def arch_spec(self, batched: bool = False) -> dict[str, tf.TensorSpec]:
        """`tf.TensorSpec`s of `arch_tensors` (with a leading subnet axis when `batched`)."""
        lead = [None] if batched else []
        n_blocks, n_stages = self.space.n_blocks, self.space.n_stages
        return {
            "kernel_index": tf.TensorSpec(lead + [n_blocks], tf.int32),
            "expand_index": tf.TensorSpec(lead + [n_blocks], tf.int32),
            "depth": tf.TensorSpec(lead + [n_stages], tf.int32),
        }

    def stack_arch(self, configs: Sequence[SubnetConfig]) -> dict[str, tf.Tensor]:
        """Several subnets as stacked arch tensors (`arch_spec(batched=True)`)."""
        arch = self.space.to_indices(configs)
        return {
            "kernel_index": tf.constant(arch.kernel_index, tf.int32),
            "expand_index": tf.constant(arch.expand_index, tf.int32),
            "depth": tf.constant(arch.depth, tf.int32),
        }

    def call(self, inputs, training=None, arch: dict[str, tf.Tensor] | SubnetConfig | None = None):
        """Logits of the active subnet, or of `arch`.

        `arch` is a dict from `arch_tensors` (one graph for every subnet: blocks
        beyond a stage's depth run on no images, see `residual_or_skip`) or a `SubnetConfig`
        (a graph of that subnet only, without control flow; e.g. the teacher).
        """
        with shared_slice_vectors():
            return self._logits(inputs, training, arch)

    def _logits(self, inputs, training, arch):
        if arch is None:
            arch = self.arch_tensors()
        elif isinstance(arch, SubnetConfig):
            arch = self._static_arch(arch)
        arch = per_entry(arch)
        family = self.space.family_spec
        x = self.first_block(self._stem(inputs, training), kernel_index=0, expand_index=0, training=training)
        always_active = min(self.space.depth_list)
        for spec, block in zip(self.space.blocks, self.blocks):

            def run_block(x, residual=True, block=block, i=spec.index):
                return block(
                    x,
                    kernel_index=arch["kernel_index"][i],
                    expand_index=arch["expand_index"][i],
                    training=training,
                    residual=residual,
                )

            active = spec.depth_index < arch["depth"][spec.stage]
            if spec.depth_index < always_active or active is True:
                x = run_block(x)
            else:
                if tf.executing_eagerly():  # the depth is known: skip in Python
                    active = bool(active)
                activation = getattr(block, "residual_activation", None)  # a bottleneck's ReLU after the addition
                x = residual_or_skip(lambda x, run_block=run_block: run_block(x, residual=False), x, active, activation)
        for conv in family.head_sequence:
            if conv == POOL:
                x = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
                continue
            x = getattr(self, f"{conv.name}_conv")(x)
            if conv.use_bn:
                x = getattr(self, f"{conv.name}_bn")(x, training=training)
            x = activations.get(conv.activation)(x)
        x = tf.reshape(x, (-1, self.space.classifier_in_channels))
        x = self.dropout(x, training=training)
        return self.classifier(x)

    def _stem(self, inputs, training):
        x = self.first_conv_bn(self.first_conv(inputs), training=training)
        return activations.get(self.space.family_spec.stem_stage.activation)(x)

    def variables_in_use(self, archs: dict[str, tf.Tensor]) -> list[tf.Tensor | None]:
        """Whether any of a batch of subnets uses each trainable variable.

        Args:
            archs: arch tensors with a leading subnet axis (`arch_spec(batched=True)`).

        Returns:
            per `trainable_variables` entry, a bool scalar tensor, or None where
            every subnet uses the variable. Unused are the blocks beyond a
            stage's depth and the kernel transformation matrices of blocks at
            their largest kernel: upstream's optimizer skips such parameters
            (their gradient is None), weight decay and momentum included.
        """
        in_use = {}
        always_active = min(self.space.depth_list)
        for spec, block in zip(self.space.blocks, self.blocks):
            active = spec.depth_index < archs["depth"][:, spec.stage]  # [subnets]
            if spec.depth_index >= always_active:
                block_in_use = tf.reduce_any(active)
                for variable in block.trainable_variables:
                    in_use[id(variable)] = block_in_use
            depthwise = getattr(block, "depthwise", None)  # a converted network's bottlenecks have none
            for matrix, used in depthwise.matrices_in_use(archs["kernel_index"][:, spec.index]) if depthwise else ():
                in_use[id(matrix)] = tf.reduce_any(used & active)
        return [in_use.get(id(variable)) for variable in self.trainable_variables]

    def _static_arch(self, config: SubnetConfig) -> dict[str, list[int]]:
        """`config` as Python ints in the layout of `arch_tensors`."""
        arch = self.space.to_indices([config])
        return {
            "kernel_index": [int(v) for v in arch.kernel_index[0]],
            "expand_index": [int(v) for v in arch.expand_index[0]],
            "depth": [int(v) for v in arch.depth[0]],
        }

    # ----- the active subnet (official method names) ---------------------------
    @property
    def active_config(self) -> SubnetConfig:
        """The active subnet as a `SubnetConfig` (resolution unset)."""
        ks = np.asarray(self.space.ks_list)[self.active_kernel_index.numpy()]
        e = np.asarray(self.space.expand_ratio_list)[self.active_expand_index.numpy()]
        return SubnetConfig(
            ks=tuple(int(v) for v in ks), e=tuple(v.item() for v in e), d=tuple(int(v) for v in self.active_depth.numpy())
        )

    def set_active_config(self, config: SubnetConfig) -> None:
        """Makes `config` the active subnet (validated against the search space)."""
        arch = self.space.to_indices([config])
        self.active_kernel_index.assign(arch.kernel_index[0].astype(np.int32))
        self.active_expand_index.assign(arch.expand_index[0].astype(np.int32))
        self.active_depth.assign(arch.depth[0].astype(np.int32))

    def set_active_subnet(self, ks=None, e=None, d=None, **kwargs) -> None:
        """Sets kernel sizes, expand ratios and depths, as upstream.

        Each argument is an int (every block / stage) or a list; `None` (or a
        `None` entry) keeps the current value.
        """
        self.set_active_config(self.space.normalize(ks, e, d, base=self.active_config))

    def extract(self, config: SubnetConfig | None = None, lib: Any = keras, name: str | None = None) -> Any:
        """Subnet `config` (default: the active one) as a stock Keras model (`ofa_tf.families.mbconv.extract`)."""
        from ofa_tf.families.mbconv.extract import extract_mbconv_subnet

        return extract_mbconv_subnet(self, config, lib=lib, name=name)

    def slot_output(self, x: Any, spec: Any) -> Any:
        """The stock layers of one latency-table key applied to `x`, with this supernet's weights."""
        from ofa_tf.families.mbconv.extract import slot_output

        return slot_output(self, x, spec)

    def re_organize_middle_weights(self, expand_ratio_stage: int = 0) -> None:
        """Sorts middle channels by importance so small expand ratios keep the best ones."""
        for block in self.blocks:
            block.reorganize_middle_channels(expand_ratio_stage)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        space = self.space
        config.update(
            width_mult=space.width_mult,
            ks_list=list(space.ks_list),
            expand_ratio_list=list(space.expand_ratio_list),
            depth_list=list(space.depth_list),
            n_classes=space.n_classes,
            dropout_rate=self.dropout_rate,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            family=space.family,
        )
        return config


@keras.saving.register_keras_serializable(package="ofa_tf")
class OFAMobileNetV3(OFAMBConvNetwork):
    """Once-for-All MobileNetV3 supernet (`ofa_mbv3_d234_e346_k357_w1.0` / `_w1.2`).

    h-swish stem, a ReLU first block, five elastic stages with squeeze-excite in
    three, a final expand conv before pooling and a feature-mix conv after it
    (`ofa_tf.families.mbconv.description.MOBILENET_V3`). Arguments as `OFAMBConvNetwork`.

    Example:
        >>> net = OFAMobileNetV3(width_mult=1.0)
        >>> config = net.sample_active_subnet(seed=0)
        >>> subnet = net.get_active_subnet(resolution=224)  # stock Keras layers
    """

    FAMILY = "mbv3"


@keras.saving.register_keras_serializable(package="ofa_tf")
class OFAProxylessNASNets(OFAMBConvNetwork):
    """Once-for-All ProxylessNAS supernet (`ofa_proxyless_d234_e346_k357_w1.3`).

    ReLU6 everywhere, no squeeze-excite, BN epsilon 1e-3, six stages of which
    the last is one fixed block (its depth entry is always 1, as upstream's
    `sample_active_subnet`), and one feature-mix conv with BN before pooling
    (`ofa_tf.families.mbconv.description.PROXYLESS`). Arguments as `OFAMBConvNetwork`; the released
    supernet has `width_mult=1.3`.

    Example:
        >>> net = OFAProxylessNASNets(width_mult=1.3)
        >>> config = net.sample_active_subnet(seed=0)  # {"ks": [21], "e": [21], "d": [6]}
    """

    FAMILY = "proxyless"
