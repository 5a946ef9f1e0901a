import numpy as np

from ofa_tf.data import load_bundled


def test_bundled_dataset_is_the_documented_real_subset():
    data = load_bundled()
    assert data.x_train.shape == (5438, 32, 32, 3) and data.x_train.dtype == np.uint8
    assert data.x_test.shape == (1017, 32, 32, 3)
    assert data.class_names[0] == "airplane" and data.class_names[-1] == "truck"
    assert np.bincount(data.y_train, minlength=10).tolist() == [541, 564, 524, 529, 563, 523, 540, 548, 572, 534]
    assert np.bincount(data.y_test, minlength=10).tolist() == [105, 93, 100, 104, 92, 87, 114, 102, 110, 110]
    assert 60 < data.x_train.mean() < 200  # real images, not zeros
