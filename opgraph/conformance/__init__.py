"""The conformance harness: every registered op checked from its declaration alone."""
