"""Per-block cost tables shared by the vectorized efficiency models.

A cost model gives each elastic block a value for every (kernel, expand)
choice plus a fixed value for everything else; summing over the active
blocks of many subnets is then one numpy gather.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ofa_tf.space import ArchIndices, SearchSpace
from ofa_tf.errors import ConfigError

TablesAt = Callable[[int], "tuple[np.ndarray, float]"]


def sum_block_table(space: SearchSpace, table: np.ndarray, fixed: float, arch: ArchIndices, rows: np.ndarray) -> np.ndarray:
    """fixed + sum over active blocks of table[block, kernel, expand], for the given rows."""
    block = np.arange(space.n_blocks)[None, :]
    per_block = table[block, arch.kernel_index[rows], arch.expand_index[rows]]
    mask = space.active_block_mask(arch.depth[rows])
    return fixed + (per_block * mask).sum(axis=1)


def sum_per_resolution(space: SearchSpace, arch: ArchIndices, resolution: int | None, tables_at: TablesAt) -> np.ndarray:
    """Sums each row with the tables of its resolution (`arch.resolution`, or `resolution`)."""
    resolutions = np.full(len(arch), resolution) if resolution is not None else arch.resolution
    if np.any(resolutions <= 0):
        raise ConfigError("this cost depends on the resolution: set it on the configs or pass resolution=")
    parts = {}
    for r in np.unique(resolutions):
        rows = np.flatnonzero(resolutions == r)
        table, fixed = tables_at(int(r))
        parts[int(r)] = (rows, sum_block_table(space, table, fixed, arch, rows))
    dtype = np.result_type(*(values.dtype for _, values in parts.values()))
    out = np.zeros(len(arch), dtype=dtype)
    for rows, values in parts.values():
        out[rows] = values
    return out
