"""Structural checks: what forward and backward return (shapes, dtypes, counts), what they leave
alone (inputs, output gradients, memory they hand out), that they repeat themselves, and which
calls they reject."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from opgraph.conformance.case import (
    PASS,
    CaseRun,
    Outcome,
    call_op,
    describe_exception,
    is_float,
    skip,
)
from opgraph.conformance.samples import (
    DERIVED_SOURCES,
    BadCase,
    random_values,
    reshaped,
    resolved_attrs,
    rule_verdict,
    wrong_shapes,
)
from opgraph.engine import Variable, no_grad
from opgraph.errors import ShapeError
from opgraph.op import Op
from opgraph.shapes import fmt_shapes


def one_or_all(items: list) -> Any:
    return items[0] if len(items) == 1 else tuple(items)


def _declared_shapes(run: CaseRun, declared: Any) -> list[tuple[int, ...]]:
    expected = [declared] if run.spec.n_outputs == 1 else list(declared)
    return [tuple(int(d) for d in s) for s in expected]


# --- checks on the forward ---
def check_shape_rule(run: CaseRun) -> Outcome:
    """The rule's shapes equal the forward's; on shapes derived from the sample the rule never
    crashes, and (multi-input ops) the forward takes every shape the rule accepts."""
    probe = run.probe
    if probe.forward_error is not None:
        return Outcome(
            "error",
            f"forward raised {describe_exception(probe.forward_error)}",
            error=probe.forward_error,
        )
    shapes = [v.shape for v in run.case.values]
    declared = rule_verdict(run.spec, shapes, run.case.attrs)
    if isinstance(declared, Exception):
        return Outcome(
            "fail",
            f"the shape rule raised {describe_exception(declared)} for input shapes "
            f"{fmt_shapes(shapes)}, which forward accepts",
            error=declared,
        )
    expected = _declared_shapes(run, declared)
    observed = [tuple(y.shape) for y in probe.outputs]
    if expected != observed:
        return _rule_disagrees(expected, observed, shapes)
    return _derived_shape_problem(run) or PASS


def _derived_shape_problem(run: CaseRun) -> Outcome | None:
    """The rule on wrong shapes derived from the sample must answer or raise ShapeError; a
    multi-input op's forward must take what the rule accepts, with the rule's shapes."""
    if run.case.index >= DERIVED_SOURCES and not run.case.thorough:
        return None
    shapes = tuple(v.shape for v in run.case.values)
    probe_forward = len(shapes) > 1
    rng = run.rng("shape_rule")
    numbers = run.case.constants if run.case.numbers else ()  # a Python number has no shape
    for k, changed in _derived(shapes, numbers):
        trial = reshaped(shapes, k, changed)
        verdict = rule_verdict(run.spec, trial, run.case.attrs)
        if isinstance(verdict, ShapeError):
            continue
        if isinstance(verdict, Exception):
            return Outcome(
                "fail",
                f"the shape rule raised {describe_exception(verdict)} for input shapes "
                f"{fmt_shapes(trial)} instead of answering or raising ShapeError",
                {"shapes": fmt_shapes(trial)},
                error=verdict,
            )
        if probe_forward:
            problem = _forward_disagrees(run, rng, trial, _declared_shapes(run, verdict))
            if problem is not None:
                return problem
    return None


def _derived(
    shapes: tuple[tuple[int, ...], ...], fixed: Sequence[int]
) -> Iterator[tuple[int, tuple[int, ...]]]:
    for k, shape in enumerate(shapes):
        if k in fixed:
            continue
        for changed in wrong_shapes(shape):
            yield k, changed


def _forward_disagrees(
    run: CaseRun, rng: np.random.Generator, shapes: tuple, expected: list
) -> Outcome | None:
    spec = run.spec
    values = [  # labels and indices (no domain) are 0, valid whatever the other shapes
        np.zeros(s, v.dtype)
        if spec.input_domain(j) is None
        else random_values(rng, s, str(v.dtype), spec.input_domain(j))
        for j, (s, v) in enumerate(zip(shapes, run.case.values, strict=True))
    ]
    try:
        observed = [tuple(y.shape) for y in run.evaluate(values)]
    except Exception as exc:
        return Outcome(
            "fail",
            f"the shape rule accepts input shapes {fmt_shapes(shapes)} (giving "
            f"{one_or_all(expected)}) but forward raised {describe_exception(exc)}; make the "
            "rule raise ShapeError for them",
            error=exc,
        )
    if observed != expected:
        return _rule_disagrees(expected, observed, shapes)
    return None


def expected_dtypes(spec: Any, values: Sequence[np.ndarray], attrs: Any) -> list[np.dtype]:
    """The declared ``dtype_rule``'s answer, else numpy's promotion of the float inputs."""
    dtypes = [v.dtype for v in values]
    if spec.dtype_rule is not None:
        declared = spec.dtype_rule(*dtypes, **resolved_attrs(spec, attrs))
        declared = list(declared) if isinstance(declared, (tuple, list)) else [declared]
        return [np.dtype(d) for d in declared] * (spec.n_outputs // len(declared))
    floats = [v.dtype for k, v in enumerate(values) if spec.input_domain(k) is not None]
    return [np.result_type(*(floats or dtypes))] * spec.n_outputs


def check_output_dtype(run: CaseRun) -> Outcome:
    probe = run.probe
    if probe.forward_error is not None:
        return skip("forward raised (see shape_rule)")
    expected = expected_dtypes(run.spec, run.case.values, run.case.attrs)
    observed = [y.dtype for y in probe.outputs]
    if [str(d) for d in expected] != [str(d) for d in observed]:
        inputs = ", ".join(str(v.dtype) for v in run.case.values)
        return Outcome(
            "fail",
            f"forward returned {one_or_all([str(d) for d in observed])} for {inputs} inputs; "
            f"expected {one_or_all([str(d) for d in expected])} (declare dtype_rule if the "
            "op changes dtypes on purpose)",
            {"expected": str(expected), "observed": str(observed)},
        )
    return PASS


# --- checks on what backward returns ---
def backward_ready(run: CaseRun) -> Outcome | None:
    """A skip when there is no backward result to look at (with the check that says why)."""
    probe = run.probe
    if probe.forward_error is not None:
        return skip("forward raised (see shape_rule)")
    if run.spec.backward is None:
        return skip("the op declares no backward (every input is nondiff)")
    if probe.backward_error is not None:
        return skip("backward raised (see grad_count)")
    return None


def check_grad_count(run: CaseRun) -> Outcome:
    probe = run.probe
    if probe.backward_error is not None:  # only set when forward succeeded
        return Outcome(
            "error",
            f"backward raised {describe_exception(probe.backward_error)}",
            error=probe.backward_error,
        )
    if (not_ready := backward_ready(run)) is not None:
        return not_ready
    n = len(probe.inputs)
    grads = probe.grads
    if len(grads) != n:
        return Outcome(
            "fail",
            f"backward returned {len(grads)} gradient(s) for {n} input(s); return exactly one "
            "per input (None for a nondiff input or a constant)",
            {"expected": n, "observed": len(grads)},
        )
    for k, g in enumerate(grads):
        if g is None and run.spec.differentiable(k) and k not in run.case.constants:
            return Outcome(
                "fail",
                f"backward returned None for input {k}, which is differentiable and a Variable "
                f"(ctx.needs_input_grad is {probe.node.needs_input_grad}); return its gradient "
                "or list the input in nondiff",
            )
        if g is not None and not isinstance(g, Variable):
            return Outcome(
                "fail",
                f"backward returned a {type(g).__name__} for input {k}; return a Variable built "
                "with opgraph ops",
            )
    return PASS


def check_grad_shape(run: CaseRun) -> Outcome:
    if (not_ready := backward_ready(run)) is not None:
        return not_ready
    for k, (x, g) in enumerate(zip(run.probe.inputs, run.probe.grads, strict=True)):
        if g is None or g.shape == x.shape:
            continue
        if g.size > x.size:
            message = (
                f"backward of `{run.op.name}` did not reduce the gradient of input {k} from "
                f"{g.shape} to {x.shape} (use opgraph.unbroadcast)"
            )
        else:
            message = (
                f"backward of `{run.op.name}` returned a gradient of shape {g.shape} for input "
                f"{k} of shape {x.shape}; return one of the input's shape"
            )
        return Outcome("fail", message, {"expected": str(x.shape), "observed": str(g.shape)})
    return PASS


def check_grad_dtype(run: CaseRun) -> Outcome:
    if (not_ready := backward_ready(run)) is not None:
        return not_ready
    for k, (x, g) in enumerate(zip(run.probe.inputs, run.probe.grads, strict=True)):
        if g is not None and g.dtype != x.dtype:
            return Outcome(
                "fail",
                f"backward returned a {g.dtype} gradient for {x.dtype} input {k}; cast it "
                "(opgraph.unbroadcast does)",
                {"expected": str(x.dtype), "observed": str(g.dtype)},
            )
    return PASS


def _first_difference(before: np.ndarray, after: np.ndarray) -> tuple[int, ...] | None:
    if before.shape != after.shape or before.dtype != after.dtype:
        return ()
    equal_nan = is_float(before)
    if np.array_equal(before, after, equal_nan=equal_nan):
        return None
    same = (before == after) | (np.isnan(before) & np.isnan(after) if equal_nan else False)
    return tuple(int(i) for i in np.argwhere(~same)[0])


def check_no_mutation(run: CaseRun) -> Outcome:
    probe = run.probe
    if probe.forward_error is not None:
        return skip("forward raised (see shape_rule)")
    stages = [("forward", "input", probe.before, probe.after_forward)]
    if probe.grads is not None:
        stages.append(("backward", "input", probe.after_forward, probe.after_backward))
        stages.append(("backward", "output gradient", probe.cotangents, probe.cotangents_after))
    for stage, what, before, after in stages:
        for k, (b, a) in enumerate(zip(before, after, strict=True)):
            where = _first_difference(b, a)
            if where is not None:
                return Outcome(
                    "fail",
                    f"{stage} modified {what} {k} in place (first change at index {where}: "
                    f"{b[where] if where else b} -> {a[where] if where else a}); work on a copy",
                    {"where": str(where)},
                )
    return PASS


def _shares_writeable(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether writing through ``a`` can change ``b`` (a read-only view is safe)."""
    return bool(a.flags.writeable) and a.size > 0 and b.size > 0 and np.shares_memory(a, b)


