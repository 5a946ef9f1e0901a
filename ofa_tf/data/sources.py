"""Image sources: where training and test images come from, and `open_source`, which opens
the one `--data` names (one module per kind of source).

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

import glob
import os

from ofa_tf.data.arrays import ArraySource
from ofa_tf.data.bundled import load_bundled
from ofa_tf.data.folders import EncodedSource, open_image_folder
from ofa_tf.data.tfds import TfdsSource, open_tfds
from ofa_tf.data.tfrecords import TFRecordSource, open_tfrecords, tfrecord_files
from ofa_tf.errors import ConfigError, DataError

ImageSource = ArraySource | EncodedSource | TFRecordSource | TfdsSource


def open_source(data: str | None) -> ImageSource:
    """Opens the image source named by `--data`."""
    if data in ("bundled", "", None):
        bundled = load_bundled()
        return ArraySource(bundled.x_train, bundled.y_train, bundled.x_test, bundled.y_test, bundled.class_names, "bundled")
    if data.startswith("tfds:"):
        return open_tfds(data.removeprefix("tfds:"))
    if os.path.isdir(data):
        if tfrecord_files(data):
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
