"""Training utilities: BN recalibration (more to come: progressive shrinking)."""

from ofa_tf.training.bn_recalibration import recalibrate_bn

__all__ = ["recalibrate_bn"]
