"""Elastic Keras layers of the OFA supernet."""

from ofa_tf.layers.batch_norm import ElasticBatchNormalization
from ofa_tf.layers.conv import ElasticConv2D
from ofa_tf.layers.dense import ElasticDense
from ofa_tf.layers.depthwise import ElasticDepthwiseConv2D
from ofa_tf.layers.se import ElasticSqueezeExcite

__all__ = [
    "ElasticBatchNormalization",
    "ElasticConv2D",
    "ElasticDense",
    "ElasticDepthwiseConv2D",
    "ElasticSqueezeExcite",
]
