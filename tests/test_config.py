"""Op-set configs: schema errors with file, line and key; op selection closed under backward;
conformance settings; the repository's configs; every key and hookspec documented."""

from __future__ import annotations

import marshal
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

import opgraph
from opgraph import ConfigError, Tolerance, Variable, cli, config, hookspecs, opsets, registry
from opgraph.conformance.settings import CHECKS, ConformanceSettings, ExpectedFailure, settings_for
from opgraph.errors import EXIT_USAGE, PluginError

ROOT = Path(__file__).resolve().parent.parent
SEED_OPS = {
    "add", "sub", "mul", "div", "neg", "pow", "matmul", "reshape", "transpose", "sum",
    "broadcast_to", "sum_to", "astype", "sin", "cos", "tanh", "exp", "log",
}  # fmt: skip


def settings_of(cfg):
    """The conformance settings of ``cfg``, checked against its op set."""
    return settings_for(cfg, (op.name for op in opsets.build(cfg)))


@pytest.fixture
def write(tmp_path):
    def write(text: str, name: str = "opset.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


def problems(path: Path) -> str:
    """The ConfigError message of loading (and building) the config at ``path``."""
    with pytest.raises(ConfigError) as info:
        cfg = config.load_config(path)
        opsets.build(cfg)
        settings_of(cfg)
    return str(info.value)


def test_an_unknown_key_is_rejected_with_file_line_and_a_suggestion(write):
    path = write("""\
        plugins:
          strict: true
          enabel: [x]
    """)
    message = problems(path)
    assert f"{path}:3:3: plugins.enabel: unknown key; did you mean 'enable'?" in message
    assert "(valid: enable, disable, require, strict, timeout)" in message
    message = problems(write("colour: blue\n"))
    assert "1:1: colour: unknown key (valid: plugins, ops, providers, conformance, report)" in (
        message
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "conformance:\n  seed: abc\n",
            "2:9: conformance.seed: expected an integer >= 0, got a string ('abc')",
        ),
        (
            "conformance:\n  seed: -1\n",
            "conformance.seed: expected an integer >= 0, got an integer ('-1')",
        ),
        ("conformance:\n  full_jacobian: 1\n", "conformance.full_jacobian: expected true or false"),
        (
            "ops:\n  include: sin\n",
            "ops.include: expected a list of non-empty strings, got a string ('sin')",
        ),
        (
            "ops:\n  include: [sin, 3]\n",
            "2:18: ops.include[1]: expected a non-empty string, got an integer",
        ),
        ("plugins: [a]\n", "1:10: plugins: expected a mapping, got a list"),
        ("- a\n", "1:1: (top level): expected a mapping, got a list"),
        ("report:\n  json: {a: 1}\n", "report.json: expected a non-empty string, got a mapping"),
        ("conformance:\n  max_samples: 0\n", "conformance.max_samples: expected an integer >= 1"),
        ("providers:\n  sin: ~\n", "2:8: providers.sin: expected a non-empty string, got null\n"),
    ],
)
def test_a_wrong_type_is_named(write, text, expected):
    assert expected in problems(write(text))


def test_every_problem_is_reported_at_once(write):
    message = problems(write("conformance: {seed: x, dtypes: [nope]}\nop: {}\n"))
    assert "(3 problems)" in message
    lines = message.splitlines()
    assert "seed" in lines[1] and "dtypes[0]" in lines[2] and "did you mean 'ops'?" in lines[3]


def test_duplicate_keys_are_an_error_not_last_one_wins(write):
    message = problems(write("ops:\n  include: [sin]\n  include: [cos]\n"))
    assert "3:3: ops.include: duplicate key (first at line 2)" in message


@pytest.mark.parametrize(
    "text",
    [
        "ops: !!python/object/apply:os.mkdir [{marker}]\n",
        "ops:\n  include: [!!python/object/apply:os.mkdir [{marker}]]\n",
        "ops:\n  include: [!!python/name:os.system x]\n",
        "report:\n  json: !!python/object/new:str [x]\n",
    ],
)
def test_a_config_can_never_build_python_objects(write, tmp_path, text):
    marker = tmp_path / "built"
    message = problems(write(text.format(marker=f"'{marker}'")))
    assert "python/" in message
    assert "plain data" in message
    assert not marker.exists()


