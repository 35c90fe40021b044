"""Plugin robustness, with fake installed distributions: isolation, warnings, strict mode,
enable/disable before import, invalid declarations, conflicts, `opgraph plugins`, tracing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import opgraph
from opgraph import Variable, cli, config, engine, opsets, plugins, registry
from opgraph.errors import PluginError, StrictPluginError

TRIPLE = """
    from opgraph import OpSpec, hookimpl

    def _backward(ctx, gy):
        return gy * 3.0

    @hookimpl
    def opgraph_ops():
        return [OpSpec(name="triple", forward=lambda x: x * 3, backward=_backward,
                       shape_rule=lambda x: x)]
"""
IMPORT_FAILS = """
    import opgraph_missing_native_library
"""
HOOK_RAISES = """
    from opgraph import hookimpl

    @hookimpl
    def opgraph_ops():
        raise RuntimeError("cannot find the GPU")
"""
INVALID = """
    from opgraph import OpSpec, hookimpl

    @hookimpl
    def opgraph_ops():
        return [
            OpSpec(name="Bad-Name", forward=abs, backward=None, shape_rule=lambda x: x,
                   nondiff=("x",)),
            OpSpec(name="no_forward", forward=None, backward=None, shape_rule=lambda x: x,
                   nondiff=("x",)),
            OpSpec(name="quad", forward=lambda x: x * 4, backward=lambda ctx, gy: gy * 4.0,
                   shape_rule=lambda x: x),
        ]
"""
NEEDS_MISSING_OP = """
    from opgraph import OpSpec, hookimpl

    @hookimpl
    def opgraph_ops():
        return [OpSpec(name="wobble", forward=lambda x: x, shape_rule=lambda x: x,
                       backward=lambda ctx, gy: ctx.ops.unknown_op(gy),
                       requires=("unknown_op",))]
