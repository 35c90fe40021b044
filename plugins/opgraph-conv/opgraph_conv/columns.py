"""``im2col`` and ``col2im``: every kernel window of an image laid out as columns, and back.

They are each other's adjoint, so each is the other's backward; convolution and pooling are
built on them. Vectorised: one strided view for im2col, one loop over kernel offsets (never
over pixels) for col2im.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from opgraph import Attr, ErrorInput, OpArgumentError, OpSpec, Sample, ShapeError, attrs
from opgraph_conv.geometry import WINDOW_ATTRS, Window, check_image, shape_error


def im2col_array(x: np.ndarray, window: Window, to_matrix: bool, fill: float = 0.0) -> np.ndarray:
    """(N, C, KH, KW, OH, OW) windows of ``x`` padded with ``fill``; as a matrix
    (N*OH*OW, C*KH*KW) when ``to_matrix``."""
    (kh, kw), (sh, sw), (ph, pw) = window
    img = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    windows = sliding_window_view(img, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    if to_matrix:  # (N, OH, OW, C, KH, KW)
        n, c, oh, ow = windows.shape[:4]  # sizes spelt out: -1 is undefined for size 0
        return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
    return np.ascontiguousarray(windows.transpose(0, 1, 4, 5, 2, 3))


def col2im_array(
    col: np.ndarray, input_shape: tuple[int, ...], window: Window, to_matrix: bool
) -> np.ndarray:
    """Sum every window of ``col`` back into an image of ``input_shape`` (overlaps add up)."""
    n, c, h, w = input_shape
    (kh, kw), (sh, sw), (ph, pw) = window
    oh, ow = window.counts("col2im", (col.shape,), input_shape)
    if to_matrix:
        col = col.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=col.dtype)
    for j in range(kh):
        for i in range(kw):
            img[:, :, j : j + sh * oh : sh, i : i + sw * ow : sw] += col[:, :, j, i]
    return np.ascontiguousarray(img[:, :, ph : ph + h, pw : pw + w])


def columns_shape(
    op: str, shapes: tuple, image: tuple[int, ...], window: Window, to_matrix: bool
) -> tuple[int, ...]:
    """The shape im2col gives for an image of shape ``image``."""
    check_image(op, shapes, image)
    n, c = image[:2]
    oh, ow = window.counts(op, shapes, image)
    kh, kw = window.kernel
    return (n * oh * ow, c * kh * kw) if to_matrix else (n, c, kh, kw, oh, ow)


# --- im2col ---
def _im2col_rule(x, kernel_size, stride, pad, to_matrix):
    return columns_shape("im2col", (x,), x, Window(kernel_size, stride, pad), to_matrix)


def _im2col_forward(x, kernel_size, stride, pad, to_matrix):
    return im2col_array(x, Window(kernel_size, stride, pad), to_matrix)


def _im2col_backward(ctx, gy):
    (x,) = ctx.inputs
    return ctx.ops.col2im(gy, x.shape, **ctx.attrs)


# --- col2im ---
def _input_shape(value):
    shape = attrs.shape(value)
    if len(shape) != 4 or min(shape) < 0:
        raise ValueError("expected an (N, C, H, W) shape of non-negative ints")
    return shape


def _col2im_rule(col, *, input_shape, kernel_size, stride, pad, to_matrix):
    window = Window(kernel_size, stride, pad)
    expected = columns_shape("col2im", (col,), input_shape, window, to_matrix)
    if tuple(col) != expected:
        raise shape_error(
            "col2im",
            (col,),
            f"columns of an image {input_shape} with kernel {kernel_size}, stride {stride}, "
            f"pad {pad} have shape {expected}",
        )
    return tuple(input_shape)


def _col2im_forward(col, *, input_shape, kernel_size, stride, pad, to_matrix):
    window = Window(kernel_size, stride, pad)
    return col2im_array(col, input_shape, window, to_matrix)


def _col2im_backward(ctx, gy):
    window_attrs = {k: v for k, v in ctx.attrs.items() if k != "input_shape"}
    return ctx.ops.im2col(gy, **window_attrs)


# --- conformance hints ---
GEOMETRIES = (  # (image shape, window): square, non-square, strided, padded
    ((2, 2, 5, 4), Window((3, 2), (2, 1), (1, 0))),
    ((1, 3, 4, 4), Window((2, 2), (2, 2), (0, 0))),
    ((1, 1, 3, 5), Window((1, 3), (1, 2), (0, 1))),
)


def window_kwargs(window: Window) -> dict:
    return {"kernel_size": window.kernel, "stride": window.stride, "pad": window.pad}


def _im2col_samples(rng, dtype):
    for image, window in GEOMETRIES:
        for to_matrix in (True, False):
            yield Sample(
                (rng.uniform(-1, 1, image).astype(dtype),),
                {**window_kwargs(window), "to_matrix": to_matrix},
                f"image {image}",
            )


def _col2im_samples(rng, dtype):
    for image, window in GEOMETRIES:
        for to_matrix in (True, False):
            col = columns_shape("col2im", (), image, window, to_matrix)
            yield Sample(
                (rng.uniform(-1, 1, col).astype(dtype),),
                {**window_kwargs(window), "to_matrix": to_matrix, "input_shape": image},
                f"into image {image}",
            )


def _im2col_errors():
    image = np.zeros((1, 1, 3, 3))
    yield ErrorInput((np.zeros((3, 3)),), {"kernel_size": 2}, ShapeError, "im2col.*4-d")
    yield ErrorInput((image,), {"kernel_size": (4, 2)}, ShapeError, "im2col.*does not fit")
    yield ErrorInput((image,), {"kernel_size": 2, "stride": 0}, OpArgumentError, "stride")
    yield ErrorInput((image,), {"kernel_size": (1, 2, 3)}, OpArgumentError, "kernel_size")


def _col2im_errors():
    yield ErrorInput(
        (np.zeros((4, 5)),),
        {"input_shape": (1, 1, 3, 3), "kernel_size": 2},
        ShapeError,
        r"col2im.*\(4, 4\)",
        "columns of the wrong width",
    )
    yield ErrorInput(
        (np.zeros((4, 4)),), {"input_shape": (1, 3, 3), "kernel_size": 2}, OpArgumentError
    )


SPECS = [
    OpSpec(
        "im2col",
        _im2col_forward,
        _im2col_rule,
        _im2col_backward,
        attrs=(*WINDOW_ATTRS, Attr("to_matrix", True, attrs.flag)),
        requires=("col2im",),
        kind="custom",
        sample_inputs=_im2col_samples,
        error_inputs=_im2col_errors,
        doc="Kernel windows of an NCHW image as columns: (N*OH*OW, C*KH*KW) when to_matrix, "
        "else (N, C, KH, KW, OH, OW). Its backward is col2im.",
    ),
    OpSpec(
        "col2im",
        _col2im_forward,
        _col2im_rule,
        _col2im_backward,
        inputs=("col",),
        attrs=(
            Attr("input_shape", check=_input_shape, doc="the (N, C, H, W) image to rebuild"),
            *WINDOW_ATTRS,
            Attr("to_matrix", True, attrs.flag),
        ),
        requires=("im2col",),
        kind="custom",
        sample_inputs=_col2im_samples,
        error_inputs=_col2im_errors,
        doc="Adjoint of im2col: adds every window back into an image of input_shape.",
    ),
]