def test_invalid_yaml_names_the_line(write):
    path = write("ops:\n  include: [sin\n")
    assert f"{path}:3:1: not valid YAML" in problems(path)


def test_an_empty_config_and_null_values_mean_the_defaults(write):
    cfg = config.load_config(write("# nothing\n"))
    assert len(opsets.build(cfg)) == len(opgraph.ops)
    assert settings_of(cfg) == ConformanceSettings()
    cfg = config.load_config(
        write("plugins: {enable: null, strict: ~}\nops:\n  include:\nconformance: {checks: ~}\n")
    )
    assert (cfg.enable, cfg.strict, cfg.include) == (None, False, ["*"])
    assert settings_of(cfg) == ConformanceSettings()


def test_unknown_op_names_are_listed_with_close_matches(write):
    message = problems(
        write("""\
            ops:
              include: [sinn, "co*", "zzz*"]
              exclude: [tanhh]
              aliases: {sine: sni}
            providers:
              cso: builtin
        """)
    )
    assert (
        "2:13: ops.include[0]: unknown op (or pattern matching no op) 'sinn'; did you mean sin"
        in message
    )
    assert "ops.include[1]" not in message
    assert "ops.include[2]: unknown op (or pattern matching no op) 'zzz*'" in message
    assert "3:13: ops.exclude[0]" in message and "did you mean tanh" in message
    assert "ops.aliases.sine: unknown op 'sni'; did you mean sin" in message
    assert "6:3: providers.cso: unknown op 'cso'; did you mean cos" in message


def test_conformance_names_are_validated(write):
    message = problems(
        write("""\
            conformance:
              dtypes: [float32, floot64]
              tolerances:
                tanh:
                  float31: {rtol: 1e-5, atol: 0, reason: flat tails}
                  float32: {rtol: 1e-5, atol: 0}
              expected_failures:
                - {op: exp, check: grad_value}
        """)
    )
    assert "conformance.dtypes[1]: unknown dtype 'floot64'; did you mean float64" in message
    assert "conformance.tolerances.tanh.float31: unknown dtype" in message
    assert "6:16: conformance.tolerances.tanh.float32: missing required key 'reason'" in message
    assert "conformance.expected_failures[0]: missing required key 'reason'" in message


def test_check_names_are_validated_with_the_conformance_settings(write):
    """Check names belong to the harness: validated when the settings are read, still at
    their line, every problem at once."""
    path = write("""\
        conformance:
          checks: [grad_shape, grad_vale]
          expected_failures:
            - {op: tanh, check: grad_of_gradd, reason: x}
    """)
    cfg = config.load_config(path)  # the schema itself is fine
    with pytest.raises(ConfigError) as info:
        settings_of(cfg)
    message = str(info.value)
    assert "(2 problems)" in message
    assert "2:24: conformance.checks[1]: unknown check 'grad_vale'; did you mean grad_value" in (
        message
    )
    assert "conformance.expected_failures[0].check: unknown check 'grad_of_gradd'" in message


def test_conformance_ops_must_be_in_the_selected_op_set(write):
    message = problems(
        write("""\
            ops: {include: [sin, cos]}
            conformance:
              tolerances:
                tan: {float64: {rtol: 0.1, atol: 0.1, reason: r}}
              expected_failures:
                - {op: tanh, reason: excluded above}
                - {op: sin, reason: r}
                - {op: sin, reason: twice}
        """)
    )
    assert "conformance.tolerances.tan: unknown op (not in this op set) 'tan'" in message
    assert "conformance.expected_failures[0].op: unknown op (not in this op set) 'tanh'" in message
    assert "conformance.expected_failures[2]: repeats expected_failures[1]" in message


