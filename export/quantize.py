"""Images for export: the calibration (representative) set and the validation set.

Both go through the evaluation transform (resize, centre crop, ImageNet
normalization), as the deployed model sees images.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from ofa_tf._backend import tf
from ofa_tf.data.transforms import eval_transform
from ofa_tf.errors import DataError


def _eval_batches(images: tf.data.Dataset, size: int, batch_size: int) -> tf.data.Dataset:
    return images.map(lambda image: eval_transform(image, size), num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)


def calibration_images(source: Any, size: int, n: int = 300, seed: int = 0) -> np.ndarray:
    """`n` training images (a fixed subset for the seed), eval-transformed: float32 [n, size, size, 3].

    Args:
        source: an image source (`ofa_tf.data.sources.open_source`).
        size: the model's input resolution.
        n: number of images.
        seed: chooses the subset.
    """
    if n < 1:
        raise DataError(f"--calibration-samples {n}: use at least 1 image, e.g. 300")
    batches = _eval_batches(source.recalibration_images(n, seed), size, 100)
    images = np.concatenate([batch.numpy() for batch in batches])
    if len(images) == 0:
        raise DataError(f"the training split of {getattr(source, 'name', 'the data')} has no images to calibrate with")
    return images


def representative_dataset(images: np.ndarray) -> Callable[[], Iterator[list]]:
    """The converter's representative dataset: one `[image batch of 1]` per image."""

    def generate():
        for image in images:
            yield [image[None].astype(np.float32)]

    return generate


def validation_images(source: Any, size: int, n: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` test images, eval-transformed, and their labels."""
    if n < 1:
        raise DataError(f"--validate-images {n}: use at least 1 image, e.g. 500")
    examples = source.test_examples().take(n)
    labels = np.array([int(label) for _, label in examples.as_numpy_iterator()], dtype=np.int64)
    images = np.concatenate([batch.numpy() for batch in _eval_batches(examples.map(lambda x, _: x), size, 100)])
    if len(images) == 0:
        raise DataError(f"the test split of {getattr(source, 'name', 'the data')} has no images to validate on")
    return images, labels
