"""Supernets of elastic MBConv blocks: OFA-MobileNetV3 and OFA-ProxylessNAS, each one description
(`description.py`) over one space, one block, one network and one extractor."""

from __future__ import annotations

from ofa_tf.families.mbconv.description import MOBILENET_V3, PROXYLESS, Family
from ofa_tf.families.mbconv.space import SearchSpace
from ofa_tf.space.registry import RegisteredFamily, register_family

NETWORK = "ofa_tf.families.mbconv.network:OFAMBConvNetwork"  # any description; subclasses name the released two


def register_mbconv_family(description: Family, network: str = NETWORK) -> RegisteredFamily:
    """Registers a family of MBConv blocks from its description (stem, stages as strings, head)."""
    return register_family(RegisteredFamily(description.name, description.title, SearchSpace, network, description))


register_mbconv_family(MOBILENET_V3, "ofa_tf.families.mbconv.network:OFAMobileNetV3")
register_mbconv_family(PROXYLESS, "ofa_tf.families.mbconv.network:OFAProxylessNASNets")
