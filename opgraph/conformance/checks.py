"""The checks, each a function of one op call (`CaseRun`) returning an `Outcome`.

A check whose precondition another check covers (a malformed gradient for ``grad_value``, a
wrong first-order gradient for ``grad_of_grad``) is skipped with a pointer to that check, so
every defect is reported once, by the check named after it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from opgraph import engine
from opgraph.conformance import numeric
from opgraph.conformance.samples import BadCase, Case, op_rng, resolved_attrs
from opgraph.conformance.settings import CHECKS, ConformanceSettings
from opgraph.contract import Tolerance
from opgraph.engine import Variable, no_grad
from opgraph.op import Op
from opgraph.shapes import fmt_shapes

PROJECTIONS = 2
"""Random projections per differentiable input in ``grad_value`` and ``grad_of_grad``."""


@dataclass(frozen=True)
class Outcome:
    """What one check found: status, a message saying what is wrong and what to do, details."""

    status: str
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    tolerance: Tolerance | None = None
    error: BaseException | None = None
    """The exception behind an ``error`` (or a wrong-exception ``fail``): its traceback gives
    the location in the plugin's code, ``--tb``, ``--pdb`` and pytest's own reporting."""


PASS = Outcome("pass")


def skip(reason: str) -> Outcome:
    """A skip; ``reason`` names the check or condition that makes this one moot."""
    return Outcome("skip", reason)


def describe_exception(exc: BaseException) -> str:
    """``Type: message``, the one format of every crash a check reports."""
    return f"{type(exc).__name__}: {exc}"


def call_op(op: Op, inputs: Sequence[Any], attrs: Mapping[str, Any], rng_seed: int) -> tuple:
    """Call ``op`` as a user would; stochastic ops get the same randomness on every call."""
    if op.spec.stochastic:
        engine.seed(rng_seed)
    args = [list(inputs)] if op.spec.variadic else list(inputs)
    result = op(*args, **attrs)
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def _is_float(array: np.ndarray) -> bool:
    return array.dtype.kind == "f"


def _first_difference(before: np.ndarray, after: np.ndarray) -> tuple[int, ...] | None:
    if before.shape != after.shape or before.dtype != after.dtype:
        return ()
    equal_nan = _is_float(before)
    if np.array_equal(before, after, equal_nan=equal_nan):
        return None
    same = (before == after) | (np.isnan(before) & np.isnan(after) if equal_nan else False)
    return tuple(int(i) for i in np.argwhere(~same)[0])


class CaseRun:
    """Every check of one op on one sample; shared work is done once, on first use."""

    def __init__(self, op: Op, case: Case, settings: ConformanceSettings) -> None:
        self.op = op
        self.spec = op.spec
        self.case = case
        self.settings = settings
        self.rng_seed = int(op_rng(settings.seed, op.name, case.index).integers(2**31))
        self._outcomes: dict[str, Outcome] = {}

    def outcome(self, check: str) -> Outcome:
        """The (memoised) outcome of ``check``; a crash of the op becomes an ``error``."""
        if check not in self._outcomes:
            try:
                self._outcomes[check] = CASE_CHECKS[check](self)
            except Exception as exc:
                self._outcomes[check] = Outcome(
                    "error",
                    f"{check} crashed while calling the op: {describe_exception(exc)}",
                    error=exc,
                )
        return self._outcomes[check]

    def rng(self, check: str) -> np.random.Generator:
        """A stream per check, so selecting checks never changes another check's numbers."""
        return op_rng(self.settings.seed, self.op.name, self.case.index, CHECKS.index(check))

    def tolerance(self, dtype: str) -> Tolerance:
        """Config override, else the op's declared tolerance, else the default for ``dtype``."""
        override = self.settings.tolerances.get(self.op.name, {}).get(dtype)
        declared = self.spec.tolerances.get(dtype)
        return (
            override
            or declared
            or numeric.DEFAULT_TOLERANCES.get(dtype, numeric.DEFAULT_TOLERANCES["float64"])
        )

    def inputs64(self) -> list[np.ndarray]:
        """Fresh inputs with the floats cast to float64, where central differences run."""
        return [a.astype(np.float64) if _is_float(a) else a for a in self.case.inputs()]

    def call(self, inputs: Sequence[Any]) -> tuple:
        return call_op(self.op, inputs, self.case.attrs, self.rng_seed)

    @cached_property
    def probe(self) -> Probe:
        return Probe(self)

    def gate(self, *checks: str) -> Outcome | None:
        """A skip pointing at the first of ``checks`` that did not pass, if any."""
        for name in checks:
            found = self.outcome(name)
            if found.status != "pass":
                return skip(f"not checked: {name} did not pass ({found.status})")
        return None

    def differentiable_inputs(self) -> list[int]:
        """Inputs whose gradient is compared with a numerical one: floats, not nondiff."""
        grads = self.probe.grads or ()
        return [
            k
            for k, value in enumerate(self.case.values)
            if self.spec.differentiable(k)
            and _is_float(value)
            and k < len(grads)
            and grads[k] is not None
        ]

    def numeric_function(self) -> numeric.Function:
        """The forward as a plain function of arrays (no graph), for central differences."""

        def f(arrays: list[np.ndarray]) -> tuple[np.ndarray, ...]:
            with no_grad():
                return tuple(y.data for y in self.call([Variable(a.copy()) for a in arrays]))

        return f


