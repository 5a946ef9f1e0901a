"""Training: progressive shrinking with distillation, its configuration, BN recalibration."""

from ofa_tf.training.bn_recalibration import recalibrate_bn

__all__ = ["recalibrate_bn"]
