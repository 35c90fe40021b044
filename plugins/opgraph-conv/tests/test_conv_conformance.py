"""opgraph's conformance harness on every op of this plugin (one pytest test per check)."""

from opgraph.testing import conformance_suite

test_conformance = conformance_suite(plugins=("conv",))
