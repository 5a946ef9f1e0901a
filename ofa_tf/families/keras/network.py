"""The supernet of a network converted from Keras: the MBConv supernet over the model's own layers."""

from __future__ import annotations

from typing import Any, Sequence

from ofa_tf._backend import keras, tf
from ofa_tf.families.keras.bottleneck import ElasticKerasBottleneck
from ofa_tf.families.keras.space import KerasSpace
from ofa_tf.families.mbconv.block import ElasticMBConvBlock
from ofa_tf.families.mbconv.network import OFAMBConvNetwork
from ofa_tf.layers import activations
from ofa_tf.layers.batch_norm import ElasticBatchNormalization
from ofa_tf.layers.conv import ElasticConv2D
from ofa_tf.layers.dense import ElasticDense


@keras.saving.register_keras_serializable(package="ofa_tf")
class KerasMBConvNetwork(OFAMBConvNetwork):
    """Once-for-All supernet whose largest subnet is a Keras model (`ofa_tf.elastic.from_keras`).

    The structure is the converted family's description (`ofa_tf.families.keras.description`):
    the model's preprocessing (a constant per-channel scale and offset), its stem, every block
    with its own kernel, middle width, activation and squeeze-excite, TF 'same' padding (what
    Keras' `correct_pad` + "valid" computes at stride 2), its head and classifier. Subnets,
    one-trace training and extraction are `OFAMBConvNetwork`'s.

    Args:
        family: the registered converted family.
        ks_list: kernel sizes (empty: the model's defaults, `ofa_tf.families.keras.space.default_choices`).
        expand_ratio_list: fractions of each block's middle width (empty: the defaults).
        depth_list: blocks per stage (empty: the defaults).
        n_classes: classifier outputs.
        width_mult: always 1.0.
        dropout_rate: dropout before the classifier (None: the model's).
        bn_momentum: Keras-style BN momentum.
        bn_epsilon: BN epsilon (None: the model's).
        **kwargs: base `keras.Model` arguments (name).
    """

    def __init__(
        self,
        family: str,
        ks_list: Sequence[int] = (),
        expand_ratio_list: Sequence[float] = (),
        depth_list: Sequence[int] = (),
        n_classes: int = 1000,
        width_mult: float = 1.0,
        dropout_rate: float | None = None,
        bn_momentum: float = 0.9,
        bn_epsilon: float | None = None,
        **kwargs,
    ):
        keras.Model.__init__(self, **kwargs)
        self.space = KerasSpace(
            width_mult=width_mult, ks_list=tuple(ks_list), expand_ratio_list=tuple(expand_ratio_list),
            depth_list=tuple(depth_list), n_classes=n_classes, family=family,
        )
        description, space = self.space.family_spec, self.space
        self.dropout_rate = float(description.dropout_rate if dropout_rate is None else dropout_rate)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(description.bn_epsilon if bn_epsilon is None else bn_epsilon)
        bn = dict(momentum=bn_momentum, epsilon=self.bn_epsilon)
        stem = description.stem
        self.first_conv = ElasticConv2D(
            stem.width, stem.kernel_size, strides=stem.stride, use_bias=stem.use_bias, padding=description.padding, name="first_conv"
        )
        self.first_conv_bn = ElasticBatchNormalization(**bn, name="first_conv_bn")
        self.first_block = self._make_block(space.first_block(), (), "first_block")
        self.blocks = [self._make_block(spec, (), f"blocks_{spec.index}") for spec in space.blocks]
        for conv in description.head:
            setattr(self, f"{conv.name}_conv", ElasticConv2D(conv.width, conv.kernel_size, use_bias=conv.use_bias, name=f"{conv.name}_conv"))
            if conv.use_bn:
                setattr(self, f"{conv.name}_bn", ElasticBatchNormalization(**bn, name=f"{conv.name}_bn"))
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")
        self.classifier = ElasticDense(n_classes, use_bias=description.classifier_bias, name="classifier")
        scale, offset, _ = description.network_input()
        self._input_scale, self._input_offset = tf.constant(scale, tf.float32), tf.constant(offset, tf.float32)
        self._make_arch_variables()

    def _make_block(self, spec, ks_list, name) -> ElasticMBConvBlock | ElasticKerasBottleneck:
        if spec.kind == "bottleneck":
            return ElasticKerasBottleneck(
                spec.in_channels, spec.out_channels, spec.mid_channels, spec.kernel_size_list[0], spec.stride,
                stride_on=spec.stride_on, shortcut=spec.shortcut, use_bias=spec.use_bias,
                padding=self.space.family_spec.padding, bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon, name=name,
            )
        return ElasticMBConvBlock(
            spec.in_channels, spec.out_channels, spec.kernel_size_list, spec.mid_channels, strides=spec.stride,
            activation=spec.activation, use_se=spec.use_se, bn_momentum=self.bn_momentum, bn_epsilon=self.bn_epsilon,
            padding=self.space.family_spec.padding, se_options=spec.se.options() if spec.se else None,
            has_expand=spec.has_expand, name=name,
        )

    def _stem(self, inputs, training):
        description = self.space.family_spec
        if description.has_preprocessing:
            inputs = inputs * self._input_scale + self._input_offset
        x = activations.get(description.stem.activation)(self.first_conv_bn(self.first_conv(inputs), training=training))
        if description.stem_pool:  # as ResNet50's ZeroPadding2D(1) + MaxPooling2D(3, 2), or 'same' pooling
            if description.padding == "same":
                return tf.nn.max_pool2d(x, 3, 2, "SAME")
            return tf.nn.max_pool2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), 3, 2, "VALID")
        return x

    def extract(self, config=None, lib: Any = keras, name: str | None = None) -> Any:
        """Subnet `config` (default: the active one) as a stock Keras model (`ofa_tf.families.keras.extract`)."""
        from ofa_tf.families.keras.extract import extract_keras_subnet

        return extract_keras_subnet(self, config, lib=lib, name=name)

    def slot_output(self, x: Any, spec: Any) -> Any:
        from ofa_tf.families.keras.extract import keras_slot_output

        return keras_slot_output(self, x, spec)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(expand_ratio_list=[float(e) for e in self.space.expand_ratio_list])
        return config
