"""``opgraph new-plugin``: the package it writes installs, and its own tests pass."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from opgraph.cli import main
from opgraph.scaffold import create_plugin, names_for

pytestmark = pytest.mark.usefixtures("isolated_imports")


def test_names_follow_the_repositorys_convention():
    assert names_for("opgraph-myops") == {
        "dist": "opgraph-myops",
        "package": "opgraph_myops",
        "plugin": "myops",
    }
    assert names_for("Fancy.Ops")["package"] == "fancy_ops"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("2fast", "starting with a letter"),
        ("my ops", "starting with a letter"),
        ("a--b", "single '-'"),
        ("opgraph", "reserved"),
        ("class", "reserved"),
        ("numpy", "already importable"),
    ],
)
def test_bad_names_are_refused_and_nothing_is_written(tmp_path, capsys, name, why):
    assert main(["new-plugin", name, "--dir", str(tmp_path / "out")]) == 2
    assert why in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_existing_non_empty_directory_is_refused(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["new-plugin", "opgraph-refused", "--dir", str(tmp_path)]) == 2
    assert "already exists and is not an empty directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_the_package_is_complete_and_its_ops_pass_before_installing(tmp_path, capsys):
    root = create_plugin("opgraph-scaffolded", tmp_path / "proj")
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [
        ".github/workflows/tests.yml",
        ".gitignore",
        "README.md",
        "opgraph_scaffolded/__init__.py",
        "pyproject.toml",
        "tests/test_conformance.py",
        "tests/test_ops.py",
    ]
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points.opgraph]\nscaffolded = "opgraph_scaffolded"\n' in pyproject
    assert (
        'conformance_suite(plugins=("scaffolded",))'
        in (root / "tests" / "test_conformance.py").read_text()
    )
    workflow = (root / ".github" / "workflows" / "tests.yml").read_text()
    assert "python-version: ${{ matrix.python-version }}" in workflow
    assert "python -m pytest" in workflow
    assert main(["check", "--module", str(root / "opgraph_scaffolded")]) == 0
    out = capsys.readouterr().out
    assert "2 ops, " in out and "cube" in out and "scaled_diff" in out


def test_generated_package_installs_in_a_fresh_venv_and_its_tests_pass(tmp_path):
    """The author's first minutes: new-plugin, pip install -e, python -m pytest. The venv sees
    this environment's packages (opgraph, numpy, pytest, setuptools) through a .pth file, so
    nothing is downloaded: --no-deps --no-build-isolation."""
    root = tmp_path / "proj"
    subprocess.run(
        [sys.executable, "-m", "opgraph", "new-plugin", "opgraph-fresh", "--dir", str(root)],
        check=True,
        capture_output=True,
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    stdlib = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")}
    outer = [p for p in sys.path if p and os.path.isdir(p) and p not in stdlib]
    Path(purelib, "outer_env.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in outer)
    )
    pip = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    install = subprocess.run(
        [*pip, "-e", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    tests = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout and "failed" not in tests.stdout
    listed = subprocess.run(
        [str(python), "-m", "opgraph", "check", "--plugin", "fresh"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr


def test_the_guides_worked_example_is_what_new_plugin_writes(tmp_path):
    guide = (Path(__file__).resolve().parent.parent / "docs" / "authoring.md").read_text()
    example = guide.split("## Worked example", 1)[1].split("```python\n", 1)[1].split("```")[0]
    root = create_plugin("opgraph-myops", tmp_path / "myops")
    assert (root / "opgraph_myops" / "__init__.py").read_text() == example
