"""``conv2d`` and its transpose ``deconv2d``.

Each one's input gradient is the other op, and both weight gradients are one matmul of im2col
columns (`weight_grad`), so every backward is made of differentiable opgraph ops and gradients
of any order work (DeZero's conv weight gradient cannot be differentiated again).
"""

from __future__ import annotations

import numpy as np

from opgraph import Attr, ErrorInput, OpArgumentError, OpSpec, Sample, ShapeError
from opgraph_conv.columns import col2im_array, im2col_array
from opgraph_conv.geometry import (
    PAD,
    STRIDE,
    Window,
    check_image,
    conv_outsize,
    deconv_outsize,
    pad_pair,
    shape_error,
    stride_pair,
)


def _check_weights(op: str, shapes: tuple, x, w, b, *, channel_axis: int) -> None:
    """x and w are 4-d, w's input channels (axis ``channel_axis``) match x's, b matches the
    output channels (the other of w's first two axes)."""
    check_image(op, shapes, x)
    check_image(op, shapes, w, "the weight w")
    if min(w[2:]) < 1:
        raise shape_error(op, shapes, f"the kernel {tuple(w[2:])} is empty: sizes must be >= 1")
    if w[channel_axis] != x[1]:
        raise shape_error(
            op,
            shapes,
            f"x has {x[1]} channels but w expects {w[channel_axis]} (axis {channel_axis} of w)",
        )
    out_channels = w[1 - channel_axis]
    if b is not None and tuple(b) != (out_channels,):
        raise shape_error(op, shapes, f"the bias b must have shape ({out_channels},)")


