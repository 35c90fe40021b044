"""Per-sample setup shared by the checks: one op call as a user makes it (`CaseRun`), and one
forward plus one raw backward of it (`Probe`), done once and read by every check.

A check is a function of a `CaseRun` returning an `Outcome`; which checks a check needs, and
on which samples it runs, is declared once in `opgraph.conformance.checks`.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from opgraph import engine
from opgraph.conformance import numeric
from opgraph.conformance.samples import Case, op_rng, resolved_attrs
from opgraph.contract import Tolerance
from opgraph.engine import Variable, no_grad
from opgraph.op import Op

if TYPE_CHECKING:
    from opgraph.conformance.settings import ConformanceSettings


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


def is_float(array: np.ndarray) -> bool:
    return array.dtype.kind == "f"


def random_like(rng: np.random.Generator, like: np.ndarray) -> np.ndarray:
    """A random cotangent for an output (ones for integer outputs)."""
    if is_float(like):
        return rng.standard_normal(like.shape).astype(like.dtype)
    return np.ones(like.shape, dtype=like.dtype)


class CaseRun:
    """Every check of one op on one sample; shared work is done once, on first use.

    ``rivals`` are other plugins' providers of the same op name (for ``differential``).
    """

    def __init__(
        self,
        op: Op,
        case: Case,
        settings: ConformanceSettings,
        rivals: Sequence[Op] = (),
    ) -> None:
        self.op = op
        self.spec = op.spec
        self.case = case
        self.settings = settings
        self.rivals = tuple(rivals)
        self.streams = case.stream or (settings.seed, case.index)
        seed, index = self.streams
        self.rng_seed = zlib.crc32(f"{seed}/{op.name}/{index}".encode())
        self._outcomes: dict[str, Outcome] = {}

    def outcome(self, check: str) -> Outcome:
        """The (memoised) outcome of ``check`` after the checks it needs; a crash of the op
        becomes an ``error``."""
        from opgraph.conformance.checks import REGISTRY

        if check not in self._outcomes:
            entry = REGISTRY[check]
            found = self.gate(*entry.needs)
            if found is None:
                try:
                    found = entry.function()(self)
                except Exception as exc:
                    found = Outcome(
                        "error",
                        f"{check} crashed while calling the op: {describe_exception(exc)}",
                        error=exc,
                    )
            self._outcomes[check] = found
        return self._outcomes[check]

    def gate(self, *checks: str) -> Outcome | None:
        """A skip pointing at the first of ``checks`` that did not pass, if any (a skipped
        precondition passes its own reason on)."""
        for name in checks:
            found = self.outcome(name)
            if found.status == "skip":
                return found
            if found.status != "pass":
                return skip(f"not checked: {name} did not pass ({found.status})")
        return None

    def rng(self, check: str) -> np.random.Generator:
        """A stream per check, so selecting checks never changes another check's numbers."""
        from opgraph.conformance.checks import CHECKS

        seed, index = self.streams
        return op_rng(seed, self.op.name, index, CHECKS.index(check))

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
        return [a.astype(np.float64) if is_float(a) else a for a in self.case.inputs()]

    def wrap(self, arrays: Sequence[np.ndarray]) -> list[Any]:
        """The call's arguments: Variables, except the sample's constants (plain arrays, or
        Python numbers)."""
        case = self.case
        return [
            (a.item() if case.numbers else a) if k in case.constants else Variable(a)
            for k, a in enumerate(arrays)
        ]

    def call(self, inputs: Sequence[Any], op: Op | None = None) -> tuple:
        return call_op(op or self.op, inputs, self.case.attrs, self.rng_seed)

    def evaluate(self, arrays: Sequence[np.ndarray], op: Op | None = None) -> tuple:
        """The forward as a plain function of fresh ``arrays`` (no graph): output arrays."""
        with no_grad():
            return tuple(y.data for y in self.call(self.wrap(arrays), op))

    @cached_property
    def probe(self) -> Probe:
        return Probe(self)

    def differentiable_inputs(self) -> list[int]:
        """Inputs whose gradient is compared with a numerical one: float Variables (not
        constants), not nondiff, with a gradient."""
        grads = self.probe.grads or ()
        return [
            k
            for k, value in enumerate(self.case.values)
            if self.spec.differentiable(k)
            and k not in self.case.constants
            and is_float(value)
            and k < len(grads)
            and grads[k] is not None
        ]

    def numeric_function(self) -> numeric.Function:
        """The declared forward as a plain function of arrays, for central differences: no
        Variables, binding or graph (the attributes are normalised once, as the op does on
        each call; constants are arrays, as the op turns them into), so the dozens of
        evaluations a gradient check makes cost what the numpy code costs."""
        spec, seed = self.spec, self.rng_seed
        attrs = resolved_attrs(spec, self.case.attrs)

        def f(arrays: list[np.ndarray]) -> tuple[np.ndarray, ...]:
            extra = {}
            if spec.stochastic:
                engine.seed(seed)
                extra["rng"] = engine.random_generator()
            result = spec.forward(*[np.array(a) for a in arrays], **attrs, **extra)  # a point
            if spec.saves_state:  # must not move, whatever the forward does to its inputs
                result, _ = result
            outputs = (result,) if spec.n_outputs == 1 else tuple(result)
            return tuple(np.asarray(y) for y in outputs)

        return f

    def cotangents(self, rng: np.random.Generator, outputs: Sequence[np.ndarray]) -> list:
        """Random cotangents per output; zeros for the sample's unused outputs (as the engine
        fills them)."""
        return [
            np.zeros(y.shape, y.dtype) if m in self.case.dropped else random_like(rng, y)
            for m, y in enumerate(outputs)
        ]


