"""Case files: one op call written down exactly, so that a failure found once stays found.

A case file holds everything a check needs to repeat one call bit for bit — input values
(exact: JSON floats round-trip float64, and float32/float16 widen exactly), dtypes, shapes,
layouts, attribute values with their Python types, constants, unused outputs and the random
streams of the checks — and nothing about how the call was found: no Hypothesis, no
generation order, no sample numbering. ``opgraph check --save-cases DIR`` writes one per
finding; ``--cases DIR`` (``conformance.cases`` in a config, ``conformance_suite(cases=DIR)``)
replays a directory's cases as extra samples of their ops in every later run; ``--case
FILE_OR_JSON`` runs one.

Case files are input like configs: every field is validated and each problem names the file
and the field.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from opgraph.conformance.samples import LAYOUTS, Case
from opgraph.errors import ConfigError

FORMAT = "opgraph-case/1"
SUFFIX = ".case.json"
INLINE = "the --case JSON"
_DTYPE_KINDS = "biuf"
"""Input and array-attribute dtypes a case file holds: bool, ints, floats."""


class CaseFileError(ConfigError):
    """A case file that cannot be read: names the file, the field and what is wrong."""


def encode(case: Case, op: str, plugin: str, seed: int, **about: Any) -> dict[str, Any]:
    """``case`` as JSON data; ``about`` (checks, message, ...) is kept for the reader and
    ignored on replay."""
    stream = case.stream or (seed, case.index)
    return {
        "format": FORMAT,
        "op": op,
        "plugin": plugin,
        **about,
        "stream": list(stream),
        "dtype": case.dtype,
        "inputs": [
            {**_encode_array(v), "layout": lay}
            for v, lay in zip(case.values, case.layouts, strict=True)
        ],
        "attrs": {
            name: _encode_value(value, f"attrs.{name}") for name, value in case.attrs.items()
        },
        "constants": list(case.constants),
        "numbers": case.numbers,
        "dropped": list(case.dropped),
    }


def dumps(data: Mapping[str, Any]) -> str:
    """One line per field, each value compact: short to read, one changed field one changed
    line in a diff."""
    fields = (f"  {json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in data.items())
    return "{\n" + ",\n".join(fields) + "\n}\n"


def _encode_array(array: np.ndarray) -> dict[str, Any]:
    if array.dtype.kind not in _DTYPE_KINDS:
        raise ValueError(f"an array of {array.dtype} cannot be saved in a case file")
    return {"dtype": str(array.dtype), "shape": list(array.shape), "values": array.tolist()}


def _encode_value(value: Any, where: str) -> Any:
    """Attribute values keep their Python type: tuples, lists and arrays are tagged."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value} cannot be saved in a case file")
        return value
    if isinstance(value, tuple):
        return {"tuple": [_encode_value(v, where) for v in value]}
    if isinstance(value, list):
        return {"list": [_encode_value(v, where) for v in value]}
    if isinstance(value, np.ndarray):
        return {"array": _encode_array(value)}
    if isinstance(value, np.generic):
        return {"scalar": _encode_array(np.asarray(value))}
    raise ValueError(f"{where}: a {type(value).__name__} cannot be saved in a case file")


def file_name(data: Mapping[str, Any]) -> str:
    """``<op>-<check>-<hash>.case.json``: stable for the same call, distinct for others."""
    call = {k: data[k] for k in ("op", "stream", "dtype", "inputs", "attrs", "constants")}
    digest = hashlib.sha256(json.dumps(call, sort_keys=True).encode()).hexdigest()[:10]
    checks = data.get("checks") or ["case"]
    return f"{data['op']}-{checks[0]}-{digest}{SUFFIX}"


