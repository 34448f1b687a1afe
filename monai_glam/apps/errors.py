"""The command line's user-facing error."""

from __future__ import annotations

__all__ = ["CommandError"]


class CommandError(RuntimeError):
    """A user-facing error of a ``monai-glam`` sub-command: printed as one line, exit status 2."""
