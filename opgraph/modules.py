"""Plugins that are not installed: a module named by a file path or a dotted name, loaded for
``opgraph check --module`` and ``conformance_suite(module=...)`` so an author can check ops
before (or without) ``pip install -e``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from opgraph.contract import Provenance
from opgraph.errors import ConfigError
from opgraph.plugins import PluginRecord, failure_reason, plugin_from_module


def _importable(target: str) -> tuple[str, Path | None]:
    """The module name to import and the directory to put on ``sys.path`` (None for a dotted
    name, which must already be importable)."""
    path = Path(target)
    if target.endswith(".py") or path.exists():
        if not path.exists():
            raise ConfigError(f"--module {target}: no such file or directory")
        path = path.resolve()
        if path.is_dir():
            if not (path / "__init__.py").is_file():
                raise ConfigError(
                    f"--module {target}: a directory must be a package (have an __init__.py)"
                )
            return path.name, path.parent
        if path.name == "__init__.py":
            return path.parent.name, path.parent.parent
        if path.suffix != ".py":
            raise ConfigError(f"--module {target}: not a Python file (.py) or package directory")
        return path.stem, path.parent
    if not all(part.isidentifier() for part in target.split(".")):
        raise ConfigError(f"--module {target}: neither an existing path nor a dotted module name")
    return target, None


def module_name(target: str) -> str:
    """The module name ``target`` (a path or a dotted name) is imported under."""
    return _importable(target)[0]


def _same_file(module: object, root: Path) -> bool:
    origin = getattr(module, "__file__", None)
    return origin is not None and root in Path(origin).resolve().parents


def load_module(target: str) -> PluginRecord:
    """The plugin record of the module ``target`` (a ``.py`` file, a package directory or a
    dotted name), its declarations validated. Its provenance says it is not installed; an
    import that raises gives a failed record whose reason names file:line. A target that names
    nothing is a `ConfigError`."""
    from opgraph.registry import validated

    name, directory = _importable(target)
    if directory is None and importlib.util.find_spec(name.split(".")[0]) is None:
        raise ConfigError(f"--module {target}: no module named {name.split('.')[0]!r}")
    prov = Provenance(plugin=name, entry_point=target)
    if directory is not None:
        loaded = sys.modules.get(name)
        if loaded is not None and not _same_file(loaded, directory):
            raise ConfigError(
                f"--module {target}: a different module named {name!r} is already imported "
                f"(from {getattr(loaded, '__file__', '?')}); rename the file or uninstall the other"
            )
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))  # as `python file.py` does: its imports work
    try:
        module = importlib.import_module(name)
    except BaseException as exc:  # a plugin never ends the process, whatever it raises
        if isinstance(exc, KeyboardInterrupt):
            raise
        record = PluginRecord(prov, "failed", reason=f"import failed: {failure_reason(exc, prov)}")
    else:
        record = plugin_from_module(module, prov)
    return validated(record)
