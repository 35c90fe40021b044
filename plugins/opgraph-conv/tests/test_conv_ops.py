"""conv2d, deconv2d, im2col and col2im against plain-loop numpy references on tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest

import opgraph
from opgraph import Variable

GEOMETRIES = [  # (x shape, w shape, stride, pad)
    ((2, 3, 5, 4), (4, 3, 3, 2), (2, 1), (1, 0)),
    ((1, 2, 6, 7), (2, 2, 2, 3), (3, 2), (0, 2)),
    ((1, 1, 4, 4), (1, 1, 1, 1), 1, 0),
]


def pair(v):
    return v if isinstance(v, tuple) else (v, v)


def naive_conv2d(x, w, b, stride, pad):
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = w.shape[2:]
    oh = (xp.shape[2] - kh) // sh + 1
    ow = (xp.shape[3] - kw) // sw + 1
    y = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            for i in range(oh):
                for j in range(ow):
                    window = xp[n, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    y[n, o, i, j] = (window * w[o]).sum() + b[o]
    return y


def naive_deconv2d(x, w, b, stride, pad, *, outsize):
    """Every input pixel adds its weighted kernel into the (padded) output."""
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    kh, kw = w.shape[2:]
    out = np.zeros((x.shape[0], w.shape[1], outsize[0] + 2 * ph, outsize[1] + 2 * pw))
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(x.shape[2]):
                for j in range(x.shape[3]):
                    out[n, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += x[n, c, i, j] * w[c]
    return out[:, :, ph : ph + outsize[0], pw : pw + outsize[1]] + b.reshape(1, -1, 1, 1)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.mark.parametrize(("xs", "ws", "stride", "pad"), GEOMETRIES)
def test_conv2d_matches_the_loop(rng, xs, ws, stride, pad):
    x, w, b = rng.normal(size=xs), rng.normal(size=ws), rng.normal(size=ws[0])
    y = opgraph.ops.conv2d(x, w, b, stride=stride, pad=pad)
    np.testing.assert_allclose(y.data, naive_conv2d(x, w, b, stride, pad), atol=1e-12)
    no_bias = opgraph.ops.conv2d(x, w, stride=stride, pad=pad)
    np.testing.assert_allclose(no_bias.data, y.data - b.reshape(1, -1, 1, 1), atol=1e-12)


@pytest.mark.parametrize(("xs", "ws", "stride", "pad"), GEOMETRIES)
def test_deconv2d_matches_the_loop_and_reaches_every_valid_outsize(rng, xs, ws, stride, pad):
    y_shape = opgraph.ops.conv2d(np.zeros(xs), np.zeros(ws), stride=stride, pad=pad).shape
    x, w, b = rng.normal(size=y_shape), rng.normal(size=ws), rng.normal(size=ws[1])
    out = opgraph.ops.deconv2d(x, w, b, stride=stride, pad=pad, outsize=xs[2:])
    assert out.shape == (xs[0], ws[1], *xs[2:])
    np.testing.assert_allclose(
        out.data, naive_deconv2d(x, w, b, stride, pad, outsize=xs[2:]), atol=1e-12
    )


def test_deconv2d_default_outsize_is_the_smallest_image():
    y = opgraph.ops.deconv2d(np.ones((1, 1, 3, 2)), np.ones((1, 2, 3, 2)), stride=(2, 3), pad=1)
    assert y.shape == (1, 2, 2 * 2 + 3 - 2, 3 * 1 + 2 - 2)


def test_deconv2d_rejects_an_empty_output():
    with pytest.raises(opgraph.ShapeError, match=r"deconv2d.*positive"):
        opgraph.ops.deconv2d(np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1)), pad=1)


def test_conv2d_gradients_are_the_adjoints(rng):
    """<conv2d(x, w), g> is bilinear: its x-gradient is deconv2d(g, w), its w-gradient the
    windows of x weighted by g; checked against the loop reference via finite differences."""
    xs, ws, stride, pad = GEOMETRIES[0]
    x, w, b = (Variable(rng.normal(size=s)) for s in (xs, ws, (ws[0],)))
    g = rng.normal(size=naive_conv2d(x.data, w.data, b.data, stride, pad).shape)
    (opgraph.ops.conv2d(x, w, b, stride=stride, pad=pad) * g).sum().backward()
    eps = 1e-6
    for var in (x, w, b):
        direction = rng.normal(size=var.shape)
        var.data += eps * direction
        up = (naive_conv2d(x.data, w.data, b.data, stride, pad) * g).sum()
        var.data -= 2 * eps * direction
        down = (naive_conv2d(x.data, w.data, b.data, stride, pad) * g).sum()
        var.data += eps * direction
        assert (up - down) / (2 * eps) == pytest.approx((var.grad.data * direction).sum())
    np.testing.assert_allclose(g.sum(axis=(0, 2, 3)), b.grad.data)


def test_conv2d_weight_gradient_is_differentiable_again(rng):
    """d/dx of <d loss/dw, r> exists and matches finite differences (DeZero's does not)."""
    xs, ws, stride, pad = GEOMETRIES[1]
    x, w = Variable(rng.normal(size=xs)), Variable(rng.normal(size=ws))
    r = rng.normal(size=ws)

    def weight_grad_projection(x_data):
        wv = Variable(w.data)
        (opgraph.ops.conv2d(x_data, wv, stride=stride, pad=pad) ** 2).sum().backward()
        return (wv.grad.data * r).sum()

    (opgraph.ops.conv2d(x, w, stride=stride, pad=pad) ** 2).sum().backward(create_graph=True)
    gw = w.grad
    x.cleargrad()
    (gw * r).sum().backward()
    direction, eps = rng.normal(size=xs), 1e-6
    numeric = (
        weight_grad_projection(x.data + eps * direction)
        - weight_grad_projection(x.data - eps * direction)
    ) / (2 * eps)
    assert numeric == pytest.approx((x.grad.data * direction).sum(), rel=1e-6)


@pytest.mark.parametrize("to_matrix", [True, False])
def test_im2col_windows_and_col2im_is_its_adjoint(rng, to_matrix):
    x = rng.normal(size=(2, 2, 5, 6))
    kernel, stride, pad = (3, 2), (2, 3), (1, 2)
    col = opgraph.ops.im2col(x, kernel, stride, pad, to_matrix=to_matrix).data
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (2, 2)))
    windows = col if not to_matrix else col.reshape(2, 3, 3, 2, 3, 2).transpose(0, 3, 4, 5, 1, 2)
    assert windows.shape == (2, 2, 3, 2, 3, 3)
    for i in range(3):
        for j in range(3):
            np.testing.assert_array_equal(
                windows[..., i, j], xp[:, :, i * 2 : i * 2 + 3, j * 3 : j * 3 + 2]
            )
    c = rng.normal(size=col.shape)
    back = opgraph.ops.col2im(c, x.shape, kernel, stride, pad, to_matrix=to_matrix).data
    assert (col * c).sum() == pytest.approx((x * back).sum())


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda ops: ops.conv2d(np.zeros((1, 2, 4, 4)), np.zeros((3, 3, 2, 2))), "channels"),
        (lambda ops: ops.conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3))), "fit"),
        (
            lambda ops: ops.deconv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)), outsize=9),
            "between",
        ),
        (lambda ops: ops.col2im(np.zeros((3, 4)), (1, 1, 3, 3), 2), "col2im"),
    ],
)
def test_bad_shapes_raise_shape_errors_naming_op_and_plugin(call, match):
    with pytest.raises(opgraph.ShapeError, match=match) as info:
        call(opgraph.ops)
    assert "opgraph-conv" in str(info.value)


def test_float32_stays_float32(rng):
    x = rng.normal(size=(1, 2, 4, 4)).astype(np.float32)
    w = Variable(rng.normal(size=(3, 2, 2, 2)).astype(np.float32))
    y = opgraph.ops.conv2d(x, w, stride=2)
    y.sum().backward()
    assert y.dtype == np.float32
    assert w.grad.dtype == np.float32
