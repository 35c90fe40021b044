"""Memory behaviour: graphs die with their last output by reference counting alone (no cycles
for the collector to find), and ``retain_grad=False`` frees each intermediate gradient as soon
as the backward pass has used it, not when the pass ends."""

from __future__ import annotations

import contextlib
import gc
import weakref
from collections.abc import Iterator

import numpy as np
import pytest

import opgraph
from opgraph import OpSpec, Variable
from opgraph.op import Op, Provenance

ops = opgraph.ops


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Whatever is freed inside was freed by reference counting: no cycle was involved."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class GradientProbe:
    """An identity op whose backward records, at each call, which of the gradients it received
    at earlier calls are still alive."""

    def __init__(self) -> None:
        self.received: list[weakref.ref] = []
        self.alive_at_call: list[list[bool]] = []
        spec = OpSpec("probe", lambda x: x.copy(), lambda x: x, self._backward)
        self.op = Op(spec, Provenance("memory-test"))

    def _backward(self, ctx, gy):
        self.alive_at_call.append([r() is not None for r in self.received])
        self.received.append(weakref.ref(gy))
        return gy * 2.0  # a new gradient: gy itself is no longer needed downstream


def probe_chain(probe: GradientProbe, depth: int) -> tuple[Variable, Variable]:
    x = Variable(np.linspace(0.1, 1.0, 4))
    y = x
    for _ in range(depth):
        y = probe.op(ops.tanh(y))
    return x, y.sum()


def test_retain_grad_false_frees_each_gradient_during_the_pass():
    probe = GradientProbe()
    with collector_paused():
        _, loss = probe_chain(probe, depth=4)
        loss.backward()
    # at every probe call, every gradient an earlier (later-in-graph) probe received is gone
    assert probe.alive_at_call == [[], [False], [False, False], [False, False, False]]


def test_retain_grad_true_keeps_the_gradients_it_was_asked_for():
    probe = GradientProbe()
    with collector_paused():
        _, loss = probe_chain(probe, depth=3)
        loss.backward(retain_grad=True)
    assert probe.alive_at_call == [[], [True], [True, True]]


def test_graph_and_gradients_die_with_the_last_output_after_backward():
    with collector_paused():
        x = Variable(np.linspace(0.1, 1.0, 5))
        y = ops.tanh(ops.sin(x) * x + 1.0).sum()
        nodes = [weakref.ref(y.creator)]
        while (inputs := nodes[-1]().inputs) and inputs[0].creator is not None:
            nodes.append(weakref.ref(inputs[0].creator))
        y.backward(retain_grad=True)
        retained = weakref.ref(y.creator.inputs[0].grad)
        del y
        assert [n() for n in nodes] == [None] * len(nodes)
        assert retained() is None
        assert x.grad is not None  # the leaf keeps its own gradient


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_training_loop_frees_every_step_graph_without_gc(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5)).astype(dtype)
    t = rng.standard_normal((8, 2)).astype(dtype)
    w = Variable(rng.standard_normal((5, 2)).astype(dtype))
    b = Variable(np.zeros(2, dtype))
    graphs = []
    with collector_paused():
        for _ in range(20):
            diff = ops.tanh(x @ w + b) - t
            loss = (diff * diff).sum() / len(diff)
            graphs.append(weakref.ref(loss.creator))
            w.cleargrad()
            b.cleargrad()
            loss.backward()
            w.data -= 0.1 * w.grad.data
            b.data -= 0.1 * b.grad.data
        del diff, loss
        assert sum(g() is not None for g in graphs) == 0
    assert w.dtype == dtype and w.grad.dtype == dtype and b.grad.dtype == dtype


def test_a_graph_kept_alive_by_an_intermediate_is_only_its_own_part():
    with collector_paused():
        x = Variable(np.ones(3))
        a = ops.sin(x)
        y = ops.exp(a) * 2.0
        top = weakref.ref(y.creator)
        del y
        assert top() is None  # the mul node went with y ...
        assert a.creator is not None and a.creator.inputs[0] is x  # ... a keeps its own node


def test_create_graph_gradient_cycle_is_broken_by_cleargrad():
    """With create_graph=True, x.grad's graph leads back to x (a cycle, as in PyTorch);
    clearing the gradient breaks it, so dropping x then frees everything without gc."""
    with collector_paused():
        x = Variable(np.linspace(0.1, 1.0, 3))
        ops.sin(x).sum().backward(create_graph=True)
        grad_graph = weakref.ref(x.grad.creator)
        leaf = weakref.ref(x)
        x.cleargrad()
        del x
        assert grad_graph() is None and leaf() is None


def test_create_graph_without_cleargrad_leaves_a_cycle_for_the_collector():
    with collector_paused():
        x = Variable(np.linspace(0.1, 1.0, 3))
        ops.sin(x).sum().backward(create_graph=True)
        leaf = weakref.ref(x)
        del x
        assert leaf() is not None  # x -> x.grad -> its graph -> x
    gc.collect()
    assert leaf() is None