class Probe:
    """One forward and one raw backward of a case: what the op returned, before the engine's
    own checks, and the inputs before and after each step."""

    def __init__(self, run: CaseRun) -> None:
        self.inputs = list(run.case.inputs())
        self.before = [a.copy() for a in self.inputs]
        self.outputs: tuple | None = None
        self.forward_error: BaseException | None = None
        self.grads: tuple | None = None
        self.backward_error: BaseException | None = None
        self.after_forward: list[np.ndarray] = []
        self.after_backward: list[np.ndarray] = []
        self.cotangents: list[np.ndarray] = []
        self.cotangents_after: list[np.ndarray] = []
        try:
            self.outputs = run.call([Variable(a) for a in self.inputs])
        except Exception as exc:
            self.forward_error = exc
            return
        self.after_forward = [a.copy() for a in self.inputs]
        if run.spec.backward is None:
            return
        rng = run.rng("grad_count")
        self.cotangents = [_random_like(rng, y.data) for y in self.outputs]
        cotangent_vars = [Variable(c.copy()) for c in self.cotangents]  # backward gets copies
        try:
            node = self.outputs[0].creator
            if node is None:
                raise RuntimeError("the op call recorded no graph node for Variable inputs")
            with no_grad():
                grads = run.op.backward(node, *cotangent_vars)
        except Exception as exc:
            self.backward_error = exc
            return
        self.grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
        self.after_backward = [a.copy() for a in self.inputs]
        self.cotangents_after = [c.data for c in cotangent_vars]


def _random_like(rng: np.random.Generator, like: np.ndarray) -> np.ndarray:
    if _is_float(like):
        return rng.standard_normal(like.shape).astype(like.dtype)
    return np.ones(like.shape, dtype=like.dtype)


# --- checks on the forward ---
def check_shape_rule(run: CaseRun) -> Outcome:
    probe = run.probe
    if probe.forward_error is not None:
        return Outcome(
            "error",
            f"forward raised {describe_exception(probe.forward_error)}",
            error=probe.forward_error,
        )
    shapes = [v.shape for v in run.case.values]
    try:
        declared = run.spec.shape_rule(*shapes, **resolved_attrs(run.spec, run.case.attrs))
    except Exception as exc:
        return Outcome(
            "fail",
            f"the shape rule raised {describe_exception(exc)} for input shapes "
            f"{fmt_shapes(shapes)}, which forward accepts",
            error=exc,
        )
    expected = [declared] if run.spec.n_outputs == 1 else list(declared)
    expected = [tuple(int(d) for d in s) for s in expected]
    observed = [tuple(y.shape) for y in probe.outputs]
    if expected != observed:
        return Outcome(
            "fail",
            f"the shape rule gives {_one_or_all(expected)} but forward returned "
            f"{_one_or_all(observed)} for input shapes {fmt_shapes(shapes)}",
            {"expected": str(_one_or_all(expected)), "observed": str(_one_or_all(observed))},
        )
    return PASS


