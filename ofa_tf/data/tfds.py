"""A TensorFlow Datasets dataset already prepared locally (never downloaded at run time)."""

from __future__ import annotations

import dataclasses

from ofa_tf._backend import tf
from ofa_tf.data.source_base import LabelledSource, SkipCounter, holdout_mask
from ofa_tf.errors import DataError

@dataclasses.dataclass
class TfdsSource(LabelledSource):
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
    counter: SkipCounter = dataclasses.field(default_factory=SkipCounter)
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
        holdout_mask(self.n_train, n, seed)  # validates n
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
