"""Image sources: where training and test images come from.

A source yields `(uint8 HxWx3 image, int64 label)` examples as `tf.data`
datasets. The bundled CIFAR-10 subset is the default (`"bundled"`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ofa_tf._backend import tf
from ofa_tf.data.bundled import load_bundled
from ofa_tf.errors import DataError


@dataclasses.dataclass
class ArraySource:
    """Images held in memory as uint8 arrays.

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

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    def train_examples(self) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices((self.x_train, self.y_train.astype(np.int64)))

    def test_examples(self) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices((self.x_test, self.y_test.astype(np.int64)))

    def train_subset(self, n: int, seed: int) -> np.ndarray:
        """`n` training images chosen once for a seed (BN recalibration uses a fixed subset)."""
        index = np.random.default_rng(seed).permutation(self.n_train)[: min(n, self.n_train)]
        return self.x_train[np.sort(index)]


def open_source(data: str) -> ArraySource:
    """Opens the image source named by `--data`."""
    if data in ("bundled", "", None):
        bundled = load_bundled()
        return ArraySource(bundled.x_train, bundled.y_train, bundled.x_test, bundled.y_test, bundled.class_names, "bundled")
    raise DataError(f"--data {data!r}: only 'bundled' is supported so far")
