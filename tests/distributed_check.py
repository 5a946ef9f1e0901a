"""Runs one training step on 2 logical CPU replicas and compares it with per-half gradients.

Run as a script (logical devices must be configured before TensorFlow starts);
prints a JSON line with the largest differences.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from ofa_tf.data.pipeline import train_dataset  # noqa: E402
from ofa_tf.families.mbconv.network import OFAMobileNetV3
from ofa_tf.training.config import apply_overrides  # noqa: E402
from ofa_tf.training.presets import cifar_preset
from ofa_tf.training.losses import label_smoothed_cross_entropy  # noqa: E402
from ofa_tf.training.schedule import scaled_lr  # noqa: E402
from ofa_tf.training.trainer import ProgressiveShrinkingTrainer  # noqa: E402


def main(run_dir: str) -> None:
    phase = dict(name="teacher", ks_list=[7], expand_ratio_list=[6], depth_list=[2], epochs=1, warmup_epochs=0,
                 base_lr=0.05, subnets_per_step=1, kd=False)
    config = apply_overrides(cifar_preset(), dict(  # a depth-2 supernet: half the tracing
        width_mult=0.25, depth_list=[2], resolutions=[32], eval_resolutions=[32], batch_size=16, dropout_rate=0.0,
        bn_recalibration_images=32, bn_recalibration_batch=16, max_steps_per_phase=1, phases=[phase]))
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    trainer = ProgressiveShrinkingTrainer(config, run_dir, strategy=strategy)
    reference = OFAMobileNetV3(width_mult=0.25, depth_list=(2,), n_classes=10, dropout_rate=0.0)
    reference.build((None, None, None, 3))
    for target, source in zip(reference.weights, trainer.net.weights):
        target.assign(source.numpy())
    before = [v.numpy() for v in trainer.variables]

    images, labels = next(iter(train_dataset(trainer.source.train_examples(), trainer.source.n_train, 16, [32],
                                             seed=config.seed, crop_scale=config.crop_scale)))
    subnet = reference.space.max_config()
    variables = reference.trainable_variables
    summed = [np.zeros(v.shape, np.float32) for v in variables]
    for half in (slice(0, 8), slice(8, 16)):  # each replica's half, with its own BN statistics
        with tf.GradientTape() as tape:
            logits = reference(images[half], training=True, arch=reference.arch_tensors(subnet))
            per_example = label_smoothed_cross_entropy(labels[half], logits, config.label_smoothing)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=16)
        for i, g in enumerate(tape.gradient(loss, variables)):
            summed[i] += 0.0 if g is None else g.numpy()

    distributed = next(iter(trainer._dataset(0)))  # the same first batch, split between the replicas
    trainer.train_step(*distributed, [subnet], scaled_lr(0.05, 16), distill=False)
    after = [v.numpy() for v in trainer.variables]
    lr = scaled_lr(0.05, 16)
    worst_update = worst_scale = 0.0
    for g, w0, w1, decayed in zip(summed, before, after, trainer.decay_mask):
        expected = -(1 + config.momentum) * lr * (g + (config.weight_decay * w0 if decayed else 0.0))
        worst_update = max(worst_update, float(np.abs((w1 - w0) - expected).max()))
        worst_scale = max(worst_scale, float(np.abs(expected).max()))
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "max_update_diff": worst_update, "max_update": worst_scale}))


if __name__ == "__main__":
    main(sys.argv[1])
