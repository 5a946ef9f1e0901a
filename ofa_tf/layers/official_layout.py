"""PyTorch tensor layouts of the official OFA package -> the Keras layouts of ofa-tf's layers."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

KeyMap = dict[str, tuple[Any, Callable[[np.ndarray], np.ndarray]]]  # official key -> (our variable, layout conversion)


def conv_kernel(w: np.ndarray) -> np.ndarray:  # OIHW -> HWIO
    return np.transpose(w, (2, 3, 1, 0))


def depthwise_kernel(w: np.ndarray) -> np.ndarray:  # (C, 1, k, k) -> (k, k, C, 1)
    return np.transpose(w, (2, 3, 0, 1))


def pointwise_matrix(w: np.ndarray) -> np.ndarray:  # (out, in, 1, 1) -> (in, out)
    return w[:, :, 0, 0].T


def same(w: np.ndarray) -> np.ndarray:
    return w


def bn_entries(prefix: str, bn) -> dict[str, tuple[Any, Callable]]:
    return {
        f"{prefix}.weight": (bn.gamma, same),
        f"{prefix}.bias": (bn.beta, same),
        f"{prefix}.running_mean": (bn.moving_mean, same),
        f"{prefix}.running_var": (bn.moving_variance, same),
    }
