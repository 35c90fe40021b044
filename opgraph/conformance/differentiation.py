"""Numerical differentiation checks: first-order gradients (``grad_value``) and second-order
ones through ``create_graph=True`` (``grad_of_grad``), both against central differences in
float64 (`opgraph.conformance.numeric`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from opgraph.conformance import numeric, taylor
from opgraph.conformance.case import CaseRun, Outcome, alive_outputs, is_float, skip
from opgraph.conformance.structural import backward_ready
from opgraph.contract import Tolerance
from opgraph.engine import Variable, no_grad

PROJECTIONS = 2
"""Random projections per differentiable input in ``grad_value`` and ``grad_of_grad``."""


def _float_case(run: CaseRun) -> Outcome | None:
    if np.dtype(run.case.dtype).kind != "f":
        return skip(f"{run.case.dtype} sample: gradients are only compared on float samples")
    if not run.differentiable_inputs():
        return skip("no differentiable float Variable input")
    return None


def _nonfinite(outputs: Sequence[np.ndarray]) -> Outcome | None:
    for m, y in enumerate(outputs):
        if is_float(y) and not np.isfinite(y).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(y))[0])
            return Outcome(
                "fail",
                f"forward produced {y[where]} at output {m} index {where} although every input "
                "lies in the declared domain (narrow the Domain or fix the forward)",
                {"where": str(where)},
            )
    return None


def _tolerance_dtype(run: CaseRun, outputs: Sequence[np.ndarray]) -> str:
    """The narrowest float dtype among the sample and the float64 evaluation's outputs."""
    floats = [np.dtype(run.case.dtype)] + [y.dtype for y in outputs if is_float(y)]
    return str(min(floats, key=lambda d: d.itemsize))


