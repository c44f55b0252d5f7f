"""User-facing errors: one line naming the file or field, what was expected, and the fix (exit code 2)."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix: bad path, bad config, missing data, wrong file type.

    The CLI prints ``str(err)`` as one red line and exits with code 2; ``--verbose`` adds the traceback.
    """

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class ConfigError(UserError):
    """A config key, type or value that is not allowed."""


class DataError(UserError):
    """Input data that is missing, corrupt or malformed."""


class MissingData(DataError):
    """A dataset that is not on this machine (and could not be fetched): the demo skips its task."""


class CheckpointError(UserError):
    """A run directory or checkpoint that cannot be loaded safely."""


class TrainingDiverged(UserError):
    """Training whose loss turned NaN or infinite: the run stops instead of training on and reporting garbage."""
