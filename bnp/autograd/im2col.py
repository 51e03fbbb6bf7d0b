"""Sliding windows over images: the primitives behind convolution and pooling.

**im2col.** ``unfold`` copies every ``kh x kw`` window of a (zero-padded) image
into a column, so that a convolution becomes one matrix product::

    x (N, C, H, W)  --unfold-->  cols (N, C*kh*kw, L),   L = OH * OW
    weight (O, C, kh, kw) viewed as (O, C*kh*kw);  weight @ cols -> (N, O, L)

The layout is PyTorch's ``F.unfold``: row ``c*kh*kw + i*kw + j`` of the
columns holds input channel ``c`` at kernel offset ``(i, j)``, and column
``oh*OW + ow`` is the window whose top-left corner is ``(oh*sh, ow*sw)`` of
the padded image.

``unfold`` is linear, and ``fold`` (scatter-add the patches back onto the
image, summing where windows overlap, then crop the padding) is exactly its
adjoint. Each is therefore the VJP of the other, and derivatives of any
order come for free.

**Pooling.** The same idea gives two more adjoint pairs, which reduce each
window without materializing it:

* ``window_sum`` (sum of each window) and ``window_spread`` (add each value to
  every entry of its window) -- average pooling;
* ``window_pick`` (the entry at a given offset of each window) and
  ``window_place`` (put each value back at that entry) -- max pooling picks
  the offset of each window's maximum, a constant index, so its derivative is
  exactly ``window_place`` (first maximum on ties, as PyTorch).

Why not reshape to (N, C, OH, kh, OW, kw) and call ``max``/``sum`` over the
window axes: NumPy reduces over such strided axes about 40x slower than the
loops below, which make one elementwise pass per kernel offset.

No Python loop runs over pixels: ``unfold`` reads all windows through one
strided *view* of the padded image (``as_strided``, no copy) and copies it
once when reshaping; the other operations loop only over the ``kh*kw`` kernel
offsets, each iteration handling a whole strided slice.

All accept extra leading axes (``(*, C, H, W)``, ``(*, C*kh*kw, L)``, ...);
that is how batched upstream gradients (``bnp.hessian``) pass through.
"""

from __future__ import annotations

from typing import Any

from .. import backend
from .graph import make_node
from .tensor import Tensor

Pair = tuple[int, int]


def _check_pairs(where: str, **pairs: Any) -> None:
    """The primitives take (h, w) pairs of ints; parsing user arguments is ``bnp.functional``'s job."""
    for name, value in pairs.items():
        if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value)):
            raise TypeError(f"{where}: {name} must be a pair of ints (h, w), got {value!r}")


def window_positions(size: Pair, kernel: Pair, stride: Pair, padding: Pair = (0, 0)) -> Pair:
    """Number of window positions (OH, OW) along H and W: ``(H + 2p - k) // s + 1``."""
    oh = (size[0] + 2 * padding[0] - kernel[0]) // stride[0] + 1
    ow = (size[1] + 2 * padding[1] - kernel[1]) // stride[1] + 1
    return oh, ow


def _check_geometry(where: str, size: Pair, kernel: Pair, stride: Pair, padding: Pair = (0, 0)) -> Pair:
    """Checked (OH, OW) of ``kernel`` windows with ``stride`` on a ``size`` image padded by ``padding``."""
    _check_pairs(where, kernel_size=kernel, stride=stride, padding=padding)
    if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0:
        raise ValueError(
            f"{where}: kernel_size and stride must be >= 1 and padding >= 0, got kernel_size={kernel}, "
            f"stride={stride}, padding={padding}"
        )
    padded = (size[0] + 2 * padding[0], size[1] + 2 * padding[1])
    if padded[0] < kernel[0] or padded[1] < kernel[1]:
        raise ValueError(
            f"{where}: kernel {kernel} is larger than the padded input {padded} (input {size}, padding {padding})"
        )
    return window_positions(size, kernel, stride, padding)


def _pad(data: Any, padding: Pair) -> Any:
    """Zero-pad the last two axes (cheaper than ``xp.pad``: one allocation, one copy)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return data
    xp = backend.xp()
    *lead, h, w = data.shape
    out = xp.zeros((*lead, h + 2 * ph, w + 2 * pw), dtype=data.dtype)
    out[..., ph : ph + h, pw : pw + w] = data
    return out


def _unfold_array(data: Any, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair) -> Any:
    """Raw-array unfold: (M, C, H, W) -> (M, C*kh*kw, OH*OW)."""
    padded = _pad(data, padding)
    m, c = padded.shape[:2]
    s_m, s_c, s_h, s_w = padded.strides
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    # windows[m, c, i, j, y, x] = padded[m, c, y*sh + i, x*sw + j]: a view, no copy
    windows = backend.xp().lib.stride_tricks.as_strided(
        padded, (m, c, kh, kw, oh, ow), (s_m, s_c, s_h, s_w, s_h * sh, s_w * sw)
    )
    return windows.reshape(m, c * kh * kw, oh * ow)  # the one copy


def _fold_array(cols: Any, channels: int, size: Pair, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair) -> Any:
    """Raw-array fold: (M, C*kh*kw, OH*OW) -> (M, C, H, W), overlapping windows summed."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, padding, out_hw
    m = cols.shape[0]
    patches = cols.reshape(m, channels, kh, kw, oh, ow)
    out = backend.xp().zeros((m, channels, size[0] + 2 * ph, size[1] + 2 * pw), dtype=cols.dtype)
    for i in range(kh):  # loops over kernel offsets only; each adds a whole strided slice
        for j in range(kw):
            out[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw] += patches[:, :, i, j]
    return out[:, :, ph : ph + size[0], pw : pw + size[1]]


