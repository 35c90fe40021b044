"""``opgraph new-plugin NAME``: a complete op package to start from, whose own tests pass
right after ``pip install -e``: pyproject with the entry point, two commented example ops,
the one-line conformance suite, a README and a CI workflow.

The files are templates shipped as package data (``opgraph/templates/plugin``); ``$name``
placeholders are filled with `string.Template`.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
from pathlib import Path
from string import Template

from opgraph.errors import ConfigError

TEMPLATES = Path(__file__).parent / "templates" / "plugin"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)*$")
_RESERVED = {"opgraph", "opgraph_ops", "test", "tests"}


def names_for(name: str) -> dict[str, str]:
    """Distribution, package and plugin names for ``name``: ``opgraph-myops`` gives
    distribution ``opgraph-myops``, package ``opgraph_myops`` and plugin ``myops``. A name
    that is not a valid distribution name, or whose package name is taken, is a `ConfigError`."""
    if not _NAME.match(name):
        raise ConfigError(
            f"new-plugin {name!r}: a name is letters, digits and single '-', '_' or '.' between "
            "them, starting with a letter (e.g. opgraph-myops)"
        )
    package = re.sub(r"[-.]", "_", name).lower()
    plugin = package.removeprefix("opgraph_") or package
    if package in _RESERVED or keyword.iskeyword(package) or keyword.iskeyword(plugin):
        raise ConfigError(f"new-plugin {name!r}: {package!r} is reserved; pick another name")
    try:
        taken = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        taken = None
    if taken is not None:
        raise ConfigError(
            f"new-plugin {name!r}: a module named {package!r} is already importable (from "
            f"{taken.origin}); its package would be shadowed, so pick another name"
        )
    return {"dist": name.lower(), "package": package, "plugin": plugin}


def create_plugin(name: str, directory: str | Path | None = None) -> Path:
    """Write the op package ``name`` into ``directory`` (default ``./name``), which must not
    exist or be empty; returns it. Nothing is written when the name or directory is refused."""
    from opgraph import __version__

    values = {**names_for(name), "opgraph_version": __version__}
    root = Path(directory if directory is not None else name)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ConfigError(
            f"new-plugin: {root} already exists and is not an empty directory; "
            "choose another with --dir"
        )
    files = {}
    for template in sorted(TEMPLATES.rglob("*.tmpl")):
        relative = template.relative_to(TEMPLATES).with_suffix("")
        target = str(relative).replace("__package__", values["package"])
        target = ".gitignore" if target == "gitignore" else target
        files[root / target] = Template(template.read_text(encoding="utf-8")).substitute(values)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root
