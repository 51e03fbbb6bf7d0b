"""Exercise im2col_conv: a convolution layer, forward and backward, by im2col in NumPy.

Prepared by chapter 06_convnets (im2col). Grade it with::

    bnp grade im2col_conv tutorials/exercises/im2col_conv.py

Task. Write a 2-D convolution layer as CNNs compute it (a cross-correlation:
the kernel is not flipped), with zero padding, like bnp.functional.conv2d:

    conv_forward(x, w, b, stride, padding) -> (out, cache)
        x: (N, C, H, W) images; w: (F, C, kh, kw) filters; b: (F,) biases;
        stride, padding: ints (the same for height and width).
        out: (N, F, Ho, Wo), Ho = (H + 2 padding - kh) // stride + 1 (Wo likewise),
        out[n, f, i, j] = b[f] + sum_{c, u, v} w[f, c, u, v] xpad[n, c, i*stride + u, j*stride + v].

    conv_backward(dout, cache) -> (dx, dw, db)
        dout: (N, F, Ho, Wo). dx: (N, C, H, W), dw: (F, C, kh, kw), db: (F,).

NumPy only: the grader refuses bnp.functional.conv2d, bnp's unfold/fold, bnp.nn.Conv2d
and autograd.

Hints.
- im2col: gather every patch into a column, cols (N, C*kh*kw, Ho*Wo), ordered
  (channel, row, column) as w.reshape(F, -1) is. Then out = w_mat @ cols + b.
- Backward: dw = sum over the batch of dout_mat @ cols^T, db = dout summed over
  (N, Ho, Wo), and dcols = w_mat^T @ dout_mat, scattered back (col2im: add, since
  patches overlap) into the padded input; then cut the padding off.
- The grader tries stride 1-3, padding 0-2, 1x1 kernels, non-square images and N = 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, padding: int) -> tuple[np.ndarray, Any]:
    """Cross-correlation with zero padding. Shapes: (N, C, H, W), (F, C, kh, kw), (F,) -> (N, F, Ho, Wo), cache."""
    raise NotImplementedError("write conv_forward")


def conv_backward(dout: np.ndarray, cache: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients. Shapes: dout (N, F, Ho, Wo) -> dx (N, C, H, W), dw (F, C, kh, kw), db (F,)."""
    raise NotImplementedError("write conv_backward")
