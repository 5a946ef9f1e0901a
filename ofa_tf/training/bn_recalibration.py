"""BN recalibration of a subnet, as the official `set_running_statistics`.

After weight sharing, the running statistics of the max network do not fit
a subnet. Recalibration forwards a few training batches through the active
subnet with batch-statistics BN and sets each active BN's running mean and
variance to the average, over batches (weighted by batch size), of the batch
mean and the biased batch variance.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ofa_tf._backend import tf
from ofa_tf.layers.batch_norm import ElasticBatchNormalization


def _bn_layers(net) -> list[ElasticBatchNormalization]:
    return [layer for layer in net._flatten_layers() if isinstance(layer, ElasticBatchNormalization)]


def recalibrate_bn(net, batches: Iterable, config=None) -> int:
    """Resets the running BN statistics of `net`'s active subnet from `batches`.

    Args:
        net: an `OFAMobileNetV3`.
        batches: images as arrays/tensors of shape [N, H, W, 3], or (images, labels) pairs.
        config: the subnet to recalibrate (default: the active one).

    Returns:
        the number of images used.
    """
    if config is not None:
        net.set_active_config(config)
    layers = _bn_layers(net)
    factor = tf.Variable(1.0, trainable=False, dtype=tf.float32)
    for layer in layers:
        layer.update_factor, layer.unbiased_running_variance = factor, False
    forward = tf.function(lambda images: net(images, training=True))
    seen = 0
    try:
        for batch in batches:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            n = int(images.shape[0])
            factor.assign(n / (seen + n))
            forward(tf.convert_to_tensor(np.asarray(images, np.float32) if not tf.is_tensor(images) else images))
            seen += n
    finally:
        for layer in layers:
            layer.update_factor, layer.unbiased_running_variance = None, True
    if seen == 0:
        raise ValueError("BN recalibration got no images: pass a non-empty iterable of batches")
    return seen
