"""Writes a depthwise convolution with a kernel above 5x5 in one of the forms of `export.forms`:
sums of smaller depthwise convolutions, each exact in float (tests: <= 1e-4 on logits)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ofa_tf.export.forms import WINDOW_SIZES


def large_depthwise(layers: Any, source: Any, x: Any, input_scale: float, form: str, unpadded: tuple[Any, float, int] | None) -> Any:
    """`source` (a square depthwise Keras layer, kernel above 5x5) applied to `x` in `form`, before its
    activation, with `layers` (`keras.layers` or `tf_keras.layers`).

    Args:
        x: the rebuilt input, holding `input_scale` times the source model's (the kernel is divided by it).
        unpadded: for "dilated", (tensor, its scale, rows of padding) of the input before the layer's zero
            padding, or None where that padding is not a plain symmetric one.
    """
    config = source.get_config()
    kernel, stride = config["kernel_size"][0], config["strides"][0]
    if form == "dilated" and unpadded is not None:
        tensor, scale, pad = unpadded
        if kernel == 7 and stride == 1:
            return _dilated(layers, source, tensor, scale)
        if stride == 2 and int(tensor.shape[1]) % 2 == 0 and int(tensor.shape[2]) % 2 == 0:
            return _phases(layers, source, tensor, scale, pad)
    return _windows(layers, source, x, input_scale, WINDOW_SIZES[form])


# the outer ring of a 7x7 kernel (the taps outside its centre 5x5) as 3x3 kernels of these dilations,
# each centred: together they hold each of the 24 ring taps once
RING_DILATIONS = ((3, 3), (3, 1), (1, 3), (3, 2), (2, 3))


def _dilated(layers: Any, source, x: Any, input_scale: float) -> Any:
    """`source` (a 7x7 stride-1 depthwise convolution of `x` padded by 3, "same") as the sum of its centre
    5x5 kernel and five dilated 3x3 kernels holding the outer ring, all with "same" padding on `x`."""
    kernel = source.get_weights()[0] / input_scale
    covered = {(i, j) for i in range(1, 6) for j in range(1, 6)}
    kernels = [((1, 1), kernel[1:6, 1:6])]
    for dilation in RING_DILATIONS:
        taps = np.zeros((3, 3, *kernel.shape[2:]), kernel.dtype)
        for i in range(3):
            for j in range(3):
                tap = (3 + (i - 1) * dilation[0], 3 + (j - 1) * dilation[1])
                if tap not in covered:
                    covered.add(tap)
                    taps[i, j] = kernel[tap]
        kernels.append((dilation, taps))
    assert len(covered) == 49, "the ring dilations must hold every tap"
    return _sum(layers, source, [
        (f"{source.name}_d{dilation[0]}{dilation[1]}", x, taps, dict(padding="same", dilation_rate=dilation))
        for dilation, taps in kernels
    ])


def _phase_taps(kernel: int, pad: int, parity: int) -> dict[int, int]:
    """Tap -> offset along one axis of a stride-2 convolution padded by `pad` in front, for the input
    positions of `parity`: output i reads input 2i - pad + tap, which is position i + offset of that
    parity's phase (input[parity::2])."""
    return {tap: (tap - pad - parity) // 2 for tap in range(kernel) if (tap - pad - parity) % 2 == 0}


def _phases(layers: Any, source, x: Any, input_scale: float, pad: int) -> Any:
    """`source` (a k x k stride-2 depthwise convolution of `x` zero-padded by `pad` in front, with an output
    of half the even input size) as the sum over the four phases of `x` (even / odd rows and columns, picked
    by one-hot 2x2 stride-2 kernels) of stride-1 "same" convolutions with the taps that reach each phase."""
    kernel = source.get_weights()[0] / input_scale
    size, channels = kernel.shape[0], int(x.shape[-1])
    parts = []
    for row_parity in (0, 1):
        for col_parity in (0, 1):
            name = f"{source.name}_p{row_parity}{col_parity}"
            pick = np.zeros((2, 2, channels, 1), kernel.dtype)
            pick[row_parity, col_parity] = 1.0
            layer = layers.DepthwiseConv2D(2, strides=2, use_bias=False, name=f"{name}_pick")
            phase = layer(x)
            layer.set_weights([pick])
            rows, cols = _phase_taps(size, pad, row_parity), _phase_taps(size, pad, col_parity)
            half_h, half_w = max(map(abs, rows.values())), max(map(abs, cols.values()))
            taps = np.zeros((2 * half_h + 1, 2 * half_w + 1, *kernel.shape[2:]), kernel.dtype)
            for row, row_offset in rows.items():
                for col, col_offset in cols.items():
                    taps[half_h + row_offset, half_w + col_offset] = kernel[row, col]
            parts.append((name, phase, taps, dict(padding="same")))
    return _sum(layers, source, parts)


def _sum(layers: Any, source, parts: list[tuple[str, Any, Any, dict[str, Any]]]) -> Any:
    """The sum of the depthwise convolutions `parts` ((name, input, kernel, layer options) each) that
    together stand for `source`; its bias, if any, goes to the first of them."""
    bias, multiplier = source.get_weights()[1:], source.get_config()["depth_multiplier"]
    terms = []
    for name, x, taps, options in parts:
        layer = layers.DepthwiseConv2D(
            taps.shape[:2], depth_multiplier=multiplier, use_bias=bool(bias) and not terms, name=name, **options
        )
        terms.append(layer(x))
        layer.set_weights([taps, *(bias if len(terms) == 1 else [])])
    return layers.Add(name=f"{source.name}_sum")(terms)


def _window_offsets(kernel: int, window: int) -> list[tuple[int, int, int]]:
    """(offset, first tap, last tap + 1) along one axis: windows of `window` taps at `offset`, each
    tap of the kernel counted in exactly one of them (in the last window it overlaps, a tap belongs to
    the window that reaches it first)."""
    spans, covered = [], 0
    while covered < kernel:
        offset = min(covered, kernel - window)
        spans.append((offset, covered, min(offset + window, kernel)))
        covered = offset + window
    return spans


def _windows(layers: Any, source, x: Any, input_scale: float, window: int) -> Any:
    """`source` (a k x k depthwise convolution, k > window) as a sum of window x window depthwise
    convolutions over crops of its (explicitly) padded input."""
    config = source.get_config()
    (kh, kw), (sh, sw) = config["kernel_size"], config["strides"]
    height, width = int(x.shape[1]), int(x.shape[2])
    if config["padding"] == "same":
        out_h, out_w = -(-height // sh), -(-width // sw)
        pad_h, pad_w = max((out_h - 1) * sh + kh - height, 0), max((out_w - 1) * sw + kw - width, 0)
        padding = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))
        x = layers.ZeroPadding2D(padding, name=f"{source.name}_pad")(x)
        height, width = height + pad_h, width + pad_w
    out_h, out_w = (height - kh) // sh + 1, (width - kw) // sw + 1
    need_h, need_w = (out_h - 1) * sh + window, (out_w - 1) * sw + window
    kernel = source.get_weights()[0] / input_scale
    parts = []
    for row, first_row, end_row in _window_offsets(kh, window):
        for col, first_col, end_col in _window_offsets(kw, window):
            taps = np.zeros((window, window, *kernel.shape[2:]), kernel.dtype)
            rows, cols = slice(first_row - row, end_row - row), slice(first_col - col, end_col - col)
            taps[rows, cols] = kernel[first_row:end_row, first_col:end_col]
            name = f"{source.name}_w{row}{col}"
            crop = ((row, height - row - need_h), (col, width - col - need_w))
            cropped = layers.Cropping2D(crop, name=f"{name}_crop")(x) if any(map(any, crop)) else x
            parts.append((name, cropped, taps, dict(strides=(sh, sw), padding="valid")))
    return _sum(layers, source, parts)
