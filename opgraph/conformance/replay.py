"""The ``trace`` check: a sample's forward+backward, recorded by `opgraph.trace` and replayed on
fresh values of the same signature, gives eager's outputs and gradients exactly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from opgraph import engine
from opgraph.conformance.case import PASS, Outcome, skip
from opgraph.engine import Variable
from opgraph.trace import TraceError, trace

if TYPE_CHECKING:
    from opgraph.conformance.case import CaseRun


TRACED_SAMPLES = 4
"""Samples per op the ``trace`` check records and replays (a recording costs three eager
runs): the first ones, which cover every rank, size-0/size-1 and dtype the generator makes."""


def _not_traced(run: CaseRun) -> Outcome | None:
    """Why this sample is not recorded, as a skip (None: it is)."""
    if run.case.index >= TRACED_SAMPLES and not run.case.thorough:
        return skip(f"trace runs on the first {TRACED_SAMPLES} samples of each op (its cost)")
    if run.probe.forward_error is not None:
        return skip("forward raised (see shape_rule)")
    if run.spec.traceable is False:
        return skip("the op declares traceable=False")
    return None


def check_trace(run: CaseRun) -> Outcome:
    if (not_traced := _not_traced(run)) is not None:
        return not_traced
    if run.spec.backward is not None and (
        gated := run.gate("grad_count", "grad_shape", "grad_dtype")
    ):
        return gated  # a broken backward is reported once, by the check named after it
    step = _step(run)
    traced = trace(step)
    attrs = dict(run.case.attrs)  # an argument: index arrays among them are read fresh
    engine.seed(run.rng_seed)
    try:
        traced(*_arguments(run, run.case.inputs()), attrs=attrs)
    except TraceError as exc:
        return _refused(run, exc)
    engine.seed(run.rng_seed + 1)
    got = traced(*_arguments(run, _fresh_inputs(run)), attrs=attrs)
    engine.seed(run.rng_seed + 1)
    fresh = _arguments(run, _fresh_inputs(run))  # the same values in the same layouts
    found = _compare(got, step(*fresh, attrs=attrs), len(fresh), traced.recordings)
    if found.status == "fail" and traced.recordings == 1:  # is eager equal to itself here?
        twice = []
        for _ in range(2):
            engine.seed(run.rng_seed + 1)
            twice.append(step(*_arguments(run, _fresh_inputs(run)), attrs=attrs))
        if _compare(*twice, len(fresh), 1).status != "pass":
            return skip("eager calls differ from each other on the fresh values (see determinism)")
    return found


def _arguments(run: CaseRun, arrays: Any) -> list[Any]:
    """The sample's values as the traced function's arguments: constants passed as Python
    numbers are numbers here too (part of the signature)."""
    case = run.case
    return [a.item() if case.numbers and k in case.constants else a for k, a in enumerate(arrays)]


def _refused(run: CaseRun, exc: TraceError) -> Outcome:
    if run.spec.traceable:
        return Outcome(
            "fail", f"the op declares traceable=True, but recording refused: {exc}", error=exc
        )
    return skip(
        "not traceable (declare traceable=False to say so, or write the backward with ops or "
        f"saved state): {exc}"
    )


def _compare(got: list, want: list, n_inputs: int, recordings: int) -> Outcome:
    if recordings != 1:
        return Outcome("fail", "a call with the same signature recorded again instead of replaying")
    n_outputs = len(want) - n_inputs
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        what = f"output {k}" if k < n_outputs else f"gradient of input {k - n_outputs}"
        if (g is None) != (w is None):
            return Outcome("fail", f"the replay's {what} is {g!r} where eager gives {w!r}")
        if g is not None and not _identical(g.data, w.data):
            return Outcome(
                "fail",
                f"the replay's {what} differs from eager's on fresh values of the same shapes "
                f"({g.data.dtype} {g.data.shape} against {w.data.dtype} {w.data.shape}): the op "
                "depends on something the recording baked in (a value read in Python?)",
            )
    return PASS


def _step(run: CaseRun):
    """The sample's call on Variables, one backward per float output, the gradients."""
    op, spec, case = run.op, run.spec, run.case

    def step(*arrays: Any, attrs: dict) -> list:
        xs: list[Any] = [
            a  # the sample's constants: plain arrays or Python numbers
            if k in case.constants
            else Variable(
                a,
                requires_grad=spec.backward is not None
                and spec.differentiable(k)
                and a.dtype.kind == "f",
            )
            for k, a in enumerate(arrays)
        ]
        result = op([*xs], **attrs) if spec.variadic else op(*xs, **attrs)
        outputs = result if isinstance(result, tuple) else (result,)
        for y in outputs:
            if y.requires_grad and y.dtype.kind == "f":
                y.backward()
        return [*outputs, *(x.grad if isinstance(x, Variable) else None for x in xs)]

    return step


def _fresh_inputs(run: CaseRun) -> list[np.ndarray]:
    """The sample's inputs with the floats moved a little (within half the domain's margin,
    so they stay clear of kinks and poles); integers (labels, indices) and Python-number
    constants (part of the signature) kept."""
    rng = run.rng("trace")
    fresh = list(run.case.inputs())
    for k, a in enumerate(fresh):
        domain = run.spec.input_domain(k)
        kept = run.case.numbers and k in run.case.constants
        if a.dtype.kind == "f" and domain is not None and not kept:
            a[...] += (rng.uniform(-0.5, 0.5, a.shape) * domain.margin).astype(a.dtype)
    return fresh


def _identical(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    )
