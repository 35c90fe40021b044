"""A paste-able Python reproduction of one case, with plain opgraph calls: the inputs as
written numbers, the op call, and the gradients next to central differences — what an author
runs in a debugger without the harness."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from opgraph.conformance.samples import Case
from opgraph.contract import OpSpec

_GRADIENT_CHECKS = frozenset({"grad_count", "grad_shape", "grad_dtype", "grad_value"})


def _array(value: np.ndarray) -> str:
    if value.size == 0:
        return f"np.zeros({tuple(value.shape)!r}, dtype={str(value.dtype)!r})"
    return f"np.array({value.tolist()!r}, dtype={str(value.dtype)!r})"


def _literal(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return _array(value)
    if isinstance(value, np.generic):
        return f"np.{type(value).__name__}({value.item()!r})"
    return repr(value)


def _input_lines(case: Case) -> list[str]:
    lines = []
    for k, (value, layout) in enumerate(zip(case.values, case.layouts, strict=True)):
        if k in case.constants and case.numbers:
            lines.append(f"x{k} = {value.item()!r}  # a constant Python number")
            continue
        array = _array(value)
        notes = []
        if layout != "contiguous":
            array = f"materialize({array}, {layout!r})"
            notes.append(f"a {layout} view")
        if k in case.constants:
            notes.append("a constant array")
        wrapped = array if k in case.constants else f"Variable({array})"
        lines.append(f"x{k} = {wrapped}" + (f"  # {', '.join(notes)}" if notes else ""))
    return lines


def python_snippet(spec: OpSpec, case: Case, checks: Sequence[str], rng_seed: int | None) -> str:
    """The reproduction of ``spec``'s op on ``case``; ``rng_seed`` seeds a stochastic op as
    the harness does."""
    names = ", ".join(f"x{k}" for k in range(len(case.values)))
    attrs = "".join(f", {name}={_literal(value)}" for name, value in case.attrs.items())
    call = f"opgraph.ops.{spec.name}({f'[{names}]' if spec.variadic else names}{attrs})"
    seed = [f"opgraph.seed({rng_seed})  # the op is stochastic"] if spec.stochastic else []
    lines = ["import numpy as np", "import opgraph", "from opgraph import Variable"]
    if any(lay != "contiguous" for lay in case.layouts):
        lines.append("from opgraph.conformance.samples import materialize")
    lines += [
        "",
        *_input_lines(case),
        *seed,
        f"out = {call}",
        "outs = out if isinstance(out, tuple) else (out,)",
        "for m, y in enumerate(outs):",
        '    print(f"output {m}:", y.dtype, y.shape, y.data)',
    ]
    variables = [k for k in range(len(case.values)) if k not in case.constants]
    if _GRADIENT_CHECKS & set(checks) and variables:
        kept = [m for m in range(spec.n_outputs) if m not in case.dropped]
        lines += _gradient_lines(call, variables, kept, seed)
    return "\n".join(lines) + "\n"


def _gradient_lines(call: str, variables: list[int], kept: list[int], seed: list[str]) -> list[str]:
    """sum(float outputs) backward, then the same derivative by central differences along a
    random direction of each Variable input."""
    inputs = ", ".join(f"x{k}" for k in variables)
    return [
        "",
        f"kept = [m for m in {kept!r} if outs[m].dtype.kind == 'f']  # float outputs in use",
        "sum(opgraph.ops.sum(outs[m]) for m in kept).backward()",
        "",
        f"def total({inputs}):  # the same sum as a number, of other input values",
        *(f"    {line}" for line in seed),
        "    with opgraph.no_grad():",
        f"        out = {call}",
        "    outs = out if isinstance(out, tuple) else (out,)",
        "    return sum(float(outs[m].data.astype(np.float64).sum()) for m in kept)",
        "",
        "rng, eps = np.random.default_rng(0), 1e-6",
        f"given = [{inputs}]",
        "for i, x in enumerate(given):",
        "    u = rng.standard_normal(x.shape)",
        "    moved = [[Variable(v.data + s * eps * u) if j == i else v",
        "              for j, v in enumerate(given)] for s in (1, -1)]",
        "    numerical = (total(*moved[0]) - total(*moved[1])) / (2 * eps)",
        "    analytic = None if x.grad is None else float(np.sum(x.grad.data * u))",
        '    print(f"Variable input {i}: d sum / d x along u: analytic", analytic,',
        '          "numerical", numerical)',
    ]