def test_the_conformance_section_becomes_conformance_settings(write):
    cfg = config.load_config(
        write("""\
            conformance:
              seed: 7
              dtypes: [float64]
              checks: [grad_value, grad_shape]
              max_samples: 5
              full_jacobian: true
              tolerances:
                tanh:
                  float32: {rtol: 1e-3, atol: 2e-5, reason: saturating tails}
              expected_failures:
                - {op: log, check: grad_of_grad, reason: known issue 12}
                - {op: exp, reason: every check}
            report: {json: out/report.json, junit: out/junit.xml}
        """)
    )
    assert settings_of(cfg) == ConformanceSettings(
        seed=7,
        dtypes=("float64",),
        checks=("grad_value", "grad_shape"),
        max_samples=5,
        full_jacobian=True,
        tolerances={"tanh": {"float32": Tolerance(1e-3, 2e-5, "saturating tails")}},
        expected_failures=(
            ExpectedFailure("log", "grad_of_grad", "known issue 12"),
            ExpectedFailure("exp", None, "every check"),
        ),
    )
    assert (cfg.json, cfg.junit) == (Path("out/report.json"), Path("out/junit.xml"))


def test_reasons_and_report_paths_must_be_meaningful(write):
    message = problems(
        write("""\
            conformance:
              expected_failures: [{op: sin, reason: "  "}]
            report: {json: same.xml, junit: same.xml}
        """)
    )
    assert (
        "conformance.expected_failures[0].reason: expected a non-empty string, got a string ('  ')"
        in (message)
    )
    assert "report.junit: the JSON and JUnit reports need different paths" in message


def test_plugin_names_are_checked(write):
    message = problems(write("plugins:\n  enable: [biultin]\n  disable: [opgraph]\n"))
    assert "3:13: plugins.disable[0]: 'opgraph' provides the essential ops" in message
    assert "(1 problem)" in message  # installed names are checked once the file itself is valid
    message = problems(write("plugins:\n  enable: [biultin]\n  disable: [no-such-ops]\n"))
    assert "2:12: plugins.enable[0]: unknown plugin 'biultin'; did you mean builtin" in message
    assert "3:13: plugins.disable[0]: unknown plugin 'no-such-ops'" in message


@pytest.mark.parametrize(
    ("require", "expected"),
    [
        ("opgraph-not-installed >=1", "opgraph-not-installed is not installed; install it with: "
         "pip install 'opgraph-not-installed>=1'"),
        ("opgraph >=99", "opgraph>=99 is required but opgraph 0.1.0 is installed; install it"),
    ],
)  # fmt: skip
def test_a_required_plugin_that_is_missing_names_what_to_install(write, require, expected):
    path = write(f"plugins:\n  require:\n    - {require}\n")
    with pytest.raises(PluginError) as info:
        opgraph.load_opset(path)
    assert str(info.value).startswith(f"{path}:3:7: plugins.require: ")
    assert expected in str(info.value)


def test_a_malformed_requirement_is_a_config_error(write):
    message = problems(write("plugins:\n  require: ['opgraph ≥ 1']\n"))
    assert ":2:13: plugins.require[0]: 'opgraph ≥ 1' is not a requirement like " in message
    assert len(message.splitlines()) == 3  # one line per problem, whatever packaging says


def test_a_satisfied_requirement_passes(write):
    ops = opgraph.load_opset(write(f"plugins:\n  require: ['opgraph ~={opgraph.__version__}']\n"))
    assert "sin" in ops


def test_selected_ops_are_closed_under_backward(write):
    ops = opgraph.load_opset(write("plugins: {enable: []}\nops: {include: [sin]}\n"))
    assert dir(ops) == ["sin"]
    x = Variable(np.array([0.5, 1.0]))
    y = ops.sin(x)
    y.backward(create_graph=True)  # sin's backward uses cos, a hidden dependency
    gx = x.grad
    x.cleargrad()
    gx.backward()
    np.testing.assert_allclose(x.grad.data, -np.sin([0.5, 1.0]))
    with pytest.raises(AttributeError, match="does not select it"):
        ops.cos  # noqa: B018


def test_include_exclude_globs_and_aliases(write):
    ops = opgraph.load_opset(
        write("""\
            ops:
              include: ["s*", tanh]
              exclude: ["sum*"]
              aliases: {hyperbolic_tangent: tanh}
        """)
    )
    names = set(dir(ops))
    assert {"sin", "sub", "tanh", "hyperbolic_tangent"} <= names
    assert not names & {"sum", "sum_to", "cos", "add"}
    assert all(n.startswith("s") for n in names - {"tanh", "hyperbolic_tangent"})
    assert ops.hyperbolic_tangent is ops.tanh
    assert sum(op.name == "tanh" for op in ops) == 1  # an alias is a name, not a second op


