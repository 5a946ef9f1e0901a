"""The predictor encoding's building block: positions that each one-hot one choice.

A family's space says how its subnets are encoded as a list of `OneHotGroup`s
(`encoding_groups`); `ofa_tf.nas.arch_encoding` lays the groups out.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class OneHotGroup:
    """Positions that each one-hot one choice.

    Args:
        n_choices: width of each position's one-hot.
        index: [N, positions] the chosen index per position.
        active: [N, positions] where the position is encoded (None: everywhere); inactive ones stay zero.
    """

    n_choices: int
    index: np.ndarray
    active: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return self.n_choices * self.index.shape[1]

    def one_hot(self) -> np.ndarray:
        """[N, n_features] float32."""
        n, positions = self.index.shape
        out = np.zeros((n, positions, self.n_choices), dtype=np.float32)
        value = 1.0 if self.active is None else self.active.astype(np.float32)
        out[np.arange(n)[:, None], np.arange(positions)[None, :], self.index] = value
        return out.reshape(n, -1)
