"""Errors a user can act on: each message names the file and the problem."""


class TsvqError(Exception):
    """Base class for every error tsvq raises on purpose."""


class DataError(TsvqError, ValueError):
    """Input data is missing, unreadable or unusable (NaN, flat, too short, wrong shape...)."""


class CheckpointError(TsvqError, ValueError):
    """A saved model folder or checkpoint is missing, corrupt, or does not match what loads it."""


class ConfigError(TsvqError, ValueError):
    """A configuration value is invalid or comes from an incompatible version."""
