"""The README's code runs as shown: the opening example and the op-package example."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import opgraph
from opgraph.conformance.runner import run
from opgraph.conformance.settings import ConformanceSettings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def block_starting(first_line: str) -> str:
    (block,) = [b for b in PYTHON_BLOCKS if b.startswith(first_line)]
    return block


def test_opening_example_prints_what_its_comment_says():
    code = block_starting("import numpy as np\nimport opgraph\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {})  # the README's own code, nothing else
    shown = re.search(r"print\(x\.grad\)\s+# (.*?) \.\.\.", code).group(1)
    assert out.getvalue().startswith(shown)


def test_op_package_example_installs_and_passes_every_conformance_check(fake_site):
    fake_site.add_plugin("myops", block_starting("# myops/__init__.py"))
    (op,) = [op for op in opgraph.ops if op.provenance.plugin == "myops"]
    report = run([op], ConformanceSettings())
    assert op.name == "cube"
    assert report.results and not report.failed, [r.message for r in report.results if r.failed]
