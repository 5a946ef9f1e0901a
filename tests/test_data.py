import numpy as np

from ofa_tf.data import load_bundled


def test_bundled_dataset_is_the_documented_real_subset():
    data = load_bundled()
    assert data.x_train.shape == (8499, 32, 32, 3) and data.x_train.dtype == np.uint8
    assert data.x_test.shape == (1017, 32, 32, 3)
    assert data.class_names[0] == "airplane" and data.class_names[-1] == "truck"
    assert np.bincount(data.y_train, minlength=10).tolist() == [841, 823, 858, 822, 892, 831, 854, 842, 892, 844]
    assert np.bincount(data.y_test, minlength=10).tolist() == [105, 93, 100, 104, 92, 87, 114, 102, 110, 110]
    assert 60 < data.x_train.mean() < 200  # real images, not zeros


def test_train_batches_share_one_resolution_that_follows_the_seed():
    from ofa_tf.data.pipeline import train_dataset

    import tensorflow as tf

    data = load_bundled()
    examples = tf.data.Dataset.from_tensor_slices((data.x_train[:64], data.y_train[:64]))
    resolutions = (24, 28, 32, 36)

    def sizes(seed, start_batch=0):
        batches = train_dataset(examples, 64, 8, resolutions, seed=seed, start_batch=start_batch).take(12)
        return [batch[0].shape[1] for batch in batches]

    first = sizes(0)
    assert first == sizes(0)  # deterministic for a seed
    assert set(first) <= set(resolutions) and len(set(first)) > 1
    assert first != sizes(1)
    assert sizes(0, start_batch=5)[:7] == first[5:]  # resuming continues the same sequence
    # a streamed source resumes with a new image order (no decoding of what was trained on), same resolutions
    resumed = train_dataset(examples, 64, 8, resolutions, seed=0, start_batch=5, exact_resume=False).take(7)
    assert [batch[0].shape[1] for batch in resumed] == first[5:]
    skipped_to = next(iter(train_dataset(examples, 64, 8, resolutions, seed=0, start_batch=5)))[1]
    assert not np.array_equal(next(iter(resumed))[1].numpy(), skipped_to.numpy())
    batch_images, batch_labels = next(iter(train_dataset(examples, 64, 8, resolutions, seed=0)))
    assert batch_images.shape[0] == 8 and batch_images.shape[1] == batch_images.shape[2]
    assert batch_images.dtype.name == "float32" and batch_labels.dtype.name == "int64"


def test_eval_transform_normalizes_and_centre_crops():
    from ofa_tf.data.sources import open_source
    from ofa_tf.data.pipeline import eval_dataset

    source = open_source("bundled")
    batch, _ = next(iter(eval_dataset(source.test_examples().take(256), 256, 32)))
    values = batch.numpy()
    assert values.shape == (256, 32, 32, 3)
    # ImageNet normalization of natural images: roughly zero mean, unit scale
    assert abs(values.mean()) < 0.5 and 0.5 < values.std() < 1.5
