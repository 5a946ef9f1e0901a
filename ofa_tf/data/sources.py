"""Image sources: where training and test images come from.

A source yields `(uint8 HxWx3 image, int64 label)` examples as `tf.data`
datasets:
  - "bundled": the real CIFAR-10 subset shipped with ofa-tf (default);
  - a folder of class sub-folders of JPEG/PNG images (ImageNet style), with
    `train/` and `val/` (or `validation/`, `test/`) splits or one folder from
    which 10% is held out;
  - TFRecord files with `image/encoded` and `image/class/label` features
    (the ImageNet TFRecord layout; labels 1..N are shifted to 0..N-1);
  - "tfds:NAME": a TensorFlow Datasets dataset already prepared locally
    (never downloaded at run time; `pip install "ofa-tf[tfds]"`).
Folders and TFRecords are streamed: opening lists files, images are decoded
in the `tf.data` pipeline, and an unreadable or corrupt image is dropped there
and counted (`source.counter`), never fatal.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from ofa_tf._backend import tf
from ofa_tf.data.bundled import load_bundled
from ofa_tf.errors import ConfigError, DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
TEST_SPLIT_NAMES = ("val", "validation", "test")
HELD_OUT_FRACTION = 0.1
DECODED_SHUFFLE_BUFFER = 256  # decoded (full-size) images shuffled after the pre-decode shuffle of streamed sources
RECORD_SHUFFLE_BUFFER = 4096  # serialized records (~110 KB each for ImageNet: ~450 MB)


class _Labelled:
    """What every source shares: class names give the class count."""

    class_names: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def _subset_index(n_total: int, n: int, seed: int) -> np.ndarray:
    """Indices of a fixed (per seed) subset of `n` examples, in dataset order."""
    return np.sort(np.random.default_rng(seed).permutation(n_total)[: min(n, n_total)])


# the accuracy predictor's hold-out takes at most this share of the training images, so that a small
# folder still trains (a preset's 1,000 of the bundled 8,499 images and 10,000 of ImageNet's 1.28M are below it)
MAX_HOLDOUT_FRACTION = 0.2


def fitting_holdout(n_train: int, requested: int) -> int:
    """The hold-out size for `n_train` training images: `requested`, or a fifth of them where that is fewer."""
    return min(requested, int(n_train * MAX_HOLDOUT_FRACTION))


def _holdout_mask(n_total: int, n: int, seed: int) -> np.ndarray:
    """Boolean mask of `n` held-out training examples (fixed for a seed)."""
    if not 0 <= n < n_total:
        raise DataError(f"cannot hold out {n} of {n_total} training images: choose a hold-out size (--holdout-images) below {n_total}")
    mask = np.zeros(n_total, bool)
    mask[_subset_index(n_total, n, seed)] = True
    return mask


@dataclasses.dataclass
class ArraySource(_Labelled):
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
    counter: "SkipCounter" = dataclasses.field(default_factory=lambda: SkipCounter())
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
        return tf.data.Dataset.from_tensor_slices(self.x_train[_subset_index(self.n_train, n, seed)])

    def split_holdout(self, n: int, seed: int) -> tuple["ArraySource", tf.data.Dataset]:
        """(this source without `n` training images, those images as (image, label) examples)."""
        held = _holdout_mask(self.n_train, n, seed)
        rest = dataclasses.replace(self, x_train=self.x_train[~held], y_train=self.y_train[~held])
        return rest, tf.data.Dataset.from_tensor_slices((self.x_train[held], self.y_train[held].astype(np.int64)))


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """JPEG/PNG bytes -> uint8 [H, W, 3]."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def _decode_file(path: tf.Tensor) -> tf.Tensor:
    return decode_image(tf.io.read_file(path))


_TFRECORD_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64),
}


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


def _shuffled_pairs(values: tf.data.Dataset, n: int, seed: int | None) -> tf.data.Dataset:
    return values if seed is None else values.shuffle(n, seed=seed, reshuffle_each_iteration=True)


@dataclasses.dataclass
class EncodedSource(_Labelled):
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
        return self.counter.decode_and_count(_shuffled_pairs(pairs, len(records), seed), lambda path, label: (_decode_file(path), label))

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
        index = _subset_index(self.n_train, n, seed)
        return self._examples(self.train[0][index], self.train[1][index]).map(lambda image, _: image)

    def split_holdout(self, n: int, seed: int) -> tuple["EncodedSource", tf.data.Dataset]:
        """(this source without `n` training images, those images as (image, label) examples)."""
        held = _holdout_mask(self.n_train, n, seed)
        records, labels = self.train
        rest = dataclasses.replace(self, train=(records[~held], labels[~held]))
        return rest, self._examples(records[held], labels[held])


