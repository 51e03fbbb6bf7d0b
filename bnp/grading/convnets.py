"""Graders of chapter 6's exercises: ``im2col_conv`` and ``bnp_update_conv``.

im2col_conv: FILE defines ``conv_forward(x, w, b, stride, padding) -> (out, cache)``
and ``conv_backward(dout, cache) -> (dx, dw, db)``: a 2-D cross-correlation
(what CNN layers compute, kernel not flipped) with zero padding, as
``bnp.functional.conv2d``. The reference is written here kernel offset by
kernel offset (no im2col, so it does not share a bug with one) and tested
against ``bnp.functional.conv2d`` and autograd in tests/test_grading.py.
Scales: each entry relative to the same sum taken over absolute values
(``conv(|x|, |w|) + |b|`` and so on); every entry is a sum of at most ~150
products, so any order is within ~150 u ~ 3e-14 of that; tolerance 1e-12.

bnp_update_conv: BNP's update for a Conv2d layer with bias and per-channel
statistics repeated over the kernel offsets, as ``bnp.BNP`` does by default::

    G_W'[o, c, i, j] = (G_W[o, c, i, j] - g_b[o] mu_c) / (var_c + eps)
    g_b'[o] = g_b[o] - sum_{c, i, j} G_W'[o, c, i, j] mu_c

Scales and tolerances as ``bnp_update`` (1e-12).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import numpy
from hypothesis import strategies as st

from . import cases
from .hints import matches, probe, shape_hint
from .preconditioning import _BNP_FORBIDDEN, EPSILONS, check_update, update_hint
from .runner import Checker, Exercise, Mismatch

__all__ = ["Im2colConv", "BnpUpdateConv", "conv_reference"]


# --------------------------------------------------------------------------- im2col_conv
@dataclass(frozen=True)
class ConvCase:
    n: int
    c: int
    f: int
    h: int
    w: int
    kh: int
    kw: int
    stride: int
    padding: int
    seed: int

    @property
    def out_hw(self) -> tuple[int, int]:
        return ((self.h + 2 * self.padding - self.kh) // self.stride + 1,
                (self.w + 2 * self.padding - self.kw) // self.stride + 1)

    def arrays(self) -> dict[str, Any]:
        r = cases.rng(self.seed)
        ho, wo = self.out_hw
        return {"x": r.standard_normal((self.n, self.c, self.h, self.w)),
                "w": r.standard_normal((self.f, self.c, self.kh, self.kw)), "b": r.standard_normal(self.f),
                "stride": self.stride, "padding": self.padding,
                "dout": r.standard_normal((self.n, self.f, ho, wo))}


@st.composite
def conv_cases(draw: Any) -> ConvCase:
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    padding = draw(st.integers(0, 2))
    kh = min(draw(st.integers(1, 3)), h + 2 * padding)
    kw = min(draw(st.integers(1, 3)), w + 2 * padding)
    return ConvCase(n=draw(st.integers(1, 2)), c=draw(st.integers(1, 3)), f=draw(st.integers(1, 3)), h=h, w=w,
                    kh=kh, kw=kw, stride=draw(st.integers(1, 3)), padding=padding, seed=draw(cases.seeds()))


def conv_reference(x: Any, w: Any, b: Any, stride: int, padding: int, dout: Any) -> dict[str, Any]:
    """out, dx, dw, db of a cross-correlation, one kernel offset at a time."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    ho, wo = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    xp = numpy.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    out = numpy.zeros((n, f, ho, wo)) + b.reshape(1, f, 1, 1)
    dxp = numpy.zeros_like(xp)
    dw = numpy.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            rows, cols = slice(i, i + stride * (ho - 1) + 1, stride), slice(j, j + stride * (wo - 1) + 1, stride)
            patch = xp[:, :, rows, cols]  # (n, c, ho, wo): input entry under kernel offset (i, j)
            out += numpy.einsum("nchw,fc->nfhw", patch, w[:, :, i, j])
            dxp[:, :, rows, cols] += numpy.einsum("nfhw,fc->nchw", dout, w[:, :, i, j])
            dw[:, :, i, j] = numpy.einsum("nfhw,nchw->fc", dout, patch)
    return {"out": out, "dx": dxp[:, :, padding:padding + h, padding:padding + wd], "dw": dw,
            "db": dout.sum(axis=(0, 2, 3))}


def _conv_all(a: dict[str, Any], flip: bool = False) -> dict[str, Any]:
    w = a["w"][:, :, ::-1, ::-1] if flip else a["w"]
    ref = conv_reference(a["x"], w, a["b"], a["stride"], a["padding"], a["dout"])
    if flip:
        ref["dw"] = ref["dw"][:, :, ::-1, ::-1]
    scale = conv_reference(numpy.abs(a["x"]), numpy.abs(w), numpy.abs(a["b"]), a["stride"], a["padding"],
                           numpy.abs(a["dout"]))
    return {**ref, **{f"{k}_scale": v for k, v in scale.items()}}


