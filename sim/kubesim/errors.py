"""The simulator's exception hierarchy.

Everything the simulator raises on purpose derives from `SimError`, so a caller can tell a
simulator mistake (bad option, unknown object) from a bug. A selector the apiserver refuses is
the client's `k8s_metrics.selectors.SelectorError` (its parsers are the one place of the grammar).
"""

from __future__ import annotations


class SimError(Exception):
    """Base class of every error the simulator raises on purpose."""


class ConfigError(SimError):
    """An option, policy file or profile specification is invalid; the message names it."""


class NotFoundError(SimError, KeyError):
    """A node, pod or container named in a control call does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