def _one_or_all(items: list) -> Any:
    return items[0] if len(items) == 1 else tuple(items)


def expected_dtypes(run: CaseRun) -> list[np.dtype]:
    """The declared ``dtype_rule``'s answer, else numpy's promotion of the float inputs."""
    spec, values = run.spec, run.case.values
    dtypes = [v.dtype for v in values]
    if spec.dtype_rule is not None:
        declared = spec.dtype_rule(*dtypes, **resolved_attrs(spec, run.case.attrs))
        declared = list(declared) if isinstance(declared, (tuple, list)) else [declared]
        return [np.dtype(d) for d in declared] * (spec.n_outputs // len(declared))
    floats = [v.dtype for k, v in enumerate(values) if spec.input_domain(k) is not None]
    return [np.result_type(*(floats or dtypes))] * spec.n_outputs


def check_output_dtype(run: CaseRun) -> Outcome:
    probe = run.probe
    if probe.forward_error is not None:
        return skip("forward raised (see shape_rule)")
    expected = expected_dtypes(run)
    observed = [y.dtype for y in probe.outputs]
    if [str(d) for d in expected] != [str(d) for d in observed]:
        inputs = ", ".join(str(v.dtype) for v in run.case.values)
        return Outcome(
            "fail",
            f"forward returned {_one_or_all([str(d) for d in observed])} for {inputs} inputs; "
            f"expected {_one_or_all([str(d) for d in expected])} (declare dtype_rule if the "
            "op changes dtypes on purpose)",
            {"expected": str(expected), "observed": str(observed)},
        )
    return PASS


# --- checks on what backward returns ---
def _backward_ready(run: CaseRun) -> Outcome | None:
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
    if (not_ready := _backward_ready(run)) is not None:
        return not_ready
    n = len(probe.inputs)
    grads = probe.grads
    if len(grads) != n:
        return Outcome(
            "fail",
            f"backward returned {len(grads)} gradient(s) for {n} input(s); return exactly one "
            "per input (None for a nondiff input)",
            {"expected": n, "observed": len(grads)},
        )
    for k, g in enumerate(grads):
        if g is None and run.spec.differentiable(k):
            return Outcome(
                "fail",
                f"backward returned None for input {k}, which is differentiable; return its "
                "gradient or list the input in nondiff",
            )
        if g is not None and not isinstance(g, Variable):
            return Outcome(
                "fail",
                f"backward returned a {type(g).__name__} for input {k}; return a Variable built "
                "with opgraph ops",
            )
    return PASS


def check_grad_shape(run: CaseRun) -> Outcome:
    if (not_ready := _backward_ready(run) or run.gate("grad_count")) is not None:
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
    if (not_ready := _backward_ready(run) or run.gate("grad_count")) is not None:
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


# --- numerical checks ---
def _float_case(run: CaseRun) -> Outcome | None:
    if np.dtype(run.case.dtype).kind != "f":
        return skip(f"{run.case.dtype} sample: gradients are only compared on float samples")
    if not run.differentiable_inputs():
        return skip("no differentiable float input")
    return None


def _nonfinite(outputs: Sequence[np.ndarray]) -> Outcome | None:
    for m, y in enumerate(outputs):
        if _is_float(y) and not np.isfinite(y).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(y))[0])
            return Outcome(
                "fail",
                f"forward produced {y[where]} at output {m} index {where} although every input "
                "lies in the declared domain (narrow the Domain or fix the forward)",
                {"where": str(where)},
            )
    return None


