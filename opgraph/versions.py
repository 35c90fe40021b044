"""Just enough of PEP 440 to check version requirements without depending on ``packaging``.

Used for the config's ``plugins.require`` lines and for a plugin distribution's own
``Requires-Dist: opgraph ...``. Supported: release numbers of any length, ``aN``/``bN``/``rcN``
pre-releases, ``.postN``, ``.devN`` and ``+local`` labels (ignored when comparing); operators
``==``, ``!=`` (both with a trailing ``.*`` prefix match), ``<``, ``<=``, ``>``, ``>=`` and
``~=``. Environment markers (``; python_version < "3.12"``) are kept as text, not evaluated.
``<`` and ``>`` compare by order only: PEP 440's exclusion of ``1.0rc1`` from ``<1.0`` and of
``1.0.post1`` from ``>1.0`` is not applied (it matters only for pre- and post-releases).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION_RE = re.compile(
    r"""^v?(?P<release>\d+(?:\.\d+)*)
    (?:[-_.]?(?P<pre>a|b|rc|c|alpha|beta)[-_.]?(?P<pre_n>\d*))?
    (?:[-_.]?(?:post|rev|r)[-_.]?(?P<post>\d*))?
    (?:[-_.]?dev[-_.]?(?P<dev>\d*))?
    (?:\+[a-z0-9.]+)?$""",
    re.IGNORECASE | re.VERBOSE,
)
_PRE_RANK = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2}
_REQUIREMENT_RE = re.compile(
    r"""^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*
    (?:\[[^\]]*\])?\s*
    (?P<specs>\(?[^;()]*\)?)\s*
    (?:;\s*(?P<marker>.+))?$""",
    re.VERBOSE,
)
_SPEC_RE = re.compile(r"^\s*(?P<op>~=|==|!=|<=|>=|<|>)\s*(?P<version>[A-Za-z0-9.*+_-]+)\s*$")

VersionKey = tuple[tuple[int, ...], tuple[int, int], int, tuple[int, int]]


def version_key(text: str) -> VersionKey:
    """A sortable key of a version string in PEP 440 order; ValueError if unparseable."""
    m = _VERSION_RE.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a version this checker understands (like 1.2.3rc1)")
    release = _release(m["release"])
    post = -1 if m["post"] is None else int(m["post"] or 0)
    dev = (1, 0) if m["dev"] is None else (0, int(m["dev"] or 0))
    if m["pre"] is not None:
        pre = (_PRE_RANK[m["pre"].lower()], int(m["pre_n"] or 0))
    elif m["dev"] is not None and m["post"] is None:
        pre = (-1, 0)  # 1.0.dev1 sorts before 1.0a1
    else:
        pre = (3, 0)  # a final release sorts after its pre-releases
    return release, pre, post, dev


def _release(text: str) -> tuple[int, ...]:
    parts = [int(p) for p in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()  # 1.0 == 1.0.0
    return tuple(parts)


def _prefix_match(version: str, prefix: str) -> bool:
    wanted = [int(p) for p in prefix.split(".")]
    have = [int(p) for p in _VERSION_RE.match(version)["release"].split(".")]
    have += [0] * (len(wanted) - len(have))
    return have[: len(wanted)] == wanted


def _satisfies(version: str, op: str, target: str) -> bool:
    if target.endswith(".*"):
        match = _prefix_match(version, target[:-2])
        return match if op == "==" else not match
    have, want = version_key(version), version_key(target)
    if op == "~=":
        prefix = ".".join(_VERSION_RE.match(target)["release"].split(".")[:-1])
        return have >= want and _prefix_match(version, prefix)
    return {
        "==": have == want,
        "!=": have != want,
        "<": have < want,
        "<=": have <= want,
        ">": have > want,
        ">=": have >= want,
    }[op]


@dataclass(frozen=True)
class Requirement:
    """``name`` at a version meeting every specifier, e.g. ``opgraph-conv >=0.2, <1``."""

    name: str
    specifiers: tuple[tuple[str, str], ...] = ()
    marker: str | None = None

    @classmethod
    def parse(cls, text: str) -> Requirement:
        """Parse ``name[extras] specs ; marker`` (specs optionally in parentheses)."""
        m = _REQUIREMENT_RE.match(text)
        if m is None:
            raise ValueError(f"{text!r} is not a requirement like 'opgraph-conv >=0.2, <1'")
        specs = m["specs"].strip().removeprefix("(").removesuffix(")")
        parsed = []
        for part in filter(None, (p.strip() for p in specs.split(","))):
            spec = _SPEC_RE.match(part)
            if spec is None:
                raise ValueError(
                    f"{part!r} in {text!r} is not a version specifier "
                    "(use ==, !=, <, <=, >, >= or ~= followed by a version)"
                )
            op, version = spec["op"], spec["version"]
            if version.endswith(".*") and (op not in ("==", "!=") or "+" in version):
                raise ValueError(f"{part!r}: a '.*' suffix is allowed only after == or !=")
            version_key(version.removesuffix(".*"))  # raises for an unparseable version
            if op == "~=" and "." not in _VERSION_RE.match(version)["release"]:
                raise ValueError(f"{part!r}: ~= needs at least two release numbers, like ~=1.2")
            parsed.append((op, version))
        return cls(m["name"], tuple(parsed), m["marker"])

    @property
    def key(self) -> str:
        """The normalized distribution name (PEP 503), for comparing names."""
        return canonical_name(self.name)

    def allows(self, version: str) -> bool:
        """True if ``version`` meets every specifier (an unparseable version meets none)."""
        try:
            version_key(version)
        except ValueError:
            return False
        return all(_satisfies(version, op, target) for op, target in self.specifiers)

    def __str__(self) -> str:
        return self.name + ", ".join(f"{op}{v}" for op, v in self.specifiers)


def canonical_name(name: str) -> str:
    """``Opgraph_Conv`` -> ``opgraph-conv``: distribution names compare this way."""
    return re.sub(r"[-_.]+", "-", name).lower()