def check_aliasing(run: CaseRun) -> Outcome:
    """No output and no gradient may be writeable memory of an input, an output gradient, or
    another output or gradient: the caller's next in-place update (``p.data -= ...``,
    ``x.grad.data *= ...``) would silently change the other array too."""
    probe = run.probe
    if probe.forward_error is not None:
        return skip("forward raised (see shape_rule)")
    handed_out = [("output", m, y) for m, y in enumerate(probe.outputs)]
    theirs = [("input", k, a) for k, a in enumerate(probe.inputs)] + handed_out
    if probe.grads is not None:
        grads = [("gradient", k, g.data) for k, g in enumerate(probe.grads) if g is not None]
        handed_out += grads
        theirs += [("output gradient", m, c) for m, c in enumerate(probe.given_cotangents)]
        theirs += grads
    for what, m, array in handed_out:
        for whose, k, other in theirs:
            if (whose, k) != (what, m) and _shares_writeable(array, other):
                how = "is" if array is other else "shares memory with"
                return Outcome(
                    "fail",
                    f"{what} {m} {how} {whose} {k} and is writeable: an in-place update of "
                    "one silently changes the other; return a new array (or a read-only view)",
                    {"where": f"{what} {m} / {whose} {k}"},
                )
    return PASS


def _differs(first: Sequence[Any], second: Sequence[Any]) -> str | None:
    """Where two results of the same call differ (None stands for a missing gradient)."""
    for m, (a, b) in enumerate(zip(first, second, strict=True)):
        if a is None or b is None:
            if (a is None) != (b is None):
                return f"{m} (None once, an array once)"
            continue
        where = _first_difference(a, b)
        if where is not None:
            return f"{m} (first difference at index {where}: {a[where]} vs {b[where]})"
    return None