def unfold(x: Tensor, kernel: Pair, stride: Pair = (1, 1), padding: Pair = (0, 0)) -> Tensor:
    """Sliding ``kh x kw`` windows of a zero-padded image as columns (PyTorch's ``F.unfold``).

    Args:
        x: (N, C, H, W); any number of leading axes before C is allowed.
        kernel, stride, padding: (h, w) pairs of ints.

    Returns:
        (N, C*kh*kw, L) with ``L = OH*OW``, ``OH = (H + 2*ph - kh) // sh + 1`` (same for W).
    """
    if x.ndim < 3:
        raise ValueError(f"unfold: expected input of shape (N, C, H, W), got {x.shape}")
    *lead, c, h, w = x.shape
    out_hw = _check_geometry("unfold", (h, w), kernel, stride, padding)
    flat = x.data.reshape(-1, c, h, w)
    cols = _unfold_array(flat, kernel, stride, padding, out_hw)
    out = cols.reshape(*lead, c * kernel[0] * kernel[1], out_hw[0] * out_hw[1])

    def vjp(g: Tensor, o: Tensor) -> Tensor:
        return fold(g, (h, w), kernel, stride, padding)

    return make_node(out, (x,), (vjp,), "unfold")


def fold(cols: Tensor, size: Pair, kernel: Pair, stride: Pair = (1, 1), padding: Pair = (0, 0)) -> Tensor:
    """The adjoint of :func:`unfold`: add every column back onto its window, crop the padding.

    Args:
        cols: (N, C*kh*kw, L); any number of leading axes before C*kh*kw is allowed.
        size: (H, W) of the image (needed: with stride > 1 several sizes give the same L).
        kernel, stride, padding: as given to :func:`unfold`.

    Returns:
        (N, C, H, W). ``fold(unfold(x))`` is ``x`` times the number of windows covering each pixel.
    """
    size = tuple(size)
    if cols.ndim < 2:
        raise ValueError(f"fold: expected input of shape (N, C*kh*kw, L), got {cols.shape}")
    _check_pairs("fold", size=size)
    out_hw = _check_geometry("fold", size, kernel, stride, padding)
    *lead, rows, length = cols.shape
    per_channel = kernel[0] * kernel[1]
    if rows % per_channel or length != out_hw[0] * out_hw[1]:
        raise ValueError(
            f"fold: input of shape {cols.shape} does not match kernel {kernel} on an image of size {size} "
            f"(expected (N, C*{per_channel}, {out_hw[0] * out_hw[1]}))"
        )
    channels = rows // per_channel
    image = _fold_array(cols.data.reshape(-1, rows, length), channels, size, kernel, stride, padding, out_hw)
    out = image.reshape(*lead, channels, *size)

    def vjp(g: Tensor, o: Tensor) -> Tensor:
        return unfold(g, kernel, stride, padding)

    return make_node(out, (cols,), (vjp,), "fold")


# -- pooling windows ------------------------------------------------------------------
# Masks are applied by multiplying with 0/1 arrays rather than with ``where``:
# NumPy's ``where`` on an unpredictable mask is ~20x slower than a product.
def _offsets(kernel: Pair, stride: Pair, out_hw: Pair):
    """``(k, rows, cols)`` per kernel offset ``k = i*kw + j``: slices selecting, for every
    window, its entry at offset ``(i, j)`` -- an (OH, OW) strided view of the image."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    for i in range(kh):
        for j in range(kw):
            yield i * kw + j, slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw)


def _disjoint(kernel: Pair, stride: Pair) -> bool:
    """Windows do not overlap: every input entry belongs to at most one window."""
    return stride[0] >= kernel[0] and stride[1] >= kernel[1]


def _pool_check(where: str, shape: tuple[int, ...], kernel: Pair, stride: Pair) -> Pair:
    """Checked (OH, OW) of pooling windows (no padding) on the last two axes of ``shape``."""
    if len(shape) < 2:
        raise ValueError(f"{where}: expected input of shape (N, C, H, W), got {shape}")
    return _check_geometry(where, tuple(shape[-2:]), kernel, stride)


def window_sum(x: Tensor, kernel: Pair, stride: Pair) -> Tensor:
    """Sum of every window (no padding): (*, H, W) -> (*, OH, OW), ``OH = (H - kh) // sh + 1``."""
    out_hw = _pool_check("window_sum", x.shape, kernel, stride)
    size = x.shape[-2:]
    out = None
    for _, rows, cols in _offsets(kernel, stride, out_hw):
        if out is None:
            out = x.data[..., rows, cols].copy()
        else:
            out += x.data[..., rows, cols]
    return make_node(out, (x,), (lambda g, o: window_spread(g, size, kernel, stride),), "window_sum")


