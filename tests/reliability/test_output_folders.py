"""No silent clobbering: every command refuses an output folder that holds results unless told otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monai_glam.data import write_datalist
from tests.writers.synthetic_run import make_checkpoint, make_dataset, run_cli


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("synthetic"), num=8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("model"))


def _infer(dataset: Path, checkpoint: Path, output: Path, *extra: str) -> int:
    argv = ["infer", "--datalist", str(dataset), "--split", "training", "--checkpoint", str(checkpoint)]
    return run_cli([*argv, "--output", str(output), "--no-progress", "--formats", "png", *extra])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_infer_refuses_a_folder_with_results_and_keeps_them(dataset, checkpoint, tmp_path, capsys) -> None:
    output = tmp_path / "out"
    assert _infer(dataset, checkpoint, output) == 0
    before = _snapshot(output)
    capsys.readouterr()
    assert _infer(dataset, checkpoint, output) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"monai-glam infer: error: --output {output} already holds results")
    assert "pass --overwrite" in err
    assert _snapshot(output) == before


def test_infer_overwrite_replaces_everything_once_the_run_has_results(dataset, checkpoint, tmp_path) -> None:
    output = tmp_path / "out"
    assert _infer(dataset, checkpoint, output) == 0
    (output / "notes.txt").write_text("stale")
    assert _infer(dataset, checkpoint, output, "--overwrite", "--no-overlays") == 0
    names = sorted(p.name for p in output.iterdir())
    assert "notes.txt" not in names and "overlays" not in names and "predictions.csv" in names
    assert not [name for name in names if name.startswith(".monai-glam-")]
    assert json.loads((output / "run.json").read_text())["num_images"] == 4


def test_a_failing_overwrite_keeps_the_earlier_results(dataset, checkpoint, tmp_path, capsys) -> None:
    output = tmp_path / "out"
    assert _infer(dataset, checkpoint, output) == 0
    before = _snapshot(output)
    bad = tmp_path / "bad.json"
    (tmp_path / "broken.png").write_bytes(b"not a png")
    write_datalist(bad, {"training": [{"image": str(tmp_path / "broken.png"), "label": [0, 0]}]})
    capsys.readouterr()
    assert _infer(bad, checkpoint, output, "--overwrite") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("monai-glam infer: error: no image could be processed") and "\n" not in err
    assert _snapshot(output) == before
    assert sorted(p.name for p in output.iterdir()) == sorted({name.split("/")[0] for name in before})


def test_evaluate_refuses_existing_reports_and_its_own_predictions_folder(dataset, checkpoint, tmp_path, capsys):
    predictions = tmp_path / "pred"
    assert _infer(dataset, checkpoint, predictions) == 0
    capsys.readouterr()
    argv = ["evaluate", "--predictions", str(predictions), "--num-bootstrap", "10"]
    assert run_cli([*argv, "--output", str(predictions), "--overwrite"]) == 2
    assert "must not be the --predictions folder" in capsys.readouterr().err
    report = tmp_path / "report"
    assert run_cli([*argv, "--output", str(report)]) == 0
    first = _snapshot(report)
    capsys.readouterr()
    assert run_cli([*argv, "--output", str(report)]) == 2
    assert "already holds results" in capsys.readouterr().err
    assert _snapshot(report) == first
    assert run_cli([*argv, "--output", str(report), "--overwrite"]) == 0
    assert set(_snapshot(report)) == set(first)


def test_train_refuses_a_folder_with_checkpoints_before_reading_data(tmp_path, capsys) -> None:
    output = tmp_path / "run"
    output.mkdir()
    (output / "best.pt").write_bytes(b"old")
    argv = ["train", "--datalist", str(tmp_path / "missing.json"), "--output", str(output), "--preset", "tiny"]
    assert run_cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"monai-glam train: error: --output {output} already holds a training run ({output / 'best.pt'}); "
        "pass --resume to continue it, --overwrite to start again, or choose another folder"
    )
    assert run_cli([*argv, "--resume", "--overwrite"]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert (output / "best.pt").read_bytes() == b"old"
    assert run_cli([*argv, "--overwrite"]) == 2  # the datalist is read before any checkpoint is deleted
    assert "missing.json" in capsys.readouterr().err
    assert (output / "best.pt").read_bytes() == b"old"