def _add_bias(y: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def _bias_and_weight_grads(ctx, gy, image, grad_out):
    """Gradients of w (from `weight_grad`) and b (summed over N, H, W), when needed."""
    need = ctx.needs_input_grad
    w = ctx.inputs[1]
    window = Window(w.shape[2:], ctx.attrs["stride"], ctx.attrs["pad"])
    gw = weight_grad(ctx.ops, image, grad_out, window) if need[1] else None
    if len(ctx.inputs) == 2:
        return (gw,)
    return gw, (gy.sum(axis=(0, 2, 3)) if need[2] else None)


def weight_grad(ops, image, grad_out, window: Window):
    """sum over n, oh, ow of grad_out[n, o, oh, ow] * window[n, c, kh, kw, oh, ow] of image,
    as a (O, C, KH, KW) weight gradient: one matmul of im2col columns."""
    n, o, oh, ow = grad_out.shape
    c = image.shape[1]
    col = ops.im2col(image, *window, to_matrix=True)  # (N*OH*OW, C*KH*KW)
    g = ops.reshape(ops.transpose(grad_out, (1, 0, 2, 3)), (o, n * oh * ow))
    return ops.reshape(g @ col, (o, c, *window.kernel))


# --- conv2d ---
def _conv2d_rule(x, w, b=None, *, stride, pad):
    shapes = (x, w) if b is None else (x, w, b)
    _check_weights("conv2d", shapes, x, w, b, channel_axis=1)
    oh, ow = Window(tuple(w[2:]), stride, pad).counts("conv2d", shapes, x)
    return (x[0], w[0], oh, ow)


def _matrix(w: np.ndarray) -> np.ndarray:
    """A kernel as (its first axis, the rest): -1 would be undefined for an empty one."""
    return w.reshape(w.shape[0], int(np.prod(w.shape[1:])))


def _conv2d_forward(x, w, b=None, *, stride, pad):
    bias_shape = None if b is None else b.shape
    n, _, oh, ow = _conv2d_rule(x.shape, w.shape, bias_shape, stride=stride, pad=pad)
    col = im2col_array(x, Window(w.shape[2:], stride, pad), to_matrix=True)  # (N*OH*OW, CKK)
    y = (col @ _matrix(w).T).reshape(n, oh, ow, len(w))
    return _add_bias(np.ascontiguousarray(y.transpose(0, 3, 1, 2)), b)


def _conv2d_backward(ctx, gy):
    x, w = ctx.inputs[:2]
    stride, pad = ctx.attrs["stride"], ctx.attrs["pad"]
    gx = None
    if ctx.needs_input_grad[0]:
        gx = ctx.ops.deconv2d(gy, w, stride=stride, pad=pad, outsize=x.shape[2:])
    return (gx, *_bias_and_weight_grads(ctx, gy, x, gy))


# --- deconv2d ---
def _outsize(value):
    return None if value is None else stride_pair(value)


def _deconv2d_rule(x, w, b=None, *, stride, pad, outsize):
    shapes = (x, w) if b is None else (x, w, b)
    _check_weights("deconv2d", shapes, x, w, b, channel_axis=0)
    kernel = tuple(w[2:])
    smallest = tuple(deconv_outsize(x[2 + k], kernel[k], stride[k], pad[k]) for k in range(2))
    size = smallest if outsize is None else outsize
    if min(size) < 1 or any(
        conv_outsize(size[k], kernel[k], stride[k], pad[k]) != x[2 + k] for k in range(2)
    ):
        largest = tuple(smallest[k] + stride[k] - 1 for k in range(2))
        raise shape_error(
            "deconv2d",
            shapes,
            f"output size {size} is not one whose convolution gives {x[2:]}: with kernel "
            f"{kernel}, stride {stride} and pad {pad} it must lie between {smallest} and "
            f"{largest} (and be positive)",
        )
    return (x[0], w[1], *size)


def _deconv2d_forward(x, w, b=None, *, stride, pad, outsize):
    shape = _deconv2d_rule(
        x.shape, w.shape, None if b is None else b.shape, stride=stride, pad=pad, outsize=outsize
    )
    # every input pixel's weighted kernel, as the (N*H*W, OC*KH*KW) columns of the output
    n, c, h, wd = x.shape
    col = x.transpose(0, 2, 3, 1).reshape(n * h * wd, c) @ _matrix(w)
    window = Window(w.shape[2:], stride, pad)
    return _add_bias(col2im_array(col, shape, window, to_matrix=True), b)


def _deconv2d_backward(ctx, gy):
    x, w = ctx.inputs[:2]
    gx = None
    if ctx.needs_input_grad[0]:
        gx = ctx.ops.conv2d(gy, w, stride=ctx.attrs["stride"], pad=ctx.attrs["pad"])
    return (gx, *_bias_and_weight_grads(ctx, gy, gy, x))


# --- conformance hints ---
CASES = (  # (x shape, w shape, stride, pad): square, non-square, strided and padded geometry
    ((2, 2, 5, 4), (3, 2, 3, 2), (2, 1), (1, 0)),
    ((1, 3, 4, 4), (2, 3, 2, 2), 2, 0),
    ((1, 1, 3, 5), (2, 1, 1, 3), (1, 2), (0, 1)),
)


def _conv2d_samples(rng, dtype):
    for x, w, stride, pad in CASES:
        arrays = [rng.uniform(-1, 1, s).astype(dtype) for s in (x, w, (w[0],))]
        attrs = {"stride": stride, "pad": pad}
        yield Sample(tuple(arrays), attrs, f"x {x}, w {w}, with bias")
        yield Sample(tuple(arrays[:2]), attrs, f"x {x}, w {w}, no bias")


def _deconv2d_samples(rng, dtype):
    for image, w, stride, pad in CASES:
        xshape = _conv2d_rule(image, w, stride=stride_pair(stride), pad=pad_pair(pad))
        x = rng.uniform(-1, 1, xshape).astype(dtype)
        # the transpose of conv2d with weights w: w's (OC, C) are deconv2d's (C_in, C_out)
        wt = rng.uniform(-1, 1, w).astype(dtype)
        b = rng.uniform(-1, 1, (w[1],)).astype(dtype)
        attrs = {"stride": stride, "pad": pad}
        yield Sample((x, wt, b), attrs, f"x {xshape} back to {image}")
        yield Sample((x, wt), {**attrs, "outsize": image[2:]}, f"outsize {image[2:]}, no bias")


def _conv_errors(op: str):
    def errors():
        x, w = np.zeros((1, 2, 4, 4)), np.zeros((2, 2, 3, 3))
        yield ErrorInput((x, np.zeros((3, 3, 3, 3))), {}, ShapeError, f"{op}.*channels")
        yield ErrorInput((x[0], w), {}, ShapeError, f"{op}.*4-d")
        yield ErrorInput((x, w, np.zeros(3)), {}, ShapeError, f"{op}.*bias")
        yield ErrorInput((x, w), {"stride": 0}, OpArgumentError, "stride")
        yield ErrorInput((x, w), {"pad": (1, -1)}, OpArgumentError, "pad")
        if op == "conv2d":
            yield ErrorInput((x, np.zeros((2, 2, 7, 3))), {}, ShapeError, "conv2d.*fit")
        else:
            yield ErrorInput((x, w), {"outsize": (9, 6)}, ShapeError, "deconv2d.*output size")

    return errors


SPECS = [
    OpSpec(
        "conv2d",
        _conv2d_forward,
        _conv2d_rule,
        _conv2d_backward,
        inputs=("x", "W", "b?"),
        attrs=(STRIDE, PAD),
        requires=("deconv2d", "im2col"),
        kind="custom",
        sample_inputs=_conv2d_samples,
        error_inputs=_conv_errors("conv2d"),
        doc="2-D convolution (cross-correlation) of x (N, C, H, W) with w (OC, C, KH, KW) "
        "plus b (OC,): y is (N, OC, OH, OW), OH = (H + 2*PH - KH) // SH + 1.",
    ),
    OpSpec(
        "deconv2d",
        _deconv2d_forward,
        _deconv2d_rule,
        _deconv2d_backward,
        inputs=("x", "W", "b?"),
        attrs=(
            STRIDE,
            PAD,
            Attr("outsize", None, _outsize, doc="(OH, OW); default SH*(H-1) + KH - 2*PH"),
        ),
        requires=("conv2d", "im2col"),
        kind="custom",
        sample_inputs=_deconv2d_samples,
        error_inputs=_conv_errors("deconv2d"),
        doc="Transposed convolution (the gradient of conv2d with respect to its input) of x "
        "(N, C, H, W) with w (C, OC, KH, KW) plus b (OC,): y is (N, OC, OH, OW).",
    ),
]
