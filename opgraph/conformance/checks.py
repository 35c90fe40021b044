"""The one registry of conformance checks: name, what it verifies, where it runs, which checks
must pass first, and the function that runs it. Adding a check is one entry here plus its
function.

A check whose precondition another check covers (a malformed gradient for ``grad_value``, a
wrong first-order gradient for ``grad_of_grad``) is skipped with a pointer to that check (its
``needs``), so every defect is reported once, by the check named after it.

Scopes, i.e. what one result of the check is about:

- ``sample``: one valid sample call (`opgraph.conformance.case.CaseRun`);
- ``bad_input``: one call the op must reject (`opgraph.conformance.samples.BadCase`);
- ``dtype``: one dtype tried on the op (`opgraph.conformance.values.DtypeProbe`).

Kept free of numpy: config loading reads the names; functions are imported on first use.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SCOPES = ("sample", "bad_input", "dtype")


@dataclass(frozen=True)
class Check:
    """One check. ``target`` and ``applies`` are ``module:function`` in opgraph.conformance;
    ``applies(op, rivals)`` returns why the check does not apply to an op at all (one skip
    result instead of one per sample), or None; ``when_empty`` is the skip's reason when the
    op has no item of the check's scope."""

    name: str
    target: str
    summary: str
    scope: str = "sample"
    needs: tuple[str, ...] = ()
    applies: str | None = None
    when_empty: str = "nothing of this check's scope to check"

    def function(self) -> Callable[..., Any]:
        return _resolve(self.target)

    def not_applicable(self, op: Any, rivals: Any) -> str | None:
        return None if self.applies is None else _resolve(self.applies)(op, rivals)


@functools.cache
def _resolve(target: str) -> Callable[..., Any]:
    module, name = target.split(":")
    return getattr(importlib.import_module(f"opgraph.conformance.{module}"), name)


_ALL = (
    Check(
        "shape_rule",
        "structural:check_shape_rule",
        "the shape rule, run without data, equals the forward's output shape; on shapes derived "
        "from the sample it answers or raises `ShapeError`, and a multi-input forward takes "
        "what it accepts",
    ),
    Check(
        "output_dtype",
        "structural:check_output_dtype",
        "output dtype as declared (`dtype_rule`) or promoted (float32 in, float32 out)",
    ),
    Check(
        "grad_count",
        "structural:check_grad_count",
        "backward returns one gradient per input (None only for `nondiff` inputs and constants)",
    ),
    Check(
        "grad_shape",
        "structural:check_grad_shape",
        "each gradient's shape equals its input's, exactly (no silent sum-reduction)",
        needs=("grad_count",),
    ),
    Check(
        "grad_dtype",
        "structural:check_grad_dtype",
        "each gradient's dtype equals its input's",
        needs=("grad_count",),
    ),
    Check(
        "no_mutation",
        "structural:check_no_mutation",
        "forward and backward leave their input arrays and output gradients unchanged",
    ),
    Check(
        "grad_value",
        "differentiation:check_grad_value",
        "analytic vs central differences in float64, by random projections `v^T J u`",
        needs=("grad_count", "grad_shape"),
    ),
    Check(
        "grad_of_grad",
        "differentiation:check_grad_of_grad",
        "second order through `create_graph=True`, with respect to the inputs and the output "
        "gradients (ops with a differentiable backward)",
        needs=("grad_dtype", "no_mutation", "grad_value"),
    ),
    Check(
        "aliasing",
        "structural:check_aliasing",
        "no output or gradient is writeable memory of an input, an output gradient or another "
        "output or gradient (`np.shares_memory`)",
    ),
    Check(
        "determinism",
        "structural:check_determinism",
        "the same call twice gives the same outputs and gradients, bit for bit (stochastic ops: "
        "with the same seed)",
    ),
    Check(
        "trace",
        "replay:check_trace",
        "`opgraph.trace` replays the sample's forward+backward on fresh values of the same "
        "shapes exactly as eager computes them (ops declaring `traceable=True` must replay)",
        needs=("determinism",),  # a replay can equal eager only if eager equals itself
    ),
    Check(
        "reference",
        "values:check_reference",
        "forward values equal the op's declared `reference` (numpy/scipy/Python) within its "
        "tolerance",
        applies="values:reference_missing",
    ),
    Check(
        "differential",
        "values:check_differential",
        "when several plugins provide the op, they compute the same forward on every sample",
        applies="values:rivals_missing",
    ),
    Check(
        "bad_input",
        "structural:check_bad_input",
        "shapes the rule rejects raise `ShapeError` naming op and shapes; invalid values of typed "
        "attributes and declared `error_inputs` raise their error",
        scope="bad_input",
        when_empty="the shape rule accepts every generated shape and no error_inputs are declared",
    ),
    Check(
        "dtypes",
        "values:check_dtypes",
        "every declared dtype works (forward, backward, dtypes, values as in float64); an "
        "undeclared one that works is reported as a `hint`",
        scope="dtype",
    ),
)

REGISTRY: dict[str, Check] = {c.name: c for c in _ALL}
CHECKS: tuple[str, ...] = tuple(REGISTRY)
"""The stable check names, in the order they run."""
