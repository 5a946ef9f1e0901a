"""OFA-MobileNetV3 supernet as a Keras model."""

from __future__ import annotations

from ofa_tf._backend import keras
from ofa_tf.networks.ofa_mbconv import OFAMBConvNetwork


@keras.saving.register_keras_serializable(package="ofa_tf")
class OFAMobileNetV3(OFAMBConvNetwork):
    """Once-for-All MobileNetV3 supernet (`ofa_mbv3_d234_e346_k357_w1.0` / `_w1.2`).

    h-swish stem, a ReLU first block, five elastic stages with squeeze-excite in
    three, a final expand conv before pooling and a feature-mix conv after it
    (`ofa_tf.families.MOBILENET_V3`). Arguments as `OFAMBConvNetwork`.

    Example:
        >>> net = OFAMobileNetV3(width_mult=1.0)
        >>> config = net.sample_active_subnet(seed=0)
        >>> subnet = net.get_active_subnet(resolution=224)  # stock Keras layers
    """

    FAMILY = "mbv3"
