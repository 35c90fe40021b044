"""Window geometry shared by the convolution and pooling ops: (height, width) pairs, output
sizes, and the shape checks every op of this plugin runs before touching data."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

from opgraph import Attr, ShapeError
from opgraph.shapes import fmt_shapes

PLUGIN = "opgraph-conv"
Pair = tuple[int, int]


def pair_of(minimum: int) -> Callable[[Any], Pair]:
    """An `Attr` check: an int or a (height, width) pair of ints, each at least ``minimum``."""

    def check(value: Any) -> Pair:
        items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
        if len(items) != 2 or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in items
        ):
            raise TypeError(f"expected an int or a (height, width) pair of ints, got {value!r}")
        if min(items) < minimum:
            raise ValueError(f"every entry must be at least {minimum}")
        return int(items[0]), int(items[1])

    return check


kernel_pair = pair_of(1)
stride_pair = pair_of(1)
pad_pair = pair_of(0)

STRIDE = Attr("stride", 1, stride_pair, doc="step between windows (SH, SW) or one int")
PAD = Attr("pad", 0, pad_pair, doc="zeros added on each side (PH, PW) or one int")
WINDOW_ATTRS = (
    Attr("kernel_size", check=kernel_pair, doc="window (KH, KW) or one int"),
    STRIDE,
    PAD,
)


def shape_error(op: str, shapes: tuple, reason: str) -> ShapeError:
    return ShapeError(f"{op} ({PLUGIN}): input shapes {fmt_shapes(shapes)}: {reason}")


def check_image(op: str, shapes: tuple, image: tuple[int, ...], what: str = "x") -> None:
    if len(image) != 4:
        raise shape_error(op, shapes, f"{what} must be 4-d (N, C, H, W), got rank {len(image)}")


def conv_outsize(size: int, kernel: int, stride: int, pad: int) -> int:
    """Number of window positions along one axis (DeZero's get_conv_outsize)."""
    return (size + 2 * pad - kernel) // stride + 1


def deconv_outsize(size: int, kernel: int, stride: int, pad: int) -> int:
    """The smallest image size whose convolution has ``size`` positions (get_deconv_outsize)."""
    return stride * (size - 1) + kernel - 2 * pad


class Window(NamedTuple):
    """Where the windows of an op lie: their (KH, KW) size, (SH, SW) step, (PH, PW) padding."""

    kernel: Pair
    stride: Pair
    pad: Pair

    def counts(self, op: str, shapes: tuple, image: tuple[int, ...]) -> Pair:
        """(OH, OW) windows over the padded H, W of ``image``; a ShapeError if there are none
        or the kernel is empty."""
        if min(self.kernel) < 1:
            raise shape_error(op, shapes, f"kernel {self.kernel} is empty: sizes must be >= 1")
        oh, ow = (
            conv_outsize(image[2 + k], self.kernel[k], self.stride[k], self.pad[k])
            for k in range(2)
        )
        if oh < 1 or ow < 1:
            raise shape_error(
                op,
                shapes,
                f"kernel {self.kernel} does not fit the image {image[2:]} padded by {self.pad}; "
                "use a smaller kernel or more padding",
            )
        return oh, ow
