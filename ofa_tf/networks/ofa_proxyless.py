"""OFA-ProxylessNAS supernet as a Keras model."""

from __future__ import annotations

from ofa_tf._backend import keras
from ofa_tf.networks.ofa_mbconv import OFAMBConvNetwork


@keras.saving.register_keras_serializable(package="ofa_tf")
class OFAProxylessNASNets(OFAMBConvNetwork):
    """Once-for-All ProxylessNAS supernet (`ofa_proxyless_d234_e346_k357_w1.3`).

    ReLU6 everywhere, no squeeze-excite, BN epsilon 1e-3, six stages of which
    the last is one fixed block (its depth entry is always 1, as upstream's
    `sample_active_subnet`), and one feature-mix conv with BN before pooling
    (`ofa_tf.families.PROXYLESS`). Arguments as `OFAMBConvNetwork`; the released
    supernet has `width_mult=1.3`.

    Example:
        >>> net = OFAProxylessNASNets(width_mult=1.3)
        >>> config = net.sample_active_subnet(seed=0)  # {"ks": [21], "e": [21], "d": [6]}
    """

    FAMILY = "proxyless"
