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
Unreadable or corrupt images are found when the source is opened, skipped and
counted (`source.skipped`), never fatal.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from pathlib import Path
from typing import Callable

import numpy as np

from ofa_tf._backend import tf
from ofa_tf.data.bundled import load_bundled
from ofa_tf.errors import ConfigError, DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
TEST_SPLIT_NAMES = ("val", "validation", "test")
HELD_OUT_FRACTION = 0.1


class _Labelled:
    """What every source shares: class names give the class count."""

    class_names: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def _subset_index(n_total: int, n: int, seed: int) -> np.ndarray:
    """Indices of a fixed (per seed) subset of `n` examples, in dataset order."""
    return np.sort(np.random.default_rng(seed).permutation(n_total)[: min(n, n_total)])


def _holdout_mask(n_total: int, n: int, seed: int) -> np.ndarray:
    """Boolean mask of `n` held-out training examples (fixed for a seed)."""
    if not 0 <= n < n_total:
        raise DataError(f"cannot hold out {n} of {n_total} training images: choose a hold-out size below {n_total}")
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
    skipped: tuple[str, ...] = ()

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    def train_examples(self) -> tf.data.Dataset:
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


@dataclasses.dataclass
class EncodedSource(_Labelled):
    """Encoded (JPEG/PNG) images read from files or TFRecords and decoded on the fly.

    Args:
        train / test: (record, label) pairs: a file path or serialized example, and an int64 label.
        decode: record -> uint8 image.
        class_names: label names.
        name: where the images came from.
        skipped: records that could not be decoded (left out).
    """

    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    decode: Callable[[tf.Tensor], tf.Tensor]
    class_names: tuple[str, ...]
    name: str
    skipped: tuple[str, ...] = ()

    @property
    def n_train(self) -> int:
        return len(self.train[0])

    def _examples(self, records: np.ndarray, labels: np.ndarray) -> tf.data.Dataset:
        dataset = tf.data.Dataset.from_tensor_slices((records, labels.astype(np.int64)))
        return dataset.map(lambda record, label: (self.decode(record), label), num_parallel_calls=tf.data.AUTOTUNE)

    def train_examples(self) -> tf.data.Dataset:
        return self._examples(*self.train)

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


def _decode_record(serialized: tf.Tensor) -> tf.Tensor:
    return decode_image(tf.io.parse_single_example(serialized, _TFRECORD_FEATURES)["image/encoded"])


def _decodable(records: np.ndarray, decode: Callable) -> np.ndarray:
    """Boolean mask of the records that decode (one parallel pass; failures are dropped, not raised)."""
    dataset = tf.data.Dataset.from_tensor_slices(records).enumerate()
    dataset = dataset.map(lambda i, record: (i, tf.shape(decode(record))[0]), num_parallel_calls=tf.data.AUTOTUNE)
    good = np.zeros(len(records), dtype=bool)
    for index, _ in dataset.ignore_errors().batch(1024):
        good[index.numpy()] = True
    return good


def _hold_out(records: np.ndarray, labels: np.ndarray) -> tuple[tuple, tuple]:
    order = np.random.default_rng(0).permutation(len(records))
    n_test = max(1, int(len(records) * HELD_OUT_FRACTION))
    test, train = order[:n_test], order[n_test:]
    return (records[train], labels[train]), (records[test], labels[test])


def _filter_decodable(split: tuple[np.ndarray, np.ndarray], decode, describe) -> tuple[tuple, list[str]]:
    records, labels = split
    good = _decodable(records, decode)
    return (records[good], labels[good]), [describe(i, records[i]) for i in np.flatnonzero(~good)]


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


def open_image_folder(root: str | os.PathLike) -> EncodedSource:
    """An ImageNet-style folder: ROOT/<class>/*.jpg, or ROOT/train/<class>/ with ROOT/val/<class>/."""
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
    describe = lambda _, path: str(path)  # noqa: E731
    train, skipped = _filter_decodable(train, _decode_file, describe)
    test, skipped_test = _filter_decodable(test, _decode_file, describe)
    if len(train[0]) == 0:
        raise DataError(f"none of the images under {train_root} could be decoded: are they JPEG/PNG files?")
    return EncodedSource(train, test, _decode_file, classes, str(root), tuple(skipped + skipped_test))


