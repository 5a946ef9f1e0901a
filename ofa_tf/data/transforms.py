"""Image transforms of the reference (`imagenet_classification/data_providers/imagenet.py`).

Train: RandomResizedCrop(scale 0.08-1, ratio 3/4-4/3, bilinear) to the batch's
resolution -> horizontal flip -> ColorJitter(brightness=32/255, saturation=0.5)
-> normalize with ImageNet mean/std. Eval: resize the shorter side to
ceil(size / 0.875) -> centre crop -> normalize. Randomness is stateless,
seeded per image, so a pipeline is reproducible and identical on every replica.
"""

from __future__ import annotations

import math

from ofa_tf._backend import tf

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BRIGHTNESS = 32.0 / 255.0
SATURATION = 0.5
EVAL_CROP_FRACTION = 0.875


def normalize(image: tf.Tensor) -> tf.Tensor:
    """[0, 1] RGB -> (x - mean) / std."""
    return (image - tf.constant(IMAGENET_MEAN)) / tf.constant(IMAGENET_STD)


def _to_unit_float(image: tf.Tensor) -> tf.Tensor:
    return tf.image.convert_image_dtype(image, tf.float32) if image.dtype == tf.uint8 else tf.cast(image, tf.float32)


DEFAULT_CROP_SCALE = (0.08, 1.0)


def random_resized_crop(image: tf.Tensor, size, seed: tf.Tensor, scale=DEFAULT_CROP_SCALE) -> tf.Tensor:
    """A random crop of `scale` (default 8-100%) of the area and aspect 3/4-4/3, resized to size x size."""
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=(3.0 / 4.0, 4.0 / 3.0),
        area_range=tuple(scale),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    crop = tf.slice(image, begin, crop_size)
    return tf.image.resize(crop, tf.stack([size, size]), method="bilinear")


def color_jitter(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """torchvision ColorJitter(brightness=32/255, saturation=0.5): multiplicative factors."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    brightness = tf.random.stateless_uniform([], seeds[0], 1.0 - BRIGHTNESS, 1.0 + BRIGHTNESS)
    image = tf.clip_by_value(image * brightness, 0.0, 1.0)
    saturation = tf.random.stateless_uniform([], seeds[1], 1.0 - SATURATION, 1.0 + SATURATION)
    gray = tf.image.rgb_to_grayscale(image)
    return tf.clip_by_value(saturation * image + (1.0 - saturation) * gray, 0.0, 1.0)


def train_transform(image: tf.Tensor, size, seed: tf.Tensor, crop_scale=DEFAULT_CROP_SCALE) -> tf.Tensor:
    """Augmented, normalized float32 [size, size, 3] image."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    image = random_resized_crop(_to_unit_float(image), size, seeds[0], crop_scale)
    image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    return normalize(color_jitter(image, seeds[2]))


def eval_transform(image: tf.Tensor, size: int) -> tf.Tensor:
    """Resize (shorter side ceil(size / 0.875)), centre crop, normalize."""
    image = _to_unit_float(image)
    resize_to = math.ceil(size / EVAL_CROP_FRACTION)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = resize_to / tf.reduce_min(shape)
    new_shape = tf.cast(tf.round(shape * scale), tf.int32)
    image = tf.image.resize(image, tf.maximum(new_shape, resize_to), method="bilinear")
    return normalize(tf.image.resize_with_crop_or_pad(image, size, size))
