"""The exceptions and warnings opgraph raises, and the CLI's exit codes: one place, so callers
catch by meaning and every layer agrees on what a failure is."""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PLUGIN = 0, 1, 2, 3
EXIT_INTERRUPTED = 130
"""Ctrl-C ended ``opgraph check``: the reports written hold the results so far, marked
incomplete (128 + SIGINT, as shells report it)."""
"""0 ok; 1 a check failed; 2 usage or config error (`ConfigError`); 3 plugin error
(`PluginError`: a broken plugin or a conflict in strict mode, a missing requirement, or a
plugin under test that fails to load)."""


class OpgraphError(Exception):
    """Base class of every error opgraph raises on purpose."""


class ShapeError(OpgraphError, ValueError):
    """Input shapes (or shape-valued attributes) an op cannot accept.

    Raised before anything is recorded in the graph; the message names the op and every
    input shape.
    """


class OpArgumentError(OpgraphError, TypeError, ValueError):
    """An op was called with a wrong number of inputs or an invalid attribute.

    Both a TypeError and a ValueError, whichever the attribute's check raised, so callers (and
    an `ErrorInput`) may expect either.
    """


class OpDeclarationError(OpgraphError, ValueError):
    """A plugin declared an op that breaks the op contract (names the plugin and op)."""


class GradientError(OpgraphError, RuntimeError):
    """A backward returned something other than one gradient per input of the right shape."""


class PluginError(OpgraphError, RuntimeError):
    """A plugin failed to load, or plugins conflict (names every provider involved)."""


class OpConflictError(PluginError, AttributeError):
    """The op is contested: several plugins provide it and no config chose one. Raised when it
    is used (an AttributeError too, so ``hasattr`` and ``getattr(ops, name, None)`` work); the
    message names every provider and the ``providers:`` lines to paste."""


class StrictPluginError(PluginError):
    """Strict plugin loading found a broken plugin, a rejected declaration, a dropped op or a
    conflict (exit code 3)."""


class ConfigError(OpgraphError, ValueError):
    """An op-set config file is invalid (names the file, line and key)."""


class OpgraphWarning(UserWarning):
    """Base class of opgraph's warnings: something was skipped, and the rest went on."""


class PluginWarning(OpgraphWarning):
    """A plugin is broken (failed to import, its hook raised, incompatible) and was skipped,
    or a plugin list names no installed plugin. ``-W error::opgraph.PluginWarning`` turns every
    plugin-layer warning into an error, like strict mode."""


class DeclarationWarning(PluginWarning):
    """An op declaration broke the contract and was rejected; the plugin's other ops loaded."""


class DroppedOpWarning(PluginWarning):
    """An op was left out of an op set: a dependency is missing, or its provider is contested."""
