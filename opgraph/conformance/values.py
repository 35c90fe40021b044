"""Checks of forward *values* against an independent computation: the op's declared
``reference``, the same op from another plugin (``differential``), and the op's own float64
result for each dtype it claims (``dtypes``). Every other check compares an op with itself, so
a wrong forward with a matching backward passes them all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from opgraph.conformance.case import (
    PASS,
    CaseRun,
    Outcome,
    call_op,
    describe_exception,
    is_float,
    random_like,
    skip,
)
from opgraph.conformance.samples import Case, generate_cases, resolved_attrs
from opgraph.conformance.structural import expected_dtypes
from opgraph.contract import OpSpec, Tolerance
from opgraph.engine import Variable, no_grad
from opgraph.errors import OpArgumentError, ShapeError
from opgraph.op import Op

VALUE_TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(rtol=1e-7, atol=1e-9, reason="two float64 computations of one formula"),
    "float32": Tolerance(rtol=1e-4, atol=1e-5, reason="float32 result vs a float64 one"),
    "float16": Tolerance(rtol=1e-2, atol=1e-3, reason="float16 result vs a float64 one"),
}
"""How close two computations of the same forward must be, by the dtype of the sample (for
``reference`` the op may loosen them with ``reference_tolerances``)."""

CANDIDATE_DTYPES = ("float64", "float32", "float16", "int64")
"""The dtypes ``dtypes`` tries on every op, declared or not."""
_PROBE_POOL = 4
"""Samples generated for an undeclared dtype, to find one with several values per input."""


def _value_tolerance(dtype: str, declared: Tolerance | None = None) -> Tolerance:
    """The value tolerance of ``dtype``, loosened to ``declared`` (an op's own tolerance for the
    dtype, with its reason) where that is looser."""
    default = VALUE_TOLERANCES.get(dtype, Tolerance(0.0, 0.0, "exact for integer dtypes"))
    if declared is None:
        return default
    return Tolerance(
        max(default.rtol, declared.rtol), max(default.atol, declared.atol), declared.reason
    )


def _as_outputs(result: Any, n: int) -> list[np.ndarray]:
    if n == 1:
        return [np.asarray(result)]
    return [np.asarray(r) for r in result]


def _mismatch(
    observed: Sequence[np.ndarray], expected: Sequence[np.ndarray], tol: Tolerance
) -> str | None:
    """Where two lists of outputs differ beyond ``tol`` (shapes first), else None."""
    if len(observed) != len(expected):
        return f"{len(observed)} outputs vs {len(expected)}"
    for m, (a, b) in enumerate(zip(observed, expected, strict=True)):
        if a.shape != b.shape:
            return f"output {m} has shape {a.shape} vs {b.shape}"
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(a64 - b64) <= tol.atol + tol.rtol * np.abs(b64))
        bad &= ~(np.isnan(a64) & np.isnan(b64))
        bad &= ~((a64 == b64) & np.isinf(a64))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            return f"output {m} index {list(where)}: {a64[where]:.8g} vs {b64[where]:.8g}"
    return None


def reference_missing(op: Op, rivals: Sequence[Op] = ()) -> str | None:
    """Why ``reference`` does not apply to ``op`` (None: it does)."""
    if op.spec.reference is None:
        return "no reference declared (OpSpec(reference=...))"
    if op.spec.stochastic:
        return "a stochastic op: a reference cannot draw its randomness"
    return None


def check_reference(run: CaseRun) -> Outcome:
    """The forward equals the declared reference (fed float64 copies of the inputs)."""
    probe = run.probe
    if probe.forward_error is not None:
        return skip("forward raised (see shape_rule)")
    spec = run.spec
    arrays = [a.astype(np.float64) if is_float(a) else a for a in run.case.inputs()]
    try:
        expected = _as_outputs(
            spec.reference(*arrays, **resolved_attrs(spec, run.case.attrs)), spec.n_outputs
        )
    except Exception as exc:
        return Outcome("error", f"the reference raised {describe_exception(exc)}", error=exc)
    dtype = run.case.dtype
    tol = spec.reference_tolerances.get(dtype) or _value_tolerance(dtype)
    if (where := _mismatch(probe.outputs, expected, tol)) is not None:
        return Outcome(
            "fail",
            f"forward disagrees with the declared reference at {where} (forward vs reference)",
            {"where": where},
            tol,
        )
    return Outcome("pass", tolerance=tol)


def rivals_missing(op: Op, rivals: Sequence[Op]) -> str | None:
    """Why ``differential`` does not apply (None: other plugins provide the op too)."""
    if not rivals:
        return "no other plugin provides this op"
    return None


def check_differential(run: CaseRun) -> Outcome:
    """Every other provider of the op computes the same forward on this sample (one that
    rejects the call with a ShapeError or OpArgumentError is not compared on it)."""
    probe = run.probe
    if probe.forward_error is not None:
        return skip("forward raised (see shape_rule)")
    tol = _value_tolerance(run.case.dtype)
    for rival in run.rivals:
        if run.case.dtype not in rival.spec.dtypes:
            continue
        try:
            theirs = run.evaluate(run.case.inputs(), rival)
        except (ShapeError, OpArgumentError):
            continue  # a narrower op that says so: nothing to compare on this sample
        except Exception as exc:
            where = f"raised {describe_exception(exc)}"
        else:
            where = _mismatch(probe.outputs, theirs, tol)
        if where is not None:
            return Outcome(
                "fail",
                f"{run.op.provenance} (checked) and {rival.provenance} disagree on this "
                f"sample: {where} (checked vs other); one of them is wrong, whichever the "
                "config's providers pick",
                {"where": where, "other": rival.provenance.plugin},
                tol,
            )
    return Outcome("pass", tolerance=tol)


# --- dtype claims ---
@dataclass(frozen=True)
class DtypeProbe:
    """One dtype tried on an op: declared or not, on one representative sample."""

    index: int
    dtype: str
    declared: bool
    case: Case | None

    def describe(self) -> str:
        claim = "declared" if self.declared else "not declared"
        shown = f": {self.case.describe()}" if self.case is not None else ""
        return f"{self.dtype} ({claim}){shown}"


def dtype_probes(spec: OpSpec, seed: int, cases: Sequence[Case]) -> list[DtypeProbe]:
    """Every candidate dtype with the op's first sample in it whose inputs all hold several
    values (taken from the run's ``cases`` for the dtypes it has)."""
    probes = []
    for dtype in dict.fromkeys((*spec.dtypes, *CANDIDATE_DTYPES)):
        found = [c for c in cases if c.dtype == dtype]
        if not found:
            try:
                found = generate_cases(replace(spec, dtypes=(dtype,)), seed, limit=_PROBE_POOL)
            except Exception:  # sample_inputs that cannot make this dtype: nothing to try
                found = []
        case = next((c for c in found if all(v.size > 1 for v in c.values)), None)
        probes.append(DtypeProbe(len(probes), dtype, dtype in spec.dtypes, case))
    return probes


def check_dtypes(op: Op, probe: DtypeProbe) -> Outcome:
    """A declared float dtype must give the float64 results to its precision (the per-sample
    checks hold it to everything else); an undeclared dtype that works — forward, backward,
    dtypes and values — is a hint to declare it."""
    if probe.case is None:
        if probe.declared:
            return skip(f"no {probe.dtype} sample with several values in every input to try")
        return PASS
    if probe.declared:
        return _declared_outcome(op, probe)
    if _dtype_problem(op, probe.case) is None:
        return Outcome(
            "hint",
            "works (forward, backward, dtypes and values as in float64) but is not declared: "
            "add it to dtypes so that every check covers it",
            {"about": probe.dtype},
        )
    return PASS


def _declared_outcome(op: Op, probe: DtypeProbe) -> Outcome:
    try:
        inaccurate = _precision_problem(op, probe.case)
    except Exception:
        return skip("forward raised (see shape_rule)")
    if inaccurate is not None:
        return Outcome("fail", f"{probe.dtype} is declared in dtypes but {inaccurate}")
    return PASS


def _forward(op: Op, case: Case, wide: bool = False) -> tuple:
    """The op on fresh inputs of ``case`` (float inputs cast to float64 when ``wide``)."""
    inputs = case.inputs()
    if wide:
        inputs = tuple(a.astype(np.float64) if is_float(a) else a for a in inputs)
    return call_op(op, [Variable(a) for a in inputs], case.attrs, rng_seed=0)


def _precision_problem(op: Op, case: Case) -> str | None:
    """Where the forward in the case's dtype is further from its float64 result than that
    dtype's precision allows (a computation through a narrower dtype), else None."""
    if np.dtype(case.dtype).kind != "f" or case.dtype == "float64":
        return None
    with no_grad():
        narrow = [y.data for y in _forward(op, case)]
        exact = [y.data for y in _forward(op, case, wide=True)]
    tol = _value_tolerance(case.dtype, op.spec.tolerances.get(case.dtype))
    if (where := _mismatch(narrow, exact, tol)) is not None:
        return f"its results differ from float64's at {where} ({tol.rtol:g} relative allowed)"
    return None


def _dtype_problem(op: Op, case: Case) -> str | None:
    """Why the op does not work on ``case``'s dtype, else None."""
    try:
        outputs = _forward(op, case)
        observed = [y.dtype for y in outputs]
        expected = expected_dtypes(op.spec, case.values, case.attrs)
        if [str(d) for d in observed] != [str(d) for d in expected]:
            return "wrong output dtype"
        if (inaccurate := _precision_problem(op, case)) is not None:
            return inaccurate
    except Exception as exc:
        return describe_exception(exc)
    if op.spec.backward is None:
        return None
    return _backward_dtype_problem(op, case.inputs(), outputs)


def _backward_dtype_problem(op: Op, inputs: Sequence[np.ndarray], outputs: tuple) -> str | None:
    node = outputs[0].creator
    rng = np.random.default_rng(0)
    try:
        with no_grad():
            grads = op.backward(node, *[Variable(random_like(rng, y.data)) for y in outputs])
    except Exception as exc:
        return f"backward raised {describe_exception(exc)}"
    grads = grads if isinstance(grads, (tuple, list)) else (grads,)
    for k, (x, g) in enumerate(zip(inputs, grads, strict=False)):
        if isinstance(g, Variable) and (g.dtype != x.dtype or g.shape != x.shape):
            return (
                f"backward returned a {g.dtype} {g.shape} gradient for {x.dtype} {x.shape} "
                f"input {k}"
            )
    return None
