"""Datasets: the bundled CIFAR-10 subset, reference transforms, tf.data pipelines."""

from ofa_tf.data.bundled import BundledDataset, load_bundled

__all__ = ["BundledDataset", "load_bundled"]
