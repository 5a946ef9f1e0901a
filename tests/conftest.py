"""Shared fixtures: tiny supernets with every weight randomized (BN statistics and
kernel transformation matrices included), so equality tests exercise all of them."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from ofa_tf import OFAMobileNetV3

TINY = dict(width_mult=0.25, n_classes=10)


def randomize_weights(net, seed: int = 0) -> None:
    """Gives every variable of `net` random values of a realistic scale."""
    rng = np.random.default_rng(seed)
    for w in net.weights:
        name = w.path
        shape = tuple(w.shape)
        if "moving_variance" in name:
            value = rng.uniform(0.5, 2.0, shape)
        elif "moving_mean" in name or "beta" in name or "bias" in name:
            value = rng.normal(0.0, 0.2, shape)
        elif "gamma" in name:
            value = rng.uniform(0.5, 1.5, shape)
        elif "matrix" in name:
            value = np.eye(shape[0]) + rng.normal(0.0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else shape[0]
            value = rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), shape)
        w.assign(value.astype(np.float32))


def build_tiny(seed: int = 0, **overrides) -> OFAMobileNetV3:
    net = OFAMobileNetV3(**{**TINY, **overrides})
    net.build((None, None, None, 3))
    randomize_weights(net, seed)
    return net


COLORS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}


def color_folder(root, per_class: int = 16, val: int = 6, size: int = 32):
    """An image folder (train/ and val/ of class sub-folders) of a learnable 3-class task:
    noisy images of one dominant color per class."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("val", val)):
        for name, color in COLORS.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                image = np.clip(np.array(color) + rng.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
                (folder / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
    return root


@pytest.fixture(scope="module")
def tiny_net():
    return build_tiny(seed=0)
