"""Supernets."""

from ofa_tf.networks.ofa_mbv3 import OFAMobileNetV3

__all__ = ["OFAMobileNetV3"]