@dataclasses.dataclass
class TFRecordSource(_Labelled):
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
        files = _shuffled_pairs(files, len(mine), seed)
        records = files.interleave(
            lambda f, k: tf.data.TFRecordDataset(f).skip(k), cycle_length=min(16, len(mine)),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True,
        )
        return self._examples(_shuffled_pairs(records, RECORD_SHUFFLE_BUFFER, seed))

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
            _holdout_mask(self.n_train, n, seed)  # validates n
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


def _tfrecord_files(folder: str) -> list[str]:
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
    files = _tfrecord_files(path) if os.path.isdir(path) else sorted(glob.glob(path))
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


@dataclasses.dataclass
class TfdsSource(_Labelled):
    """A locally prepared TensorFlow Datasets dataset with (image, label) features.

    Args:
        name: the tfds name, e.g. "imagenette" or "cifar10".
        train / test: the splits as (uint8 image, int64 label) datasets.
        class_names: label names.
        n_train: training examples.
    """

    name: str
    train: tf.data.Dataset
    test: tf.data.Dataset
    class_names: tuple[str, ...]
    n_train: int
    counter: "SkipCounter" = dataclasses.field(default_factory=lambda: SkipCounter())
    decoded_shuffle_buffer = None

    def train_examples(self, seed: int | None = None) -> tf.data.Dataset:
        """Training examples in the dataset's order (`seed` unused: the pipeline shuffles)."""
        return self.train

    def test_examples(self) -> tf.data.Dataset:
        return self.test

    def recalibration_images(self, n: int, seed: int) -> tf.data.Dataset:
        return self.train.shuffle(min(self.n_train, 10_000), seed=seed).take(n).map(lambda image, _: image)

    def split_holdout(self, n: int, seed: int) -> tuple["TfdsSource", tf.data.Dataset]:
        """(this source without its first `n` training images, those images); `seed` is unused (fixed order)."""
        _holdout_mask(self.n_train, n, seed)  # validates n
        return dataclasses.replace(self, train=self.train.skip(n), n_train=self.n_train - n), self.train.take(n)


def open_tfds(name: str) -> TfdsSource:
    """Opens `name` from the local TFDS data dir (download=False: nothing is fetched)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError('tfds sources need tensorflow-datasets: pip install "ofa-tf[tfds]"') from None
    try:
        builder = tfds.builder(name)
        splits = builder.info.splits
        test_split = next((s for s in ("validation", "test") if s in splits), "test")
        load = lambda split: tfds.load(name, split=split, as_supervised=True, download=False)  # noqa: E731
        train, test = load("train"), load(test_split)
    except Exception as error:  # tfds raises several types for a missing or unprepared dataset
        raise DataError(
            f"tfds dataset {name!r} is not available locally ({type(error).__name__}): prepare it where there is "
            "network (`tfds build`) and copy the TFDS data dir here"
        ) from None
    label = builder.info.features["label"]
    n_train = int(train.cardinality())
    if n_train < 0:  # unknown cardinality: count once
        n_train = int(train.reduce(0, lambda count, _: count + 1))
    cast = lambda image, y: (image, tf.cast(y, tf.int64))  # noqa: E731
    return TfdsSource(name, train.map(cast), test.map(cast), tuple(label.names), n_train)


ImageSource = ArraySource | EncodedSource | TFRecordSource | TfdsSource


def open_source(data: str | None) -> ImageSource:
    """Opens the image source named by `--data`."""
    if data in ("bundled", "", None):
        bundled = load_bundled()
        return ArraySource(bundled.x_train, bundled.y_train, bundled.x_test, bundled.y_test, bundled.class_names, "bundled")
    if data.startswith("tfds:"):
        return open_tfds(data.removeprefix("tfds:"))
    if os.path.isdir(data):
        if _tfrecord_files(data):
            return open_tfrecords(data)
        return open_image_folder(data)
    if glob.glob(data) and ".tfrecord" in data:
        return open_tfrecords(data)
    raise DataError(f"--data {data}: no such folder or TFRecord files (use 'bundled', an image folder or *.tfrecord)")


def require_classes(source: ImageSource, n_classes: int, model: str, adapt: str) -> ImageSource:
    """Returns `source` if its labels fit a `n_classes`-way `model`; a one-line ConfigError otherwise.

    A supernet or subnet is measured, recalibrated and calibrated only on data of
    its own classes: never on the bundled 10-class images for a 1000-class model.

    Args:
        source: the images.
        n_classes: the model's classifier outputs.
        model: names the model in the message.
        adapt: the command that adapts the model to the data's classes, named in the message.
    """
    if source.n_classes != n_classes:
        raise ConfigError(
            f"{model} has {n_classes} classes but the data ({source.name}) has {source.n_classes}: "
            f"adapt it to these classes first ({adapt}), or give --data with its own images"
        )
    return source