"""
NEEDS_A_DROPPED_OP = NEEDS_MISSING_OP.replace(
    "return [",
    """return [OpSpec(name="shake", forward=lambda x: x, shape_rule=lambda x: x,
                       backward=lambda ctx, gy: ctx.ops.wobble(gy), requires=("wobble",)),
            """,
)


def imports_marker(path) -> str:
    """A plugin that records being imported, to prove a disabled plugin never is."""
    return f"open({str(path)!r}, 'w').write('imported')\n" + textwrap.dedent(TRIPLE)


def warning_lines(recwarn) -> list[str]:
    """The opgraph warnings a test emitted (through `warnings`, as pytest shows them)."""
    return [str(w.message) for w in recwarn if issubclass(w.category, opgraph.OpgraphWarning)]


def test_a_good_plugin_provides_ops_with_provenance(fake_site):
    fake_site.add_plugin("triple-ops", TRIPLE, version="2.5")
    x = Variable(np.array([1.0, 2.0]))
    y = opgraph.ops.triple(x)
    y.backward()
    assert x.grad.data.tolist() == [3.0, 3.0]
    prov = opgraph.ops.triple.provenance
    assert (prov.plugin, prov.distribution, prov.version) == ("triple_ops", "triple-ops", "2.5")


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (IMPORT_FAILS, "import failed: ModuleNotFoundError"),
        (HOOK_RAISES, "hook opgraph_ops raised RuntimeError: cannot find the GPU"),
        (
            HOOK_RAISES.replace('RuntimeError("cannot find the GPU")', "SystemExit(2)"),
            "hook opgraph_ops raised SystemExit: 2",
        ),
        ("import sys\nsys.exit('no GPU')\n", "import failed: SystemExit: no GPU"),
        ("x = 1\n", "defines no @opgraph.hookimpl opgraph_ops()"),
        (
            TRIPLE.replace("return [", "return (").replace("x: x)]", "x: x))"),  # one OpSpec
            "opgraph_ops() returned a single OpSpec; return a list of OpSpecs (or yield each)",
        ),
    ],
)
def test_a_broken_plugin_is_skipped_with_one_warning_and_the_others_load(
    fake_site, recwarn, source, reason
):
    fake_site.add_plugin("broken-plugin", source, version="0.3")
    fake_site.add_plugin("triple-ops", TRIPLE)
    assert "triple" in opgraph.ops
    assert "add" in opgraph.ops
    opsets.plugin_records()  # a second look at the plugins does not warn again
    (warning,) = warning_lines(recwarn)
    assert "plugin 'broken_plugin' from broken-plugin 0.3 is failed" in warning
    assert reason in warning
    (record,) = [r for r in opsets.plugin_records() if r.name == "broken_plugin"]
    assert (record.status, record.broken) == ("failed", True)


def test_the_warning_says_how_to_disable_the_plugin(fake_site, recwarn):
    fake_site.add_plugin("broken-plugin", IMPORT_FAILS)
    opsets.plugin_records()
    (warning,) = recwarn
    assert warning.category is opgraph.PluginWarning
    assert "OPGRAPH_DISABLE_PLUGINS=broken_plugin" in str(warning.message)


def test_invalid_declarations_are_rejected_per_op_and_the_rest_loads(fake_site, recwarn):
    fake_site.add_plugin("mixed-ops", INVALID)
    assert "quad" in opgraph.ops
    assert "no_forward" not in opgraph.ops
    assert {w.category for w in recwarn} == {opgraph.DeclarationWarning}
    warnings = warning_lines(recwarn)
    assert len(warnings) == 2
    assert all("plugin 'mixed_ops' from mixed-ops 1.0" in w for w in warnings)
    assert any("'Bad-Name'" in w and "lowercase identifier" in w for w in warnings)
    assert any("'no_forward'" in w and "forward must be callable" in w for w in warnings)
    (record,) = [r for r in opsets.plugin_records() if r.name == "mixed_ops"]
    assert record.status == "active"
    assert [s.name for s in record.specs] == ["quad"]
    assert len(record.rejected) == 2


def test_an_op_whose_dependency_is_missing_is_dropped_with_its_reason(fake_site, recwarn):
    fake_site.add_plugin("wobble-ops", NEEDS_MISSING_OP)
    assert "sin" in opgraph.ops
    with pytest.raises(
        AttributeError, match=r"wobble.*requires 'unknown_op', which no active plugin provides"
    ):
        opgraph.ops.wobble  # noqa: B018
    (warning,) = recwarn
    assert warning.category is opgraph.DroppedOpWarning and "'wobble'" in str(warning.message)


def test_an_op_whose_dependency_was_dropped_is_dropped_too_and_says_why(fake_site):
    fake_site.add_plugin("wobble-ops", NEEDS_A_DROPPED_OP)
    with pytest.raises(AttributeError) as info:
        opgraph.ops.shake  # noqa: B018
    assert (
        "its backward requires 'wobble', which was skipped (its backward requires "
        "'unknown_op', which no active plugin provides (fix the name in requires=, or install "
        "a plugin providing 'unknown_op'))" in str(info.value)
    )


def test_an_alias_of_a_dropped_op_says_why_it_is_missing(fake_site, tmp_path):
    fake_site.add_plugin("wobble-ops", NEEDS_MISSING_OP)
    config = tmp_path / "alias.yaml"
    config.write_text("ops: {exclude: [wobble], aliases: {wob: wobble}}\n")
    ops = opgraph.load_opset(config)
    assert "wob" not in ops
    with pytest.raises(AttributeError, match=r"no op 'wob' .*: op 'wobble' from .* was skipped"):
        ops.wob  # noqa: B018


def test_a_backward_using_an_undeclared_op_is_told_to_declare_it(fake_site):
    fake_site.add_plugin("wobble-ops", NEEDS_MISSING_OP.replace('requires=("unknown_op",)', ""))
    y = opgraph.ops.wobble(Variable(np.array([1.0])))
    with pytest.raises(AttributeError) as info:
        y.backward()
    assert "no op 'unknown_op' in ctx.ops of 'wobble'" in str(info.value)
    assert "declare every op its backward uses in requires=" in str(info.value)


@pytest.mark.parametrize("order", [("fast-a", "fast-b"), ("fast-b", "fast-a")])
def test_a_conflict_is_confined_to_the_contested_op(fake_site, order, recwarn):
    versions = {"fast-a": "1.0", "fast-b": "2.0"}
    for dist in order:
        fake_site.add_plugin(dist, TRIPLE, version=versions[dist])
    x = Variable(np.array([1.0, 2.0]))
    opgraph.ops.sum(opgraph.ops.sin(x)).backward()  # everything else works
    assert np.allclose(x.grad.data, np.cos([1.0, 2.0]))
    assert "triple" not in opgraph.ops
    assert [op.provenance.plugin for op in opgraph.ops.conflicts["triple"]] == ["fast_a", "fast_b"]
    with pytest.raises(opgraph.OpConflictError) as info:
        opgraph.ops.triple  # noqa: B018
    assert not hasattr(opgraph.ops, "triple")  # also an AttributeError
    message = str(info.value)
    assert message.count("op 'triple' is provided by") == 1
    a, b = message.index("fast-a 1.0"), message.index("fast-b 2.0")
    assert a < b  # by plugin name, never by installation order
    assert "      triple: fast_a\n" in message
    assert "      triple: fast_b\n" in message
    assert "`providers:`" in message
    (warning,) = [w for w in recwarn if w.category is opgraph.DroppedOpWarning]
    assert "op 'triple' is unavailable" in str(warning.message)


def test_a_conflict_in_strict_mode_is_a_load_error(fake_site, monkeypatch):
    fake_site.add_plugin("fast-a", TRIPLE)
    fake_site.add_plugin("fast-b", TRIPLE)
    monkeypatch.setenv("OPGRAPH_STRICT_PLUGINS", "1")
    with pytest.raises(StrictPluginError, match="op 'triple' is unavailable: it is provided by"):
        opsets.default_opset()


def test_a_conflict_over_an_essential_op_breaks_only_that_op(fake_site):
    fake_site.add_plugin("my-mul", TRIPLE.replace('"triple"', '"mul"'))
    x = Variable(np.array([1.0, 2.0]))
    opgraph.ops.sum(-x).backward()  # no mul on the way
    assert np.allclose(opgraph.ops.sin(x).data, np.sin([1.0, 2.0]))
    assert np.allclose(x.grad.data, -np.ones(2))
    with pytest.raises(opgraph.OpConflictError, match="op 'mul' is provided by"):
        x * 2.0


def test_the_line_the_conflict_error_suggests_resolves_it(fake_site, tmp_path):
    fake_site.add_plugin("fast-a", TRIPLE)
    fake_site.add_plugin("fast-b", TRIPLE)
    with pytest.raises(PluginError) as info:
        opsets.default_opset().triple  # noqa: B018
    line = next(line for line in str(info.value).splitlines() if "triple: fast_b" in line)
    config = tmp_path / "pick.yaml"
    config.write_text(f"providers:\n{line}\n")
    ops = opgraph.load_opset(config)
    assert ops.triple.provenance.distribution == "fast-b"
    assert not ops.conflicts
    config.write_text("providers:\n  triple: fast-a\n")  # the distribution name works too
    assert opgraph.load_opset(config).triple.provenance.distribution == "fast-a"


def test_plugins_whose_names_differ_only_in_spelling_are_told_apart_by_distribution(
    fake_site, tmp_path
):
    fake_site.add_plugin("alpha-ops", TRIPLE, entry_point="fast_a")
    fake_site.add_plugin("beta-ops", TRIPLE, entry_point="Fast-A")  # the same name, normalized
    with pytest.raises(PluginError) as info:
        opsets.default_opset().triple  # noqa: B018
    lines = [line for line in str(info.value).splitlines() if line.startswith("      triple:")]
    assert lines == ["      triple: beta-ops", "      triple: alpha-ops"]
    config = tmp_path / "pick.yaml"
    config.write_text(f"providers:\n{lines[0]}\n")
    assert opgraph.load_opset(config).triple.provenance.distribution == "beta-ops"


def test_excluding_a_contested_op_also_resolves_the_conflict(fake_site, tmp_path):
    fake_site.add_plugin("fast-a", TRIPLE)
    fake_site.add_plugin("fast-b", TRIPLE)
    config = tmp_path / "skip.yaml"
    config.write_text("ops:\n  exclude: [triple]\n")
    assert "triple" not in opgraph.load_opset(config)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OPGRAPH_DISABLE_PLUGINS", "marked_ops"),
        ("OPGRAPH_DISABLE_PLUGINS", "other,Marked-Ops"),  # by distribution name
        ("OPGRAPH_LOAD_PLUGINS", ""),
        ("OPGRAPH_LOAD_PLUGINS", "triple_ops"),
    ],
)
def test_disabled_plugins_are_never_imported(fake_site, tmp_path, monkeypatch, variable, value):
    marker = tmp_path / "imported"
    fake_site.add_plugin("marked-ops", imports_marker(marker), entry_point="marked_ops")
    fake_site.add_plugin("triple-ops", TRIPLE)
    monkeypatch.setenv(variable, value)
    ops = opgraph.ops
    assert not marker.exists()
    assert "add" in ops
    assert ("triple" in ops) == (value != "")  # the other plugin still loads, unless none may
    (record,) = [r for r in opsets.plugin_records() if r.name == "marked_ops"]
    assert record.status == "disabled"
    assert variable in record.reason


def test_a_config_disables_plugins_before_import(fake_site, tmp_path):
    marker = tmp_path / "imported"
    fake_site.add_plugin("marked-ops", imports_marker(marker), entry_point="marked_ops")
    config = tmp_path / "c.yaml"
    config.write_text("plugins:\n  disable: [marked-ops]\n")
    assert "triple" not in opgraph.load_opset(config)
    config.write_text("plugins:\n  enable: []\n")
    assert "triple" not in opgraph.load_opset(config)
    assert not marker.exists()
    config.write_text("plugins:\n  enable: [marked_ops]\n")
    assert "triple" in opgraph.load_opset(config)
    assert marker.exists()


def test_the_essential_plugin_cannot_be_disabled_by_accident(fake_site, monkeypatch, recwarn):
    monkeypatch.setenv("OPGRAPH_DISABLE_PLUGINS", "builtin")
    monkeypatch.setenv("OPGRAPH_LOAD_PLUGINS", "")
    assert "add" in opgraph.ops
    assert any("provides the essential ops; it stays enabled" in w for w in warning_lines(recwarn))


def test_an_incompatible_plugin_is_not_imported(fake_site, tmp_path, recwarn):
    marker = tmp_path / "imported"
    fake_site.add_plugin(
        "future-ops",
        imports_marker(marker),
        requires=("numpy", "opgraph >=99", "opgraph <0.1; extra == 'old'"),
    )
    (record,) = [r for r in opsets.plugin_records() if r.name == "future_ops"]
    assert record.status == "incompatible"
    assert record.reason == f"needs opgraph>=99 but opgraph {opgraph.__version__} is installed"
    assert not marker.exists()
    assert any("is incompatible" in w for w in warning_lines(recwarn))


def test_a_misspelt_hook_makes_the_plugin_incompatible(fake_site):
    fake_site.add_plugin("typo-ops", TRIPLE.replace("def opgraph_ops", "def opgraph_op"))
    (record,) = [r for r in opsets.plugin_records() if r.name == "typo_ops"]
    assert record.status == "incompatible"
    assert "unknown hook 'opgraph_op' (did you mean opgraph_ops?)" in record.reason


def test_strict_mode_turns_a_broken_plugin_into_an_error(fake_site, monkeypatch):
    fake_site.add_plugin("broken-plugin", HOOK_RAISES)
    monkeypatch.setenv("OPGRAPH_STRICT_PLUGINS", "1")
    with pytest.raises(StrictPluginError, match=r"broken_plugin.*cannot find the GPU"):
        opsets.default_opset()


def test_strict_mode_also_rejects_invalid_declarations(fake_site, tmp_path):
    fake_site.add_plugin("mixed-ops", INVALID)
    config = tmp_path / "strict.yaml"
    config.write_text("plugins: {strict: true}\n")
    with pytest.raises(StrictPluginError, match="'Bad-Name'"):
        opgraph.load_opset(config)


def test_strict_mode_also_rejects_an_op_whose_dependency_is_missing(fake_site, monkeypatch):
    fake_site.add_plugin("wobble-ops", NEEDS_MISSING_OP)
    monkeypatch.setenv("OPGRAPH_STRICT_PLUGINS", "1")
    with pytest.raises(StrictPluginError, match=r"op 'wobble' from .* was skipped: .*'unknown_op'"):
        opsets.default_opset()


def test_entry_points_are_scanned_once_per_process(fake_site, monkeypatch, tmp_path):
    fake_site.add_plugin("triple-ops", TRIPLE)
    calls = []
    real = plugins.distributions
    monkeypatch.setattr(plugins, "distributions", lambda: calls.append(1) or real())
    config = tmp_path / "c.yaml"
    config.write_text("ops: {include: [triple]}\n")
    opgraph.ops.triple  # noqa: B018
    opgraph.load_opset(config)
    opsets.plugin_records()
    assert calls == [1]


def test_trace_shows_what_each_hook_returned_and_from_whom(fake_site, monkeypatch, capsys):
    fake_site.add_plugin("triple-ops", TRIPLE)
    monkeypatch.setenv("OPGRAPH_TRACE_PLUGINS", "1")
    monkeypatch.setenv("OPGRAPH_DISABLE_PLUGINS", "other")
    opsets.plugin_records()
    err = capsys.readouterr().err
    assert "trace: found" in err
    assert "plugin 'triple_ops' from triple-ops 1.0 loaded in" in err
    assert "opgraph_ops() returned 1 declarations: triple" in err


def test_plugins_command_reports_every_plugin(fake_site, monkeypatch, capsys):
    fake_site.add_plugin("triple-ops", TRIPLE, version="2.0")
    fake_site.add_plugin("broken-plugin", IMPORT_FAILS)
    fake_site.add_plugin("mixed-ops", INVALID)
    fake_site.add_plugin("future-ops", TRIPLE, requires=("opgraph>=99",))
    fake_site.add_plugin("off-ops", TRIPLE)
    monkeypatch.setenv("OPGRAPH_DISABLE_PLUGINS", "off-ops")
    assert cli.main(["plugins", "--json"]) == cli.EXIT_OK
    rows = {r["plugin"]: r for r in json.loads(capsys.readouterr().out)["plugins"]}
    assert rows["triple_ops"] == {
        "plugin": "triple_ops",
        "distribution": "triple-ops",
        "version": "2.0",
        "entry_point": "triple_ops",
        "status": "active",
        "ops": 1,
        "rejected": [],
        "reason": None,
    }
    assert rows["builtin"]["status"] == "active"
    assert rows["broken_plugin"]["status"] == "failed"
    assert "ModuleNotFoundError" in rows["broken_plugin"]["reason"]
    assert (rows["mixed_ops"]["ops"], len(rows["mixed_ops"]["rejected"])) == (1, 2)
    assert rows["future_ops"]["status"] == "incompatible"
    assert rows["off_ops"]["status"] == "disabled"
    assert cli.main(["plugins"]) == cli.EXIT_OK
    table = capsys.readouterr().out
    assert "broken_plugin: import failed: ModuleNotFoundError" in table
    monkeypatch.setenv("OPGRAPH_STRICT_PLUGINS", "1")
    assert cli.main(["plugins"]) == cli.EXIT_PLUGIN


def test_plugins_command_in_strict_mode_fails_on_a_rejected_declaration(fake_site, monkeypatch):
    fake_site.add_plugin("mixed-ops", INVALID)  # active, but two of its ops were rejected
    assert cli.main(["plugins"]) == cli.EXIT_OK
    monkeypatch.setenv("OPGRAPH_STRICT_PLUGINS", "1")
    assert cli.main(["plugins"]) == cli.EXIT_PLUGIN


def test_list_keeps_working_and_names_the_broken_plugin(fake_site, capsys):
    fake_site.add_plugin("broken-plugin", HOOK_RAISES)
    assert cli.main(["list"]) == cli.EXIT_OK
    out, err = capsys.readouterr()
    assert "sin(x)" in out
    assert "plugin 'broken_plugin' (broken-plugin) is failed" in err


def test_cli_flags_and_exit_codes(fake_site):
    fake_site.add_plugin("broken-plugin", HOOK_RAISES)
    fake_site.add_plugin("triple-ops", TRIPLE)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "opgraph.cli", *args],
            check=False,
            env=fake_site.env,
            capture_output=True,
            text=True,
        )

    strict = run("list", "--strict-plugins")
    assert strict.returncode == cli.EXIT_PLUGIN
    assert "broken_plugin" in strict.stderr
    quiet = run("--no-plugins", "list", "--strict-plugins")  # nothing broken gets imported
    assert quiet.returncode == cli.EXIT_OK
    assert "triple(" not in quiet.stdout
    assert "sin(x)" in quiet.stdout


def test_every_op_the_engine_dispatches_to_is_essential():
    used = set(re.findall(r"\.ops\.([a-z_]+)\(", Path(engine.__file__).read_text()))
    assert used
    assert used <= set(registry.ESSENTIAL), "add these to registry.ESSENTIAL"


def test_plugins_and_list_follow_the_default_config(fake_site, tmp_path, monkeypatch, capsys):
    fake_site.add_plugin("triple-ops", TRIPLE)
    config = tmp_path / "default.yaml"
    config.write_text("plugins:\n  disable: [triple-ops]\n")
    monkeypatch.setenv("OPGRAPH_CONFIG", str(config))
    assert cli.main(["plugins", "--json"]) == cli.EXIT_OK
    rows = {r["plugin"]: r for r in json.loads(capsys.readouterr().out)["plugins"]}
    assert rows["triple_ops"]["status"] == "disabled"
    assert rows["triple_ops"]["reason"] == f"disabled by {config}:2:3"
    assert cli.main(["list", "--json"]) == cli.EXIT_OK
    assert "triple" not in {row["name"] for row in json.loads(capsys.readouterr().out)["ops"]}


def test_a_required_plugin_must_be_active(fake_site, tmp_path, monkeypatch):
    fake_site.add_plugin("triple-ops", TRIPLE, version="1.2")
    config = tmp_path / "needs.yaml"
    config.write_text("plugins:\n  require: ['triple-ops >=1.1']\n")
    assert "triple" in opgraph.load_opset(config)
    monkeypatch.setenv("OPGRAPH_DISABLE_PLUGINS", "triple_ops")
    with pytest.raises(PluginError, match=r"triple-ops is required, but .* is disabled"):
        opgraph.load_opset(config)


def test_a_misspelt_plugin_name_in_the_environment_is_warned_about(fake_site, monkeypatch, recwarn):
    fake_site.add_plugin("triple-ops", TRIPLE)
    monkeypatch.setenv("OPGRAPH_DISABLE_PLUGINS", "tripel_ops")
    assert "triple" in opgraph.ops
    assert (
        "OPGRAPH_DISABLE_PLUGINS names 'tripel_ops', which is no installed plugin; "
        "did you mean 'triple-ops'?" in " ".join(warning_lines(recwarn))
    )


def test_an_op_declared_twice_by_one_plugin_keeps_its_first_declaration(fake_site, recwarn):
    fake_site.add_plugin("twice-ops", TRIPLE.replace("return [OpSpec", "return 2 * [OpSpec"))
    assert "triple" in opgraph.ops  # not a conflict with itself
    assert (
        "op 'triple' from plugin 'twice_ops' from twice-ops 1.0 is declared twice (the first "
        "declaration is kept); this declaration was skipped" in " ".join(warning_lines(recwarn))
    )
    (record,) = [r for r in opsets.plugin_records() if r.name == "twice_ops"]
    assert ([s.name for s in record.specs], len(record.rejected)) == (["triple"], 1)


def test_unreadable_metadata_of_one_distribution_hides_no_other_plugin(fake_site, recwarn):
    fake_site.add_plugin("triple-ops", TRIPLE)
    fake_site.add_plugin("garbled-ops", TRIPLE.replace('"triple"', '"garbled"'))
    info = next(fake_site.root.glob("garbled_ops-*.dist-info"))
    (info / "entry_points.txt").write_bytes(b"[opgraph]\ngarbled_ops = garbled_ops \xff\xfe\n")
    assert "triple" in opgraph.ops
    assert any("cannot read the metadata" in w for w in warning_lines(recwarn))


@pytest.mark.parametrize(
    "source",
    [
        "class Boom(BaseException):\n    pass\nraise Boom('at import')\n",
        textwrap.dedent("""
            from opgraph import hookimpl
            import itertools
            from opgraph import OpSpec

            @hookimpl
            def opgraph_ops():
                for i in itertools.count():  # never ends
                    yield OpSpec(f"op{i}", lambda x: x, lambda x: x, lambda ctx, gy: gy)
        """),
    ],
)
def test_a_plugin_raising_a_base_exception_or_yielding_forever_is_failed(
    fake_site, monkeypatch, source
):
    monkeypatch.setattr(plugins, "MAX_DECLARATIONS", 1000)  # the cap, smaller: a faster test
    fake_site.add_plugin("hostile-ops", source)
    fake_site.add_plugin("triple-ops", TRIPLE)
    assert "triple" in opgraph.ops
    (record,) = [r for r in opsets.plugin_records() if r.name == "hostile_ops"]
    assert record.status == "failed"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("attrs", "5", "attrs must be a tuple of Attr objects, got 5"),
        ("nondiff", "5", "nondiff must be a tuple of strings, got 5"),
        ("dtypes", "5", "dtypes must be a tuple of strings"),
        ("tolerances", "5", "tolerances must map dtype names to Tolerance"),
        ("attrs", "(Attr(['k']),)", "an attribute's name must be a Python identifier"),
        ("attrs", "(Attr('k', 1, check=lambda v: 1 / 0),)", "raised ZeroDivisionError"),
    ],
)
def test_a_declaration_with_a_field_of_the_wrong_type_is_rejected_alone(
    fake_site, recwarn, field, value, message
):
    source = TRIPLE.replace("shape_rule=lambda x: x)", f"shape_rule=lambda x: x, {field}={value})")
    source = source.replace("from opgraph import OpSpec", "from opgraph import Attr, OpSpec")
    fake_site.add_plugin("typo-ops", source)
    fake_site.add_plugin("fine-ops", TRIPLE.replace('"triple"', '"fine"'))
    assert "fine" in opgraph.ops and "triple" not in opgraph.ops
    assert any(message in w for w in warning_lines(recwarn))


@pytest.mark.parametrize(
    "source",
    [
        "import time\ntime.sleep(60)\n",
        textwrap.dedent("""
            import time
            from opgraph import hookimpl

            @hookimpl
            def opgraph_ops():
                while True:
                    time.sleep(0.05)
        """),
    ],
)
def test_a_plugin_that_hangs_is_failed_after_the_time_limit_and_the_rest_loads(
    fake_site, monkeypatch, source
):
    name = f"hanging_ops{len(source)}"  # a module of its own: the other one may still be hanging
    fake_site.add_plugin(name.replace("_", "-"), source)
    fake_site.add_plugin("triple-ops", TRIPLE)
    monkeypatch.setenv("OPGRAPH_PLUGIN_TIMEOUT", "0.5")
    assert "triple" in opgraph.ops
    (record,) = [r for r in opsets.plugin_records() if r.name == name]
    assert record.status == "failed"
    assert "did not finish loading within 0.5 s" in record.reason
    assert f"{name}.py:" in record.reason and "time.sleep" in record.reason


def test_the_time_limit_comes_from_the_environment_or_the_config(tmp_path, monkeypatch):
    path = tmp_path / "t.yaml"
    path.write_text("plugins: {timeout: 4}\n")
    assert opsets.selection(config.load_config(path)).timeout == 4.0
    monkeypatch.setenv("OPGRAPH_PLUGIN_TIMEOUT", "2.5")
    assert opsets.selection(config.load_config(path)).timeout == 2.5
    for bad in ("0", "-1", "soon", "nan"):
        monkeypatch.setenv("OPGRAPH_PLUGIN_TIMEOUT", bad)
        with pytest.raises(opgraph.ConfigError, match="OPGRAPH_PLUGIN_TIMEOUT"):
            opsets.selection(config.load_config(path))
    path.write_text("plugins: {timeout: 0}\n")
    with pytest.raises(opgraph.ConfigError, match=r"plugins.timeout: expected a number > 0"):
        config.load_config(path)
