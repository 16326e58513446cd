"""The edge agent's exception tree."""


class EdgeError(Exception):
    """Base of every error the edge agent raises on purpose."""


class ConfigError(EdgeError):
    """The agent's configuration is invalid (bad device id, unreadable password file, ...)."""


class StoreError(EdgeError):
    """The SQLite store could not be opened or written."""


class ReconcilerUnavailable(EdgeError):
    """The reconciler (planner + Docker) could not be constructed."""
