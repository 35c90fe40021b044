"""`opgraph.records.datarecord` behaves as the dataclass it replaces, compared side by side."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from dataclasses import dataclass, field

import pytest

from opgraph.records import datarecord


def point_class(decorator):
    @decorator
    class Point:
        x: int
        y: int = 0
        tags: tuple = field(default_factory=tuple)
        note: str = field(default="", compare=False, repr=False)

    return Point


LEAN = point_class(datarecord)
REAL = point_class(dataclass(frozen=True))


@datarecord
class Pickled:  # at module level: pickle finds classes by name
    x: int


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, 2), {}), ((), {"x": 1}), ((1,), {"tags": ("a",), "note": "n"})],
)
def test_construction_repr_equality_and_hash_match_a_frozen_dataclass(args, kwargs):
    lean, real = LEAN(*args, **kwargs), REAL(*args, **kwargs)
    assert repr(lean) == repr(real)
    assert dataclasses.asdict(lean) == dataclasses.asdict(real)
    assert lean == LEAN(*args, **kwargs)
    assert lean != LEAN(5) and lean != real  # another class is never equal, as for dataclasses
    assert LEAN(1, note="a") == LEAN(1, note="b")  # compare=False fields are left out
    assert hash(lean) == hash(real) == hash(LEAN(*args, **kwargs))


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, 2, (), "", 5), {}), ((1,), {"x": 2}), ((1,), {"z": 3}), ((), {"y": 1})],
)
def test_bad_arguments_raise_the_type_error_of_a_dataclass(args, kwargs):
    with pytest.raises(TypeError) as real:
        REAL(*args, **kwargs)
    with pytest.raises(TypeError) as lean:
        LEAN(*args, **kwargs)
    assert str(lean.value) == str(real.value)


def test_missing_arguments_are_listed_as_python_lists_them():
    three = dataclass(frozen=True)(type("Three", (), {"__annotations__": dict.fromkeys("abc")}))
    lean = datarecord(type("Three", (), {"__annotations__": dict.fromkeys("abc")}))
    for args in [(), (1,)]:
        with pytest.raises(TypeError) as real:
            three(*args)
        with pytest.raises(TypeError, match="missing") as ours:
            lean(*args)
        assert str(ours.value) == str(real.value)


def test_fields_replace_signature_and_pickling_work_as_on_a_dataclass():
    lean = LEAN(1, tags=("a",))
    assert [f.name for f in dataclasses.fields(lean)] == ["x", "y", "tags", "note"]
    assert dataclasses.replace(lean, y=3) == LEAN(1, 3, ("a",))
    assert str(inspect.signature(LEAN)) == str(inspect.signature(REAL))
    assert LEAN.__match_args__ == REAL.__match_args__
    assert pickle.loads(pickle.dumps(Pickled(4))) == Pickled(4)


def test_fields_cannot_be_assigned_or_deleted():
    lean = LEAN(1)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'x'"):
        lean.x = 2
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field 'y'"):
        del lean.y
    with pytest.raises(dataclasses.FrozenInstanceError):
        lean.other = 1
    assert lean == LEAN(1)


def test_it_subclasses_as_a_frozen_dataclass_does():
    @dataclass(frozen=True)
    class Labelled(LEAN):
        label: str = ""

    @datarecord
    class Spaced(LEAN):
        z: int = 0

    class Plain(LEAN):
        pass

    assert repr(Labelled(1, label="p")).endswith("Labelled(x=1, y=0, tags=(), label='p')")
    assert Spaced(1, 2, z=3) == Spaced(1, 2, z=3) != Spaced(1, 2)
    plain = Plain(1)
    plain.extra = "ok"  # a plain subclass may add attributes; its fields stay frozen
    with pytest.raises(dataclasses.FrozenInstanceError):
        plain.x = 2
    for mutable in (dataclass, datarecord(frozen=False)):
        with pytest.raises(TypeError, match="cannot inherit non-frozen dataclass from a frozen"):
            mutable(type("Mutable", (LEAN,), {}))


def test_a_mutable_record_is_assignable_and_unhashable_like_a_dataclass():
    lean, real = point_class(datarecord(frozen=False)), point_class(dataclass)
    point = lean(1)
    point.y = 5
    assert repr(point) == repr(real(1, 5))
    with pytest.raises(TypeError, match="unhashable"):
        hash(point)
    assert [f.name for f in dataclasses.fields(lean)] == [f.name for f in dataclasses.fields(real)]


def test_features_it_does_not_implement_are_refused_at_definition():
    with pytest.raises(TypeError, match="make it a @dataclass"):

        @datarecord
        class Checked:
            x: int

            def __post_init__(self) -> None:
                pass

    with pytest.raises(TypeError, match="make it a @dataclass"):

        @datarecord
        class Hidden:
            x: int = field(default=0, init=False)
