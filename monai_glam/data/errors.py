"""The errors raised for unreadable or unusable mammograms, and for data sets none of whose items can be used."""

from __future__ import annotations

import os

__all__ = ["MammogramReadError", "NoUsableItemsError"]


class MammogramReadError(ValueError):
    """A mammogram file cannot be read or is not a usable 2-D grayscale image.

    The message always starts with the file name so a failing item in a large datalist can be found.

    Args:
        path: the offending file.
        problem: what is wrong with it, in words.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[type[MammogramReadError], tuple[str, str]]:
        # DataLoader workers pickle exceptions; the default reduce would pass only the message.
        return (MammogramReadError, (self.path, self.problem))


class NoUsableItemsError(ValueError, RuntimeError):
    """Every item of a data set failed to load or transform, so there is nothing to train or predict on.

    A ``ValueError`` like the other bad-input errors (the command line reports it in one line); also a
    ``RuntimeError``, what :class:`~monai_glam.data.MammogramDataset` raised for this before.
    """
