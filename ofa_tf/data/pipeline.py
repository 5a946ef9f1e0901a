"""tf.data pipelines with one resolution per batch, derived from the seed and the batch index."""

from __future__ import annotations

from typing import Sequence

from ofa_tf._backend import tf
from ofa_tf.data.transforms import DEFAULT_CROP_SCALE, eval_transform, train_transform
from ofa_tf.errors import DataError


def batch_resolution(resolutions: Sequence[int], seed: int, batch_index) -> tf.Tensor:
    """The resolution of batch `batch_index`: same on every replica and every rerun."""
    choices = tf.constant(list(resolutions), tf.int32)
    pick = tf.random.stateless_uniform(
        [], tf.stack([tf.constant(seed, tf.int64), tf.cast(batch_index, tf.int64)]), 0, len(resolutions), tf.int32
    )
    return tf.gather(choices, pick)


def order_seed(seed: int, start_batch: int, exact_resume: bool) -> int:
    """The seed of the example order: `seed`, or one per resume point for a run resumed without replaying
    the batches it already trained on (a new order, not the uninterrupted one)."""
    return seed if exact_resume or start_batch == 0 else seed + 7919 * start_batch


def train_dataset(
    examples: tf.data.Dataset,
    n_examples: int,
    batch_size: int,
    resolutions: Sequence[int],
    seed: int = 0,
    start_batch: int = 0,
    crop_scale: Sequence[float] = DEFAULT_CROP_SCALE,
    shuffle_buffer: int | None = None,
    exact_resume: bool = True,
) -> tf.data.Dataset:
    """Infinite shuffled, augmented batches; each batch at one resolution from `resolutions`.

    Args:
        examples: (uint8 image, label) pairs.
        n_examples: number of examples (the shuffle buffer).
        batch_size: images per batch (global batch under tf.distribute).
        resolutions: elastic resolutions to sample from, per batch.
        seed: seeds the shuffle, the augmentation and the resolution sequence.
        start_batch: batches to skip, to resume a run where it stopped.
        crop_scale: area range of the random resized crop.
        shuffle_buffer: decoded examples shuffled (None: `n_examples`, all of them; a streamed
            source shuffles its records before decoding and needs a bounded buffer here).
        exact_resume: resume by reading and dropping the `start_batch` batches already trained on
            (the uninterrupted order, bit for bit); False starts a new order at once (a streamed source
            would decode every dropped image) while resolutions and crops still follow the batch index.
    """
    if n_examples < batch_size:
        raise DataError(f"only {n_examples} images for batch size {batch_size}: lower --batch-size")
    buffer = n_examples if shuffle_buffer is None else shuffle_buffer
    shuffle_seed = order_seed(seed, start_batch, exact_resume)
    dataset = examples.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=True).repeat()
    if exact_resume:
        dataset = dataset.enumerate().skip(start_batch * batch_size)
    else:
        dataset = dataset.enumerate(start=start_batch * batch_size)

    def transform(index, example):
        image, label = example
        size = batch_resolution(resolutions, seed, index // batch_size)
        image_seed = tf.stack([tf.constant(seed, tf.int64) + 1, index])
        return train_transform(image, size, image_seed, crop_scale), label

    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def eval_dataset(examples: tf.data.Dataset, batch_size: int, resolution: int) -> tf.data.Dataset:
    """Deterministic evaluation batches at `resolution`."""
    dataset = examples.map(lambda image, label: (eval_transform(image, resolution), label), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def recalibration_batches(
    images: tf.data.Dataset, batch_size: int, resolution: int, seed: int, crop_scale: Sequence[float] = DEFAULT_CROP_SCALE
) -> list[tf.Tensor]:
    """The BN-recalibration subset with the train transform at `resolution` (fixed for a seed)."""
    dataset = images.enumerate().map(
        lambda i, image: train_transform(image, resolution, tf.stack([tf.constant(seed, tf.int64), i]), crop_scale)
    )
    return list(dataset.batch(batch_size))
