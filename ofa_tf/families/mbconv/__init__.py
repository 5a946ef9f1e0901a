"""Supernets of elastic MBConv blocks: OFA-MobileNetV3 and OFA-ProxylessNAS, each one description
(`description.py`) over one space, one block, one network and one extractor."""

from __future__ import annotations

from ofa_tf.families.mbconv.description import MOBILENET_V3, PROXYLESS, Family
from ofa_tf.families.mbconv.space import SearchSpace
from ofa_tf.space.registry import RegisteredFamily, register_family

NETWORK = "ofa_tf.families.mbconv.network:OFAMBConvNetwork"  # any description; subclasses name the released two
OFFICIAL = "ofa_tf.families.mbconv.official"


def register_mbconv_family(description: Family, network: str = NETWORK, official: bool = False) -> RegisteredFamily:
    """Registers a family of MBConv blocks from its description (stem, stages as strings, head);
    `official`: its checkpoints are the official OFA package's (`description.official_class`)."""
    return register_family(RegisteredFamily(
        description.name, description.title, SearchSpace, network, description,
        official_class=description.official_class if official else "", official_module=OFFICIAL if official else "",
    ))


register_mbconv_family(MOBILENET_V3, "ofa_tf.families.mbconv.network:OFAMobileNetV3", official=True)
register_mbconv_family(PROXYLESS, "ofa_tf.families.mbconv.network:OFAProxylessNASNets", official=True)
