"""ImageNet-style folders of JPEG/PNG files: listed once, decoded lazily in the pipeline."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from ofa_tf._backend import tf
from ofa_tf.data.source_base import (
    DECODED_SHUFFLE_BUFFER,
    HELD_OUT_FRACTION,
    LabelledSource,
    SkipCounter,
    decode_image,
    holdout_mask,
    shuffled_pairs,
    subset_index,
)
from ofa_tf.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
TEST_SPLIT_NAMES = ("val", "validation", "test")


def _decode_file(path: tf.Tensor) -> tf.Tensor:
    return decode_image(tf.io.read_file(path))


def _hold_out(records: np.ndarray, labels: np.ndarray) -> tuple[tuple, tuple]:
    order = np.random.default_rng(0).permutation(len(records))
    n_test = max(1, int(len(records) * HELD_OUT_FRACTION))
    test, train = order[:n_test], order[n_test:]
    return (records[train], labels[train]), (records[test], labels[test])


def _list_class_folder(root: Path, class_names: tuple[str, ...] | None = None):
    classes = class_names or tuple(sorted(d.name for d in root.iterdir() if d.is_dir()))
    paths, labels = [], []
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        paths += [str(p) for p in files]
        labels += [label] * len(files)
    return classes, np.array(paths, dtype=object).astype(str), np.array(labels, dtype=np.int64)


@dataclasses.dataclass
class EncodedSource(LabelledSource):
    """Image files (JPEG/PNG) listed once and decoded lazily in the pipeline.

    Paths and labels are held (1.28M paths are ~100 MB); images never are.
    Unreadable files are dropped where they are decoded and counted in `counter`.

    Args:
        train / test: (paths, labels) arrays.
        class_names: label names.
        name: where the images came from.
        counter: counts the files that could not be decoded.
        decoded_shuffle_buffer: decoded images the training pipeline shuffles (paths are shuffled before).
    """

    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    class_names: tuple[str, ...]
    name: str
    counter: SkipCounter = dataclasses.field(default_factory=SkipCounter)
    decoded_shuffle_buffer: int = DECODED_SHUFFLE_BUFFER

    @property
    def n_train(self) -> int:
        return len(self.train[0])

    def _examples(self, records: np.ndarray, labels: np.ndarray, seed: int | None = None) -> tf.data.Dataset:
        pairs = tf.data.Dataset.from_tensor_slices((records, labels.astype(np.int64)))
        return self.counter.decode_and_count(shuffled_pairs(pairs, len(records), seed), lambda path, label: (_decode_file(path), label))

    def train_examples(self, seed: int | None = None, shard: tuple[int, int] = (1, 0)) -> tf.data.Dataset:
        """Training examples; with `seed`, in a new order each pass (shuffled before decoding).

        Args:
            seed: shuffles the files before decoding, anew each pass (None: listing order).
            shard: (number of input pipelines, this one's index): each reads every n-th file.
        """
        count, index = shard
        paths, labels = self.train
        if len(paths) < count:
            raise DataError(f"{len(paths)} training images cannot feed {count} workers: use fewer workers")
        return self._examples(paths[index::count], labels[index::count], seed)

    def test_examples(self) -> tf.data.Dataset:
        return self._examples(*self.test)

    def recalibration_images(self, n: int, seed: int) -> tf.data.Dataset:
        index = subset_index(self.n_train, n, seed)
        return self._examples(self.train[0][index], self.train[1][index]).map(lambda image, _: image)

    def split_holdout(self, n: int, seed: int) -> tuple["EncodedSource", tf.data.Dataset]:
        """(this source without `n` training images, those images as (image, label) examples)."""
        held = holdout_mask(self.n_train, n, seed)
        records, labels = self.train
        rest = dataclasses.replace(self, train=(records[~held], labels[~held]))
        return rest, self._examples(records[held], labels[held])


def open_image_folder(root: str | os.PathLike) -> EncodedSource:
    """An ImageNet-style folder: ROOT/<class>/*.jpg, or ROOT/train/<class>/ with ROOT/val/<class>/.

    Lists the files (no image is read); images are decoded in the pipeline."""
    root = Path(root)
    test_root = next((root / n for n in TEST_SPLIT_NAMES if (root / n).is_dir()), None)
    train_root = root / "train" if (root / "train").is_dir() else root
    classes, paths, labels = _list_class_folder(train_root)
    if len(paths) == 0:
        raise DataError(f"no images found under {train_root}: expected {train_root}/<class name>/*.jpg (or .png)")
    if test_root is not None:
        _, test_paths, test_labels = _list_class_folder(test_root, classes)
        train, test = (paths, labels), (test_paths, test_labels)
    else:
        train, test = _hold_out(paths, labels)
    return EncodedSource(train, test, classes, str(root))
