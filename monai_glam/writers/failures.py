"""Per-item error reports: a bad item is recorded and skipped, and the failures are listed at the end."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from monai_glam.utils.atomic import atomic_write_text

__all__ = ["ITEM_ERRORS", "FailureLog", "ItemFailure", "describe_error"]

logger = logging.getLogger(__name__)

#: What a corrupt or unusable item raises on its way through loading, transforms, inference and writing (MONAI
#: wraps transform errors in ``RuntimeError``).
ITEM_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, RuntimeError, KeyError, IndexError)


def describe_error(error: BaseException) -> str:
    """``"Type: message"`` of the innermost cause of MONAI's ``RuntimeError`` wrappers (``apply_transform``)."""
    while isinstance(error, RuntimeError) and error.__cause__ is not None:
        error = error.__cause__
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class ItemFailure:
    """One item that could not be processed.

    Attributes:
        index: position of the item in the input list.
        image: the item's image path (or ``"?"``).
        stage: what was being done (``"preprocess"``, ``"inference"``, ``"write"``, ...).
        error: ``"Type: message"`` of the root cause.
    """

    index: int
    image: str
    stage: str
    error: str


class FailureLog:
    """Collects :class:`ItemFailure` records, logs each once, and writes them as JSON.

    Args:
        name: logger context, e.g. the command name, used in the warning messages.
    """

    def __init__(self, name: str = "monai_glam") -> None:
        self.name = name
        self.failures: list[ItemFailure] = []

    def add(self, index: int, image: object, stage: str, error: BaseException) -> ItemFailure:
        """Record that item ``index`` failed at ``stage`` with ``error``; returns the record."""
        failure = ItemFailure(int(index), str(image if image not in (None, "") else "?"), stage, describe_error(error))
        self.failures.append(failure)
        logger.warning("%s: skipping item %d (%s) at %s: %s", self.name, index, failure.image, stage, failure.error)
        return failure

    def __len__(self) -> int:
        return len(self.failures)

    def __iter__(self) -> Iterator[ItemFailure]:
        return iter(self.failures)

    def to_json(self) -> list[dict[str, object]]:
        """The records as a list of dictionaries."""
        return [asdict(failure) for failure in self.failures]

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the records (``[]`` when none) as JSON, atomically; returns the path."""
        target = Path(path)
        atomic_write_text(target, json.dumps(self.to_json(), indent=2) + "\n")
        return target

    def summary(self, limit: int = 3) -> str:
        """One line: how many items failed and the first few reasons."""
        if not self.failures:
            return "no item failed"
        shown = "; ".join(f"{f.image}: {f.error}" for f in self.failures[:limit])
        more = f" (and {len(self.failures) - limit} more)" if len(self.failures) > limit else ""
        return f"{len(self.failures)} item(s) failed: {shown}{more}"
