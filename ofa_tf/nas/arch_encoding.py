"""One-hot encodings of subnets for the accuracy predictor.

Two layouts, both as upstream:
  - "library" (`ofa/nas/accuracy_predictor/arch_encoder.py`, MobileNetArchEncoder):
    resolution one-hot over `resolutions`, then a kernel one-hot per block,
    then an expand one-hot per block;
  - "tutorial" (`ofa/tutorial/accuracy_predictor.py`, the released 128-D
    predictor): kernel one-hots (60), expand one-hots (60), then an 8-way
    resolution one-hot at `(r - 112) // 16`.
Blocks skipped by depth are all zeros. OFA-ResNet50-D subnets encode as upstream's
`ResNetArchEncoder` (`ResNetArchEncoder` below).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ofa_tf.errors import ConfigError
from ofa_tf.resnet_space import BASE_DEPTHS, ResNetArchIndices, ResNetSpace
from ofa_tf.space import ArchIndices, SearchSpace

LAYOUTS = ("library", "tutorial")
TUTORIAL_RESOLUTION_SLOTS = 8


class ArchEncoder:
    """Encodes many subnets at once as float32 feature rows.

    Args:
        space: the search space.
        resolutions: resolutions of the one-hot ("library" layout).
        layout: "library" or "tutorial".
    """

    def __init__(self, space: SearchSpace, resolutions: Sequence[int] | None = None, layout: str = "library"):
        if layout not in LAYOUTS:
            raise ConfigError(f"unknown encoding layout {layout!r}: expected one of {LAYOUTS}")
        self.space = space
        self.layout = layout
        self.resolutions = tuple(resolutions if resolutions is not None else space.resolutions)
        n_block_features = space.n_blocks * (len(space.ks_list) + len(space.expand_ratio_list))
        n_resolution = TUTORIAL_RESOLUTION_SLOTS if layout == "tutorial" else len(self.resolutions)
        self.n_features = n_block_features + n_resolution

    def _resolution_columns(self, resolution: np.ndarray) -> np.ndarray:
        if self.layout == "tutorial":
            slot = (resolution - 112) // 16
            if np.any((slot < 0) | (slot >= TUTORIAL_RESOLUTION_SLOTS)):
                raise ConfigError("the tutorial encoding covers resolutions 112..239 only")
            return self.n_features - TUTORIAL_RESOLUTION_SLOTS + slot
        lookup = {r: i for i, r in enumerate(self.resolutions)}
        try:
            return np.array([lookup[int(r)] for r in resolution], dtype=np.int64)
        except KeyError as error:
            raise ConfigError(f"resolution {error} is not among the encoded resolutions {list(self.resolutions)}") from None

    def encode(self, arch: ArchIndices) -> np.ndarray:
        """[N, n_features] float32 one-hot features."""
        space, n = self.space, len(arch)
        n_ks, n_e, n_blocks = len(space.ks_list), len(space.expand_ratio_list), space.n_blocks
        ks_start = 0 if self.layout == "tutorial" else len(self.resolutions)
        e_start = ks_start + n_blocks * n_ks
        features = np.zeros((n, self.n_features), dtype=np.float32)
        rows = np.arange(n)[:, None]
        blocks = np.arange(n_blocks)[None, :]
        active = space.active_block_mask(arch.depth).astype(np.float32)
        features[rows, ks_start + blocks * n_ks + arch.kernel_index] = active
        features[rows, e_start + blocks * n_e + arch.expand_index] = active
        features[np.arange(n), self._resolution_columns(np.asarray(arch.resolution))] = 1.0
        return features


class ResNetArchEncoder:
    """Encodes OFA-ResNet50-D subnets as upstream's `ResNetArchEncoder.arch2feature`:
    resolution one-hot, input-stem one-hot (slot 1 where the stem depth is above 0), a
    width-index one-hot per stem conv pair, last stem conv and stage, then an expand
    one-hot per block that runs (blocks skipped by depth are all zeros).

    Args:
        space: the ResNet search space.
        resolutions: resolutions of the one-hot (upstream's `image_size_list`).
    """

    layout = "library"

    def __init__(self, space: ResNetSpace, resolutions: Sequence[int] | None = None):
        self.space = space
        self.resolutions = tuple(resolutions if resolutions is not None else space.resolutions)
        n_w, n_e = len(space.width_mult_list), len(space.expand_ratio_list)
        self._stem = len(self.resolutions)
        self._width = self._stem + 2
        self._expand = self._width + (2 + space.n_stages) * n_w
        self.n_features = self._expand + space.n_blocks * n_e

    def encode(self, arch: ResNetArchIndices) -> np.ndarray:
        """[N, n_features] float32 features of `ResNetArchIndices` rows (`ResNetSpace.to_indices`)."""
        space = self.space
        depth, width, expand = arch.depth, arch.width_index, arch.expand_index
        n, n_w, n_e = len(depth), len(space.width_mult_list), len(space.expand_ratio_list)
        rows = np.arange(n)
        lookup = {r: i for i, r in enumerate(self.resolutions)}
        try:
            resolution_columns = np.array([lookup[int(r)] for r in arch.resolution], dtype=np.int64)
        except KeyError as error:
            raise ConfigError(f"resolution {error} is not among the encoded resolutions {list(self.resolutions)}") from None
        features = np.zeros((n, self.n_features), dtype=np.float32)
        features[rows, resolution_columns] = 1.0
        features[rows, self._stem + (depth[:, 0] > 0)] = 1.0
        entries = np.arange(width.shape[1])[None, :]
        features[rows[:, None], self._width + entries * n_w + width] = 1.0
        blocks = space.blocks
        depth_index = np.array([b.depth_index for b in blocks])
        limit = np.array([BASE_DEPTHS[b.stage] for b in blocks])[None, :] + depth[:, [1 + b.stage for b in blocks]]
        active = (depth_index[None, :] < limit).astype(np.float32)
        features[rows[:, None], self._expand + np.arange(len(blocks))[None, :] * n_e + expand] = active
        return features


def arch_encoder(space: SearchSpace | ResNetSpace, resolutions: Sequence[int], layout: str = "library"):
    """The encoder of a search space's family: `ArchEncoder` (MBConv, either layout) or `ResNetArchEncoder`."""
    if isinstance(space, ResNetSpace):
        if layout != "library":
            raise ConfigError(f"layout {layout!r}: OFA-ResNet50-D subnets have the library encoding only")
        return ResNetArchEncoder(space, resolutions)
    return ArchEncoder(space, resolutions, layout=layout)