class _Gradients:
    """Analytic (through the op's backward) and numerical (central differences in float64)
    derivatives of one sample, with the step and tolerance that go with them."""

    def __init__(self, run: CaseRun) -> None:
        self.run = run
        result = run.call(run.wrap(run.case.inputs()))
        self.outputs = [y.data for y in result]
        self.alive = alive_outputs(run.case, result)  # keeps ctx alive
        del result
        self.node = next(y.creator for y in self.alive if y is not None)
        self.f = run.numeric_function()
        self.x64 = run.inputs64()
        self.evaluated = self.f(self.x64)
        self.eps = numeric.step_for(self.evaluated)
        dtype = _tolerance_dtype(run, self.evaluated)
        self.tol = run.tolerance(dtype)
        self.judge = _Judge(run, dtype, self.tol)

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

    def cotangents(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Random float64 cotangents; zero for unused outputs."""
        return [
            np.zeros(y.shape) if m in self.run.case.dropped else rng.standard_normal(y.shape)
            for m, y in enumerate(self.outputs)
        ]

    @property
    def kept(self) -> list[int]:
        """The outputs the sample keeps: the rows of its Jacobians."""
        return [m for m in range(len(self.outputs)) if m not in self.run.case.dropped]

    def jacobian(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Analytic and numerical Jacobians of input ``k`` (rows: the kept outputs)."""
        x, kept = self.x64[k], self.kept
        shapes = [self.outputs[m].shape for m in kept]

        def vjp_kept(cotangents: list[np.ndarray]) -> np.ndarray:
            full = [np.zeros(y.shape) for y in self.outputs]
            for m, c in zip(kept, cotangents, strict=True):
                full[m] = c
            return self.vjp(full)[k].ravel()

        def f_kept(arrays: list[np.ndarray]) -> tuple[np.ndarray, ...]:
            outputs = self.f(arrays)
            return tuple(outputs[m] for m in kept)

        analytic = numeric.analytic_jacobian(vjp_kept, shapes, x.size)
        return analytic, numeric.numerical_jacobian(f_kept, self.x64, k, self.eps)

    def explain(self, k: int, found: _Opinion | None) -> Outcome | None:
        """The worst element of input ``k``'s Jacobian as the failure, with the Taylor verdict
        of the projection that failed (None when every element matches or it is too large)."""
        n_out = sum(self.outputs[m].size for m in self.kept)
        if n_out * self.x64[k].size > numeric.JACOBIAN_LIMIT:
            return None
        worst = numeric.worst_element(*self.jacobian(k), self.tol)
        return None if worst is None or worst.ok else self.element_failure(k, worst, found)

    def element_failure(self, k: int, worst: numeric.Mismatch, found: _Opinion | None) -> Outcome:
        m, index = self.output_at(worst.where[0])
        out_at = f" {m} {index}" if len(self.kept) > 1 or m else f"{index}"
        in_at = [int(i) for i in np.unravel_index(worst.where[1], self.x64[k].shape)]
        where = f"output{out_at}, input {k}{in_at}"
        details = {
            "max_abs_err": worst.abs_err,
            "max_rel_err": worst.rel_err,
            "where": where,
            "expected": worst.numerical,
            "observed": worst.analytic,
        }
        text = (
            f"d output{out_at} / d input {k}{in_at}: analytic {worst.analytic:.6g}, numerical "
            f"{worst.numerical:.6g}"
        )
        verb = "is wrong" if found is None or found.wrong else "misses the tolerance"
        return self.judge.failure(f"gradient of input {k} {verb}: {text}", details, found)

    def output_at(self, row: int) -> tuple[int, list[int]]:
        """The output and its index at Jacobian row ``row``."""
        for m in self.kept:
            size = self.outputs[m].size
            if row < size:
                return m, [int(i) for i in np.unravel_index(row, self.outputs[m].shape)]
            row -= size
        raise IndexError(f"Jacobian row {row} beyond the outputs")

    def taylor_verdict(
        self, k: int, ws: list[np.ndarray], u: np.ndarray, slope: float, allowed: float
    ) -> taylor.Verdict:
        """The Taylor verdict on ``<J_k^T ws, u> = slope`` (the op's backward)."""
        phi = taylor.line(self.f, self.x64, k, u, ws)
        return taylor.verdict(phi, slope, allowed, float(np.max(np.abs(u), initial=0.0)))

    def full_jacobian_mismatch(self, k: int) -> Outcome | None:
        """Every element of input ``k``'s Jacobian; a narrowly failing one is judged by the
        Taylor test along that element (worst first), and passes when it is right."""
        analytic, numerical = self.jacobian(k)
        over = numeric.excess(analytic, numerical, self.tol).ravel()
        for flat in np.argsort(-over, kind="stable"):
            if over[flat] <= 0:
                return None
            element = numeric.mismatch_at(analytic, numerical, self.tol, int(flat))
            if not _narrow(element.abs_err, element.bound):
                return self.element_failure(k, element, None)
            row, col = element.where
            m, index = self.output_at(row)
            ws = [np.zeros(y.shape) for y in self.outputs]
            ws[m][tuple(index)] = 1.0
            u = np.zeros(self.x64[k].shape)
            u.reshape(-1)[col] = 1.0
            allowed = self.tol.atol + self.tol.rtol * abs(element.analytic)
            found = _Opinion(
                self.taylor_verdict(k, ws, u, element.analytic, allowed),
                element.abs_err / element.bound,
                f"input {k} element {col}",
            )
            if not found.verdict.right:
                return self.element_failure(k, element, found)
            self.judge.noted(found)
        return None


@dataclass(frozen=True)
class _Opinion:
    """The Taylor verdict on one narrow miss: where, and how many times its bound the central
    differences missed by."""

    verdict: taylor.Verdict
    ratio: float
    where: str

    @property
    def wrong(self) -> bool:
        return self.verdict.kind == "wrong"

    def entry(self) -> dict[str, Any]:
        """One element of ``details["taylor"]``."""
        return {**self.verdict.details(), "where": self.where, "tolerance_ratio": self.ratio}


class _Judge:
    """The verdicts on one sample's comparisons: the right Taylor verdicts of narrow misses
    (the sample passes with them in its details, the first in its message), and failures."""

    def __init__(self, run: CaseRun, dtype: str, tol: Tolerance) -> None:
        self.run, self.dtype, self.tol = run, dtype, tol
        self.verdicts: list[dict[str, Any]] = []
        self.message = ""

    def noted(self, found: _Opinion) -> None:
        self.verdicts.append(found.entry())
        self.message = self.message or (
            f"central differences missed the tolerance by {found.ratio:.3g}x ({found.where}); "
            f"{found.verdict.describe()}"
        )

    def passed(self) -> Outcome:
        if not self.verdicts:
            return Outcome("pass", tolerance=self.tol)
        return Outcome("pass", self.message, {"taylor": self.verdicts}, self.tol)

    def failure(self, message: str, details: dict[str, Any], found: _Opinion | None) -> Outcome:
        """A failed comparison with the Taylor verdict, if one ran: ``wrong`` confirms it;
        otherwise central differences cannot tell at this tolerance, which must be widened."""
        tol = self.tol
        if found is None:
            return Outcome("fail", message, details, tol)
        message += f"; {found.verdict.describe()}"
        if not found.wrong:
            message += (
                f"; widen the tolerance with a reason: OpSpec(tolerances={{{self.dtype!r}: "
                f"Tolerance(rtol, atol, reason=...)}}) in the plugin or "
                f"conformance.tolerances.{self.run.op.name}.{self.dtype} in the config (now "
                f"rtol={tol.rtol:g}, atol={tol.atol:g})"
            )
        return Outcome("fail", message, {**details, "taylor": [*self.verdicts, found.entry()]}, tol)


NARROW = 100.0
"""A comparison failing by at most this factor over its bound gets a Taylor verdict: central
differences at the default step are typically 1e-10 relative in float64, so a correct gradient
misses a tolerance by a small factor (ill-conditioning), while a gross error (a doubled or
dropped term) misses it by orders of magnitude and needs no second opinion."""


def _narrow(err: float, bound: float) -> bool:
    return bool(np.isfinite(err) and err <= NARROW * bound)


def _grad_value_ready(run: CaseRun) -> Outcome | None:
    if (not_ready := backward_ready(run) or _float_case(run)) is not None:
        return not_ready
    return _nonfinite(run.probe.outputs)


def check_grad_value(run: CaseRun) -> Outcome:
    """Random projections against central differences; a narrow miss gets a Taylor verdict
    (`opgraph.conformance.taylor`), a wide one or a wrong verdict the Jacobian's worst
    element."""
    if (not_ready := _grad_value_ready(run)) is not None:
        return not_ready
    grads = _Gradients(run)
    inputs = run.differentiable_inputs()
    if run.settings.full_jacobian:
        mismatches = (grads.full_jacobian_mismatch(k) for k in inputs)
        return next((m for m in mismatches if m is not None), None) or grads.judge.passed()
    rng = run.rng("grad_value")
    for _ in range(PROJECTIONS):
        vs = grads.cotangents(rng)
        analytic = grads.vjp(vs)
        noise = numeric.rounding_noise(grads.evaluated, vs, grads.eps)
        for k in inputs:
            u = rng.standard_normal(grads.x64[k].shape)
            numerical = numeric.project(
                numeric.directional(grads.f, grads.x64, k, u, grads.eps), vs
            )
            along_u = float(np.sum(analytic[k] * u))
            scale = float(np.sum(np.abs(analytic[k] * u)))
            if numeric.close(along_u, numerical, scale, grads.tol, noise):
                continue
            err = abs(along_u - numerical)
            bound = numeric.bound(numerical, scale, grads.tol, noise)
            found = None
            if _narrow(err, bound):
                allowed = grads.tol.atol + grads.tol.rtol * scale
                found = _Opinion(
                    grads.taylor_verdict(k, vs, u, along_u, allowed),
                    err / bound,
                    f"input {k}, projection v^T J u",
                )
                if found.verdict.right:
                    grads.judge.noted(found)
                    continue
            explained = grads.explain(k, found) if found is None or found.wrong else None
            if explained is not None:
                return explained
            return grads.judge.failure(
                f"gradient of input {k} disagrees with central differences along a random "
                f"projection v^T J u: analytic {along_u:.6g}, numerical {numerical:.6g}",
                {"max_abs_err": err, "max_rel_err": err / abs(numerical) if numerical else None},
                found,
            )
    return grads.judge.passed()


def _second_order_ready(run: CaseRun) -> Outcome | None:
    if not run.spec.backward_differentiable:
        return skip("the op declares backward_differentiable=False")
    if (not_ready := backward_ready(run) or _float_case(run)) is not None:
        return not_ready
    if run.case.dtype != "float64" and "float64" in run.spec.dtypes:
        return skip("second order is computed in float64: checked on the float64 samples")
    return None


def check_grad_of_grad(run: CaseRun) -> Outcome:
    """One projection along a random direction of every input and every output gradient at
    once (two evaluations); on a mismatch each alone, to name the wrong one. A narrow miss
    gets a Taylor verdict, as in ``grad_value``."""
    if (not_ready := _second_order_ready(run)) is not None:
        return not_ready
    rng = run.rng("grad_of_grad")
    second = _SecondOrder(run, run.differentiable_inputs(), rng)
    dtype = _tolerance_dtype(run, second.outputs)
    judge = _Judge(run, dtype, run.tolerance(dtype))
    hessian = second.analytic()
    directions = {p: rng.standard_normal(second.point[p].shape) for p in second.params}
    joint = second.compare(hessian, directions, judge, "all inputs and output gradients")
    if joint is None:
        return judge.passed()
    for p in second.params:
        if (
            alone := second.compare(hessian, {p: directions[p]}, judge, second.name(p))
        ) is not None:
            return _second_order_failure(second.name(p), alone, hessian[p] is None, judge)
    return _second_order_failure("the inputs and output gradients (jointly)", joint, False, judge)


@dataclass(frozen=True)
class _Miss:
    """A second-order comparison that failed: both values and the Taylor verdict (if any)."""

    analytic: float
    numerical: float
    found: _Opinion | None


def _second_order_failure(which: str, miss: _Miss, unreached: bool, judge: _Judge) -> Outcome:
    hint = (
        " (no second-order gradient reached it: build the backward from opgraph ops on the "
        "Variables it gets, never from .data, or declare backward_differentiable=False)"
        if unreached
        else ""
    )
    return judge.failure(
        f"second-order gradient of {which} through create_graph=True disagrees with central "
        f"differences of the first-order gradient: analytic {miss.analytic:.6g}, numerical "
        f"{miss.numerical:.6g}{hint}",
        {"max_abs_err": abs(miss.analytic - miss.numerical)},
        miss.found,
    )


class _SecondOrder:
    """``s(x, v) = sum_k <w_k, grad_k <v, op(x)>>``: the first-order gradient (through the
    engine with create_graph) projected to a scalar. Its gradient with respect to the inputs is
    the second order; with respect to the output gradients ``v`` it is the forward derivative,
    which a backward built from raw ``gy.data`` gets wrong even for linear ops.

    Parameters are indexed as the inputs (0..n-1), then the float outputs' cotangents."""

    def __init__(self, run: CaseRun, inputs: list[int], rng: np.random.Generator) -> None:
        self.run, self.inputs = run, inputs
        x64 = run.inputs64()
        self.outputs = outputs = run.numeric_function()(x64)
        self.eps = numeric.step_for(outputs)
        self.n = len(x64)
        self.cotangent_of = {
            self.n + m: m
            for m, y in enumerate(outputs)
            if is_float(y) and m not in run.case.dropped
        }
        vs = [rng.standard_normal(y.shape) for y in outputs]
        self.point = [*x64, *vs]
        self.params = [*inputs, *self.cotangent_of]
        self.ws = {k: rng.standard_normal(x64[k].shape) for k in inputs}

    def name(self, p: int) -> str:
        return f"input {p}" if p < self.n else f"output gradient {self.cotangent_of[p]}"

    def evaluate(self, point: list[np.ndarray]) -> tuple[Any, list]:
        """``s`` through the engine with create_graph (its graph), and the Variables of the
        parameters."""
        arrays, vs = point[: self.n], point[self.n :]
        xs = self.run.wrap([a.copy() for a in arrays])  # a mutating forward must not move it
        kept = alive_outputs(self.run.case, self.run.call(xs))
        gys: list[Any] = []
        total = None
        for m, (y, v) in enumerate(zip(kept, vs, strict=True)):
            gy = Variable(v.astype(y.data.dtype)) if self.n + m in self.cotangent_of else None
            gys.append(gy)
            if gy is not None:
                term = (y * gy).sum()
                total = term if total is None else total + term
        total.backward(create_graph=True)
        s: Any = 0.0
        for k in self.inputs:
            g = xs[k].grad
            if g is not None:
                s = s + (g * Variable(self.ws[k].astype(g.dtype))).sum()
        return s, [*xs, *gys]

    def analytic(self) -> dict[int, np.ndarray | None]:
        """ds/dp for every parameter, by differentiating the recorded first-order gradient
        (None: no second-order gradient reached it)."""
        s, variables = self.evaluate(self.point)
        for v in variables:
            if isinstance(v, Variable):
                v.cleargrad()
        if isinstance(s, Variable):
            s.backward()
        return {
            p: None if variables[p].grad is None else variables[p].grad.data for p in self.params
        }

    def value(self, point: list[np.ndarray]) -> taylor.Point:
        """``s`` at ``point`` by one forward and one direct backward call: what the engine's
        backward pass computes for a one-op graph, without its bookkeeping (central
        differences need two of these per direction), with the gradients it sums."""
        arrays, vs = point[: self.n], point[self.n :]
        outputs = self.run.call(self.run.wrap([a.copy() for a in arrays]))
        kept = alive_outputs(self.run.case, outputs)
        del outputs
        gys = [
            Variable(v.astype(y.dtype) if self.n + m in self.cotangent_of else np.zeros_like(y))
            for m, (y, v) in enumerate(zip(self.outputs, vs, strict=True))
        ]
        node = next(y.creator for y in kept if y is not None)
        with no_grad():
            grads = self.run.op.backward(node, *gys)
        grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
        reached = [k for k in self.inputs if grads[k] is not None]
        arrays = [grads[k].data for k in reached]
        ws = [self.ws[k] for k in reached]
        return taylor.Point(
            numeric.project(arrays, ws),
            numeric.rounding(arrays, ws),
            np.concatenate([a.ravel().astype(np.float64) for a in arrays] or [np.zeros(0)]),
        )

    def moved(self, directions: dict[int, np.ndarray], h: float) -> list[np.ndarray]:
        return [p + h * directions[i] if i in directions else p for i, p in enumerate(self.point)]

    def compare(
        self,
        hessian: dict[int, np.ndarray | None],
        directions: dict[int, np.ndarray],
        judge: _Judge,
        where: str,
    ) -> _Miss | None:
        """The analytic derivative of ``s`` along ``directions`` against central differences
        (a narrow miss against the Taylor test); None when it matches."""
        plus, minus = (
            self.value(self.moved(directions, self.eps)),
            self.value(self.moved(directions, -self.eps)),
        )
        numerical = (plus.value - minus.value) / (2 * self.eps)
        terms = [
            np.zeros(1) if hessian[p] is None else hessian[p].astype(np.float64) * u
            for p, u in directions.items()
        ]
        analytic = float(sum(np.sum(t) for t in terms))
        scale = float(sum(np.sum(np.abs(t)) for t in terms))
        noise = self._cast_noise(hessian, directions)
        if numeric.close(analytic, numerical, scale, judge.tol, noise):
            return None
        err, bound = abs(analytic - numerical), numeric.bound(numerical, scale, judge.tol, noise)
        if not _narrow(err, bound):
            return _Miss(analytic, numerical, None)
        size = max(float(np.max(np.abs(u), initial=0.0)) for u in directions.values())
        allowed = judge.tol.atol + judge.tol.rtol * scale
        found = _Opinion(
            taylor.verdict(
                lambda h: self.value(self.moved(directions, h)), analytic, allowed, size
            ),
            err / bound,
            f"second order, {where}",
        )
        if not found.verdict.right:
            return _Miss(analytic, numerical, found)
        judge.noted(found)
        return None

    def _cast_noise(
        self, hessian: dict[int, np.ndarray | None], directions: dict[int, np.ndarray]
    ) -> float:
        """The rounding a moved output gradient gets when it is cast to its output's dtype (a
        float32 output of float64 inputs, ``astype``): ``s`` is linear in it, so each element
        is off by at most half a unit in the last place in each of the two evaluations."""
        total = 0.0
        for p in directions:
            m = self.cotangent_of.get(p)
            if m is None or hessian[p] is None:
                continue
            dtype = self.outputs[m].dtype
            if dtype.kind == "f" and dtype.itemsize < 8:
                ulp = np.spacing(np.abs(self.point[p]).astype(dtype)).astype(np.float64)
                total += float(np.sum(np.abs(hessian[p].astype(np.float64)) * ulp))
        return total / (2 * self.eps)
