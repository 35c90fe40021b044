"""A second provider of the built-in ``sin``: a "fast" Taylor polynomial, right near 0 only, with
a backward that matches it — so every check of this op alone passes, and only comparing it with
the other provider (``differential``) can tell."""

from __future__ import annotations

from opgraph import OpSpec, hookimpl


def _fast_sin(x):
    return x - x**3 / 6.0


def _fast_sin_backward(ctx, gy):
    (x,) = ctx.inputs
    return gy * (1.0 - x * x / 2.0)


@hookimpl
def opgraph_ops():
    return [OpSpec("sin", _fast_sin, lambda x: x, _fast_sin_backward)]
