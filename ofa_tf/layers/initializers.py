"""Weight initializers of the official OFA code (`init_models(net, "he_fout")`)."""

import math

from ofa_tf._backend import keras


def he_fout(kernel_size: int, out_channels: int) -> keras.initializers.Initializer:
    """Normal(0, sqrt(2 / (k * k * out_channels))), as `he_fout` for convolutions."""
    return keras.initializers.RandomNormal(stddev=math.sqrt(2.0 / (kernel_size * kernel_size * out_channels)))


def linear_uniform(in_features: int) -> keras.initializers.Initializer:
    """Uniform(-1/sqrt(in), 1/sqrt(in)), as the official init of linear layers."""
    bound = 1.0 / math.sqrt(in_features)
    return keras.initializers.RandomUniform(-bound, bound)