def test_an_alias_may_not_shadow_an_op(write):
    assert "ops.aliases.cos: 'cos' is already an op's name" in problems(
        write("ops:\n  aliases: {cos: sin}\n")
    )


def test_a_provider_that_does_not_provide_the_op_is_an_error(write):
    message = problems(write("providers:\n  sin: someone-else\n"))
    assert "2:3: providers.sin: 'someone-else' does not provide 'sin'; its providers: builtin" in (
        message
    )


def test_load_opset_has_the_interface_of_opgraph_ops(write):
    ops = opgraph.load_opset(write("ops: {include: [sin, add]}\n"))
    assert isinstance(ops, registry.OpSet)
    assert ("sin" in ops, "cos" in ops, len(ops), [op.name for op in ops]) == (
        True, False, 2, ["add", "sin"],
    )  # fmt: skip
    assert ops["sin"] is ops.sin
    assert ops.add(np.array(1.0), np.array(2.0)).data == 3.0


def test_opgraph_config_names_the_default_op_set(fake_site, write, monkeypatch):
    monkeypatch.setenv("OPGRAPH_CONFIG", str(write("ops: {include: [sin, cos]}\n")))
    assert dir(opgraph.ops) == ["cos", "sin"]
    assert (Variable(np.array([1.0, 2.0])) * 2.0).data.tolist() == [2.0, 4.0]