def check_determinism(run: CaseRun) -> Outcome:
    """The same call twice gives the same outputs and gradients, bit for bit (stochastic ops:
    with the same seed)."""
    probe = run.probe
    if probe.forward_error is not None:
        return skip("forward raised (see shape_rule)")
    if (where := _differs(probe.outputs, run.evaluate(run.case.inputs()))) is not None:
        return Outcome(
            "fail",
            f"two identical forward calls returned different output {where}; an op must "
            "depend on its inputs, attributes and (stochastic ops) the rng it is given only",
        )
    if probe.grads is None:
        return PASS
    with no_grad():
        again = run.op.backward(probe.node, *[Variable(c.copy()) for c in probe.cotangents])
    again = tuple(again) if isinstance(again, (tuple, list)) else (again,)
    if len(again) != len(probe.grads):
        where = f"count ({len(probe.grads)} then {len(again)})"
    else:
        where = _differs(
            *([None if g is None else g.data for g in gs] for gs in (probe.grads, again))
        )
    if where is not None:
        return Outcome(
            "fail",
            f"two identical backward calls returned different gradient {where}; keep "
            "backward free of hidden state and of randomness other than ctx.state",
        )
    return PASS


# --- calls the op must reject ---
def check_bad_input(op: Op, bad: BadCase) -> Outcome:
    """The op must reject the call with the declared error, before recording anything."""
    shapes = [v.shape for v in bad.values]
    try:
        call_op(op, [Variable(v) for v in bad.values], bad.attrs, rng_seed=0)
    except bad.error as exc:
        return _judge_error(op, bad, exc)
    except Exception as exc:
        return Outcome(
            "fail",
            f"raised {describe_exception(exc)} instead of {bad.error.__name__} for input shapes "
            f"{fmt_shapes(shapes)} ({bad.note})",
            error=exc,
        )
    fix = "check the shapes in forward (e.g. call the shape rule)"
    if bad.error is not ShapeError:
        fix = "validate the attribute (e.g. with an opgraph.attrs type as its check)"
    return Outcome(
        "fail",
        f"accepted input shapes {fmt_shapes(shapes)} without raising {bad.error.__name__} "
        f"({bad.note}); {fix}",
    )


def _judge_error(op: Op, bad: BadCase, exc: BaseException) -> Outcome:
    text = str(exc)
    if bad.match is not None and not re.search(bad.match, text):
        return Outcome(
            "fail", f"raised {describe_exception(exc)}, which does not match {bad.match!r}"
        )
    missing = [f"`{w}`" if w == op.name else w for w in bad.must_name if w not in text]
    if missing:
        what = "the op and every input shape" if len(bad.must_name) > 1 else "the op"
        return Outcome(
            "fail",
            f"raised {type(exc).__name__} whose message {text!r} does not name "
            f"{', '.join(missing)}; name {what}",
        )
    return PASS


def _rule_disagrees(expected: list, observed: list, shapes: Any) -> Outcome:
    """The failure of a shape rule whose answer differs from the forward's output shapes."""
    return Outcome(
        "fail",
        f"the shape rule gives {one_or_all(expected)} but forward returned "
        f"{one_or_all(observed)} for input shapes {fmt_shapes(shapes)}",
        {"expected": str(one_or_all(expected)), "observed": str(one_or_all(observed))},
    )
