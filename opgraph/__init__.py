"""opgraph: a small define-by-run autodiff engine whose ops all come from plugins.

``import opgraph`` is cheap: plugins are discovered and imported the first time an op is
needed (``opgraph.ops``, a Variable operator, ``opgraph check``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from opgraph.contract import REQUIRED, Attr, Domain, ErrorInput, OpSpec, Sample, Tolerance
from opgraph.engine import (
    Node,
    Variable,
    derive,
    enable_grad,
    is_grad_enabled,
    is_training,
    no_grad,
    random_generator,
    seed,
    test_mode,
    unbroadcast,
)
from opgraph.errors import (
    ConfigError,
    DeclarationWarning,
    DroppedOpWarning,
    GradientError,
    OpArgumentError,
    OpConflictError,
    OpDeclarationError,
    OpgraphError,
    OpgraphWarning,
    PluginError,
    PluginWarning,
    ShapeError,
    StrictPluginError,
)
from opgraph.opsets import use_opset

if TYPE_CHECKING:
    from opgraph.registry import OpSet

    ops: OpSet

__version__ = "0.1.0"

__all__ = [
    "REQUIRED",
    "Attr",
    "ConfigError",
    "DeclarationWarning",
    "Domain",
    "DroppedOpWarning",
    "ErrorInput",
    "GradientError",
    "Node",
    "OpArgumentError",
    "OpConflictError",
    "OpDeclarationError",
    "OpSpec",
    "OpgraphError",
    "OpgraphWarning",
    "PluginError",
    "PluginWarning",
    "Sample",
    "ShapeError",
    "StrictPluginError",
    "Tolerance",
    "Variable",
    "derive",
    "enable_grad",
    "hookimpl",
    "is_grad_enabled",
    "is_training",
    "load_opset",
    "no_grad",
    "ops",
    "random_generator",
    "seed",
    "test_mode",
    "trace",
    "unbroadcast",
    "use_opset",
]


def load_opset(path: str | os.PathLike[str]) -> OpSet:
    """The op set an op-set config file selects (see docs/config.md); it has the same
    attribute interface as `opgraph.ops`. Its ops' backwards always run with its own ops;
    ``with opgraph.use_opset(ops):`` makes Variable operators use them too. Invalid configs
    raise `ConfigError`."""
    from opgraph import opsets
    from opgraph.config import load_config

    return opsets.build(load_config(path))


def __getattr__(name: str) -> Any:
    """Lazy attributes: ``ops`` loads the plugins; ``hookimpl`` imports pluggy; ``trace`` (a
    callable module: ``opgraph.trace(fn)``) imports the op layer it records."""
    if name == "ops":
        from opgraph.opsets import default_opset

        return default_opset()  # which also sets `ops` here, until `opsets.reset()`
    if name == "hookimpl":
        from opgraph.hookspecs import hookimpl

        globals()["hookimpl"] = hookimpl
        return hookimpl
    if name == "trace":
        import importlib

        return importlib.import_module("opgraph.trace")  # also set as the package attribute
    raise AttributeError(f"module 'opgraph' has no attribute {name!r}")
