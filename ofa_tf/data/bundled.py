"""The bundled real CIFAR-10 subset (8,499 train / 1,017 test images), shipped in the package."""

from __future__ import annotations

import dataclasses
from importlib import resources

import numpy as np

BUNDLED_FILE = "cifar10_salvage.npz"


@dataclasses.dataclass(frozen=True)
class BundledDataset:
    """Arrays of the bundled dataset.

    Args:
        x_train: uint8 [8499, 32, 32, 3] RGB images.
        y_train: int64 [8499] labels.
        x_test: uint8 [1017, 32, 32, 3].
        y_test: int64 [1017].
        class_names: the 10 CIFAR-10 class names.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]


def load_bundled() -> BundledDataset:
    """Loads the bundled dataset from the installed package (no network)."""
    with resources.files("ofa_tf.data").joinpath(BUNDLED_FILE).open("rb") as handle:
        with np.load(handle, allow_pickle=False) as data:
            return BundledDataset(
                x_train=data["x_train"],
                y_train=data["y_train"].astype(np.int64),
                x_test=data["x_test"],
                y_test=data["y_test"].astype(np.int64),
                class_names=tuple(str(name) for name in data["class_names"]),
            )
