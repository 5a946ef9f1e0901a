"""What every image source shares: class names, the hold-out and subset rules, decoding, the
count of records a streamed pipeline dropped."""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from ofa_tf._backend import tf
from ofa_tf.errors import DataError

HELD_OUT_FRACTION = 0.1  # of a folder or TFRecords without a test split, held out as its test split
DECODED_SHUFFLE_BUFFER = 256  # decoded (full-size) images shuffled after the pre-decode shuffle of streamed sources
# the accuracy predictor's hold-out takes at most this share of the training images, so that a small
# folder still trains (a preset's 1,000 of the bundled 8,499 images and 10,000 of ImageNet's 1.28M are below it)
MAX_HOLDOUT_FRACTION = 0.2


class LabelledSource:
    """What every source shares: class names give the class count."""

    class_names: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def subset_index(n_total: int, n: int, seed: int) -> np.ndarray:
    """Indices of a fixed (per seed) subset of `n` examples, in dataset order."""
    return np.sort(np.random.default_rng(seed).permutation(n_total)[: min(n, n_total)])


def fitting_holdout(n_train: int, requested: int) -> int:
    """The hold-out size for `n_train` training images: `requested`, or a fifth of them where that is fewer."""
    return min(requested, int(n_train * MAX_HOLDOUT_FRACTION))


def holdout_mask(n_total: int, n: int, seed: int) -> np.ndarray:
    """Boolean mask of `n` held-out training examples (fixed for a seed)."""
    if not 0 <= n < n_total:
        raise DataError(f"cannot hold out {n} of {n_total} training images: choose a hold-out size (--holdout-images) below {n_total}")
    mask = np.zeros(n_total, bool)
    mask[subset_index(n_total, n, seed)] = True
    return mask


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """JPEG/PNG bytes -> uint8 [H, W, 3]."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


class SkipCounter:
    """Counts the examples a pipeline dropped because they could not be read or decoded.

    Streamed sources decode lazily; an example that fails is dropped where it
    is decoded (never fatal) and counted here each time a pass reads it (the
    training pipeline reads passes ahead of the steps).
    """

    def __init__(self):
        self.count = 0
        self._lock = threading.Lock()

    def _add(self, n: np.int64) -> np.int64:
        with self._lock:
            self.count += int(n)
        return np.int64(0)

    def decode_and_count(self, dataset: tf.data.Dataset, decode: Callable[[tf.Tensor, tf.Tensor], tuple]) -> tf.data.Dataset:
        """(record, label) -> (uint8 image, label); records that fail to decode are dropped and counted.

        Args:
            dataset: (record, label) pairs, records being file paths or serialized examples.
            decode: (record, label) -> (image, label), run in parallel; may fail (corrupt file, not an
                image, label out of range).
        """
        # a marker after the last record, so that records dropped at the end of a pass are counted too
        end = tf.data.Dataset.from_tensors((tf.constant(""), tf.constant(-1, tf.int64), tf.constant(True)))
        marked = dataset.map(lambda record, label: (record, label, tf.constant(False))).concatenate(end)

        def decode_marked(index, record, label, is_end):
            image, label = tf.cond(is_end, lambda: (tf.zeros([1, 1, 3], tf.uint8), label), lambda: decode(record, label))
            return index, image, label, is_end

        decoded = marked.enumerate().map(
            lambda i, example: decode_marked(i, *example), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        ).ignore_errors()

        def gap(last, element):  # the indices missing between two decoded records were dropped
            index, image, label, is_end = element
            return index, (image, label, is_end, index - last - 1)

        def count(image, label, is_end, skipped):
            noted = tf.cond(skipped > 0, lambda: tf.py_function(self._add, [skipped], tf.int64), lambda: tf.constant(0, tf.int64))
            with tf.control_dependencies([noted]):
                return tf.identity(image), label, is_end

        counted = decoded.scan(tf.constant(-1, tf.int64), gap).map(count)
        return counted.filter(lambda image, label, is_end: tf.logical_not(is_end)).map(lambda image, label, _: (image, label))


def shuffled_pairs(values: tf.data.Dataset, n: int, seed: int | None) -> tf.data.Dataset:
    return values if seed is None else values.shuffle(n, seed=seed, reshuffle_each_iteration=True)
