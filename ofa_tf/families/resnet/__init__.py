"""OFA-ResNet50-D: its space, layer slots, bottleneck block, supernet, extractor and official checkpoint keys."""

from ofa_tf.families.resnet.space import ResNetSpace
from ofa_tf.space.registry import RegisteredFamily, register_family

register_family(RegisteredFamily(
    "resnet50", "OFA-ResNet50-D", ResNetSpace, "ofa_tf.families.resnet.network:OFAResNets",
    official_class="OFAResNets", official_module="ofa_tf.families.resnet.official",
))
