from __future__ import annotations

from pathlib import Path

import pytest

from monai_glam.utils.output_folder import STAGING_PREFIX, check_training_folder, folder_entries, staged_output_folder


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _contents(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_new_folder_is_written_directly(tmp_path: Path) -> None:
    target = tmp_path / "new" / "out"
    with staged_output_folder(target) as folder:
        assert folder.path == target and not folder.staged
        (folder.path / "predictions.csv").write_text("new")
    assert _contents(target) == {"predictions.csv": "new"}


def test_a_folder_with_results_is_refused_without_overwrite(tmp_path: Path) -> None:
    _write(tmp_path, {"predictions.csv": "old", "masks/a.png": "old"})
    with (
        pytest.raises(
            ValueError, match=r"--output .* already holds results \(masks, predictions.csv\); pass --overwrite"
        ),
        staged_output_folder(tmp_path),
    ):
        pass
    assert _contents(tmp_path) == {"predictions.csv": "old", "masks/a.png": "old"}


def test_overwrite_replaces_the_contents_only_at_the_end(tmp_path: Path) -> None:
    _write(tmp_path, {"predictions.csv": "old", "masks/a.png": "old", "stale.json": "old"})
    with staged_output_folder(tmp_path, overwrite=True) as folder:
        assert folder.staged and folder.path.parent == tmp_path and folder.path.name.startswith(STAGING_PREFIX)
        _write(folder.path, {"predictions.csv": "new", "masks/b.png": "new"})
        assert _contents(tmp_path)["predictions.csv"] == "old"  # untouched while the run goes on
    assert _contents(tmp_path) == {"predictions.csv": "new", "masks/b.png": "new"}
    assert folder_entries(tmp_path) == ["masks", "predictions.csv"]


@pytest.mark.parametrize("how", ["error", "keyboard", "discard"])
def test_a_failed_or_discarded_run_keeps_the_earlier_results(tmp_path: Path, how: str) -> None:
    _write(tmp_path, {"predictions.csv": "old"})
    exceptions = {"error": OSError, "keyboard": KeyboardInterrupt}
    try:
        with staged_output_folder(tmp_path, overwrite=True) as folder:
            _write(folder.path, {"predictions.csv": ""})
            if how in exceptions:
                raise exceptions[how]("boom")
            folder.keep = False
    except (OSError, KeyboardInterrupt):
        pass
    assert _contents(tmp_path) == {"predictions.csv": "old"}
    assert list(tmp_path.iterdir()) == [tmp_path / "predictions.csv"]


def test_staging_folders_of_a_killed_run_are_ignored_and_removed(tmp_path: Path) -> None:
    _write(tmp_path, {f"{STAGING_PREFIX}new-x1/predictions.csv": "partial"})
    assert folder_entries(tmp_path) == []
    with staged_output_folder(tmp_path) as folder:
        assert not folder.staged
    assert list(tmp_path.iterdir()) == []


def test_a_file_is_not_an_output_folder(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")
    with pytest.raises(ValueError, match="is not a directory"), staged_output_folder(tmp_path / "out"):
        pass


@pytest.mark.parametrize(
    "files, resume, overwrite, error, deleted",
    [
        ({}, False, False, None, []),
        ({"model_config.json": "{}", "tensorboard/e": "x"}, False, False, None, []),
        ({"last.pt": "x"}, False, False, "already holds a training run .*last.pt.*pass --resume", []),
        ({"best.pt": "x"}, False, False, "already holds a training run", []),
        ({"last.pt": "x", "best.pt": "y"}, True, False, None, []),
        ({"last.pt": "x", "best.pt": "y", ".last.pt.abc.tmp.pt": "z"}, False, True, None, ["best.pt", "last.pt"]),
        ({"last.pt": "x"}, True, True, "--resume and --overwrite exclude each other", []),
    ],
)
def test_training_folders(
    tmp_path: Path, files: dict[str, str], resume: bool, overwrite: bool, error: str | None, deleted: list[str]
) -> None:
    _write(tmp_path, files)
    if error:
        with pytest.raises(ValueError, match=error):
            check_training_folder(tmp_path, resume=resume, overwrite=overwrite)
        assert set(_contents(tmp_path)) == set(files)
        return
    removed = check_training_folder(tmp_path, resume=resume, overwrite=overwrite)
    assert sorted(p.name for p in removed) == deleted
    assert set(_contents(tmp_path)) == {name for name in files if name not in deleted and ".tmp" not in name} | (
        {name for name in files if ".tmp" in name and not deleted}
    )


def test_an_extra_checkpoint_counts_and_is_kept_on_other_ranks(tmp_path: Path) -> None:
    stage = tmp_path / "models" / "model_global.pt"
    _write(tmp_path, {"models/model_global.pt": "x"})
    with pytest.raises(ValueError, match=r"model_global\.pt"):
        check_training_folder(tmp_path / "runs", extra_checkpoints=[stage])
    assert check_training_folder(tmp_path / "runs", overwrite=True, extra_checkpoints=[stage], delete=False) == [stage]
    assert stage.is_file()
    check_training_folder(tmp_path / "runs", overwrite=True, extra_checkpoints=[stage])
    assert not stage.exists()
