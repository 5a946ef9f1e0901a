"""Interoperability with the official PyTorch OFA: checkpoints in, equality proven by tests."""

from ofa_tf.interop.official import (
    from_official_checkpoint,
    from_official_state_dict,
    infer_supernet_args,
    load_official_state_dict,
)

__all__ = ["from_official_checkpoint", "from_official_state_dict", "infer_supernet_args", "load_official_state_dict"]
