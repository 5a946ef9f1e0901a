"""OFA-ResNet50-D supernet (`ofa_resnet50`) as a Keras model."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ofa_tf._backend import keras, tf
from ofa_tf.layers.batch_norm import ElasticBatchNormalization
from ofa_tf.families.resnet.block import ElasticBottleneckBlock
from ofa_tf.layers.conv import ElasticConv2D
from ofa_tf.layers.dense import ElasticDense
from ofa_tf.layers.slicing import shared_slice_vectors
from ofa_tf.layers.skipping import ActiveSubnetMethods, per_entry, residual_or_skip
from ofa_tf.families.resnet.space import BASE_DEPTHS, ResNetSpace, ResNetSubnetConfig, to_arrays


def _pick(values: Sequence[int], index) -> Any:
    """values[index] for a Python int index, else a gather from a constant."""
    if isinstance(index, (int, np.integer)):
        return int(values[int(index)])
    return tf.gather(tf.constant(values, tf.int32), index)


@keras.saving.register_keras_serializable(package="ofa_tf")
class OFAResNets(ActiveSubnetMethods, keras.Model):
    """Once-for-All ResNet50-D supernet with elastic depth, expand ratio and width.

    As `OFAMobileNetV3`, the active subnet lives in int32 `tf.Variable`s (depth
    per stem and stage, expand index per block, width index per stem conv pair
    and stage) read inside the graph: one `tf.function` trace serves every
    subnet, widths are leading slices of the shared weights and a block beyond
    its stage's depth (or the residual stem conv when the stem depth is not the
    largest) runs on an empty batch. Constants follow upstream
    (`ofa/imagenet_classification/elastic_nn/networks/ofa_resnets.py`).

    Args:
        depth_list: elastic depths per stage (blocks beyond the base 2, 2, 4, 2).
        expand_ratio_list: middle width / output width choices.
        width_mult_list: width multiplier choices.
        n_classes: classifier outputs.
        dropout_rate: dropout before the classifier (upstream's supernet: 0).
        bn_momentum: Keras-style BN momentum (0.9 = PyTorch momentum 0.1).
        bn_epsilon: BN epsilon.
        **kwargs: base `keras.Model` arguments (name).

    Example:
        >>> net = OFAResNets()
        >>> config = net.sample_active_subnet(seed=0)  # {"d": [5], "e": [18], "w": [6]}
        >>> subnet = net.get_active_subnet(resolution=224)  # stock Keras layers
    """

    FAMILY = "resnet50"

    def __init__(
        self,
        depth_list: Sequence[int] = (0, 1, 2),
        expand_ratio_list: Sequence[float] = (0.2, 0.25, 0.35),
        width_mult_list: Sequence[float] = (0.65, 0.8, 1.0),
        n_classes: int = 1000,
        dropout_rate: float = 0.0,
        bn_momentum: float = 0.9,
        bn_epsilon: float = 1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.space = space = ResNetSpace(
            depth_list=tuple(depth_list), expand_ratio_list=tuple(expand_ratio_list),
            width_mult_list=tuple(width_mult_list), n_classes=n_classes,
        )
        self.dropout_rate = float(dropout_rate)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        bn = dict(momentum=bn_momentum, epsilon=bn_epsilon)
        c0, c1 = max(space.stem_mid_widths), max(space.stem_widths)
        self.stem_convs = [
            ElasticConv2D(c0, 3, strides=2, name="stem_conv_0"),
            ElasticConv2D(c0, 3, name="stem_conv_1"),
            ElasticConv2D(c1, 3, name="stem_conv_2"),
        ]
        self.stem_bns = [ElasticBatchNormalization(**bn, name=f"stem_bn_{i}") for i in range(3)]
        self.blocks = [
            ElasticBottleneckBlock(
                max(spec.in_widths), max(spec.out_widths), int(space.mid_table(spec.stage).max()), spec.stride,
                spec.has_downsample, bn_momentum, bn_epsilon, name=f"blocks_{spec.index}",
            )
            for spec in space.blocks
        ]
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")
        self.classifier = ElasticDense(n_classes, name="classifier")
        self._mid_tables = [tf.constant(space.mid_table(stage), tf.int32) for stage in range(space.n_stages)]
        arch_var = dict(trainable=False, dtype=tf.int32, aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        largest = to_arrays([space.max_config()], space)
        self.active_depth = tf.Variable(largest["depth"][0], name="active_depth", **arch_var)
        self.active_expand_index = tf.Variable(largest["expand_index"][0], name="active_expand_index", **arch_var)
        self.active_width_index = tf.Variable(largest["width_index"][0], name="active_width_index", **arch_var)

    def build(self, input_shape=None):
        c0, c1 = max(self.space.stem_mid_widths), max(self.space.stem_widths)
        for conv, bn, (cin, cout) in zip(self.stem_convs, self.stem_bns, ((3, c0), (c0, c0), (c0, c1))):
            conv.build((None, None, None, cin))
            bn.build((None, None, None, cout))
        for block in self.blocks:
            block.build()
        self.classifier.build((None, self.blocks[-1].out_channels))
        self.built = True

    # ----- forward -----------------------------------------------------------
    def arch_tensors(self, config: ResNetSubnetConfig | None = None) -> dict[str, tf.Tensor]:
        """The subnet as int32 tensors (the active-subnet variables when `config` is None)."""
        if config is None:
            return {
                "depth": tf.convert_to_tensor(self.active_depth),
                "expand_index": tf.convert_to_tensor(self.active_expand_index),
                "width_index": tf.convert_to_tensor(self.active_width_index),
            }
        return {key: tf.constant(value[0]) for key, value in to_arrays([config], self.space).items()}

    def arch_spec(self, batched: bool = False) -> dict[str, tf.TensorSpec]:
        lead = [None] if batched else []
        space = self.space
        return {
            "depth": tf.TensorSpec(lead + [1 + space.n_stages], tf.int32),
            "expand_index": tf.TensorSpec(lead + [space.n_blocks], tf.int32),
            "width_index": tf.TensorSpec(lead + [2 + space.n_stages], tf.int32),
        }

    def stack_arch(self, configs: Sequence[ResNetSubnetConfig]) -> dict[str, tf.Tensor]:
        """Several subnets as stacked arch tensors (`arch_spec(batched=True)`)."""
        return {key: tf.constant(value) for key, value in to_arrays(configs, self.space).items()}

    def variables_in_use(self, archs: dict[str, tf.Tensor]) -> list[tf.Tensor | None]:
        """Whether any of a batch of subnets uses each trainable variable (None: every one does),
        as `OFAMobileNetV3.variables_in_use`: blocks beyond a stage's depth and the skipped
        residual stem conv are unused (upstream's optimizer skips them)."""
        space, in_use = self.space, {}
        stem_used = tf.reduce_any(archs["depth"][:, 0] == space.max_depth)
        for variable in self.stem_convs[1].trainable_variables + self.stem_bns[1].trainable_variables:
            in_use[id(variable)] = stem_used
        for spec, block in zip(space.blocks, self.blocks):
            base = BASE_DEPTHS[spec.stage]
            if spec.depth_index >= base + min(space.depth_list):
                used = tf.reduce_any(spec.depth_index < base + archs["depth"][:, 1 + spec.stage])
                for variable in block.trainable_variables:
                    in_use[id(variable)] = used
        return [in_use.get(id(variable)) for variable in self.trainable_variables]

    def call(self, inputs, training=None, arch: dict[str, tf.Tensor] | ResNetSubnetConfig | None = None):
        """Logits of the active subnet, or of `arch` (tensors from `arch_tensors`, or a config)."""
        with shared_slice_vectors():
            return self._logits(inputs, training, arch)

    def _logits(self, inputs, training, arch):
        space = self.space
        if arch is None:
            arch = self.arch_tensors()
        elif isinstance(arch, ResNetSubnetConfig):
            arch = {key: [int(v) for v in value[0]] for key, value in to_arrays([arch], space).items()}
        arch = per_entry(arch)
        depth, expand, width = arch["depth"], arch["expand_index"], arch["width_index"]
        c0, c1 = _pick(space.stem_mid_widths, width[0]), _pick(space.stem_widths, width[1])
        x = tf.nn.relu(self.stem_bns[0](self.stem_convs[0](inputs, active_filters=c0), training=training))

        def stem_residual(x):
            return tf.nn.relu(self.stem_bns[1](self.stem_convs[1](x, active_filters=c0), training=training))

        x = residual_or_skip(stem_residual, x, depth[0] == space.max_depth)
        x = tf.nn.relu(self.stem_bns[2](self.stem_convs[2](x, active_filters=c1), training=training))
        x = tf.nn.max_pool2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), 3, 2, "VALID")  # x >= 0: zeros pad as -inf
        for spec, block in zip(space.blocks, self.blocks):
            w = width[2 + spec.stage]
            out = _pick(space.stage_widths(spec.stage), w)
            if isinstance(w, (int, np.integer)) and isinstance(expand[spec.index], (int, np.integer)):
                mid = int(space.mid_table(spec.stage)[w, expand[spec.index]])
            else:
                mid = tf.gather_nd(self._mid_tables[spec.stage], tf.stack([w, expand[spec.index]]))
            if spec.depth_index < BASE_DEPTHS[spec.stage] + min(space.depth_list):
                x = block(x, mid_channels=mid, out_channels=out, training=training)
                continue
            active = spec.depth_index < BASE_DEPTHS[spec.stage] + depth[1 + spec.stage]
            # a block beyond the base depth has an identity shortcut: relu(x + branch(x)), x a ReLU output
            branch = lambda x, block=block, mid=mid, out=out: block.branch(x, mid, out, training=training)  # noqa: E731
            x = residual_or_skip(branch, x, active, activation=tf.nn.relu)
        x = tf.reduce_mean(x, axis=[1, 2])
        x = self.dropout(x, training=training)
        return self.classifier(x)

    # ----- the active subnet (official method names) ---------------------------
    @property
    def active_config(self) -> ResNetSubnetConfig:
        e = np.asarray(self.space.expand_ratio_list)[self.active_expand_index.numpy()]
        return ResNetSubnetConfig(
            d=tuple(int(v) for v in self.active_depth.numpy()), e=tuple(float(v) for v in e),
            w=tuple(int(v) for v in self.active_width_index.numpy()),
        )

    def set_active_config(self, config: ResNetSubnetConfig) -> None:
        arrays = to_arrays([config], self.space)
        self.active_depth.assign(arrays["depth"][0])
        self.active_expand_index.assign(arrays["expand_index"][0])
        self.active_width_index.assign(arrays["width_index"][0])

    def set_active_subnet(self, d=None, e=None, w=None, **kwargs) -> None:
        """Sets depths, expand ratios and width indices, as upstream (ints or lists; None keeps)."""
        self.set_active_config(self.space.normalize(d, e, w, base=self.active_config))

    def extract(self, config: ResNetSubnetConfig | None = None, lib: Any = keras, name: str | None = None) -> keras.Model:
        """Subnet `config` (default: the active one) as a stock Keras model (`ofa_tf.families.resnet.extract`)."""
        from ofa_tf.families.resnet.extract import extract_resnet_subnet

        return extract_resnet_subnet(self, config, lib=lib, name=name)

    def re_organize_middle_weights(self, expand_ratio_stage: int = 0) -> None:
        """Sorts each block's middle channels by importance, as upstream."""
        space = self.space
        for spec, block in zip(space.blocks, self.blocks):
            widths = tuple(space.mid_channels(max(spec.out_widths), e) for e in space.expand_ratio_list)
            block.reorganize_middle_channels(expand_ratio_stage, widths)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        space = self.space
        config.update(
            depth_list=list(space.depth_list), expand_ratio_list=list(space.expand_ratio_list),
            width_mult_list=list(space.width_mult_list), n_classes=space.n_classes,
            dropout_rate=self.dropout_rate, bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon,
        )
        return config
