"""Quantization-aware training (QAT) with tensorflow-model-optimization.

tfmot quantizes only `tf_keras` models, so the float model is rebuilt in
`tf_keras` in its int8-friendly form (`export.rewrite`), annotated (with an
output-quantizing `QuantizeConfig` for `Multiply` and `Rescaling`, which the
default 8-bit registry does not cover), and fine-tuned with fake quantization:
cross-entropy on the labels plus `kd_ratio` x soft-target cross-entropy
against the float model's logits (knowledge distillation).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np

from ofa_tf._backend import tf
from ofa_tf.data.transforms import train_transform
from ofa_tf.errors import ConfigError, DivergedError
from ofa_tf.training.graph_options import graph_rewrites_off


@dataclasses.dataclass
class QATConfig:
    """Fine-tuning settings (saved in the export's JSON card).

    Args:
        epochs: passes over the training split.
        batch_size: images per step.
        learning_rate: peak SGD (Nesterov 0.9) learning rate, cosine-decayed to 0.
        kd_ratio: weight of the distillation loss (0: labels only).
        crop_scale: random-resized-crop area range of the augmentation.
        max_steps_per_epoch: cap on the steps of an epoch (None: the whole split).
        seed: shuffling and augmentation seed.
    """

    epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 0.005
    kd_ratio: float = 1.0
    crop_scale: tuple[float, float] = (0.35, 1.0)
    max_steps_per_epoch: int | None = None
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _output_quantize_config_class():
    import tensorflow_model_optimization as tfmot

    quantize = tfmot.quantization.keras

    class OutputQuantizeConfig(quantize.QuantizeConfig):
        """Quantizes only the output of a weightless elementwise layer (Multiply, Rescaling)."""

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [quantize.quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

        def get_config(self):
            return {}

    return OutputQuantizeConfig


def quantize_model(model: Any) -> Any:
    """A fake-quantized (QAT) tf_keras model of `model` (a Keras 3 model of stock layers)."""
    try:
        import tf_keras
        import tensorflow_model_optimization as tfmot
    except ImportError:
        raise ConfigError('--qat-epochs needs tensorflow-model-optimization and tf-keras: pip install "ofa-tf[export]"') from None

    from ofa_tf.export.rewrite import rebuild

    quantize = tfmot.quantization.keras
    friendly = rebuild(model, lib=tf_keras, int8_friendly=True)
    output_config = _output_quantize_config_class()

    def annotate(layer):
        if isinstance(layer, (tf_keras.layers.Multiply, tf_keras.layers.Rescaling)):
            return quantize.quantize_annotate_layer(layer, quantize_config=output_config())
        return quantize.quantize_annotate_layer(layer)

    annotated = tf_keras.models.clone_model(friendly, clone_function=annotate)
    with quantize.quantize_scope({"OutputQuantizeConfig": output_config}):
        try:
            return quantize.quantize_apply(annotated)
        except (ValueError, RuntimeError) as error:
            raise ConfigError(f"tensorflow-model-optimization cannot quantize this model: {error}") from None


def _training_batches(source: Any, size: int, config: QATConfig) -> tf.data.Dataset:
    base_seed = tf.constant(config.seed, tf.int64)

    def augment(index, example):
        image, label = example
        return train_transform(image, size, tf.stack([base_seed, index]), crop_scale=config.crop_scale), label

    # a streamed source shuffles its records before decoding and bounds the decoded buffer
    buffer = source.decoded_shuffle_buffer or 4096
    examples = source.train_examples(seed=config.seed).shuffle(buffer, seed=config.seed, reshuffle_each_iteration=True)
    return examples.enumerate().map(augment, num_parallel_calls=tf.data.AUTOTUNE).batch(config.batch_size, drop_remainder=True)


def _train_step(student: Any, teacher: Any, optimizer: Any, kd_ratio: float) -> Callable:
    @tf.function
    def step(images, labels):
        soft_targets = tf.nn.softmax(teacher(images, training=False))
        with tf.GradientTape() as tape:
            logits = student(images, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
            if kd_ratio > 0:
                loss += kd_ratio * tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(soft_targets, logits))
        variables = student.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return step


def quantization_aware_training(model: Any, source: Any, config: QATConfig, log: Callable[[str], None] | None = None) -> Any:
    """Fine-tunes a fake-quantized twin of `model` on `source`'s training split; returns it.

    Args:
        model: the float Keras 3 model (fixed input size); also the distillation teacher.
        source: an image source (`ofa_tf.data.sources.open_source`).
        config: the fine-tuning settings.
        log: called with one line per epoch (the CLI prints it).
    """
    import tf_keras

    if config.epochs < 1:
        raise ConfigError(f"--qat-epochs {config.epochs}: use at least 1")
    size = int(model.inputs[0].shape[1])
    student = quantize_model(model)
    batches = _training_batches(source, size, config)
    steps_per_epoch = source.n_train // config.batch_size
    if config.max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    if steps_per_epoch < 1:
        raise ConfigError(f"QAT batch size {config.batch_size} exceeds the {source.n_train} training images")
    total = steps_per_epoch * config.epochs
    schedule = tf_keras.optimizers.schedules.CosineDecay(config.learning_rate, total)
    optimizer = tf_keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)
    optimizer.build(student.trainable_variables)  # slots made outside the step: it is traced once, not twice
    step = _train_step(student, model, optimizer, config.kd_ratio)
    for epoch in range(config.epochs):
        with graph_rewrites_off():
            losses = [float(step(images, labels)) for images, labels in batches.take(steps_per_epoch)]
        if log is not None:
            log(f"QAT epoch {epoch + 1}/{config.epochs}: loss {np.mean(losses):.4f} over {len(losses)} steps")
        if not math.isfinite(float(np.mean(losses))):
            raise DivergedError(f"QAT loss became {np.mean(losses)} in epoch {epoch + 1}: lower the learning rate")
    return student
