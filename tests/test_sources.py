"""Image folders and TFRecords as training data; corrupt images are skipped and counted."""

import json

import numpy as np
import pytest
import tensorflow as tf

from ofa_tf import DataError
from ofa_tf.data.sources import open_source


def _image(rng, size=(20, 24)):
    return rng.integers(0, 255, size=(*size, 3), dtype=np.uint8)


def _write_folder(root, classes=("cat", "dog", "ship"), per_class=5, corrupt=1):
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("val", 2)):
        for c in classes:
            folder = root / split / c
            folder.mkdir(parents=True)
            for i in range(n):
                encoded = tf.io.encode_png(_image(rng)) if i % 2 else tf.io.encode_jpeg(_image(rng))
                (folder / f"{i}.{'png' if i % 2 else 'jpg'}").write_bytes(encoded.numpy())
    for i in range(corrupt):
        (root / "train" / classes[0] / f"broken{i}.jpg").write_bytes(b"\xff\xd8 not really a jpeg")


def test_image_folder_with_splits_skips_corrupt_files(tmp_path):
    _write_folder(tmp_path, corrupt=2)
    source = open_source(str(tmp_path))  # lists files only: the corrupt ones are found where they are decoded
    assert source.class_names == ("cat", "dog", "ship") and source.n_train == 17 and source.counter.count == 0
    images = list(source.train_examples())
    assert len(images) == 15 and images[0][0].dtype == tf.uint8 and images[0][0].shape == (20, 24, 3)
    assert source.counter.count == 2  # counted, wherever they fall in the pass (first, last, in between)
    shuffled = [int(label) for _, label in source.train_examples(seed=0)]
    assert sorted(shuffled) == sorted(int(label) for _, label in images) and source.counter.count == 4
    assert sorted(int(label) for _, label in source.test_examples()) == [0, 0, 1, 1, 2, 2]
    assert len(list(source.recalibration_images(4, seed=0))) == 4


def test_single_image_folder_holds_out_a_test_split(tmp_path):
    _write_folder(tmp_path, per_class=10, corrupt=0)
    source = open_source(str(tmp_path / "train"))
    assert source.n_train + len(list(source.test_examples())) == 30 and source.n_train == 27