class _Gradients:
    """Analytic (through the op's backward) and numerical (central differences in float64)
    derivatives of one sample, with the step and tolerance that go with them."""

    def __init__(self, run: CaseRun) -> None:
        self.run = run
        self.output_vars = run.call([Variable(a) for a in run.case.inputs()])  # keeps ctx alive
        self.node = self.output_vars[0].creator
        self.outputs = [y.data for y in self.output_vars]
        self.f = run.numeric_function()
        self.x64 = run.inputs64()
        evaluated = self.f(self.x64)
        self.eps = numeric.step_for(evaluated)
        self.tol = run.tolerance(_tolerance_dtype(run, evaluated))

    def vjp(self, cotangents: list[np.ndarray]) -> list[np.ndarray]:
        """Cotangents (float64) in, raw gradients as float64 arrays (zeros for None) out."""
        gys = [Variable(c.astype(y.dtype)) for c, y in zip(cotangents, self.outputs, strict=True)]
        with no_grad():
            grads = self.run.op.backward(self.node, *gys)
        grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
        return [
            np.zeros(x.shape) if g is None else g.data.astype(np.float64)
            for g, x in zip(grads, self.node.inputs, strict=True)
        ]

    def jacobian_mismatch(self, k: int) -> Outcome | None:
        """Compare the full Jacobian of input ``k`` element by element (None when it matches,
        or when it is too large to build outside ``full_jacobian`` mode)."""
        x = self.x64[k]
        n_out = sum(y.size for y in self.outputs)
        if n_out * x.size > numeric.JACOBIAN_LIMIT and not self.run.settings.full_jacobian:
            return None
        shapes = [y.shape for y in self.outputs]
        analytic = numeric.analytic_jacobian(lambda c: self.vjp(c)[k].ravel(), shapes, x.size)
        numerical = numeric.numerical_jacobian(self.f, self.x64, k, self.eps)
        worst = numeric.worst_element(analytic, numerical, self.tol)
        if worst is None or worst.ok:
            return None
        out_at = _output_location(shapes, worst.where[0])
        in_at = [int(i) for i in np.unravel_index(worst.where[1], x.shape)]
        return Outcome(
            "fail",
            f"gradient of input {k} is wrong: d output{out_at} / d input {k}{in_at}: analytic "
            f"{worst.analytic:.6g}, numerical {worst.numerical:.6g}",
            {
                "max_abs_err": worst.abs_err,
                "max_rel_err": worst.rel_err,
                "where": f"output{out_at}, input {k}{in_at}",
                "expected": worst.numerical,
                "observed": worst.analytic,
            },
            self.tol,
        )


def _tolerance_dtype(run: CaseRun, outputs: Sequence[np.ndarray]) -> str:
    """The narrowest float dtype among the sample and the float64 evaluation's outputs."""
    floats = [np.dtype(run.case.dtype)] + [y.dtype for y in outputs if _is_float(y)]
    return str(min(floats, key=lambda d: d.itemsize))


def _grad_value_ready(run: CaseRun) -> Outcome | None:
    if (not_ready := _backward_ready(run) or run.gate("grad_count", "grad_shape")) is not None:
        return not_ready
    if (not_float := _float_case(run)) is not None:
        return not_float
    return _nonfinite([y.data for y in run.probe.outputs])


def check_grad_value(run: CaseRun) -> Outcome:
    if (not_ready := _grad_value_ready(run)) is not None:
        return not_ready
    grads = _Gradients(run)
    inputs = run.differentiable_inputs()
    if run.settings.full_jacobian:
        mismatches = (grads.jacobian_mismatch(k) for k in inputs)
        return next((m for m in mismatches if m is not None), Outcome("pass", tolerance=grads.tol))
    rng = run.rng("grad_value")
    for _ in range(PROJECTIONS):
        vs = [rng.standard_normal(y.shape) for y in grads.outputs]
        analytic = grads.vjp(vs)
        for k in inputs:
            u = rng.standard_normal(grads.x64[k].shape)
            numerical = numeric.project(
                numeric.directional(grads.f, grads.x64, k, u, grads.eps), vs
            )
            along_u = float(np.sum(analytic[k] * u))
            scale = float(np.sum(np.abs(analytic[k] * u)))
            if not numeric.close(along_u, numerical, scale, grads.tol):
                explained = grads.jacobian_mismatch(k)
                return explained or _projection_failure(k, along_u, numerical, grads.tol)
    return Outcome("pass", tolerance=grads.tol)


