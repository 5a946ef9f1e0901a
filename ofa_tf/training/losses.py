"""Losses of progressive shrinking: label-smoothed cross-entropy plus distillation."""

from ofa_tf._backend import tf


def label_smoothed_cross_entropy(labels: tf.Tensor, logits: tf.Tensor, smoothing: float) -> tf.Tensor:
    """Per-example CE against (1 - s) * one_hot + s / n_classes."""
    n_classes = tf.shape(logits)[-1]
    one_hot = tf.one_hot(labels, n_classes, dtype=tf.float32)
    targets = one_hot * (1.0 - smoothing) + smoothing / tf.cast(n_classes, tf.float32)
    return soft_target_cross_entropy(targets, logits)


def soft_target_cross_entropy(targets: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-example `sum(-targets * log_softmax(logits))` (reference `cross_entropy_loss_with_soft_target`)."""
    return tf.reduce_sum(-targets * tf.nn.log_softmax(tf.cast(logits, tf.float32)), axis=-1)