def window_spread(g: Tensor, size: Pair, kernel: Pair, stride: Pair) -> Tensor:
    """Adjoint of :func:`window_sum`: add each value to every entry of its window.

    Shapes: (*, OH, OW) -> (*, H, W) with ``size = (H, W)``; entries in no window get 0.
    """
    size = tuple(size)
    out_hw = _pool_check("window_spread", size, kernel, stride)
    if g.shape[-2:] != out_hw:
        raise ValueError(f"window_spread: expected (*, {out_hw[0]}, {out_hw[1]}) for windows on {size}, got {g.shape}")
    out = backend.xp().zeros(g.shape[:-2] + size, dtype=g.dtype)
    for _, rows, cols in _offsets(kernel, stride, out_hw):
        out[..., rows, cols] += g.data
    return make_node(out, (g,), (lambda g2, o: window_sum(g2, kernel, stride),), "window_spread")


def window_argmax(data: Any, kernel: Pair, stride: Pair) -> tuple[Any, Any]:
    """(max, offset of the max) of every window of a raw array: (*, H, W) -> two (*, OH, OW) arrays.

    The offset is numbered ``i*kw + j`` (int8 when it fits); on ties the first offset wins.
    """
    xp = backend.xp()
    out_hw = _pool_check("window_argmax", data.shape, kernel, stride)
    index_type = xp.int8 if kernel[0] * kernel[1] <= 127 else xp.int32
    top = which = None
    for k, rows, cols in _offsets(kernel, stride, out_hw):
        part = data[..., rows, cols]
        if top is None:
            top, which = part.copy(), xp.zeros(part.shape, dtype=index_type)
            continue
        better = part > top  # strict: an earlier offset keeps a tie
        xp.maximum(top, part, out=top)
        which += better * (index_type(k) - which)  # which = k where better
    return top, which


def window_pick(x: Tensor, which: Any, kernel: Pair, stride: Pair) -> Tensor:
    """The entry at offset ``which`` (numbered ``i*kw + j``) of every window: (*, H, W) -> (*, OH, OW).

    ``which`` is a constant integer array of shape (..., OH, OW), broadcast against
    the leading axes of ``x``; the map is linear in ``x``.
    """
    out_hw = _pool_check("window_pick", x.shape, kernel, stride)
    size = x.shape[-2:]
    out = backend.xp().zeros(backend.broadcast_shapes(x.shape[:-2] + out_hw, which.shape), dtype=x.dtype)
    for k, rows, cols in _offsets(kernel, stride, out_hw):
        out += x.data[..., rows, cols] * (which == k)
    return make_node(out, (x,), (lambda g, o: window_place(g, which, size, kernel, stride),), "window_pick")


def window_place(g: Tensor, which: Any, size: Pair, kernel: Pair, stride: Pair) -> Tensor:
    """Adjoint of :func:`window_pick`: put each value at offset ``which`` of its window, zeros elsewhere
    (values add up where windows overlap). Shapes: (*, OH, OW) -> (*, H, W)."""
    size = tuple(size)
    out_hw = _pool_check("window_place", size, kernel, stride)
    xp = backend.xp()
    out = xp.zeros(g.shape[:-2] + size, dtype=g.dtype)
    disjoint = _disjoint(kernel, stride)
    for k, rows, cols in _offsets(kernel, stride, out_hw):
        if disjoint:  # write straight into the strided slice, no temporary
            xp.multiply(g.data, which == k, out=out[..., rows, cols])
        else:
            out[..., rows, cols] += g.data * (which == k)
    return make_node(out, (g,), (lambda g2, o: window_pick(g2, which, kernel, stride),), "window_place")


def window_max(x: Tensor, kernel: Pair, stride: Pair) -> Tensor:
    """Maximum of every window: (*, H, W) -> (*, OH, OW).

    The value is ``window_pick(x, argmax)`` with the argmax held constant, so the
    gradient goes to the (first) maximum of each window and second derivatives are 0.
    """
    _pool_check("window_max", x.shape, kernel, stride)
    top, which = window_argmax(x.data, kernel, stride)
    size = x.shape[-2:]
    return make_node(top, (x,), (lambda g, o: window_place(g, which, size, kernel, stride),), "window_max")


__all__ = [
    "unfold", "fold", "window_positions", "window_sum", "window_spread", "window_argmax",
    "window_pick", "window_place", "window_max",
]
