"""A MONAI ``Dataset`` that can report and skip bad items instead of failing a whole run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from monai.data import Dataset

from monai_glam.data.errors import NoUsableItemsError

__all__ = ["MammogramDataset"]

logger = logging.getLogger(__name__)

# What a corrupt, truncated or unusable file raises on its way through loading and transforms (MONAI wraps
# transform errors in RuntimeError).
_ITEM_ERRORS = (ValueError, OSError, RuntimeError, KeyError)


def _root_message(error: BaseException) -> str:
    """The informative error: MONAI's ``apply_transform`` wraps it in generic ``RuntimeError`` layers."""
    while isinstance(error, RuntimeError) and error.__cause__ is not None:
        error = error.__cause__
    return f"{type(error).__name__}: {error}"


class MammogramDataset(Dataset):
    """:class:`monai.data.Dataset` with an option to skip items that fail to load or transform.

    With ``skip_bad_items=True`` an item whose loading or transforms raise (corrupt, truncated, empty, colour,
    3-D or NaN-filled files, missing labels, ...) is reported once through the ``monai_glam.data.dataset``
    logger, recorded in :attr:`skipped` (index -> message naming the file and the problem), and replaced by the
    next good item, so one bad file does not stop a training run. Each DataLoader worker keeps its own
    :attr:`skipped`. When every item fails, :class:`~monai_glam.data.errors.NoUsableItemsError` (a
    ``ValueError``) says so in one line with the first three problems.

    Args:
        data: datalist items.
        transform: transforms applied to each item (e.g. ``nyu_preprocessing_transforms()``).
        skip_bad_items: report and skip failing items instead of raising.
    """

    def __init__(
        self, data: Sequence[Any], transform: Callable[..., Any] | None = None, skip_bad_items: bool = False
    ) -> None:
        super().__init__(data, transform)
        self.skip_bad_items = skip_bad_items
        self.skipped: dict[int, str] = {}

    def _transform(self, index: int) -> Any:
        if not self.skip_bad_items:
            return super()._transform(index)
        count = len(self.data)
        for attempt in range(count):
            position = (index + attempt) % count
            if position in self.skipped:
                continue
            try:
                return super()._transform(position)
            except _ITEM_ERRORS as err:
                self._report(position, err)
        first = "; ".join(list(self.skipped.values())[:3])
        raise NoUsableItemsError(f"all {count} items failed to load; the first problems: {first}")

    def _report(self, position: int, error: BaseException) -> None:
        item = self.data[position]
        source = item.get("image", "?") if isinstance(item, dict) else item
        reason = _root_message(error)
        message = reason if str(source) in reason else f"{source}: {reason}"
        self.skipped[position] = message
        logger.warning("skipping item %d: %s", position, message)
