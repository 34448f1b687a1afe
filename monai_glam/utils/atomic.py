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

__all__ = ["atomic_output_path", "atomic_write_text", "remove_stale_temporaries"]


def _temporary_prefix(destination: Path) -> str:
    return f".{destination.name}."


def _fsync_file(path: Path) -> None:
    """Flush ``path``'s data to the storage device (the writer has closed it)."""
    # Windows' fsync (_commit) needs a writable descriptor; POSIX syncs through a read-only one.
    fd = os.open(path, os.O_RDONLY if os.name == "posix" else os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX only; best effort where the file system refuses)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (and platforms) do not support fsync on a directory
        pass
    finally:
        os.close(fd)


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files :func:`atomic_output_path` left next to ``path`` when a writer was killed.

    Only files named like this destination's temporaries (``.<name>.*.tmp*``) are removed; call it when no
    other process is writing ``path``.

    Args:
        path: the destination whose leftovers to remove.

    Returns:
        The paths removed.
    """
    destination = Path(path)
    prefix = _temporary_prefix(destination)
    if not destination.parent.is_dir():
        return []
    removed = []
    for candidate in destination.parent.iterdir():
        name = candidate.name
        if not name.startswith(prefix) or ".tmp" not in name[len(prefix) :]:
            continue
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            if candidate.is_file() and not candidate.is_symlink():
                candidate.unlink()
                removed.append(candidate)
    return removed


@contextlib.contextmanager
def atomic_output_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path``, on error delete it.

    On success the temporary file is flushed to disk (``os.fsync``) before :func:`os.replace` moves it into
    place, and on POSIX the folder is synced after the rename, so after a crash or power loss ``path`` holds
    either the previous content or the new one, never a partial file.

    Args:
        path: the final destination. Its parent folder is created when missing.

    Yields:
        A path in the same folder, with the same suffix (some writers pick the format from it).
    """
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(
        prefix=_temporary_prefix(destination), suffix=f".tmp{destination.suffix}", dir=destination.parent
    )
    os.close(handle)
    temp_path = Path(temp_name)
    # mkstemp creates 0600 files; give the result the permissions an ordinary open() would (umask applies).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp_path, 0o666 & ~umask)
    try:
        yield temp_path
        _fsync_file(temp_path)
        os.replace(temp_path, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp_path.unlink()
        raise
    _fsync_directory(destination.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_output_path(path) as temp_path:
        temp_path.write_text(text, encoding="utf-8")
