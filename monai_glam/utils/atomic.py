"""Atomic file output: readers never see a half-written file.

Everything the package writes (images, DICOM files, datalists) goes to a temporary file in the destination
folder first and is moved into place with :func:`os.replace`, which is atomic on POSIX and Windows when source
and destination are on the same file system (hence the temporary file lives next to the destination).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_output_path", "atomic_write_text"]


@contextlib.contextmanager
def atomic_output_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path``, on error delete it.

    Args:
        path: the final destination. Its parent folder is created when missing.

    Yields:
        A path in the same folder, with the same suffix (some writers pick the format from it).
    """
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=f".tmp{destination.suffix}", dir=destination.parent
    )
    os.close(handle)
    temp_path = Path(temp_name)
    # mkstemp creates 0600 files; give the result the permissions an ordinary open() would (umask applies).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp_path, 0o666 & ~umask)
    try:
        yield temp_path
        os.replace(temp_path, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp_path.unlink()
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_output_path(path) as temp_path:
        temp_path.write_text(text, encoding="utf-8")
