"""The small PEP 440 subset behind `plugins.require` and a plugin's `Requires-Dist: opgraph`."""

from __future__ import annotations

import pytest

from opgraph.versions import Requirement, canonical_name, version_key


def test_versions_sort_in_pep440_order():
    ordered = ["0.9", "1.0.dev1", "1.0a1", "1.0a2", "1.0b1", "1.0rc1", "1.0", "1.0.post1", "1.1"]
    assert sorted(reversed(ordered), key=version_key) == ordered
    assert version_key("1.0") == version_key("1.0.0") == version_key("v1.0+local.7")


@pytest.mark.parametrize(
    ("requirement", "allowed", "refused"),
    [
        ("x >=0.2, <1", ["0.2", "0.9.9"], ["0.1.9", "1.0", "0.2rc1"]),
        ("x ==1.4", ["1.4", "1.4.0"], ["1.4.1"]),
        ("x ==1.*", ["1.0", "1.9.3"], ["2.0", "0.9"]),
        ("x !=1.*", ["2.0"], ["1.2"]),
        ("x ~=1.4.2", ["1.4.2", "1.4.9"], ["1.5", "1.4.1"]),
        ("x ~=1.4", ["1.4", "1.9"], ["2.0"]),
        ("x >1.0, !=1.3", ["1.1", "1.3.1"], ["1.0", "1.3"]),
        ("x (<=2.0)", ["2.0", "1.0"], ["2.0.post1"]),
        ("x", ["0.0.1", "99"], ["not a version"]),
        ("x <1.0, >0.9", ["1.0rc1", "0.9.post1"], ["1.0", "0.9"]),  # by order only, as documented
    ],
)
def test_specifiers(requirement, allowed, refused):
    req = Requirement.parse(requirement)
    assert all(req.allows(v) for v in allowed)
    assert not any(req.allows(v) for v in refused)


def test_a_requirement_keeps_name_marker_and_prints_back():
    req = Requirement.parse("Opgraph_Conv[extra] >= 0.2 ; python_version >= '3.10'")
    assert (req.name, req.key, req.marker) == (
        "Opgraph_Conv",
        "opgraph-conv",
        "python_version >= '3.10'",
    )
    assert str(req) == "Opgraph_Conv>=0.2"
    assert canonical_name("My.Ops__x") == "my-ops-x"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x => 1", "is not a version specifier"),
        ("x >=one", "is not a version this checker understands"),
        ("x >=1.*", "a '.*' suffix is allowed only after == or !="),
        ("x ~=1", "~= needs at least two release numbers"),
        ("", "is not a requirement"),
    ],
)
def test_malformed_requirements_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        Requirement.parse(text)
