"""Supernets and their storage."""

from ofa_tf.networks.ofa_mbv3 import OFAMobileNetV3
from ofa_tf.networks.storage import load_supernet, save_supernet

__all__ = ["OFAMobileNetV3", "load_supernet", "save_supernet"]
