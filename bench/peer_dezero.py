"""DeZero 0.0.13 (PyPI ``dezero``): the define-by-run design opgraph follows."""

from __future__ import annotations

from importlib import metadata

import numpy as np
from define_by_run import DefineByRun

if not hasattr(np, "int"):  # DeZero 0.0.13 still uses the alias numpy 1.24 removed
    np.int = int  # must precede `import dezero`

import dezero
import dezero.functions as F  # noqa: N812 - DeZero's documented alias
from dezero import Variable

NAME = "dezero"
VERSION = metadata.version("dezero")  # the package has no __version__


LAYERS = {"linear": F.linear, "sigmoid": F.sigmoid, "mean_squared_error": F.mean_squared_error}


def to_numpy(value: Variable) -> np.ndarray:
    return value.data


def describe() -> str:
    return f"dezero from {dezero.__file__}"


_ENGINE = DefineByRun(Variable, F.sin, F.tanh, F.sum, F.matmul, LAYERS)
sin_step, chain_step = _ENGINE.sin_step, _ENGINE.chain_step
mlp_step, matmul_step = _ENGINE.mlp_step, _ENGINE.matmul_step
