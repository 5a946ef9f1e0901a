"""Supernets and their storage."""

from ofa_tf.networks.ofa_mbconv import OFAMBConvNetwork
from ofa_tf.networks.ofa_mbv3 import OFAMobileNetV3
from ofa_tf.networks.ofa_proxyless import OFAProxylessNASNets
from ofa_tf.networks.ofa_resnets import OFAResNets
from ofa_tf.networks.storage import load_supernet, save_supernet, supernet_class

__all__ = ["OFAMBConvNetwork", "OFAMobileNetV3", "OFAProxylessNASNets", "OFAResNets", "load_supernet", "save_supernet", "supernet_class"]
