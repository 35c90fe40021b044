"""The plugin path: built-in ops arrive through the entry point, lazily, like any third party's."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest

import opgraph
from opgraph import Variable

CORE = [
    "sin",
    "cos",
    "tanh",
    "exp",
    "log",
    "add",
    "sub",
    "mul",
    "div",
    "neg",
    "pow",
    "reshape",
    "transpose",
    "sum",
    "broadcast_to",
    "sum_to",
    "matmul",
]


def test_builtin_ops_are_declared_as_an_ordinary_entry_point():
    (ep,) = [ep for ep in entry_points(group="opgraph") if ep.name == "builtin"]
    assert ep.value == "opgraph_ops"
    assert ep.dist.name == "opgraph"


@pytest.mark.parametrize("name", CORE)
def test_core_ops_carry_the_provenance_of_the_builtin_plugin(name):
    op = getattr(opgraph.ops, name)
    assert op.provenance.plugin == "builtin"
    assert op.provenance.distribution == "opgraph"
    assert op.provenance.version == opgraph.__version__


def test_import_opgraph_imports_no_plugin_until_ops_are_needed():
    code = (
        "import sys, opgraph\n"
        "assert 'opgraph_ops' not in sys.modules and 'pluggy' not in sys.modules\n"
        "assert 'yaml' not in sys.modules\n"
        "opgraph.ops.sin\n"
        "assert 'opgraph_ops' in sys.modules\n"
        "assert 'yaml' not in sys.modules and 'packaging' not in sys.modules, 'slow start-up'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_opgraph_ops_becomes_a_plain_attribute_and_reset_forgets_it():
    """``opgraph.ops.sin(x)`` in a loop must not call the package's ``__getattr__`` (1 us)
    each time: once built, the default op set is in the package's namespace."""
    from opgraph import opsets

    opsets.reset()
    assert "ops" not in vars(opgraph)
    first = opgraph.ops
    assert vars(opgraph)["ops"] is first is opgraph.ops is opsets.default_opset()
    opsets.reset()
    assert "ops" not in vars(opgraph)
    again = opgraph.ops
    assert again is not first and vars(opgraph)["ops"] is again


def test_variable_operators_load_the_registry_on_first_use():
    code = "import numpy as np, opgraph\nprint((opgraph.Variable(np.array(2.0)) * 3.0).data)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "6.0"


def test_unknown_op_suggests_close_names():
    with pytest.raises(AttributeError, match=r"no op 'sine'.*did you mean sin"):
        opgraph.ops.sine  # noqa: B018


def test_third_party_plugin_is_discovered_with_its_provenance(fake_site):
    fake_site.add_plugin(
        "opgraph-cube",
        """
        import numpy as np
        from opgraph import OpSpec, hookimpl

        @hookimpl
        def opgraph_ops():
            return [OpSpec("cube", lambda x: x ** 3, lambda x: x,
                           lambda ctx, gy: gy * 3 * ctx.inputs[0] ** 2)]
        """,
        version="2.5",
    )
    ops = opgraph.ops
    x = Variable(np.array(2.0))
    ops.cube(x).backward()
    assert x.grad.data == 12.0
    prov = ops.cube.provenance
    assert (prov.plugin, prov.distribution, prov.version) == ("opgraph_cube", "opgraph-cube", "2.5")
    assert ops.sin.provenance.plugin == "builtin"  # the built-in plugin still loads beside it


def test_opgraph_list_json_names_provider_and_signature():
    out = subprocess.run(
        [sys.executable, "-m", "opgraph.cli", "list", "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    rows = {row["name"]: row for row in json.loads(out.stdout)["ops"]}
    assert set(CORE) <= set(rows)
    assert rows["sum"]["attrs"] == {"axis": None, "keepdims": False}  # JSON values
    assert rows["sum"]["required_attrs"] == [] and rows["reshape"]["required_attrs"] == ["shape"]
    assert rows["astype"]["attrs"] == {"dtype": None}
    assert rows["sum"]["plugin"] == "builtin"
    assert rows["matmul"]["inputs"] == ["a", "b"]


def test_opgraph_list_table():
    out = subprocess.run(
        [sys.executable, "-m", "opgraph.cli", "list"], check=True, capture_output=True, text=True
    )
    assert any(
        line.startswith("sum(x, axis=None, keepdims=False)") and "builtin (opgraph" in line
        for line in out.stdout.splitlines()
    )


def test_attribute_defaults_are_stored_in_their_checked_form(fake_site):
    fake_site.add_plugin(
        "opgraph-defaults",
        """
        import numpy as np
        from opgraph import Attr, OpSpec, hookimpl

        def pair(v):
            return (v, v) if isinstance(v, int) else tuple(v)

        def bad(v):
            raise ValueError("never valid")

        @hookimpl
        def opgraph_ops():
            yield OpSpec("shifted", lambda x, step: x + step[0] * 10 + step[1],
                         lambda x, step: x, lambda ctx, gy: gy,
                         attrs=(Attr("step", 1, pair),))
            yield OpSpec("broken_default", lambda x, k: x, lambda x, k: x, lambda ctx, gy: gy,
                         attrs=(Attr("k", 0, bad),))
        """,
    )
    ops = opgraph.ops
    assert ops.shifted(np.array(0.0)).data == 11.0  # the default 1 reached forward as (1, 1)
    assert "broken_default" not in ops  # rejected at load: its default fails its check


def test_conformance_hints_are_validated_at_load(fake_site, recwarn):
    fake_site.add_plugin(
        "opgraph-hints",
        """
        import numpy as np
        from opgraph import Domain, OpSpec, Tolerance, hookimpl

        def spec(name, **kw):
            return OpSpec(name, np.negative, lambda x: x, lambda ctx, gy: -gy, **kw)

        @hookimpl
        def opgraph_ops():
            yield spec("good", tolerances={"float32": Tolerance(1e-2, 1e-4, "float32 sums")})
            yield spec("no_reason", tolerances={"float32": Tolerance(1e-2, 1e-4)})
            yield spec("bad_dtype", dtypes=("float64", "float17"))
            yield spec("two_domains", domain=(Domain(), Domain()))
        """,
    )
    ops = opgraph.ops
    assert "good" in ops
    assert not {"no_reason", "bad_dtype", "two_domains"} & set(dir(ops))
    err = " ".join(str(w.message) for w in recwarn)
    assert "tolerances['float32'] must be a Tolerance with a reason" in err
    assert "'float17', which is not a numpy dtype" in err
    assert "domain gives 2 domains for 1 inputs" in err
