"""BN recalibration of a subnet, as the official `set_running_statistics`.

After weight sharing, the running statistics of the max network do not fit
a subnet. Recalibration forwards a few training batches through the active
subnet with batch-statistics BN and sets each active BN's running mean and
variance to the average, over batches (weighted by batch size), of the batch
mean and the biased batch variance.
"""

from __future__ import annotations

import weakref
from typing import Iterable

from ofa_tf._backend import tf
from ofa_tf.layers.batch_norm import ElasticBatchNormalization
from ofa_tf.errors import DataError

# One traced forward and one update-factor variable per supernet, kept outside
# the model so that they are not part of its weights or checkpoints.
_RECALIBRATORS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _bn_layers(net) -> list[ElasticBatchNormalization]:
    return [layer for layer in net._flatten_layers() if isinstance(layer, ElasticBatchNormalization)]


def _recalibrator(net):
    if net not in _RECALIBRATORS:
        factor = tf.Variable(1.0, trainable=False, dtype=tf.float32)
        images = tf.TensorSpec([None, None, None, 3], tf.float32)
        forward = tf.function(lambda x, arch: net(x, training=True, arch=arch), input_signature=[images, net.arch_spec()], autograph=False)
        _RECALIBRATORS[net] = (forward, factor)
    return _RECALIBRATORS[net]


def recalibrate_bn(net, batches: Iterable, config=None) -> int:
    """Resets the running BN statistics of a subnet of `net` from `batches`.

    Args:
        net: an `OFAMobileNetV3`.
        batches: images as arrays/tensors of shape [N, H, W, 3], or (images, labels) pairs.
        config: the subnet to recalibrate (default: the active one).

    Returns:
        the number of images used.
    """
    arch = net.arch_tensors(config)
    forward, factor = _recalibrator(net)
    layers = _bn_layers(net)
    for layer in layers:
        layer.update_factor = factor
    seen = 0
    try:
        for batch in batches:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            n = int(images.shape[0])
            factor.assign(n / (seen + n))
            forward(tf.cast(images, tf.float32), arch)
            seen += n
    finally:
        for layer in layers:
            layer.update_factor = None
    if seen == 0:
        raise DataError("BN recalibration got no images: pass a non-empty iterable of batches")
    return seen
