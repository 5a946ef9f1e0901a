"""TFRecord files (the ImageNet layout) streamed: never read whole, never held in memory."""

from __future__ import annotations

import dataclasses
import glob
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
)
from ofa_tf.errors import DataError

RECORD_SHUFFLE_BUFFER = 4096  # serialized records (~110 KB each for ImageNet: ~450 MB)
_TFRECORD_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64),
}


@dataclasses.dataclass
class TFRecordSource(LabelledSource):
    """TFRecord files streamed: never read whole, never held in memory.

    Opening lists the files (and reads `labels.txt` when present); training
    reads the files interleaved in a new order each pass, shuffles serialized
    records in a bounded buffer, then parses and decodes in parallel. A record
    that cannot be parsed or decoded is dropped there and counted in `counter`.
    Held-out and recalibration images are a prefix of the records in a file
    order fixed by the seed, so only that prefix is read to find them.

    Args:
        train_files / test_files: the splits' files.
        class_names: label names.
        name: where the records came from.
        n_train: training records (counted, or estimated from the first file when `exact_count` is False).
        label_offset: subtracted from `image/class/label` (1 for ImageNet's 1..1000).
        exact_count: whether `n_train` was counted.
        skip: records at the start of each training file that belong to another split (hold-out, test).
        test_prefix: without validation files, the test split: (file, records) read from the start of each.
        counter: counts the records that could not be decoded.
        decoded_shuffle_buffer: decoded images the training pipeline shuffles (records are shuffled before).
    """

    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    class_names: tuple[str, ...]
    name: str
    n_train: int
    label_offset: int = 0
    exact_count: bool = True
    skip: tuple[int, ...] = ()
    test_prefix: tuple[tuple[str, int], ...] = ()
    counter: SkipCounter = dataclasses.field(default_factory=SkipCounter)
    decoded_shuffle_buffer: int = DECODED_SHUFFLE_BUFFER

    def _decode(self, serialized: tf.Tensor, _) -> tuple[tf.Tensor, tf.Tensor]:
        """A record -> (image, label); fails (and is dropped) without a label in the class list."""
        features = tf.io.parse_single_example(serialized, _TFRECORD_FEATURES)
        label = features["image/class/label"] - self.label_offset
        in_range = tf.logical_and(label >= 0, label < self.n_classes)
        with tf.control_dependencies([tf.debugging.Assert(in_range, ["label outside the class list", label])]):
            return decode_image(features["image/encoded"]), tf.identity(label)

    def _examples(self, records: tf.data.Dataset) -> tf.data.Dataset:
        unlabelled = records.map(lambda record: (record, tf.constant(-1, tf.int64)))  # labels are parsed with the images
        return self.counter.decode_and_count(unlabelled, self._decode)

    def _skips(self) -> list[int]:
        """Records to skip at the start of each training file (`skip` padded with zeros)."""
        return list(self.skip) + [0] * (len(self.train_files) - len(self.skip))

    def shard_files(self, shard: tuple[int, int] = (1, 0)) -> tuple[str, ...]:
        """The training files input pipeline `shard[1]` of `shard[0]` reads (every n-th file)."""
        count, index = shard
        if len(self.train_files) < count:
            raise DataError(
                f"{len(self.train_files)} training TFRecord files cannot feed {count} workers: "
                "write at least one file per worker (ImageNet's 1,024 shards feed up to 1,024)"
            )
        return self.train_files[index::count]

    def train_examples(self, seed: int | None = None, shard: tuple[int, int] = (1, 0)) -> tf.data.Dataset:
        """Training examples; with `seed`, files and records in a new order each pass.

        Args:
            seed: shuffles files and (in a bounded buffer) records, anew each pass (None: file order).
            shard: (number of input pipelines, this one's index): each reads a disjoint set of files.
        """
        skips = dict(zip(self.train_files, self._skips()))
        mine = self.shard_files(shard)
        files = tf.data.Dataset.from_tensor_slices((list(mine), tf.constant([skips[f] for f in mine], tf.int64)))
        files = shuffled_pairs(files, len(mine), seed)
        records = files.interleave(
            lambda f, k: tf.data.TFRecordDataset(f).skip(k), cycle_length=min(16, len(mine)),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True,
        )
        return self._examples(shuffled_pairs(records, RECORD_SHUFFLE_BUFFER, seed))

    def test_examples(self) -> tf.data.Dataset:
        if self.test_files:
            return self._examples(tf.data.TFRecordDataset(list(self.test_files)))
        return self._examples(_prefix_records(self.test_prefix))

    def recalibration_images(self, n: int, seed: int) -> tf.data.Dataset:
        """`n` training images: the first ones of a file order fixed by `seed` (only they are read)."""
        order = np.random.default_rng(seed).permutation(len(self.train_files))
        skips = self._skips()
        records = tf.data.Dataset.from_tensor_slices(
            ([self.train_files[i] for i in order], tf.constant([skips[i] for i in order], tf.int64))
        )
        records = records.flat_map(lambda f, k: tf.data.TFRecordDataset(f).skip(k))
        return self._examples(records).take(n).map(lambda image, _: image)

    def split_holdout(self, n: int, seed: int) -> tuple["TFRecordSource", tf.data.Dataset]:
        """(this source without `n` training records, those records): the first `n` records of the files
        in an order fixed by `seed`; only the files of that prefix are read (to count their records)."""
        if n == 0:
            return self, tf.data.Dataset.from_tensor_slices((np.zeros((0, 1, 1, 3), np.uint8), np.zeros(0, np.int64)))
        if self.exact_count:
            holdout_mask(self.n_train, n, seed)  # validates n
        skips = self._skips()
        prefix, taken = _prefix(self.train_files, skips, n, np.random.default_rng(seed).permutation(len(self.train_files)))
        if taken < n or taken == self.n_train:
            raise DataError(f"cannot hold out {n} of {self.n_train} training images: choose a hold-out size (--holdout-images) below {taken}")
        held = dict(prefix)
        rest = dataclasses.replace(
            self, skip=tuple(k + held.get(f, 0) for f, k in zip(self.train_files, skips)), n_train=self.n_train - n
        )
        return rest, self._examples(_prefix_records(prefix, skips=dict(zip(self.train_files, skips))))


