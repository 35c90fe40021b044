"""Shared fixtures: fake installed distributions, and a clean plugin registry per test."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from opgraph import opsets


class FakeSite:
    """A directory on ``sys.path`` holding fake installed distributions (dist-info with
    ``entry_points.txt``), so plugins go through the real entry-point discovery."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add_plugin(
        self,
        dist: str,
        source: str,
        *,
        module: str | None = None,
        entry_point: str | None = None,
        version: str = "1.0",
        requires: tuple[str, ...] = (),
    ) -> str:
        """Install module ``module`` with ``source`` and an ``opgraph`` entry point to it;
        ``requires`` are the distribution's ``Requires-Dist`` lines."""
        module = module or dist.replace("-", "_")
        entry_point = entry_point or module
        (self.root / f"{module}.py").write_text(textwrap.dedent(source))
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        requires_dist = "".join(f"Requires-Dist: {r}\n" for r in requires)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n{requires_dist}"
        )
        (info / "entry_points.txt").write_text(f"[opgraph]\n{entry_point} = {module}\n")
        return entry_point

    @property
    def env(self) -> dict[str, str]:
        """Environment for a subprocess that should see these distributions."""
        import os

        return {**os.environ, "PYTHONPATH": str(self.root)}


def reset_registry() -> None:
    """Forget discovered plugins and built op sets, so the next use rediscovers."""
    importlib.invalidate_caches()
    opsets.reset()


@pytest.fixture
def fake_site(tmp_path, monkeypatch):
    """A `FakeSite` on sys.path; the registry is rebuilt from it and restored afterwards."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    reset_registry()
    yield FakeSite(root)
    for name in set(sys.modules) - before:  # plugin modules of this test only
        if getattr(sys.modules[name], "__file__", "") and str(root) in sys.modules[name].__file__:
            del sys.modules[name]
    reset_registry()


def numerical_grad(f, *arrays: np.ndarray, eps: float = 1e-6) -> list[np.ndarray]:
    """Central-difference gradient of ``sum(f(*arrays))`` with respect to each array."""
    grads = []
    for k, a in enumerate(arrays):
        g = np.zeros_like(a, dtype=np.float64)
        for i in np.ndindex(a.shape):
            hi = [x.copy() for x in arrays]
            lo = [x.copy() for x in arrays]
            hi[k][i] += eps
            lo[k][i] -= eps
            g[i] = (np.sum(f(*hi)) - np.sum(f(*lo))) / (2 * eps)
        grads.append(g)
    return grads


@pytest.fixture
def numgrad():
    """`numerical_grad`: finite differences for value-level gradient tests (float64)."""
    return numerical_grad


@pytest.fixture
def isolated_imports(tmp_path, monkeypatch):
    """Modules a test imports from its tmp_path (``--module``, doc blocks) are forgotten after
    it, with the ``sys.path`` entries that found them: a later test's module of the same name
    must not get the cached one."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if str(tmp_path) in (getattr(sys.modules[name], "__file__", None) or ""):
            del sys.modules[name]
