"""Short fine-tuning of an extracted subnet with knowledge distillation from the supernet."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


from ofa_tf._backend import keras, tf
from ofa_tf.data.pipeline import eval_dataset, train_dataset
from ofa_tf.data.transforms import DEFAULT_CROP_SCALE
from ofa_tf.training.evaluation import count_correct
from ofa_tf.training.graph_options import graph_rewrites_off
from ofa_tf.training.losses import label_smoothed_cross_entropy, soft_target_cross_entropy
from ofa_tf.errors import DivergedError


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning hyper-parameters (SGD Nesterov, cosine learning rate, KD).

    Args:
        epochs: passes over the training images.
        batch_size: images per step.
        base_lr: learning rate at the start of the cosine schedule.
        kd_ratio: weight of the soft-target loss against the teacher.
        label_smoothing: of the hard-label loss.
        crop_scale: area range of the random resized crop.
        seed: seeds the data order and the augmentation (dropout follows the seed its layers were built
            with: `transfer_subnet` seeds before it loads the model).
    """

    epochs: float = 1.0
    batch_size: int = 64
    base_lr: float = 0.005
    kd_ratio: float = 1.0
    label_smoothing: float = 0.1
    crop_scale: tuple[float, ...] = DEFAULT_CROP_SCALE
    seed: int = 0


def finetune(
    model: Any,
    teacher: Any | None,
    examples: tf.data.Dataset,
    n_examples: int,
    config: FinetuneConfig,
    shuffle_buffer: int | None = None,
) -> int:
    """Trains `model` (stock Keras, fixed resolution) in place; returns the number of steps.

    Args:
        model: the extracted subnet.
        teacher: a Keras model at the same resolution giving the soft targets (inference mode);
            None trains on the labels only (e.g. from scratch).
        examples: (uint8 image, label) training examples.
        n_examples: their number.
        config: hyper-parameters.
        shuffle_buffer: decoded examples shuffled (None: all; a streamed source's `decoded_shuffle_buffer`).
    """
    resolution = int(model.inputs[0].shape[1])
    steps = max(1, int(config.epochs * n_examples) // config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(config.base_lr, steps)
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)
    optimizer.build(model.trainable_variables)  # slots made outside the step: it is traced once, not twice

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = label_smoothed_cross_entropy(labels, logits, config.label_smoothing)
            if teacher is not None and config.kd_ratio > 0:
                soft_targets = tf.stop_gradient(tf.nn.softmax(teacher(images, training=False)))
                loss += config.kd_ratio * soft_target_cross_entropy(soft_targets, logits)
            loss = tf.reduce_mean(loss)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    batches = train_dataset(
        examples, n_examples, config.batch_size, [resolution], config.seed, crop_scale=config.crop_scale, shuffle_buffer=shuffle_buffer
    )
    for images, labels in batches.take(steps):
        with graph_rewrites_off():
            loss = step(images, labels)
        if not math.isfinite(float(loss)):
            raise DivergedError("fine-tuning diverged (loss is not finite): lower --finetune-lr")
    return steps


def keras_top1(model: Any, examples: tf.data.Dataset, batch_size: int = 256) -> float:
    """Top-1 (percent) of a fixed-resolution Keras model on (uint8 image, label) examples."""
    resolution = int(model.inputs[0].shape[1])
    # One trace for every batch size (Keras' predict traces the last, smaller batch again).
    images = tf.TensorSpec([None, resolution, resolution, 3], tf.float32)
    logits = tf.function(lambda x: model(x, training=False), input_signature=[images], autograph=False)
    correct, total = count_correct(logits, eval_dataset(examples, batch_size, resolution))
    return 100.0 * correct / total if total else 0.0
