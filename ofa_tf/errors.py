"""Typed errors with messages a user can act on. The CLI prints them on one line."""


class OFAError(Exception):
    """Base class of the errors ofa-tf raises on bad input."""


class ConfigError(OFAError, ValueError):
    """A configuration value (subnet, search space, budget, preset) is invalid."""


class DataError(OFAError, ValueError):
    """A dataset path or its contents cannot be used."""


class MissingFileError(OFAError, FileNotFoundError):
    """A file or folder named by the user does not exist."""


class DivergedError(OFAError, FloatingPointError):
    """Training produced a non-finite loss (the learning rate is too high for the run)."""
