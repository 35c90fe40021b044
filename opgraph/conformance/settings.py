"""What a conformance run checks, and which failures are known: plain data the config and CLI fill.

Kept free of numpy and the engine so that config loading can import it cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from opgraph.contract import Tolerance

CHECKS: tuple[str, ...] = (
    "shape_rule",
    "output_dtype",
    "grad_count",
    "grad_shape",
    "grad_dtype",
    "grad_value",
    "grad_of_grad",
    "no_mutation",
    "bad_input",
)
"""The stable check names, in the order they run for each sample."""


@dataclass(frozen=True)
class ExpectedFailure:
    """A known failure of ``op`` (of one ``check``, or of every check when None) and why.

    A matching failure is reported as ``xfail``; a matching pass as ``xpass``, which counts as a
    failure so that a fixed op gets its entry removed from the config.
    """

    op: str
    check: str | None
    reason: str

    def covers(self, op: str, check: str) -> bool:
        """Whether this entry excuses ``check`` of ``op``."""
        return self.op == op and self.check in (None, check)


@dataclass(frozen=True)
class ConformanceSettings:
    """Knobs of one conformance run; the defaults check every op fully with seed 0."""

    seed: int = 0
    dtypes: tuple[str, ...] | None = None
    """Restrict to these dtypes (intersected with each op's declared dtypes); None: all."""
    checks: tuple[str, ...] | None = None
    """Run only these checks (names from `CHECKS`); None: every check."""
    max_samples: int | None = None
    """Cap on the number of samples per op; None: no cap."""
    full_jacobian: bool = False
    """Compare the whole Jacobian element by element instead of random projections."""
    tolerances: Mapping[str, Mapping[str, Tolerance]] = field(default_factory=dict)
    """Per-op, per-dtype tolerance overrides: op name -> dtype name -> Tolerance."""
    expected_failures: tuple[ExpectedFailure, ...] = ()
