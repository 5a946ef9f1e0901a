"""tf.data pipelines with one resolution per batch, derived from the seed and the batch index."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ofa_tf._backend import tf
from ofa_tf.data.transforms import eval_transform, train_transform


def batch_resolution(resolutions: Sequence[int], seed: int, batch_index) -> tf.Tensor:
    """The resolution of batch `batch_index`: same on every replica and every rerun."""
    choices = tf.constant(list(resolutions), tf.int32)
    pick = tf.random.stateless_uniform(
        [], tf.stack([tf.constant(seed, tf.int64), tf.cast(batch_index, tf.int64)]), 0, len(resolutions), tf.int32
    )
    return tf.gather(choices, pick)


def train_dataset(
    images: np.ndarray, labels: np.ndarray, batch_size: int, resolutions: Sequence[int], seed: int = 0
) -> tf.data.Dataset:
    """Infinite shuffled, augmented batches; each batch at one resolution from `resolutions`.

    Args:
        images: uint8 [N, H, W, 3] images.
        labels: int [N] labels.
        batch_size: images per batch (global batch under tf.distribute).
        resolutions: elastic resolutions to sample from, per batch.
        seed: seeds the shuffle, the augmentation and the resolution sequence.
    """
    if len(images) < batch_size:
        raise ValueError(f"only {len(images)} images for batch size {batch_size}: lower --batch-size")
    dataset = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64)))
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat().enumerate()

    def transform(index, example):
        image, label = example
        size = batch_resolution(resolutions, seed, index // batch_size)
        image_seed = tf.stack([tf.constant(seed, tf.int64) + 1, index])
        return train_transform(image, size, image_seed), label

    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def eval_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, resolution: int) -> tf.data.Dataset:
    """Deterministic evaluation batches at `resolution`."""
    dataset = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64)))
    dataset = dataset.map(lambda image, label: (eval_transform(image, resolution), label), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
