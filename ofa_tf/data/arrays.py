"""Images held in memory as uint8 arrays: the bundled CIFAR-10 subset, or arrays of the caller's."""

from __future__ import annotations

import dataclasses

import numpy as np

from ofa_tf._backend import tf
from ofa_tf.data.source_base import LabelledSource, SkipCounter, holdout_mask, subset_index

@dataclasses.dataclass
class ArraySource(LabelledSource):
    """Images held in memory as uint8 arrays (the bundled dataset).

    Args:
        x_train / y_train / x_test / y_test: images [N, H, W, 3] and labels [N].
        class_names: label names.
        name: where the images came from.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    name: str = "arrays"
    counter: SkipCounter = dataclasses.field(default_factory=SkipCounter)
    decoded_shuffle_buffer = None  # the whole training set: it is in memory already

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    def train_examples(self, seed: int | None = None) -> tf.data.Dataset:
        """Training examples in a fixed order (`seed` unused: the pipeline shuffles the whole set)."""
        return tf.data.Dataset.from_tensor_slices((self.x_train, self.y_train.astype(np.int64)))

    def test_examples(self) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices((self.x_test, self.y_test.astype(np.int64)))

    def recalibration_images(self, n: int, seed: int) -> tf.data.Dataset:
        """`n` training images chosen once for a seed (BN recalibration uses a fixed subset)."""
        return tf.data.Dataset.from_tensor_slices(self.x_train[subset_index(self.n_train, n, seed)])

    def split_holdout(self, n: int, seed: int) -> tuple["ArraySource", tf.data.Dataset]:
        """(this source without `n` training images, those images as (image, label) examples)."""
        held = holdout_mask(self.n_train, n, seed)
        rest = dataclasses.replace(self, x_train=self.x_train[~held], y_train=self.y_train[~held])
        return rest, tf.data.Dataset.from_tensor_slices((self.x_train[held], self.y_train[held].astype(np.int64)))
