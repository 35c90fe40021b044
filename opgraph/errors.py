"""The exceptions opgraph raises: one place, so callers can catch by meaning."""

from __future__ import annotations


class OpgraphError(Exception):
    """Base class of every error opgraph raises on purpose."""


class ShapeError(OpgraphError, ValueError):
    """Input shapes (or shape-valued attributes) an op cannot accept.

    Raised before anything is recorded in the graph; the message names the op and every
    input shape.
    """


class OpArgumentError(OpgraphError, TypeError):
    """An op was called with a wrong number of inputs or an invalid attribute."""


class OpDeclarationError(OpgraphError, ValueError):
    """A plugin declared an op that breaks the op contract (names the plugin and op)."""


class GradientError(OpgraphError, RuntimeError):
    """A backward returned something other than one gradient per input of the right shape."""


class PluginError(OpgraphError, RuntimeError):
    """A plugin failed to load, or plugins conflict (names every provider involved)."""


class ConfigError(OpgraphError, ValueError):
    """An op-set config file is invalid (names the file, line and key)."""
