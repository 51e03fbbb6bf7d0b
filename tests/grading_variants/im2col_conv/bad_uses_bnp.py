# grading: fail forbidden "bnp.functional.conv2d"
"""Calls bnp's own convolution instead of writing im2col (the backward pass never runs)."""
import bnp


def conv_forward(x, w, b, stride, padding):
    return bnp.functional.conv2d(bnp.tensor(x), bnp.tensor(w), bnp.tensor(b), stride, padding).numpy(), x


def conv_backward(dout, cache):
    raise NotImplementedError
