"""Typed errors of attnviz. Each carries a message a person can act on."""

__all__ = ["AttnvizError", "CheckpointError", "InputError"]


class AttnvizError(Exception):
    """Base class of the errors attnviz raises on purpose."""


class InputError(AttnvizError, ValueError):
    """Empty or unusable input text (or a malformed input line or file)."""


class CheckpointError(AttnvizError):
    """Anything wrong with a checkpoint folder, file or upload."""
