"""The least a define-by-run engine written in Python can cost: a calibration for the
per-op overhead targets, not a peer.

    python bench/floor.py [--repeats N]

``Floor`` below is the same model as opgraph (Variables, one node per op call, outputs held
weakly, backwards built from op calls, numbered nodes swept in reverse) with everything else
left out: no op sets, shape rules, dtype policy, gradient checks, broadcasting, contexts or
errors. It runs the ``sin`` and ``chain`` workloads next to hand-written numpy, opgraph and
torch (if installed), interleaved in this one process, and prints each engine's overhead
above numpy relative to torch's: what opgraph's features cost, against what Python itself
costs. The chain's forward is timed alone too (its graph recorded and freed), which splits
each engine's chain overhead into forward and backward.
"""

from __future__ import annotations

import argparse
import itertools
import weakref
from collections.abc import Callable

import timing

timing.use_one_thread()

import numpy as np  # noqa: E402 - after the BLAS thread setting

_numbers = itertools.count()
WORKLOADS = ("sin", "chain", "chain_forward")


class Floor:
    """A bare variable; its ``creator`` is (backward, inputs, weak output, number)."""

    __slots__ = ("__weakref__", "creator", "data", "grad", "requires_grad")

    def __init__(self, data: np.ndarray, requires_grad: bool = False) -> None:
        self.data, self.grad, self.creator, self.requires_grad = data, None, None, requires_grad

    def __mul__(self, other: object) -> Floor:
        return mul(self, other)

    def __add__(self, other: object) -> Floor:
        return add(self, other)

    def backward(self) -> None:
        pending = {id(self): Floor(np.ones_like(self.data))}
        found, stack = {}, [self.creator]
        while stack:
            node = stack.pop()
            found[id(node)] = node
            stack.extend(x.creator for x in node[1] if x.creator and id(x.creator) not in found)
        for grad_fn, inputs, out, _ in sorted(found.values(), key=lambda n: -n[3]):
            gy = pending.pop(id(out()), None)
            if gy is None:
                continue
            for x, gx in zip(inputs, grad_fn(inputs, out, gy), strict=False):
                if gx is not None and x.requires_grad:
                    if x.creator is None:
                        x.grad = gx if x.grad is None else Floor(x.grad.data + gx.data)
                    else:
                        prev = pending.get(id(x))
                        pending[id(x)] = gx if prev is None else Floor(prev.data + gx.data)

    def cleargrad(self) -> None:
        self.grad = None


def _node(y: Floor, backward: Callable, inputs: tuple) -> Floor:
    y.requires_grad = True
    y.creator = (backward, inputs, weakref.ref(y), next(_numbers))
    return y


def _unary(forward: Callable, backward: Callable) -> Callable:
    def call(x: Floor) -> Floor:
        y = Floor(forward(x.data))
        return _node(y, backward, (x,)) if x.requires_grad else y

    return call


def _binary(forward: Callable, backward: Callable | None) -> Callable:
    def call(x: Floor, z: object) -> Floor:
        if type(z) is not Floor:
            z = Floor(np.asarray(z, x.data.dtype))
        y = Floor(forward(x.data, z.data))
        if backward is not None and (x.requires_grad or z.requires_grad):
            return _node(y, backward, (x, z))
        return y

    return call


mul = _binary(  # constants (x * 0.5) get no gradient work, as in opgraph
    np.multiply,
    lambda xs, _, gy: (
        mul(gy, xs[1]) if xs[0].requires_grad else None,
        mul(gy, xs[0]) if xs[1].requires_grad else None,
    ),
)
add = _binary(np.add, lambda _xs, _, gy: (gy, gy))
sin_grad = _binary(lambda x, gy: np.cos(x) * gy, None)
tanh_grad = _binary(lambda y, gy: (1.0 - y * y) * gy, None)
sin = _unary(np.sin, lambda xs, _, gy: (sin_grad(xs[0], gy),))
tanh = _unary(np.tanh, lambda _, out, gy: (tanh_grad(out(), gy),))
total = _unary(np.sum, lambda xs, _, gy: (Floor(np.broadcast_to(gy.data, xs[0].data.shape)),))


def engines() -> dict[str, dict[str, Callable[[], list]]]:
    """Each engine's steps (sin, chain, the chain's forward alone): hand-written numpy, the
    floor, opgraph, torch."""
    import peer_numpy
    import peer_opgraph
    from define_by_run import DefineByRun

    floor = DefineByRun(lambda a: Floor(a, True), sin, tanh, total, mul, {})
    peers = {"numpy": peer_numpy, "floor": floor, "opgraph": peer_opgraph}
    try:
        import peer_torch
    except ImportError:
        pass
    else:
        peers["torch"] = peer_torch
    return {
        name: {workload: getattr(peer, f"{workload}_step")() for workload in WORKLOADS}
        for name, peer in peers.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=31, help="interleaved batches")
    args = parser.parse_args(argv)
    steps = engines()
    medians = {}
    for workload in WORKLOADS:
        fns = {name: by_workload[workload] for name, by_workload in steps.items()}
        want = fns["numpy"]()
        for fn in fns.values():  # every engine computes the same gradient (or forward value)
            np.testing.assert_allclose(_as_array(fn()[0]), want[0], rtol=1e-9)
        medians[workload] = timing.interleaved_medians(
            fns, repeats=args.repeats, min_batch_seconds=0.02
        )
        line = "  ".join(f"{name} {t * 1e6:.1f} us" for name, t in medians[workload].items())
        print(f"{workload}: {line}")
    for workload in ("sin", "chain"):
        times = medians[workload]
        if "torch" in times:
            torch_overhead = times["torch"] - times["numpy"]
            for name in ("floor", "opgraph"):
                ratio = (times[name] - times["numpy"]) / torch_overhead
                print(f"{workload}: {name}'s overhead / torch's overhead = {ratio:.2f}")
    print("chain's overhead above numpy, forward (graph recorded and freed) + backward:")
    whole, forward = medians["chain"], medians["chain_forward"]
    for name in whole:
        if name != "numpy":
            ahead = forward[name] - forward["numpy"]
            behind = whole[name] - forward[name] - (whole["numpy"] - forward["numpy"])
            print(f"  {name}: {ahead * 1e6:.1f} us + {behind * 1e6:.1f} us")
    return 0


def _as_array(value: object) -> np.ndarray:
    """A gradient of any engine here as a numpy array."""
    data = getattr(value, "data", value)
    if hasattr(data, "detach"):  # a torch tensor
        data = data.detach().numpy()
    return np.asarray(data)


if __name__ == "__main__":
    raise SystemExit(main())