def alive_outputs(case: Case, outputs: tuple) -> list[Variable | None]:
    """The outputs a caller keeps: None for the sample's unused outputs."""
    return [None if m in case.dropped else y for m, y in enumerate(outputs)]


class Probe:
    """One forward and one raw backward of a case: what the op returned, before the engine's
    own checks, and the inputs before and after each step."""

    def __init__(self, run: CaseRun) -> None:
        self.inputs = list(run.case.inputs())
        self.before = [a.copy() for a in self.inputs]
        self.outputs: list[np.ndarray] | None = None
        self.forward_error: BaseException | None = None
        self.node: Any = None
        self.grads: tuple | None = None
        self.backward_error: BaseException | None = None
        self.after_forward: list[np.ndarray] = []
        self.after_backward: list[np.ndarray] = []
        self.cotangents: list[np.ndarray] = []
        self.given_cotangents: list[np.ndarray] = []
        self.cotangents_after: list[np.ndarray] = []
        try:
            result = run.call(run.wrap(self.inputs))
        except Exception as exc:
            self.forward_error = exc
            return
        self.outputs = [y.data for y in result]
        self.after_forward = [a.copy() for a in self.inputs]
        self._alive = alive_outputs(run.case, result)  # keeps ctx.outputs of the kept ones
        del result
        if run.spec.backward is None:
            return
        self.cotangents = run.cotangents(run.rng("grad_count"), self.outputs)
        cotangent_vars = [Variable(c.copy()) for c in self.cotangents]  # backward gets copies
        self.given_cotangents = [c.data for c in cotangent_vars]
        try:
            self.node = next((y.creator for y in self._alive if y is not None), None)
            if self.node is None:
                raise RuntimeError("the op call recorded no graph node for Variable inputs")
            with no_grad():
                grads = run.op.backward(self.node, *cotangent_vars)
        except Exception as exc:
            self.backward_error = exc
            return
        self.grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
        self.after_backward = [a.copy() for a in self.inputs]
        self.cotangents_after = [c.data for c in cotangent_vars]
