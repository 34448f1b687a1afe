"""Reading the project's JSON files (datalists, model configs, run records) with one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["read_json"]


def read_json(path: str | os.PathLike[str], what: str = "JSON") -> Any:
    """The parsed content of a JSON file.

    Args:
        path: the file.
        what: what the file is, for the messages (``"datalist"``, ``"model config"``).

    Raises:
        FileNotFoundError: ``"<path>: no such <what> file"``.
        ValueError: ``"<path>: not valid JSON (<reason>)"``, or not UTF-8 text.
    """
    source = Path(path)
    if source.is_dir():
        raise ValueError(f"{source}: a directory, not a {what} file")
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such {what} file")
    try:
        # utf-8-sig: also the files Windows tools save with a byte-order mark.
        return json.loads(source.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{source}: not a UTF-8 text file ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{source}: not valid JSON ({err})") from err
