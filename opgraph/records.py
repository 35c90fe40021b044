"""`datarecord`: ``@dataclass(frozen=True)`` without compiling code at import.

The dataclass decorator writes out and compiles up to six methods for every class (about 1 ms a
class on a slow machine: 20 ms over the classes the first ``opgraph.ops`` needs). A record is
a dataclass that generates nothing (``init=False, repr=False, eq=False``) and gets the same
behaviour from functions compiled once, here: construction by position or keyword with
defaults and default factories (the same `TypeError` for a missing or unknown argument), the
field-by-field repr, equality and hash, `dataclasses.FrozenInstanceError` on assignment
(``@datarecord(frozen=False)``: assignable and unhashable, as a plain ``@dataclass``).
``dataclasses.fields``, ``replace`` and ``asdict`` work on it, and it may be subclassed by
another record or a ``@dataclass(frozen=True)``.
"""

from __future__ import annotations

import dataclasses
import inspect
import operator
import sys
from collections.abc import Callable
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover - Python 3.10: type checkers are told by the version check above

    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda decorator: decorator


T = TypeVar("T", bound=type)


class _Factory:
    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()
"""The default shown in signatures for a field with a default factory, as dataclasses show it."""


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def datarecord(cls: T | None = None, /, *, frozen: bool = True) -> Any:
    """Make ``cls`` a dataclass, frozen unless ``frozen=False``, whose methods are shared code
    (see the module); ``@datarecord`` and ``@datarecord(frozen=False)`` both work."""
    if cls is None:
        return lambda cls: datarecord(cls, frozen=frozen)
    inherits = any(dataclasses.is_dataclass(base) for base in cls.__mro__[1:])
    # frozen=True only under dataclass bases, for dataclasses to check that they are frozen
    # too (it then compiles two methods, replaced below); otherwise nothing is compiled
    make = dataclasses.dataclass(init=False, repr=False, eq=False, frozen=frozen and inherits)
    cls = make(cls)
    fields = dataclasses.fields(cls)
    if hasattr(cls, "__post_init__") or any(not f.init or f.kw_only for f in fields):
        raise TypeError(
            f"{cls.__qualname__}: a record has no __post_init__, init=False or kw_only "
            "fields; make it a @dataclass"
        )
    params = cls.__dataclass_params__  # what a @dataclass subclass checks (frozen, eq)
    params.init = params.repr = params.eq = True
    params.frozen = frozen
    cls.__init__ = _initialiser(cls, fields)
    cls.__repr__ = _repr
    cls.__eq__ = _eq
    cls._record_fields = frozenset(f.name for f in fields)
    cls._record_compared = _getter(tuple(f.name for f in fields if f.compare))
    cls._record_shown = tuple(f.name for f in fields if f.repr)
    if frozen:
        cls.__hash__ = _hash
        cls.__setattr__ = _refuse_assignment
        cls.__delattr__ = _refuse_deletion
        cls._record_hashed = _getter(
            tuple(f.name for f in fields if f.hash or (f.hash is None and f.compare))
        )
    else:
        cls.__hash__ = None  # mutable and compared by value: unhashable, as a dataclass is
    return cls


def _initialiser(cls: type, fields: tuple[dataclasses.Field, ...]) -> Callable[..., None]:
    """An ``__init__`` taking ``fields`` by position or keyword, as the generated one does."""
    names = tuple(f.name for f in fields)
    known = frozenset(names)
    optional = [
        (f.name, f.default, f.default_factory)
        for f in fields
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    ]
    where = f"{cls.__qualname__}.__init__()"
    most = len(names) + 1  # counting self, as Python's own messages do
    least = most - len(optional)
    takes = f"{least}" if least == most else f"from {least} to {most}"

    def refuse(values: dict[str, Any], kwargs: dict[str, Any]) -> None:
        """Raise the `TypeError` Python raises for a keyword it cannot bind."""
        for key in kwargs:
            if key not in known:
                raise TypeError(f"{where} got an unexpected keyword argument {key!r}")
            if key in values:
                raise TypeError(f"{where} got multiple values for argument {key!r}")

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) >= most:
            raise TypeError(
                f"{where} takes {takes} positional arguments but {len(args) + 1} were given"
            )
        values = dict(zip(names, args, strict=False))  # fewer args than names: the rest by name
        if kwargs:
            if not known.issuperset(kwargs) or not values.keys().isdisjoint(kwargs):
                refuse(values, kwargs)
            values.update(kwargs)
        if len(values) < len(names):
            for name, default, factory in optional:
                if name not in values:
                    values[name] = default if factory is dataclasses.MISSING else factory()
            if missing := [repr(n) for n in names if n not in values]:
                listed = " and ".join(missing) if len(missing) < 3 else ", ".join(missing[:-1])
                listed += f", and {missing[-1]}" if len(missing) > 2 else ""
                raise TypeError(
                    f"{where} missing {len(missing)} required positional argument"
                    f"{'s' if len(missing) > 1 else ''}: {listed}"
                )
        self.__dict__.update(values)

    init.__name__, init.__qualname__ = "__init__", f"{cls.__qualname__}.__init__"
    init.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [
            inspect.Parameter(
                f.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=_FACTORY
                if f.default_factory is not dataclasses.MISSING
                else inspect.Parameter.empty
                if f.default is dataclasses.MISSING
                else f.default,
                annotation=f.type,
            )
            for f in fields
        ],
        return_annotation=None,
    )
    return init


def _getter(names: tuple[str, ...]) -> staticmethod:
    """The tuple of the ``names`` attributes of an object (what dataclasses compare and hash)."""
    if len(names) > 1:
        return staticmethod(operator.attrgetter(*names))  # a class attribute, never bound
    one = operator.attrgetter(*names) if names else None
    return staticmethod(lambda obj: (one(obj),) if one else ())


def _repr(self: Any) -> str:
    shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._record_shown)
    return f"{type(self).__qualname__}({shown})"


def _eq(self: Any, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return self._record_compared(self) == self._record_compared(other)


def _hash(self: Any) -> int:
    return hash(self._record_hashed(self))


def _frozen(self: Any, name: str) -> bool:
    """A frozen dataclass refuses every assignment to its own instances, and to a field of a
    subclass's instances (a plain subclass may add attributes)."""
    return name in self._record_fields or "_record_fields" in type(self).__dict__


def _refuse_assignment(self: Any, name: str, value: Any) -> None:
    if _frozen(self, name):
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)


def _refuse_deletion(self: Any, name: str) -> None:
    if _frozen(self, name):
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
    object.__delattr__(self, name)
