"""The supernet families, each in its own folder; importing this package registers them
(`ofa_tf.space.registry`)."""

from ofa_tf.families import mbconv, resnet  # noqa: F401 (registers the released families)
