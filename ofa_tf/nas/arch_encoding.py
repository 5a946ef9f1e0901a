"""One-hot encodings of subnets for the accuracy predictor, for every family.

A family describes its encoding as data: `space.encoding_groups(arch)` gives,
in upstream's order, groups of positions that each one-hot one choice (zeros
where a block does not run), and `space.ENCODING_LAYOUTS` the layouts it has.
The encoder only adds the resolution one-hot where the layout puts it:
  - "library" (`ofa/nas/accuracy_predictor/arch_encoder.py`): resolution one-hot
    over `resolutions` first; MobileNetV3 / ProxylessNAS (`MobileNetArchEncoder`):
    a kernel one-hot per block, then an expand one-hot per block; OFA-ResNet50-D
    (`ResNetArchEncoder`): the input stem (slot 1 where its depth is above 0), a
    width one-hot per stem conv pair, last stem conv and stage, an expand
    one-hot per block;
  - "tutorial" (`ofa/tutorial/accuracy_predictor.py`, the released 128-D
    MobileNetV3 predictor): the groups, then an 8-way resolution one-hot at
    `(r - 112) // 16`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ofa_tf.errors import ConfigError
from ofa_tf.space.encoding import OneHotGroup

LAYOUTS = ("library", "tutorial")
TUTORIAL_RESOLUTION_SLOTS = 8


class ArchEncoder:
    """Encodes many subnets of any family at once as float32 feature rows.

    Args:
        space: the search space (`SearchSpace` or `ResNetSpace`).
        resolutions: resolutions of the one-hot ("library" layout).
        layout: one of `space.ENCODING_LAYOUTS`.
    """

    def __init__(self, space: Any, resolutions: Sequence[int] | None = None, layout: str = "library"):
        if layout not in space.ENCODING_LAYOUTS:
            raise ConfigError(f"encoding layout {layout!r}: this family's subnets encode as one of {list(space.ENCODING_LAYOUTS)}")
        self.space = space
        self.layout = layout
        self.resolutions = tuple(resolutions if resolutions is not None else space.resolutions)
        groups = space.encoding_groups(space.to_indices([space.min_config()]))
        n_resolution = TUTORIAL_RESOLUTION_SLOTS if layout == "tutorial" else len(self.resolutions)
        self.n_features = sum(group.n_features for group in groups) + n_resolution

    def _resolution_group(self, resolution: np.ndarray) -> OneHotGroup:
        if self.layout == "tutorial":
            slot = (resolution - 112) // 16
            if np.any((slot < 0) | (slot >= TUTORIAL_RESOLUTION_SLOTS)):
                raise ConfigError("the tutorial encoding covers resolutions 112..239 only")
            return OneHotGroup(TUTORIAL_RESOLUTION_SLOTS, slot[:, None])
        lookup = {r: i for i, r in enumerate(self.resolutions)}
        try:
            index = np.array([lookup[int(r)] for r in resolution], dtype=np.int64)
        except KeyError as error:
            raise ConfigError(f"resolution {error} is not among the encoded resolutions {list(self.resolutions)}") from None
        return OneHotGroup(len(self.resolutions), index[:, None])

    def encode(self, arch: Any) -> np.ndarray:
        """[N, n_features] float32 one-hot features."""
        groups = list(self.space.encoding_groups(arch))
        resolution = self._resolution_group(np.asarray(arch.resolution, dtype=np.int64))
        groups = groups + [resolution] if self.layout == "tutorial" else [resolution] + groups
        return np.concatenate([group.one_hot() for group in groups], axis=1)


def arch_encoder(space: Any, resolutions: Sequence[int], layout: str = "library") -> ArchEncoder:
    """The encoder of a search space (any family) over `resolutions` in `layout`."""
    return ArchEncoder(space, resolutions, layout=layout)