def _count_records(file: str) -> int:
    return int(tf.data.TFRecordDataset(file).reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


def _prefix(files, skips, n: int, order) -> tuple[tuple[tuple[str, int], ...], int]:
    """The first `n` records of `files` read in `order` (after each file's skip): ((file, records), ...), total."""
    prefix, total = [], 0
    for i in order:
        if total >= n:
            break
        available = _count_records(files[i]) - skips[i]
        take = min(available, n - total)
        if take > 0:
            prefix.append((files[i], take))
            total += take
    return tuple(prefix), total


def _prefix_records(prefix, skips: dict | None = None) -> tf.data.Dataset:
    skips = skips or {}
    files = [f for f, _ in prefix]
    counts = [k for _, k in prefix]
    starts = [skips.get(f, 0) for f in files]
    pieces = tf.data.Dataset.from_tensor_slices((files, tf.constant(starts, tf.int64), tf.constant(counts, tf.int64)))
    return pieces.flat_map(lambda f, s, k: tf.data.TFRecordDataset(f).skip(s).take(k))


def _read_label_file(folder: str) -> tuple[tuple[str, ...], int] | None:
    """(class names, number of the first class) from `labels.txt`: a name per line, in label order, or
    "NUMBER NAME" lines (e.g. "1 n01440764" for ImageNet's 1..1000)."""
    path = Path(folder) / "labels.txt"
    if not path.is_file():
        return None
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path} is empty: write one class name per line, in label order")
    parts = [line.split(maxsplit=1) for line in lines]
    if all(len(p) == 2 and p[0].isdigit() for p in parts):
        numbers = [int(p[0]) for p in parts]
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            raise DataError(f"{path}: the label numbers must be consecutive (e.g. 1 to 1000), one class per line")
        return tuple(p[1] for p in parts), numbers[0]
    return tuple(lines), 0


def _scan_labels(files: list[str]) -> np.ndarray:
    """Every record's label (-1 where missing), parsing only the label: no image is decoded or kept."""
    feature = {"image/class/label": tf.io.FixedLenFeature([], tf.int64, default_value=-1)}
    records = tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE).batch(4096)
    labels = records.map(lambda batch: tf.io.parse_example(batch, feature)["image/class/label"])
    return np.concatenate([batch.numpy() for batch in labels] or [np.zeros(0, np.int64)])


def tfrecord_files(folder: str) -> list[str]:
    """*.tfrecord* files, or shards named as ImageNet's (train-00000-of-01024, validation-00000-of-00128)."""
    names = {*glob.glob(os.path.join(folder, "*.tfrecord*")), *glob.glob(os.path.join(folder, "*-[0-9][0-9][0-9][0-9][0-9]-of-[0-9]*"))}
    return sorted(f for f in names if os.path.isfile(f))


def open_tfrecords(path: str) -> TFRecordSource:
    """TFRecords with `image/encoded` + `image/class/label`: a file, a glob, or a folder of them.

    Files whose name contains "val" or "test" form the test split; without
    them 10% of the records are held out. With a `labels.txt` beside the files
    opening reads one file only (the training set's size is then estimated
    from it); without one every label is read once (no image) to find the classes.
    """
    files = tfrecord_files(path) if os.path.isdir(path) else sorted(glob.glob(path))
    if not files:
        raise DataError(f"no TFRecord files match {path}: give a folder of *.tfrecord files or a glob")
    test_files = [f for f in files if any(n in os.path.basename(f).lower() for n in ("val", "test"))]
    train_files = [f for f in files if f not in test_files]
    if not train_files:
        raise DataError(f"{path} holds only validation/test TFRecords: add training files")
    label_file = _read_label_file(path if os.path.isdir(path) else os.path.dirname(path))
    try:
        if label_file is not None:
            classes, offset = label_file
            n_train, exact = _count_records(train_files[0]) * len(train_files), len(train_files) == 1
        else:
            labels = _scan_labels(train_files)
            known = labels[labels >= 0]
            if known.size == 0:
                raise DataError(f"{path}: no record has an int64 'image/class/label' feature")
            offset = 1 if known.min() == 1 else 0  # ImageNet TFRecords number classes 1..1000
            classes = tuple(str(i) for i in range(int(known.max()) + 1 - offset))
            n_train, exact = len(labels), True
        source = TFRecordSource(tuple(train_files), tuple(test_files), classes, path, n_train, offset, exact)
        if test_files:
            return source
        order = np.random.default_rng(0).permutation(len(train_files))
        prefix, taken = _prefix(train_files, [0] * len(train_files), max(1, int(n_train * HELD_OUT_FRACTION)), order)
    except tf.errors.DataLossError:
        raise DataError(f"{path} holds a truncated or corrupt TFRecord file") from None
    skips = tuple(dict(prefix).get(f, 0) for f in train_files)
    return dataclasses.replace(source, skip=skips, test_prefix=prefix, n_train=n_train - taken)
