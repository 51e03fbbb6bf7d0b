"""Reference solution of exercise im2col_conv (chapter 06_convnets): im2col and col2im with fancy indexing."""

from __future__ import annotations

from typing import Any

import numpy as np


def _indices(c: int, h: int, w: int, kh: int, kw: int, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int,
                                                                           int]:
    """Index arrays (channel, row, col), each (C*kh*kw, Ho*Wo), into the padded image (h, w already padded)."""
    ho, wo = (h - kh) // stride + 1, (w - kw) // stride + 1
    channel = np.repeat(np.arange(c), kh * kw)[:, None]
    row = (np.tile(np.repeat(np.arange(kh), kw), c)[:, None] + stride * np.repeat(np.arange(ho), wo)[None, :])
    col = (np.tile(np.arange(kw), kh * c)[:, None] + stride * np.tile(np.arange(wo), ho)[None, :])
    return channel, row, col, ho, wo


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, padding: int) -> tuple[np.ndarray, Any]:
    """Cross-correlation with zero padding. Shapes: (N, C, H, W), (F, C, kh, kw), (F,) -> (N, F, Ho, Wo), cache."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    channel, row, col, ho, wo = _indices(c, h + 2 * padding, wd + 2 * padding, kh, kw, stride)
    cols = xp[:, channel, row, col]  # (N, C*kh*kw, Ho*Wo)
    out = w.reshape(f, -1) @ cols + b[None, :, None]  # (N, F, Ho*Wo)
    return out.reshape(n, f, ho, wo), (x.shape, w, cols, (channel, row, col), padding)


def conv_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients. Shapes: dout (N, F, Ho, Wo) -> dx (N, C, H, W), dw (F, C, kh, kw), db (F,)."""
    (n, c, h, wd), w, cols, (channel, row, col), padding = cache
    f = w.shape[0]
    d = dout.reshape(n, f, -1)  # (N, F, Ho*Wo)
    dw = np.einsum("nfl,nkl->fk", d, cols).reshape(w.shape)
    dcols = w.reshape(f, -1).T @ d  # (N, C*kh*kw, Ho*Wo)
    dxp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding))
    np.add.at(dxp, (slice(None), channel, row, col), dcols)  # col2im: overlapping patches add up
    return dxp[:, :, padding:padding + h, padding:padding + wd], dw, dout.sum(axis=(0, 2, 3))
