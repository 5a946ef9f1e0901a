"""Top-1 of subnets of a supernet, each measured after BN recalibration."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator, Sequence

from ofa_tf._backend import tf
from ofa_tf.data.pipeline import eval_dataset, recalibration_batches
from ofa_tf.data.transforms import DEFAULT_CROP_SCALE
from ofa_tf.space.registry import Config
from ofa_tf.training.bn_recalibration import recalibrate_bn
from ofa_tf.errors import DataError


@contextlib.contextmanager
def preserved_bn_statistics(net) -> Iterator[None]:
    """Restores the supernet's running BN statistics (and max subnet) on exit."""
    saved = [v.numpy() for v in net.non_trainable_variables]
    try:
        yield
    finally:
        for variable, value in zip(net.non_trainable_variables, saved):
            variable.assign(value)
        net.set_max_net()


def count_correct(logits: Callable[[tf.Tensor], tf.Tensor], batches: Iterable) -> tuple[int, int]:
    """(correct top-1 predictions, images) of `logits` over (images, labels) `batches`."""
    correct = total = 0
    for images, labels in batches:
        correct += int(tf.reduce_sum(tf.cast(tf.argmax(logits(images), axis=-1) == labels, tf.int32)))
        total += int(labels.shape[0])
    return correct, total


class SubnetEvaluator:
    """Measures subnets as the reference does: BN recalibration, then top-1.

    The recalibration batches (train transform at each resolution, fixed for
    the seed) are made once per resolution and reused for every subnet.

    Args:
        net: an `OFAMobileNetV3`.
        recalibration_images: training images (uint8) for BN recalibration.
        batch_size: recalibration batch size.
        seed: fixes the recalibration crops.
        crop_scale: area range of the recalibration crops.
    """

    def __init__(
        self,
        net,
        recalibration_images: tf.data.Dataset,
        batch_size: int,
        seed: int,
        crop_scale: Sequence[float] = DEFAULT_CROP_SCALE,
    ):
        self.net = net
        self.recalibration_images = recalibration_images
        self.batch_size = batch_size
        self.seed = seed
        self.crop_scale = tuple(crop_scale)
        self._batches: dict[int, list[tf.Tensor]] = {}
        images = tf.TensorSpec([None, None, None, 3], tf.float32)
        self._forward = tf.function(
            lambda x, arch: net(x, training=False, arch=arch), input_signature=[images, net.arch_spec()], autograph=False
        )

    def recalibrate(self, config: Config, resolution: int) -> None:
        """Resets the running BN statistics of `config` at `resolution`."""
        if resolution not in self._batches:
            self._batches[resolution] = recalibration_batches(
                self.recalibration_images, self.batch_size, resolution, self.seed, self.crop_scale
            )
        recalibrate_bn(self.net, self._batches[resolution], config=config)

    def top1(
        self, config: Config, resolution: int, examples: tf.data.Dataset, batch_size: int = 256, recalibrate: bool = True
    ) -> float:
        """Top-1 (percent) of `config` at `resolution` on labelled `examples`, after recalibration
        (`recalibrate=False`: with the running statistics as they are)."""
        if recalibrate:
            self.recalibrate(config, resolution)
        arch = self.net.arch_tensors(config)
        correct, total = count_correct(lambda images: self._forward(images, arch), eval_dataset(examples, batch_size, resolution))
        if total == 0:
            raise DataError("evaluation got no images: the evaluation split is empty")
        return 100.0 * correct / total
