"""Where in a plugin's own code an exception arose: the frame an author has to open.

A crash inside a forward, a backward, a shape rule or an import passes through numpy, opgraph's
engine and the harness; the frame that matters is the innermost one in the plugin's own files.
"""

from __future__ import annotations

import importlib.util
import sys
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path

_OPGRAPH_DIR = Path(__file__).resolve().parent
_LIBRARY_DIRS = tuple(
    Path(p).resolve()
    for key in ("stdlib", "platstdlib", "purelib", "platlib")
    if (p := sysconfig.get_paths().get(key))
)


@dataclass(frozen=True)
class Location:
    """One frame: file, line number and the source line (empty when the file is unreadable)."""

    file: str
    line: int
    source: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" + (f": {self.source}" if self.source else "")

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "source": self.source}


def _shown_path(filename: str) -> str:
    """Relative to the working directory when below it (clickable, short), else absolute."""
    path = Path(filename)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return filename


def plugin_roots(entry_point: str | None) -> tuple[Path, ...]:
    """The files of a plugin: the directory of the package an entry point (``pkg.mod:attr``)
    or a module path (``path/to/ops.py``, ``path/to/pkg``) names, or the one module file."""
    if not entry_point:
        return ()
    as_path = Path(entry_point)
    if entry_point.endswith(".py") or as_path.exists():
        path = as_path.resolve()
        return (path.parent if path.name == "__init__.py" else path,)
    top = entry_point.split(":", 1)[0].split(".", 1)[0]
    module = sys.modules.get(top)
    origin = getattr(module, "__file__", None)
    if origin is None:
        try:
            found = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            return ()
        origin = found.origin if found is not None else None
    if not origin or not Path(origin).is_file():
        return ()
    path = Path(origin).resolve()
    return (path.parent if path.name == "__init__.py" else path,)


def _is_under(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _is_library(path: Path) -> bool:
    """opgraph itself, the standard library and installed libraries such as numpy."""
    return _is_under(path, (_OPGRAPH_DIR, *_LIBRARY_DIRS))


def _frames(exc: BaseException) -> list[traceback.FrameSummary]:
    frames = list(traceback.extract_tb(exc.__traceback__))
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:  # the file never ran
        text = (exc.text or "").strip()
        frames.append(traceback.FrameSummary(exc.filename, exc.lineno, "<module>", line=text))
    return frames


def plugin_location(exc: BaseException, roots: tuple[Path, ...] = ()) -> Location | None:
    """The innermost frame of ``exc`` in the plugin's files (``roots``); without roots, or
    when no frame is in them, the innermost frame outside opgraph and the installed libraries."""
    frames = [f for f in _frames(exc) if not f.filename.startswith("<")]
    paths = [Path(f.filename).resolve() for f in frames]
    chosen = [f for f, p in zip(frames, paths, strict=True) if roots and _is_under(p, roots)]
    if not chosen:
        chosen = [f for f, p in zip(frames, paths, strict=True) if not _is_library(p)]
    if not chosen:
        return None
    frame = chosen[-1]
    return Location(_shown_path(frame.filename), frame.lineno or 0, (frame.line or "").strip())


def format_traceback(exc: BaseException) -> str:
    """The full traceback of ``exc``, as Python prints it (for ``opgraph check --tb``)."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