def save(directory: Path, data: Mapping[str, Any]) -> Path:
    """Write one case into ``directory`` (created if needed); the same call twice is one file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name(data)
    path.write_text(dumps(data), encoding="utf-8")
    return path


def read(source: str) -> tuple[str, dict[str, Any]]:
    """(where, data) from a case file's path, or from the JSON text itself (a replay
    command carries it inline when no file was saved)."""
    text, where = source, INLINE
    if not source.lstrip().startswith("{"):
        where = source
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise CaseFileError(f"case file {source}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CaseFileError(f"{where}: not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CaseFileError(f'{where}: not an opgraph case (its "format" must be {FORMAT!r})')
    return where, data


def decode(data: Mapping[str, Any], where: str, index: int) -> tuple[str, Case]:
    """(op name, Case) of a case file's data, as sample ``index`` of its op."""
    reader = _Fields(data, where)
    op = reader.text("op")
    stream = reader.ints("stream")
    if len(stream) != 2 or min(stream) < 0:
        reader.fail("stream", "must be [seed, index], two integers >= 0")
    inputs = reader.items("inputs", list)
    values, layouts = [], []
    for k, entry in enumerate(inputs):
        field = f"inputs[{k}]"
        if not isinstance(entry, dict):
            reader.fail(field, "must be an object with dtype, shape, values and layout")
        values.append(_decode_array(entry, where, field))
        layout = entry.get("layout")
        if layout not in LAYOUTS:
            reader.fail(f"{field}.layout", f"must be one of {', '.join(LAYOUTS)}")
        layouts.append(layout)
    attrs = {
        name: _decode_value(value, where, f"attrs.{name}")
        for name, value in reader.items("attrs", dict).items()
    }
    constants, dropped = reader.ints("constants"), reader.ints("dropped")
    if any(not 0 <= k < len(values) for k in constants):
        reader.fail("constants", f"input positions must be in 0..{len(values) - 1}")
    numbers = reader.flag("numbers")
    if numbers and any(values[k].ndim for k in constants):
        reader.fail("numbers", "constants passed as Python numbers must be 0-d inputs")
    case = Case(
        index,
        reader.text("dtype"),
        tuple(values),
        tuple(layouts),
        attrs,
        note="saved case" if where == INLINE else f"case file {where}",
        constants=tuple(constants),
        numbers=numbers,
        dropped=tuple(dropped),
        stream=(stream[0], stream[1]),
        source=where if where != INLINE else json.dumps(data, separators=(",", ":")),
        thorough=True,
    )
    return op, case


class _Fields:
    """Typed access to a case file's top-level fields, each failure naming file and field."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self.data, self.where = data, where

    def fail(self, field: str, problem: str) -> None:
        raise CaseFileError(f"{self.where}: {field} {problem}")

    def items(self, field: str, kind: type) -> Any:
        value = self.data.get(field, kind())
        if not isinstance(value, kind):
            self.fail(field, f"must be a JSON {'array' if kind is list else 'object'}")
        return value

    def text(self, field: str) -> str:
        value = self.data.get(field)
        if not isinstance(value, str) or not value:
            self.fail(field, "must be a non-empty string")
        return value

    def ints(self, field: str) -> list[int]:
        value = self.items(field, list)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            self.fail(field, "must be a list of integers")
        return value

    def flag(self, field: str) -> bool:
        value = self.data.get(field, False)
        if not isinstance(value, bool):
            self.fail(field, "must be true or false")
        return value


def _decode_array(entry: Mapping[str, Any], where: str, field: str) -> np.ndarray:
    try:
        dtype = np.dtype(entry.get("dtype"))
        shape = tuple(entry.get("shape"))
        if dtype.kind not in _DTYPE_KINDS or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise ValueError
        array = np.array(entry.get("values"), dtype=dtype).reshape(shape)
    except (TypeError, ValueError):
        raise CaseFileError(
            f'{where}: {field} must hold a bool, int or float "dtype", a "shape" of sizes '
            'and "values" nested to that shape'
        ) from None
    return array


def _decode_value(value: Any, where: str, field: str) -> Any:
    if not isinstance(value, dict):
        if isinstance(value, list):
            raise CaseFileError(f'{where}: {field}: a list must be tagged {{"list": [...]}}')
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag in ("tuple", "list") and isinstance(inner, list):
            items = [_decode_value(v, where, field) for v in inner]
            return tuple(items) if tag == "tuple" else items
        if tag in ("array", "scalar") and isinstance(inner, dict):
            array = _decode_array(inner, where, field)
            return array if tag == "array" else array[()]
    raise CaseFileError(
        f"{where}: {field} must be a JSON number, string, bool, null or one of "
        '{"tuple": [...]}, {"list": [...]}, {"array": {...}}, {"scalar": {...}}'
    )


def load_directory(directory: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, data) of every case file in ``directory``, in name order (a stable replay
    order whatever wrote them)."""
    if not directory.is_dir():
        raise CaseFileError(f"cases directory {directory}: not a directory")
    return [read(str(path)) for path in sorted(directory.glob(f"*{SUFFIX}"))]


def cases_by_op(directories: Iterable[Path]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Every case file of ``directories`` grouped by its op name (checked on load)."""
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for directory in directories:
        for where, data in load_directory(directory):
            op, _ = decode(data, where, 0)  # validates the whole file now, not mid-run
            found.setdefault(op, []).append((where, data))
    return found
