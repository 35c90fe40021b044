"""Requirements (`plugins.require`, a plugin's `Requires-Dist: opgraph`) judged as pip judges
them, through `packaging`: specifiers, pre-releases of installed versions, markers."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement

from opgraph import ConfigError, config
from opgraph.plugins import applies, canonical_name, satisfied


@pytest.mark.parametrize("name", ["opgraph", "My_Ops", "a.b-c__d", "A--B..c", "x_", "Opgraph-Conv"])
def test_canonical_names_are_packagings(name):
    from packaging.utils import canonicalize_name

    assert canonical_name(name) == canonicalize_name(name)


@pytest.mark.parametrize(
    ("requirement", "allowed", "refused"),
    [
        ("x >=0.2, <1", ["0.2", "0.9.9"], ["0.1.9", "1.0"]),
        ("x ==1.4", ["1.4", "1.4.0"], ["1.4.1"]),
        ("x ==1.*", ["1.0", "1.9.3"], ["2.0", "0.9"]),
        ("x !=1.*", ["2.0"], ["1.2"]),
        ("x ~=1.4.2", ["1.4.2", "1.4.9"], ["1.5", "1.4.1"]),
        ("x ~=1.4", ["1.4", "1.9"], ["2.0"]),
        ("x >1.0, !=1.3", ["1.1", "1.3.1"], ["1.0", "1.3"]),
        ("x (<=2.0)", ["2.0", "1.0"], ["2.0.post1"]),
        ("x", ["0.0.1", "99", "1.0rc1"], []),
        # PEP 440 exclusions that a hand-written order comparison gets wrong:
        ("x <1.0", ["0.9"], ["1.0rc1"]),  # <V excludes V's pre-releases
        ("x >1.0", ["1.1"], ["1.0.post1"]),  # >V excludes V's post-releases
        ("x >=0.2", ["0.3rc1", "1.0.dev1"], ["0.2rc1"]),  # installed pre-releases count
        ("x ==1.0+local", ["1.0+local"], ["1.0"]),
    ],
)
def test_specifiers_are_judged_as_pip_judges_installed_versions(requirement, allowed, refused):
    req = Requirement(requirement)
    assert all(satisfied(req, v) for v in allowed)
    assert not any(satisfied(req, v) for v in refused)


def test_markers_are_evaluated_and_extras_do_not_apply_to_a_plain_install():
    assert applies(Requirement("x >=1 ; python_version >= '3.0'"))
    assert not applies(Requirement("x >=1 ; python_version < '3.0'"))
    assert not applies(Requirement('x >=1 ; extra == "gpu"'))
    assert applies(Requirement("x >=1"))


@pytest.mark.parametrize("text", ["x => 1", "x >=one", "x ~=1", "x >=1 ; bogus == 1"])
def test_malformed_requirements_in_a_config_are_config_errors_with_the_line(tmp_path, text):
    path = tmp_path / "req.yaml"
    path.write_text(f"plugins:\n  require: [{text!r}]\n")
    with pytest.raises(ConfigError, match=r"req\.yaml:2:\d+: plugins\.require\[0\]: .*requirement"):
        config.load_config(path)
