"""Output folders that are never clobbered silently.

Every command that writes results into a folder follows one rule: a folder that already holds results is
refused unless the user passes ``--overwrite`` (``overwrite: true`` in the bundle: :func:`check_output_folder`).
With ``--overwrite``, ``infer`` and ``evaluate`` write the new run into a hidden staging folder inside the output
folder and replace the old contents only once the new run has produced results, so a run that fails or is
interrupted leaves the earlier results as they were (:func:`staged_output_folder`); the bundle's handlers write
in place. Training folders are checked by
:func:`check_training_folder`: ``--resume`` continues the run in them, ``--overwrite`` deletes their
checkpoints and starts again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from monai_glam.utils.atomic import remove_stale_temporaries

__all__ = [
    "STAGING_PREFIX",
    "StagedFolder",
    "check_output_folder",
    "check_training_folder",
    "folder_entries",
    "remove_entries",
    "staged_output_folder",
]

#: Hidden folders of a run in progress (``.monai-glam-new-*``) and of replaced results (``.monai-glam-old-*``).
STAGING_PREFIX = ".monai-glam-"
_NEW = f"{STAGING_PREFIX}new-"
_OLD = f"{STAGING_PREFIX}old-"
#: Files of a training run that ``--overwrite`` deletes and that make a folder "hold a training run".
_TRAINING_CHECKPOINTS = ("best.pt", "last.pt")


def _remove_stale_staging(folder: Path) -> None:
    """Delete staging folders a killed run left behind (no other run may write into ``folder`` meanwhile)."""
    for entry in folder.iterdir():
        if entry.name.startswith(STAGING_PREFIX) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def folder_entries(folder: str | os.PathLike[str]) -> list[str]:
    """Sorted names in ``folder`` other than the staging folders of killed runs (empty when it does not exist).

    Raises:
        ValueError: ``folder`` exists and is not a directory.
    """
    path = Path(folder)
    if not path.exists():
        return []
    if not path.is_dir():
        raise ValueError(f"output folder {path} is not a directory")
    return sorted(entry.name for entry in path.iterdir() if not entry.name.startswith(STAGING_PREFIX))


def remove_entries(folder: str | os.PathLike[str], names: Sequence[str]) -> None:
    """Delete the files and folders ``names`` inside ``folder`` that exist (what ``--overwrite`` replaces)."""
    for name in names:
        entry = Path(folder) / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)


def _describe(names: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_output_folder(
    folder: str | os.PathLike[str], overwrite: bool = False, option: str = "--output", how: str = "--overwrite"
) -> list[str]:
    """Refuse a folder that holds results unless ``overwrite``.

    Args:
        folder: the output folder.
        overwrite: results may be replaced.
        option: the option or config key that named the folder, for the message.
        how: how the user allows replacing (``--overwrite``; ``overwrite=true`` in a bundle).

    Returns:
        The names in the folder (empty for a new or empty folder).

    Raises:
        ValueError: ``folder`` holds results and ``overwrite`` is false, or it is not a directory.
    """
    names = folder_entries(folder)
    if names and not overwrite:
        raise ValueError(
            f"{option} {folder} already holds results ({_describe(names)}); pass {how} to replace them, or choose "
            "another folder"
        )
    return names


@dataclass
class StagedFolder:
    """Where a run writes (``path``), and whether its results replace the folder's old contents on success.

    Set ``keep = False`` to discard a finished run's results (for instance when every item failed), so the
    earlier results stay.
    """

    path: Path
    target: Path
    staged: bool
    keep: bool = True

    def published(self, written: str | os.PathLike[str]) -> Path:
        """Where ``written`` (a path under :attr:`path`) lies once the run's results are in :attr:`target`."""
        return self.target / Path(written).relative_to(self.path)


@contextmanager
def staged_output_folder(
    folder: str | os.PathLike[str], overwrite: bool = False, option: str = "--output"
) -> Iterator[StagedFolder]:
    """Give a run a place to write its results in ``folder`` without losing earlier results.

    - A new or empty ``folder``: the run writes straight into it.
    - A ``folder`` with results and ``overwrite``: the run writes into a hidden ``.monai-glam-new-*`` folder
      inside it. When the block ends normally with ``keep`` true, the old entries are moved aside, the new ones
      moved in (renames on one file system) and the old ones deleted; when it raises (an error, Ctrl-C) or
      ``keep`` is false, the staging folder is deleted and the earlier results stay as they were.

    Args:
        folder: the output folder.
        overwrite: replace existing results instead of refusing.
        option: the option that named the folder, for the error message.

    Raises:
        ValueError: ``folder`` holds results and ``overwrite`` is false, or it is not a directory.
    """
    target = Path(folder)
    names = check_output_folder(target, overwrite, option)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot create {option} {target}: {err.strerror or err}") from None
    _remove_stale_staging(target)
    if not names:
        yield StagedFolder(target, target, staged=False)
        return
    staging = Path(tempfile.mkdtemp(prefix=_NEW, dir=target))
    run = StagedFolder(staging, target, staged=True)
    try:
        yield run
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not run.keep:
        shutil.rmtree(staging, ignore_errors=True)
        return
    _replace_contents(target, staging)


def _replace_contents(target: Path, staging: Path) -> None:
    """Move ``target``'s entries aside, ``staging``'s entries in, then delete the old ones."""
    old = Path(tempfile.mkdtemp(prefix=_OLD, dir=target))
    for entry in target.iterdir():
        if entry != staging and entry != old:
            os.replace(entry, old / entry.name)
    for entry in staging.iterdir():
        os.replace(entry, target / entry.name)
    staging.rmdir()
    shutil.rmtree(old, ignore_errors=True)


def check_training_folder(
    folder: str | os.PathLike[str],
    resume: bool = False,
    overwrite: bool = False,
    extra_checkpoints: Sequence[str | os.PathLike[str]] = (),
    delete: bool = True,
) -> list[Path]:
    """Refuse to start a training run over another one's checkpoints unless told how to treat them.

    A folder "holds a training run" when ``best.pt`` or ``last.pt`` (or one of ``extra_checkpoints``, such as
    the bundle's ``models/model_<stage>.pt``) exists. ``resume`` continues that run; ``overwrite`` deletes
    those checkpoints (and their temporaries) so the new run cannot be mixed with the old one (TensorBoard
    events of the old run are kept).

    Args:
        folder: the training output folder.
        resume: the run continues from ``last.pt``.
        overwrite: start again, deleting the old checkpoints.
        extra_checkpoints: other files the run writes that count as its checkpoints.
        delete: with ``overwrite``, delete the checkpoints (pass ``False`` on processes other than rank 0).

    Returns:
        The checkpoints that were deleted.

    Raises:
        ValueError: both ``resume`` and ``overwrite``, or checkpoints exist and neither was given.
    """
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other: continue the run, or start it again")
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--output {path} is not a directory")
    found = [path / name for name in _TRAINING_CHECKPOINTS if (path / name).is_file()]
    found += [Path(extra) for extra in extra_checkpoints if Path(extra).is_file()]
    if not found or resume:
        return []
    if not overwrite:
        raise ValueError(
            f"--output {path} already holds a training run ({_describe([str(p) for p in found])}); pass --resume "
            "to continue it, --overwrite to start again, or choose another folder"
        )
    if delete:
        for checkpoint in found:
            remove_stale_temporaries(checkpoint)
            checkpoint.unlink(missing_ok=True)
    return found
