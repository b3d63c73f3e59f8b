"""Exceptions mindtf raises. Each message names the problem and the fix."""


class MindtfError(Exception):
    """Base class of every error mindtf raises on purpose."""


class ConfigError(MindtfError, ValueError):
    """A model or training configuration that cannot work (e.g. d_model not divisible by heads)."""


class InputError(MindtfError, ValueError):
    """Bad input to a model or function: a token id out of range, a too-long sequence, a
    bad mask."""


class CheckpointError(MindtfError):
    """A checkpoint that does not match the model (missing, unexpected or mis-shaped keys)."""


class DataError(MindtfError):
    """A dataset that could not be fetched, verified or read."""
