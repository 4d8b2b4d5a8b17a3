"""Errors a user can act on: each message names the file and the problem."""

import numbers


class TsvqError(Exception):
    """Base class for every error tsvq raises on purpose."""


class DataError(TsvqError, ValueError):
    """Input data is missing, unreadable or unusable (NaN, flat, too short, wrong shape...)."""


class CheckpointError(TsvqError, ValueError):
    """A saved model folder or checkpoint is missing, corrupt, or does not match what loads it."""


class ConfigError(TsvqError, ValueError):
    """A configuration value is invalid or comes from an incompatible version."""


def check_count(name: str, value, least: int) -> int:
    """``value`` as a Python int when it is a whole number (Python's or NumPy's, not a bool) of at least ``least``,
    else a ConfigError naming it: a count read from an array (``np.int64``) is as good as a literal."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < least:
        raise ConfigError(f"{name} must be an integer of at least {least}, got {value!r}")
    return int(value)
