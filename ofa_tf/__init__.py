"""ofa-tf: Once-for-All (Cai et al., ICLR 2020) in Keras/TensorFlow.

Public names are imported lazily, so `ofa_tf.errors` and the CLI's help do
not pay for importing TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "ConfigError": "ofa_tf.errors",
    "DataError": "ofa_tf.errors",
    "OFAError": "ofa_tf.errors",
    "OFAMobileNetV3": "ofa_tf.families.mbconv.network",
    "OFAProxylessNASNets": "ofa_tf.families.mbconv.network",
    "OFAResNets": "ofa_tf.families.resnet.network",
    "SearchSpace": "ofa_tf.families.mbconv.space",
    "SubnetConfig": "ofa_tf.families.mbconv.space",
    "make_divisible": "ofa_tf.space.choices",
    "count_macs": "ofa_tf.supernet.counting",
    "count_params": "ofa_tf.supernet.counting",
    "count_model_macs": "ofa_tf.supernet.counting",
    "count_model_params": "ofa_tf.supernet.counting",
    "extract_subnet": "ofa_tf.supernet.extract",
    "load_supernet": "ofa_tf.supernet.storage",
    "save_supernet": "ofa_tf.supernet.storage",
    "from_official_checkpoint": "ofa_tf.interop",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ofa_tf' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