def test_empty_or_missing_data_is_a_clear_error(tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found under"):
        open_source(str(tmp_path / "empty"))
    with pytest.raises(DataError, match="no such folder"):
        open_source(str(tmp_path / "missing"))
    with pytest.raises(DataError, match="tfds dataset 'no_such_dataset' is not available locally"):
        open_source("tfds:no_such_dataset")


def test_tfds_source_reads_a_local_dataset():
    tfds = pytest.importorskip("tensorflow_datasets")

    with tfds.testing.mock_data(num_examples=12):  # generated locally from the builder's features
        source = open_source("tfds:cifar10")
        assert source.n_classes == 10 and source.n_train == 12
        image, label = next(iter(source.train_examples()))
        assert image.dtype == tf.uint8 and image.shape == (32, 32, 3) and label.dtype == tf.int64
        assert len(list(source.recalibration_images(5, seed=0))) == 5


def _example(encoded, label):
    feature = {
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
        "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_tfrecords_with_imagenet_style_labels(tmp_path):
    rng = np.random.default_rng(1)
    for name, n in (("train-00000-of-00001.tfrecord", 12), ("validation-00000-of-00001.tfrecord", 4)):
        with tf.io.TFRecordWriter(str(tmp_path / name)) as writer:
            for i in range(n):
                encoded = tf.io.encode_jpeg(_image(rng)).numpy() if i != 5 else b"garbage"
                writer.write(_example(encoded, 1 + i % 3))  # labels 1..3, as ImageNet TFRecords
    source = open_source(str(tmp_path))
    assert source.n_classes == 3 and source.n_train == 12 and source.exact_count
    labels = sorted(int(label) for _, label in source.train_examples(seed=1))
    assert min(labels) == 0 and max(labels) == 2 and len(labels) == 11 and source.counter.count == 1
    assert len(list(source.test_examples())) == 4


def _write_records(folder, files: dict[str, int], garbage=(), first_label=1):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in files.items():
        with tf.io.TFRecordWriter(str(folder / name)) as writer:
            for i in range(n):
                encoded = b"garbage" if (name, i) in garbage else tf.io.encode_jpeg(_image(rng, (8, 8))).numpy()
                writer.write(_example(encoded, first_label + i % 3))


def test_tfrecords_hold_out_the_first_records_of_a_seeded_file_order(tmp_path):
    _write_records(tmp_path, {f"train-{i}.tfrecord": 10 for i in range(4)})
    source = open_source(str(tmp_path))  # no validation files: 10% held out as the test split
    assert source.n_train == 36 and len(list(source.test_examples())) == 4
    rest, held = source.split_holdout(13, seed=5)  # spans two files: only they are read
    held_images = {bytes(image.numpy()) for image, _ in held}
    train_images = {bytes(image.numpy()) for image, _ in rest.train_examples(seed=0)}
    test_images = {bytes(image.numpy()) for image, _ in source.test_examples()}
    assert rest.n_train == 23 and len(held_images) == 13 and len(train_images) == 23
    assert not held_images & train_images and not test_images & (held_images | train_images)
    again = {bytes(image.numpy()) for image, _ in source.split_holdout(13, seed=5)[1]}
    assert again == held_images  # fixed for the seed
    recalibration = [bytes(image.numpy()) for image in rest.recalibration_images(6, seed=0)]
    assert len(recalibration) == 6 and set(recalibration) <= train_images


def test_tfrecords_with_a_label_file_open_without_reading_the_records(tmp_path):
    _write_records(tmp_path, {"train-0.tfrecord": 9, "train-1.tfrecord": 9, "validation-0.tfrecord": 3},
                   garbage={("train-1.tfrecord", 8)})
    (tmp_path / "labels.txt").write_text("1 n01440764\n2 n01443537\n3 n01484850\n")
    source = open_source(str(tmp_path))
    assert source.class_names == ("n01440764", "n01443537", "n01484850") and source.label_offset == 1
    assert source.n_train == 18 and not source.exact_count  # estimated from the first file
    labels = [int(label) for _, label in source.train_examples(seed=0)]
    assert sorted(set(labels)) == [0, 1, 2] and len(labels) == 17 and source.counter.count == 1
    (tmp_path / "labels.txt").write_text("cat\ndog\n")  # 0-based names, but labels reach 3: dropped, counted
    narrow = open_source(str(tmp_path))
    assert narrow.n_classes == 2 and len(list(narrow.test_examples())) == 1 and narrow.counter.count == 2


@pytest.mark.slow
def test_training_runs_on_an_image_folder(tmp_path):
    from ofa_tf.training.config import apply_overrides
    from ofa_tf.training.presets import cifar_preset
    from ofa_tf.training.trainer import ProgressiveShrinkingTrainer

    _write_folder(tmp_path / "data", per_class=8)
    phase = dict(name="teacher", ks_list=[7], expand_ratio_list=[6], depth_list=[2], epochs=1, warmup_epochs=0,
                 base_lr=0.05, subnets_per_step=1, kd=False)
    config = apply_overrides(cifar_preset(), dict(  # a depth-2 supernet: half the tracing
        data=str(tmp_path / "data"), width_mult=0.25, depth_list=[2], resolutions=[24, 32], eval_resolutions=[32], batch_size=8,
        bn_recalibration_images=8, bn_recalibration_batch=8, holdout_images=4, max_steps_per_phase=3, phases=[phase]))
    results = ProgressiveShrinkingTrainer(config, tmp_path / "run").run()
    assert len(results) == 3 and all(0 <= r["top1"] <= 100 for r in results)
    steps = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [s for s in steps if s["event"] == "step"]
    # 3 batches of 8 cover the 21 training files, one of them corrupt; the pipeline reads ahead (more passes)
    assert steps[-1]["skipped_images"] >= 1


def test_a_small_folder_keeps_four_fifths_of_its_images_to_train_on(tmp_path):
    """The cifar preset holds 1,000 images out for the predictor: of a small folder only a fifth."""
    from ofa_tf.training.config import apply_overrides
    from ofa_tf.training.presets import cifar_preset
    from ofa_tf.training.trainer import ProgressiveShrinkingTrainer

    _write_folder(tmp_path / "data", per_class=20, corrupt=0)
    config = apply_overrides(cifar_preset(), dict(data=str(tmp_path / "data"), width_mult=0.25))
    assert config.holdout_images == 1000
    trainer = ProgressiveShrinkingTrainer(config, tmp_path / "run")
    assert trainer.config.holdout_images == 12 and trainer.source.n_train == 48
    assert len(list(trainer.holdout)) == 12
    # a hold-out the user chose is kept as given
    kept = ProgressiveShrinkingTrainer(apply_overrides(config, {"holdout_images": 30, "batch_size": 16}), tmp_path / "kept", cap_holdout=False)
    assert kept.config.holdout_images == 30 and kept.source.n_train == 30


def test_too_few_images_for_the_batch_name_the_hold_out_and_the_fix(tmp_path):
    from ofa_tf.data.sources import DataError
    from ofa_tf.training.config import apply_overrides
    from ofa_tf.training.presets import cifar_preset
    from ofa_tf.training.trainer import ProgressiveShrinkingTrainer

    _write_folder(tmp_path / "data", per_class=5, corrupt=0)  # 15 training images, 3 held out
    config = apply_overrides(cifar_preset(), dict(data=str(tmp_path / "data"), width_mult=0.25))
    with pytest.raises(DataError, match=r"only 12 training images \(of 15; 3 held out .*batch size 32: lower --batch-size to at most 12"):
        ProgressiveShrinkingTrainer(config, tmp_path / "run")
