"""Datasets: the bundled CIFAR-10 subset (tf.data pipelines come with training)."""

from ofa_tf.data.bundled import BundledDataset, load_bundled

__all__ = ["BundledDataset", "load_bundled"]
