"""Every code block of the README and of docs/*.md runs as written, in order, in a fresh
directory laid out like the repository root (``configs/`` and ``examples/`` linked in):

- ``python``: executed; a plugin module (one defining ``opgraph_ops``) is checked with
  ``opgraph check --module`` and must pass; a ``print(...)  # shown`` line must print what
  its comment shows;
- ``yaml``: a valid op-set config whose op set builds (so it names plugins and ops that
  exist); one starting with ``# NAME.yaml`` is saved under that name for later blocks;
- ``bash``: every command, except the install, test-suite and benchmark commands
  (`SKIPPED_COMMANDS`: .ci/run, tests/test_scaffold.py and bench/ exercise those);
- ``json`` and ``toml``: parse; ``text`` and ``console`` show output and are not run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from opgraph import opsets
from opgraph.cli import main
from opgraph.config import load_config
from opgraph.conformance.settings import settings_for

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", flags=re.M | re.S)
SKIPPED_COMMANDS = ("pip install", "python -m pytest", "python3 -m venv", "/tmp/benchvenv/")
SHOWN = re.compile(r"^print\((.*)\)\s+# (.*?)(?: \.\.\.)?$", flags=re.M)


def blocks(doc: Path) -> list[tuple[str, str]]:
    """(language, code) of every fenced block, indentation of list items removed."""
    text = doc.read_text(encoding="utf-8")
    found = []
    for indent, language, code in BLOCK.findall(text):
        lines = code.splitlines(keepends=True)
        found.append((language, "".join(line.removeprefix(indent) for line in lines)))
    return found


def run_python(code: str, name: str, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    if re.search(r"^def opgraph_ops\(", code, flags=re.M):
        path = workdir / f"{name}.py"
        path.write_text(code)
        assert main(["check", "--module", str(path)]) == 0, capsys.readouterr().out
        return
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, name, "exec"), {"__name__": name})
    for _, shown in SHOWN.findall(code):
        assert shown in out.getvalue(), (code, out.getvalue())


def run_yaml(code: str, workdir: Path) -> None:
    first = code.splitlines()[0]
    saved = re.fullmatch(r"# ([\w.-]+\.yaml)", first)
    path = workdir / (saved[1] if saved else "example.yaml")
    path.write_text(code)
    config = load_config(path)
    opset = opsets.build(config)
    assert len(opset) > 0
    assert settings_for(config, (op.name for op in opset))  # op names checked against the set


PRELUDE = 'opgraph() { "$PY" -m opgraph "$@"; }\npython() { "$PY" "$@"; }\nset -e\n'


def run_bash(code: str, workdir: Path) -> None:
    """The block's commands, one after another in one shell: a line may use what an earlier
    one made (``opgraph new-plugin`` then ``opgraph check --module`` on its package)."""
    commands = [
        line
        for line in code.splitlines()
        if line.strip() and not any(skipped in line for skipped in SKIPPED_COMMANDS)
    ]
    script = "\n".join(commands)
    done = subprocess.run(
        ["bash", "-c", PRELUDE + script],
        cwd=workdir,
        env={**os.environ, "PY": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, (script, done.stdout[-3000:], done.stderr[-3000:])


@pytest.mark.usefixtures("isolated_imports")
@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_code_block_runs_as_written(doc, tmp_path, monkeypatch, capsys):
    for name in ("configs", "examples"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    for i, (language, code) in enumerate(blocks(doc)):
        if language == "python":
            run_python(code, f"{doc.stem.lower()}_block_{i}", tmp_path, capsys)
        elif language == "yaml":
            run_yaml(code, tmp_path)
        elif language == "bash":
            run_bash(code, tmp_path)
        elif language == "json":
            json.loads(code)
        elif language == "toml":
            tomllib = pytest.importorskip("tomllib")
            tomllib.loads(code)
        else:
            assert language in ("text", "console"), f"{doc.name}: unlabelled block {code!r}"


def test_the_docs_have_the_blocks_this_test_runs():
    languages = [language for doc in DOCS for language, _ in blocks(doc)]
    assert languages.count("python") >= 6 and languages.count("bash") >= 4
    assert languages.count("yaml") >= 2