def _projection_failure(k: int, analytic: float, numerical: float, tol: Tolerance) -> Outcome:
    err = abs(analytic - numerical)
    return Outcome(
        "fail",
        f"gradient of input {k} disagrees with central differences along a random projection "
        f"v^T J u: analytic {analytic:.6g}, numerical {numerical:.6g}",
        {"max_abs_err": err, "max_rel_err": err / abs(numerical) if numerical else None},
        tol,
    )


def _output_location(shapes: Sequence[tuple[int, ...]], row: int) -> str:
    for m, shape in enumerate(shapes):
        size = int(np.prod(shape))
        if row < size:
            index = [int(i) for i in np.unravel_index(row, shape)]
            return f" {m} {index}" if len(shapes) > 1 else f"{index}"
        row -= size
    return str(row)


def _second_order_ready(run: CaseRun) -> Outcome | None:
    if not run.spec.backward_differentiable:
        return skip("the op declares backward_differentiable=False")
    if (not_ready := _backward_ready(run) or run.gate("grad_dtype", "grad_value")) is not None:
        return not_ready
    if (not_float := _float_case(run)) is not None:
        return not_float
    if run.case.dtype != "float64" and "float64" in run.spec.dtypes:
        return skip("second order is computed in float64: checked on the float64 samples")
    return None


def check_grad_of_grad(run: CaseRun) -> Outcome:
    """One projection along a random direction of every input at once (two evaluations); on a
    mismatch each input alone, to name the one whose second-order gradient is wrong."""
    if (not_ready := _second_order_ready(run)) is not None:
        return not_ready
    rng = run.rng("grad_of_grad")
    inputs = run.differentiable_inputs()
    x64 = run.inputs64()
    second = _SecondOrder(run, inputs, rng, x64)
    tol = run.tolerance("float64")
    hessian = second.analytic(x64)
    directions = {k: rng.standard_normal(x64[k].shape) for k in inputs}
    if second.matches(x64, hessian, directions, tol):
        return Outcome("pass", tolerance=tol)
    for k in inputs:
        if not second.matches(x64, hessian, {k: directions[k]}, tol):
            return _second_order_failure(k, second.last, hessian[k] is None, tol)
    return _second_order_failure(None, second.last, False, tol)


def _second_order_failure(
    k: int | None, values: tuple[float, float], unreached: bool, tol: Tolerance
) -> Outcome:
    analytic, numerical = values
    which = "the inputs (jointly)" if k is None else f"input {k}"
    hint = (
        " (no second-order gradient reached the input: build the backward from opgraph ops, "
        "or declare backward_differentiable=False)"
        if unreached
        else ""
    )
    return Outcome(
        "fail",
        f"second-order gradient of {which} through create_graph=True disagrees with central "
        f"differences of the first-order gradient: analytic {analytic:.6g}, numerical "
        f"{numerical:.6g}{hint}",
        {"max_abs_err": abs(analytic - numerical)},
        tol,
    )