def _read_records(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
    records, labels = [], []
    parse = lambda r: tf.io.parse_single_example(r, {"image/class/label": _TFRECORD_FEATURES["image/class/label"]})  # noqa: E731
    for serialized in tf.data.TFRecordDataset(files):
        try:
            labels.append(int(parse(serialized)["image/class/label"]))
        except tf.errors.InvalidArgumentError:
            labels.append(-1)
        records.append(serialized.numpy())
    return np.array(records, dtype=object), np.array(labels, dtype=np.int64)


def open_tfrecords(path: str) -> EncodedSource:
    """TFRecords with `image/encoded` + `image/class/label`: a file, a glob, or a folder of them.

    Files whose name contains "val" or "test" form the test split; without
    them 10% of the records are held out.
    """
    files = sorted(glob.glob(os.path.join(path, "*.tfrecord*")) if os.path.isdir(path) else glob.glob(path))
    if not files:
        raise DataError(f"no TFRecord files match {path}: give a folder of *.tfrecord files or a glob")
    test_files = [f for f in files if any(n in os.path.basename(f).lower() for n in ("val", "test"))]
    train_files = [f for f in files if f not in test_files]
    try:
        records, labels = _read_records(train_files)
        test_split = _read_records(test_files) if test_files else None
    except tf.errors.DataLossError:
        raise DataError(f"{path} holds a truncated or corrupt TFRecord file") from None
    known = labels[labels >= 0]
    if known.size == 0:
        raise DataError(f"{path}: no record has an int64 'image/class/label' feature")
    offset = 1 if known.min() == 1 else 0  # ImageNet TFRecords number classes 1..1000
    n_classes = int(known.max()) + 1 - offset
    train = (records[labels >= 0], labels[labels >= 0] - offset)
    if test_split is not None:
        test = (test_split[0][test_split[1] >= 0], test_split[1][test_split[1] >= 0] - offset)
    else:
        train, test = _hold_out(*train)
    describe = lambda i, _: f"record {i}"  # noqa: E731
    train, skipped = _filter_decodable(train, _decode_record, describe)
    test, skipped_test = _filter_decodable(test, _decode_record, describe)
    classes = tuple(str(i) for i in range(n_classes))
    return EncodedSource(train, test, _decode_record, classes, path, tuple(skipped + skipped_test))


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
    skipped: tuple[str, ...] = ()

    def train_examples(self) -> tf.data.Dataset:
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


ImageSource = ArraySource | EncodedSource | TfdsSource


def open_source(data: str | None) -> ImageSource:
    """Opens the image source named by `--data`."""
    if data in ("bundled", "", None):
        bundled = load_bundled()
        return ArraySource(bundled.x_train, bundled.y_train, bundled.x_test, bundled.y_test, bundled.class_names, "bundled")
    if data.startswith("tfds:"):
        return open_tfds(data.removeprefix("tfds:"))
    if os.path.isdir(data):
        if glob.glob(os.path.join(data, "*.tfrecord*")):
            return open_tfrecords(data)
        return open_image_folder(data)
    if glob.glob(data) and ".tfrecord" in data:
        return open_tfrecords(data)
    raise DataError(f"--data {data}: no such folder or TFRecord files (use 'bundled', an image folder or *.tfrecord)")


def require_classes(source: ImageSource, n_classes: int, model: str) -> ImageSource:
    """Returns `source` if its labels fit a `n_classes`-way `model`; a one-line ConfigError naming --data otherwise.

    A supernet or subnet is measured, recalibrated and calibrated only on data of
    its own classes: never on the bundled 10-class images for a 1000-class model.
    """
    if source.n_classes != n_classes:
        raise ConfigError(
            f"{model} has {n_classes} classes but the data ({source.name}) has {source.n_classes}: "
            f"give --data with its own images (an ImageNet-style folder, TFRecords or tfds:NAME)"
        )
    return source
