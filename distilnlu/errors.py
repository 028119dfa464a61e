"""User-facing errors.

Anything raised as a :class:`DistilNLUError` is a problem with the user's input (config, data,
paths), not a bug: the CLI prints its message on one line and exits with status 2, no traceback.
"""


class DistilNLUError(Exception):
    """Base class for errors whose message alone tells the user what to fix."""


class ConfigError(DistilNLUError):
    """A recipe or override is invalid (unknown key, wrong type, bad reference)."""


class DataError(DistilNLUError):
    """An input corpus or record is unusable (malformed line, empty corpus, bad encoding)."""


class ModelError(DistilNLUError):
    """A model path or checkpoint cannot be used for the requested stage."""