class _SecondOrder:
    """``s(x) = sum_k <w_k, grad_k <v, op(x)>>``: the first-order gradient (through the engine
    with create_graph) projected to a scalar, whose own gradient is the second order."""

    def __init__(
        self, run: CaseRun, inputs: list[int], rng: np.random.Generator, x64: list[np.ndarray]
    ) -> None:
        self.run, self.inputs = run, inputs
        outputs = run.numeric_function()(x64)
        self.eps = numeric.step_for(outputs)
        self.vs = [rng.standard_normal(y.shape) for y in outputs]
        self.ws = {k: rng.standard_normal(x64[k].shape) for k in inputs}
        self.last = (0.0, 0.0)

    def evaluate(self, arrays: list[np.ndarray], create_graph: bool) -> tuple[Any, list[Variable]]:
        xs = [Variable(a.copy()) for a in arrays]  # a mutating forward must not move the point
        outputs = self.run.call(xs)
        total = None
        for y, v in zip(outputs, self.vs, strict=True):
            if _is_float(y.data):
                term = (y * Variable(v.astype(y.dtype))).sum()
                total = term if total is None else total + term
        total.backward(create_graph=create_graph)
        s: Any = 0.0
        for k in self.inputs:
            g = xs[k].grad
            if g is not None:
                s = s + (g * Variable(self.ws[k].astype(g.dtype))).sum()
        return s, xs

    def analytic(self, x64: list[np.ndarray]) -> dict[int, np.ndarray | None]:
        """ds/dx_k by differentiating the recorded first-order gradient (None: unreached)."""
        s, xs = self.evaluate(x64, create_graph=True)
        for x in xs:
            x.cleargrad()
        if isinstance(s, Variable):
            s.backward()
        return {k: None if xs[k].grad is None else xs[k].grad.data for k in self.inputs}

    def value(self, arrays: list[np.ndarray]) -> float:
        s, _ = self.evaluate(arrays, create_graph=False)
        return float(s.data) if isinstance(s, Variable) else float(s)

    def matches(
        self,
        x64: list[np.ndarray],
        hessian: dict[int, np.ndarray | None],
        directions: dict[int, np.ndarray],
        tol: Tolerance,
    ) -> bool:
        """Whether the analytic second order along ``directions`` matches central differences."""
        plus = [x + self.eps * directions[k] if k in directions else x for k, x in enumerate(x64)]
        minus = [x - self.eps * directions[k] if k in directions else x for k, x in enumerate(x64)]
        numerical = (self.value(plus) - self.value(minus)) / (2 * self.eps)
        terms = [
            np.zeros(1) if hessian[k] is None else hessian[k].astype(np.float64) * u
            for k, u in directions.items()
        ]
        analytic = float(sum(np.sum(t) for t in terms))
        scale = float(sum(np.sum(np.abs(t)) for t in terms))
        self.last = (analytic, numerical)
        return numeric.close(analytic, numerical, scale, tol)


CASE_CHECKS: dict[str, Callable[[CaseRun], Outcome]] = {
    "shape_rule": check_shape_rule,
    "output_dtype": check_output_dtype,
    "grad_count": check_grad_count,
    "grad_shape": check_grad_shape,
    "grad_dtype": check_grad_dtype,
    "grad_value": check_grad_value,
    "grad_of_grad": check_grad_of_grad,
    "no_mutation": check_no_mutation,
}
"""The per-sample checks; ``bad_input`` runs on its own samples (`check_bad_input`)."""


def check_bad_input(op: Op, bad: BadCase) -> Outcome:
    """The op must reject the call with the declared error, before recording anything."""
    shapes = [v.shape for v in bad.values]
    try:
        call_op(op, [Variable(v) for v in bad.values], bad.attrs, rng_seed=0)
    except bad.error as exc:
        return _judge_error(op, bad, exc, shapes)
    except Exception as exc:
        return Outcome(
            "fail",
            f"raised {describe_exception(exc)} instead of {bad.error.__name__} for input shapes "
            f"{fmt_shapes(shapes)}",
            error=exc,
        )
    return Outcome(
        "fail",
        f"accepted input shapes {fmt_shapes(shapes)} without raising {bad.error.__name__} "
        f"({bad.note}); check the shapes in forward (e.g. call the shape rule)",
    )


def _judge_error(op: Op, bad: BadCase, exc: BaseException, shapes: list) -> Outcome:
    text = str(exc)
    if bad.match is not None and not re.search(bad.match, text):
        return Outcome(
            "fail", f"raised {describe_exception(exc)}, which does not match {bad.match!r}"
        )
    if bad.derived:
        missing = [str(s) for s in shapes if not _names_shape(text, s)]
        missing = ([f"`{op.name}`"] if op.name not in text else []) + missing
        if missing:
            return Outcome(
                "fail",
                f"raised {type(exc).__name__} whose message {text!r} does not name "
                f"{', '.join(missing)}; name the op and every input shape",
            )
    return PASS


def _names_shape(text: str, shape: tuple[int, ...]) -> bool:
    return str(tuple(shape)) in text