class Im2colConv(Exercise):
    name = "im2col_conv"
    functions = ("conv_forward", "conv_backward")
    forbidden = ("bnp.functional.conv2d", "bnp.autograd.im2col.unfold", "bnp.autograd.im2col.fold",
                 "bnp.nn.Conv2d.forward", "bnp.autograd.graph.grad", "bnp.autograd.graph.backward",
                 "bnp.autograd.tensor.Tensor.backward")
    forbid_reason = ("this exercise asks for the convolution and its backward pass written in NumPy (not bnp's "
                     "conv2d, unfold/fold, Conv2d or autograd)")
    tolerances = {"out": 1e-12, "dx": 1e-12, "dw": 1e-12, "db": 1e-12}
    max_examples = 30

    def cases(self) -> Any:
        return conv_cases()

    def inputs(self, case: ConvCase) -> dict[str, Any]:
        return case.arrays()

    def check(self, fns: SimpleNamespace, case: ConvCase, c: Checker) -> None:
        a = case.arrays()
        ref = _conv_all(a)
        out, cache = c.unpack(fns.conv_forward(a["x"].copy(), a["w"].copy(), a["b"].copy(), case.stride,
                                               case.padding), "conv_forward", ("out", "cache"))
        out = c.array(out, "out", ref["out"].shape)
        c.close("out", out, ref["out"], ref["out_scale"])
        grads = c.unpack(fns.conv_backward(a["dout"].copy(), cache), "conv_backward", ("dx", "dw", "db"))
        for value, q in zip(grads, ("dx", "dw", "db"), strict=True):
            got = c.array(value, q, ref[q].shape)
            c.close(q, got, ref[q], ref[f"{q}_scale"])

    def hint(self, case: ConvCase, failure: Mismatch, passes: Callable[[Any], bool]) -> str:
        if failure.kind == "shape":
            text = shape_hint(failure.detail, failure.quantity)
            if failure.quantity == "out":
                text += " (Ho = (H + 2 padding - kh) // stride + 1, and the same for W)"
            if failure.quantity == "dx":
                text += " (dx has x's shape: drop the padding from the gradient of the padded input)"
            return text
        if failure.kind == "wrong":
            a = case.arrays()
            flipped = _conv_all(a, flip=True)
            q = failure.quantity
            if (case.kh > 1 or case.kw > 1) and matches(failure.detail["got"], flipped[q], flipped[f"{q}_scale"]):
                return ("you flipped the kernel (a true convolution); CNN layers compute a cross-correlation: "
                        "out[i, j] = sum w[u, v] x[i*stride + u, j*stride + v]")
        return probe(case, passes, [
            (lambda k: k.stride < max(k.kh, k.kw), {"stride": max(case.kh, case.kw)}, "fails only when patches "
             "overlap (stride < kernel size): col2im must ADD the overlapping contributions (np.add.at), not assign"),
            (lambda k: k.stride > 1, {"stride": 1}, "fails only when stride > 1: output pixel (i, j) reads the "
             "input from (i*stride, j*stride); in the backward pass, scatter back to the same places"),
            (lambda k: k.padding > 0, {"padding": 0}, "fails only with padding: pad x with zeros on both sides, and "
             "cut the padding off dx"),
            (lambda k: k.kh != k.kw or k.h != k.w, {"kh": min(case.kh, case.kw), "kw": min(case.kh, case.kw),
                                                     "h": min(case.h, case.w), "w": min(case.h, case.w)},
             "fails only for non-square inputs or kernels: are height and width swapped somewhere?"),
            (lambda k: k.n > 1, {"n": 1}, "fails only with several images: sum dw and db over the batch too"),
            (lambda k: k.f > 1, {"f": 1}, "fails only with several filters: check how the filters' axis is reshaped"),
            (lambda k: k.c > 1, {"c": 1}, "fails only with several input channels: the patch vector stacks "
             "(channel, kh, kw) in w's order"),
        ], valid=lambda k: k.kh <= k.h + 2 * k.padding and k.kw <= k.w + 2 * k.padding)


# --------------------------------------------------------------------------- bnp_update_conv
@dataclass(frozen=True)
class ConvUpdateCase:
    out: int
    c: int
    kh: int
    kw: int
    mean_ratio: float
    decades: int
    eps: float
    seed: int

    def arrays(self) -> dict[str, Any]:
        return cases.gradient_and_statistics(self.seed, (self.out, self.c, self.kh, self.kw), self.c,
                                             self.mean_ratio, self.decades, self.eps)


class BnpUpdateConv(Exercise):
    name = "bnp_update_conv"
    functions = ("bnp_update_conv",)
    forbidden = _BNP_FORBIDDEN
    forbid_reason = "this exercise asks you to write BNP's conv update yourself (bnp.preconditioner is the reference)"
    tolerances = {"grad_w": 1e-12, "grad_b": 1e-12}

    def cases(self) -> Any:
        return st.builds(ConvUpdateCase, out=st.integers(1, 3), c=st.integers(1, 3), kh=st.integers(1, 3),
                         kw=st.integers(1, 3), mean_ratio=st.sampled_from(cases.MEAN_RATIOS),
                         decades=st.sampled_from(cases.DECADES), eps=st.sampled_from(EPSILONS), seed=cases.seeds())

    def inputs(self, case: ConvUpdateCase) -> dict[str, Any]:
        return case.arrays()

    def check(self, fns: SimpleNamespace, case: ConvUpdateCase, c: Checker) -> None:
        check_update(fns.bnp_update_conv, case.arrays(), c, "bnp_update_conv")

    def hint(self, case: ConvUpdateCase, failure: Mismatch, passes: Callable[[Any], bool]) -> str:
        first = probe(case, passes, [
            (lambda k: k.kh * k.kw > 1, {"kh": 1, "kw": 1}, "fails only for kernels larger than 1x1: every kernel "
             "offset of channel c shares mu_c and var_c, and g_b' = g_b - G_W' mu sums over channels AND offsets"),
            (lambda k: k.out > 1 and k.out != k.c, {"out": case.c}, "fails only when out != C: the statistics (C,) "
             "broadcast along grad_w's axis 1, not axis 0"),
        ])
        return first or update_hint(case, failure, passes, case.arrays())
