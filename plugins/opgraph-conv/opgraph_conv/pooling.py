"""Max ``pooling`` and ``average_pooling`` over kernel windows of an NCHW image.

Both backwards scatter the output gradient into the windows and add them up with col2im, so
they are made of differentiable opgraph ops. Max pooling pads with -inf (padding never wins a
window); average pooling pads with zeros that count in the mean (DeZero and Chainer's
semantics), and unlike DeZero keeps the kernel's height and width in their order.
"""

from __future__ import annotations

import numpy as np

from opgraph import ErrorInput, OpArgumentError, OpSpec, Sample, ShapeError, derive
from opgraph_conv.columns import columns_shape, im2col_array
from opgraph_conv.geometry import WINDOW_ATTRS, Window, shape_error


def _pooled_shape(op, x, kernel_size, stride, pad):
    n, c, _, _, oh, ow = columns_shape(op, (x,), x, Window(kernel_size, stride, pad), False)
    return (n, c, oh, ow)


def _scatter(ctx, gy, weights):
    """col2im of gy spread over each window with per-position ``weights`` (broadcastable to
    (N, C, KH, KW, OH, OW))."""
    (x,) = ctx.inputs
    kh, kw = ctx.attrs["kernel_size"]
    n, c, oh, ow = gy.shape
    gcol = ctx.ops.broadcast_to(ctx.ops.reshape(gy, (n, c, 1, 1, oh, ow)), (n, c, kh, kw, oh, ow))
    return ctx.ops.col2im(gcol * weights, x.shape, to_matrix=False, **ctx.attrs)


# --- max pooling ---
def _pooling_rule(x, kernel_size, stride, pad):
    if any(p >= k for p, k in zip(pad, kernel_size, strict=True)):
        raise shape_error(
            "pooling",
            (x,),
            f"pad {pad} must be smaller than kernel_size {kernel_size}, or a window could hold "
            "only padding",
        )
    if len(x) == 4 and 0 in x[2:] and any(pad):
        raise shape_error(
            "pooling", (x,), f"the image {x[2:]} is empty: its windows hold only padding"
        )
    return _pooled_shape("pooling", x, kernel_size, stride, pad)


def _pooling_forward(x, kernel_size, stride, pad):
    n, c, oh, ow = _pooling_rule(x.shape, kernel_size, stride, pad)
    col = im2col_array(x, Window(kernel_size, stride, pad), to_matrix=False, fill=-np.inf)
    col = col.reshape(n, c, col.shape[2] * col.shape[3], oh, ow)
    winner = col.argmax(axis=2)  # the first maximum of each window takes its whole gradient
    y = np.take_along_axis(col, winner[:, :, None], axis=2)[:, :, 0]
    return y, winner


def _pooling_backward(ctx, gy):
    kh, kw = ctx.attrs["kernel_size"]
    n, c, oh, ow = gy.shape

    def one_hot(winner):  # of each window's winner
        positions = np.arange(kh * kw).reshape(1, 1, kh * kw, 1, 1)
        mask = positions == winner[:, :, None]
        return mask.reshape(n, c, kh, kw, oh, ow).astype(gy.dtype)

    return _scatter(ctx, gy, derive(one_hot, ctx.state))


# --- average pooling ---
def _average_pooling_forward(x, kernel_size, stride, pad):
    _pooled_shape("average_pooling", x.shape, kernel_size, stride, pad)
    window = Window(kernel_size, stride, pad)
    return im2col_array(x, window, to_matrix=False).mean(axis=(2, 3))


def _average_pooling_backward(ctx, gy):
    kh, kw = ctx.attrs["kernel_size"]
    return _scatter(ctx, gy, 1.0 / (kh * kw))


# --- conformance hints ---
CASES = (  # (x shape, kernel, stride, pad): square, non-square, overlapping, padded
    ((2, 2, 4, 6), (2, 3), (2, 3), 0),
    ((1, 2, 5, 4), (3, 2), (1, 2), (1, 0)),
    ((1, 1, 4, 4), 2, 2, 1),
)


def _pooling_samples(rng, dtype):
    """Values at least 0.05 apart, so no finite-difference step moves a window's maximum."""
    for shape, kernel, stride, pad in CASES:
        values = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.05 - 1.0
        attrs = {"kernel_size": kernel, "stride": stride, "pad": pad}
        yield Sample((values.astype(dtype),), attrs, f"x {shape}, distinct values")


def _average_pooling_samples(rng, dtype):
    for shape, kernel, stride, pad in CASES:
        attrs = {"kernel_size": kernel, "stride": stride, "pad": pad}
        yield Sample((rng.uniform(-1, 1, shape).astype(dtype),), attrs, f"x {shape}")


def _pool_errors(op):
    def errors():
        x = np.zeros((1, 1, 3, 3))
        yield ErrorInput((x[0],), {"kernel_size": 2}, ShapeError, f"{op}.*4-d")
        yield ErrorInput((x,), {"kernel_size": (2, 4)}, ShapeError, f"{op}.*does not fit")
        yield ErrorInput((x,), {"kernel_size": 2, "stride": (1, 0)}, OpArgumentError, "stride")
        if op == "pooling":
            yield ErrorInput((x,), {"kernel_size": 2, "pad": 2}, ShapeError, "pooling.*pad")

    return errors


SPECS = [
    OpSpec(
        "pooling",
        _pooling_forward,
        _pooling_rule,
        _pooling_backward,
        attrs=WINDOW_ATTRS,
        saves_state=True,
        requires=("col2im",),
        kind="custom",
        sample_inputs=_pooling_samples,
        error_inputs=_pool_errors("pooling"),
        doc="Max pooling of x (N, C, H, W) over kernel_size windows: (N, C, OH, OW). Padding "
        "is -inf; the first maximum of a window takes its gradient.",
    ),
    OpSpec(
        "average_pooling",
        _average_pooling_forward,
        lambda x, kernel_size, stride, pad: _pooled_shape(
            "average_pooling", x, kernel_size, stride, pad
        ),
        _average_pooling_backward,
        attrs=WINDOW_ATTRS,
        requires=("col2im",),
        kind="custom",
        sample_inputs=_average_pooling_samples,
        error_inputs=_pool_errors("average_pooling"),
        doc="Mean of x (N, C, H, W) over kernel_size windows: (N, C, OH, OW). Zero padding "
        "counts in the mean.",
    ),
]
