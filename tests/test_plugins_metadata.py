"""Installed metadata read without importlib.metadata (`opgraph.entrypoints`): the same
distributions, entry points and requirements, and every malformed file confined to its own
distribution."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import zipfile

import pytest

import opgraph
from opgraph import entrypoints, opsets

TRIPLE = """
from opgraph import OpSpec, hookimpl

@hookimpl
def opgraph_ops():
    return [OpSpec("triple", lambda x: 3 * x, lambda s: s, lambda ctx, gy: 3 * gy)]
"""


def test_it_reads_what_importlib_metadata_reads_in_this_environment():
    def described(dists, name_of, version_of):
        return sorted(
            (
                name_of(d) or "",
                version_of(d) or "",
                tuple(d.requires or ()),
                tuple(sorted((ep.group, ep.name, ep.value) for ep in d.entry_points)),
            )
            for d in dists
        )

    ours = described(entrypoints.distributions(), lambda d: d.name, lambda d: d.version)
    theirs = described(
        importlib.metadata.distributions(), lambda d: d.metadata["Name"], lambda d: d.version
    )
    assert ours == theirs
    assert any(("opgraph", "builtin", "opgraph_ops") in entry for *_, entry in ours)


def test_entry_points_txt_is_parsed_as_the_specification_says():
    text = (
        "top = ignored:before_any_group\n"
        "# a comment\n\n"
        "[console_scripts]\n"
        "tool = pkg.cli:main\n"
        "[ opgraph ]\n"
        "  spaced_ops   =   spaced.ops : hook [extra1, extra2]  \n"
        "equals = mod:attr  # value keeps what follows the first =\n"
    )
    assert list(entrypoints.parse_entry_points(text)) == [
        ("console_scripts", "tool", "pkg.cli:main"),
        ("opgraph", "spaced_ops", "spaced.ops : hook [extra1, extra2]"),
        ("opgraph", "equals", "mod:attr  # value keeps what follows the first ="),
    ]
    with pytest.raises(ValueError, match=r"line 3: 'no_equals_sign' is no 'name = value'"):
        list(entrypoints.parse_entry_points("[opgraph]\nok = ok\nno_equals_sign\n"))


def test_metadata_headers_end_at_the_first_blank_line_and_fold_continuations():
    text = (
        "Metadata-Version: 2.1\r\nname: Folded-Ops\r\nVersion: 2.0\r\n"
        "Requires-Dist: numpy\r\nRequires-Dist: opgraph >=0.1;\r\n  python_version > '3'\r\n"
        "\r\nName: not-a-header (the description)\r\n"
    )
    headers = entrypoints.parse_headers(text)
    assert headers["name"] == ["Folded-Ops"]
    assert headers["requires-dist"] == ["numpy", "opgraph >=0.1; python_version > '3'"]
    assert entrypoints.parse_headers("Name: x\nnot a header line\nVersion: 1\n") == {"name": ["x"]}


def test_an_eggs_requirements_get_their_sections_as_markers():
    text = (
        "numpy\n\n[test]\npytest\n[:python_version < '3.12']\ntomli\n"
        "[docs:sys_platform == 'x']\nsphinx\n"
    )
    assert list(entrypoints.egg_requirements(text)) == [
        "numpy",
        'pytest; extra == "test"',
        "tomli; (python_version < '3.12')",
        "sphinx; extra == \"docs\" and (sys_platform == 'x')",
    ]


def test_paths_that_are_not_directories_are_passed_over(tmp_path):
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped-1.0.dist-info/entry_points.txt", "[opgraph]\nzipped = zipped\n")
    (tmp_path / "dir" / "found-1.0.dist-info").mkdir(parents=True)
    path = [str(archive), str(tmp_path / "missing"), b"bytes", "hook-marker", str(tmp_path / "dir")]
    assert [d.path for d in entrypoints.distributions(path)] == [
        str(tmp_path / "dir" / "found-1.0.dist-info")
    ]


def test_an_entry_point_loads_its_attribute_path_and_refuses_a_malformed_value():
    dist = entrypoints.Distribution("unused")
    assert (
        entrypoints.EntryPoint("p", "os.path : join", "g", dist).load()
        is __import__("os").path.join
    )
    assert entrypoints.EntryPoint("p", "opgraph [extra]", "g", dist).load() is opgraph
    for value in ("not a module!", "pkg:", "pkg:attr.", "1pkg", "pkg [extra"):
        with pytest.raises(ValueError, match="not an object reference"):
            entrypoints.EntryPoint("p", value, "g", dist).load()


def test_a_plugin_installed_as_egg_info_is_found_with_its_requirements(fake_site):
    info = fake_site.root / "egg_ops.egg-info"
    info.mkdir()
    (fake_site.root / "egg_ops.py").write_text(TRIPLE)
    (info / "PKG-INFO").write_text("Metadata-Version: 1.2\nName: egg-ops\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text("[opgraph]\negg_ops = egg_ops\n")
    assert opgraph.ops.triple.provenance.distribution == "egg-ops"
    (info / "requires.txt").write_text("numpy\n[:python_version > '3']\nopgraph>=99\n")
    opsets.reset()
    with pytest.warns(
        opgraph.PluginWarning, match=r"egg-ops 0.3 is incompatible.*needs opgraph>=99"
    ):
        assert "triple" not in opgraph.ops


def test_a_malformed_entry_point_value_fails_only_its_plugin(fake_site):
    fake_site.add_plugin("triple-ops", TRIPLE)
    fake_site.add_plugin("odd-ops", TRIPLE.replace('"triple"', '"odd"'))
    info = next(fake_site.root.glob("odd_ops-*.dist-info"))
    (info / "entry_points.txt").write_text("[opgraph]\nodd_ops = odd ops!\n")
    with pytest.warns(
        opgraph.PluginWarning,
        match="odd_ops.*import failed: ValueError: entry point value 'odd ops!'",
    ):
        assert "triple" in opgraph.ops


def test_the_first_opgraph_ops_imports_no_metadata_library():
    code = (  # what opgraph imports (a site .pth may have imported some already)
        "import sys\nbefore = set(sys.modules)\nimport opgraph\n"
        "opgraph.ops.sin\n"
        "new = set(sys.modules) - before\n"
        "loaded = {'importlib.metadata', 'email', 'zipfile', 'csv'} & new\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_installed_version_passes_over_unreadable_metadata(tmp_path, monkeypatch):
    for name, metadata in (("garbled", b"Name: garbled\xff\n"), ("wanted", b"Name: Wanted_Ops\n")):
        info = tmp_path / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_bytes(metadata + b"Version: 1.0\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    assert entrypoints.installed_version("wanted-ops") == "1.0"
    assert entrypoints.installed_version("absent") is None