def test_a_broken_opgraph_config_says_the_variable_named_it(fake_site, tmp_path, monkeypatch):
    monkeypatch.setenv("OPGRAPH_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match=r"nope\.yaml.*\n\(named by OPGRAPH_CONFIG"):
        opgraph.ops  # noqa: B018


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read op-set config .*nope\.yaml"):
        config.load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_the_repository_configs_are_valid(path):
    cfg = config.load_config(path)
    assert len(opsets.build(cfg)) > 0
    assert isinstance(settings_of(cfg), ConformanceSettings)


def test_the_repository_configs_say_what_they_promise():
    core = config.load_config(ROOT / "configs" / "core.yaml")
    assert set(dir(opsets.build(core))) == SEED_OPS
    ci = config.load_config(ROOT / "configs" / "ci.yaml")
    assert opsets.selection(ci).strict and ci.junit is not None
    assert set(settings_of(ci).checks) == set(CHECKS)
    override = (ROOT / "configs" / "conflict-override.yaml").read_text()
    assert re.search(r"^providers:\n  \w+: ", override, re.MULTILINE)


def test_the_packaged_default_config_is_the_repository_default():
    packaged = ROOT / "opgraph" / "configs" / "default.yaml"
    assert (ROOT / "configs" / "default.yaml").read_text() == packaged.read_text()
    default = config.packaged_config()
    assert settings_of(default) == ConformanceSettings()
    assert not opsets.selection(default).strict
    assert set(dir(opsets.build(default))) == set(dir(opgraph.ops))


REGENERATE = (
    'python -c "from opgraph import config; '
    "config.PRECOMPILED.write_bytes(config.precompile(config.PACKAGED.read_text(encoding='utf-8')))\""
)


def test_the_precompiled_packaged_config_matches_default_yaml():
    shipped = marshal.loads(config.PRECOMPILED.read_bytes())
    wanted = marshal.loads(config.precompile(config.PACKAGED.read_text(encoding="utf-8")))
    assert shipped == wanted, f"{config.PRECOMPILED} is stale; regenerate it: {REGENERATE}"


def test_a_stale_or_unreadable_precompiled_config_is_ignored(monkeypatch, tmp_path):
    fresh = config.packaged_config()
    monkeypatch.setattr(config, "PRECOMPILED", tmp_path / "default.marshal")
    config.PRECOMPILED.write_bytes(config.precompile("plugins:\n  strict: true\n"))
    parsed = config.packaged_config()  # not made from this default.yaml: parsed instead
    assert not parsed.strict and vars(parsed) == vars(fresh)
    for garbage in (b"{not marshal", b"", marshal.dumps(["a list"])):
        config.PRECOMPILED.write_bytes(garbage)
        assert vars(config.packaged_config()) == vars(fresh)
    config.PRECOMPILED.unlink()
    assert vars(config.packaged_config()) == vars(fresh)


def test_every_config_key_is_documented():
    docs = (ROOT / "docs" / "config.md").read_text()
    missing = [key for key in config.documented_keys() if f"`{key}`" not in docs]
    assert not missing, f"docs/config.md does not document {missing}"
    assert len(list(config.documented_keys())) > 20


def test_every_hookspec_is_documented():
    docs = (ROOT / "docs" / "plugins.md").read_text()
    assert hookspecs.HOOK_NAMES
    for name in hookspecs.HOOK_NAMES:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert len(doc.split()) > 30, f"hookspec {name} needs a docstring"
        assert f"`{name}" in docs, f"docs/plugins.md does not describe the hook {name}"


def test_every_plugin_environment_variable_is_documented():
    docs = (ROOT / "docs" / "plugins.md").read_text()
    source = (ROOT / "opgraph" / "plugins.py").read_text()
    for variable in set(re.findall(r"OPGRAPH_[A-Z_]+", source)):
        assert f"`{variable}" in docs, variable


def test_the_documented_example_is_a_valid_config(tmp_path):
    docs = (ROOT / "docs" / "config.md").read_text()
    (example,) = re.findall(r"```yaml\n(.*?)```", docs, re.DOTALL)
    path = tmp_path / "example.yaml"
    path.write_text(example)
    cfg = config.load_config(path)  # the schema; what it names depends on what is installed
    assert cfg.exclude == ["im2col", "col2im"]


def test_config_errors_exit_with_the_usage_code(write, capsys):
    from opgraph import cli

    assert cli.main(["list", "--config", str(write("ops: {incude: [sin]}\n"))]) == cli.EXIT_USAGE
    assert "did you mean 'include'?" in capsys.readouterr().err
    assert cli.main(["list", "--config", str(write("ops: {include: [sin]}\n"))]) == cli.EXIT_OK
    assert capsys.readouterr().out.startswith("sin(x)")


def test_list_of_an_op_set_that_shows_nothing(write, capsys):
    from opgraph import cli

    assert cli.main(["list", "--config", str(write('ops: {exclude: ["*"]}\n'))]) == cli.EXIT_OK
    out, err = capsys.readouterr()
    assert out == ""
    assert "0 ops" in err.splitlines()


def test_the_first_operator_works_when_the_default_config_hides_essential_ops(
    fake_site, write, monkeypatch
):
    monkeypatch.setenv("OPGRAPH_CONFIG", str(write("ops: {include: [sin]}\n")))
    assert (Variable(np.array([1.0])) * 2.0).data.tolist() == [2.0]


def test_every_command_without_config_uses_the_op_set_opgraph_config_names(tmp_path):
    import json
    import os
    import subprocess
    import sys

    core = Path(__file__).resolve().parent.parent / "configs" / "core.yaml"
    env = {**os.environ, "OPGRAPH_CONFIG": str(core)}
    report = tmp_path / "report.json"
    subprocess.run(
        [sys.executable, "-m", "opgraph.cli", "check", "--check", "shape_rule", "--json", report],
        env=env,
        check=True,
        capture_output=True,
    )
    listed = subprocess.run(
        [sys.executable, "-m", "opgraph.cli", "list", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    checked = {r["op"] for r in json.loads(report.read_text())["results"]}
    assert checked == {row["name"] for row in json.loads(listed.stdout)["ops"]}
    assert len(checked) == 18


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"ops:\n  include: [\xff]\n", ":2: not UTF-8 (byte 17"),
        (b"ops:\n  include: [a\x00]\n", ":2:14: not valid YAML: a NUL character"),
        (b"ops: \x07\n", "not valid YAML"),
    ],
)
def test_a_config_that_is_not_text_is_a_config_error_with_its_position(tmp_path, data, expected):
    path = tmp_path / "bad.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=re.escape(expected)):
        config.load_config(path)
    assert cli.main(["list", "--config", str(path)]) == EXIT_USAGE
