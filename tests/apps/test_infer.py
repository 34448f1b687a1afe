"""``monai-glam infer`` on tiny synthetic mammograms with a tiny GLAM."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from monai_glam.apps import infer
from monai_glam.data import load_mammogram, read_datalist, write_datalist, write_png
from monai_glam.engines import aligned_overlap, build_inference_transforms
from monai_glam.networks.io import load_model
from monai_glam.writers import read_predictions
from tests.writers.synthetic_run import make_checkpoint, make_dataset, run_cli, run_command


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("synthetic"), num=8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("model"))


def _run(argv: list[str]) -> int:
    return run_command(infer, argv)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_infer_writes_scores_maps_masks_and_overlays(dataset: Path, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["infer", "--datalist", str(dataset), "--split", "training", "--checkpoint", str(checkpoint)]
    assert _run([*argv, "--output", str(out), "--device", "cpu", "--network-frame", "--no-progress"]) == 0
    items = read_datalist(dataset, "training")
    predictions, names = read_predictions(out / "predictions.csv")
    assert names == ("benign", "malignant") and len(predictions) == len(items) == 4
    run = json.loads((out / "run.json").read_text())
    assert run["window"] == [128, 96] and run["erosion_iterations"] == 9 and run["buffer"] == 4  # model config
    assert run["thresholds"] == [0.3, 0.3] and run["num_failed"] == 0
    assert json.loads((out / "failures.json").read_text()) == []
    # The CSV holds exactly what the network gives on the preprocessed window.
    model = load_model(checkpoint)
    chain = build_inference_transforms((128, 96), 9, 4)
    for item, prediction in zip(items, predictions, strict=True):
        assert prediction.label == tuple(item["label"]) and prediction.laterality == item["laterality"]
        with torch.no_grad():
            expected = model(chain(item)["image"][None].as_tensor())
        assert prediction.prob_global == pytest.approx(expected["prob_global"][0].tolist(), abs=1e-6)
        assert prediction.prob_local == pytest.approx(expected["prob_local"][0].tolist(), abs=1e-6)
        raw_shape = load_mammogram(item["image"]).shape[1:]
        for name in names:
            original = load_mammogram(out / "saliency" / f"{prediction.image_id}_{name}.nii.gz")
            network = load_mammogram(out / "network_frame" / "saliency" / f"{prediction.image_id}_{name}.nii.gz")
            mask = load_mammogram(out / "masks" / f"{prediction.image_id}_{name}.png")
            assert original.shape[1:] == raw_shape and network.shape[1:] == (128, 96)
            assert float(original.max()) <= float(network.max()) + 1e-6  # the window may reach past the image
            assert torch.equal(mask[0] > 0, original[0] >= 0.3)  # masks threshold the map at 0.3
            assert (out / "network_frame" / "ground_truth" / f"{prediction.image_id}_{name}.png").is_file()
        # Overlays on the raw image (its size: the raw image, then one panel per class); --network-frame adds
        # the overlay on the 128x96 network input.
        overlay = np.asarray(Image.open(out / "overlays" / f"{prediction.image_id}.png"))
        assert overlay.shape == (raw_shape[0], 3 * raw_shape[1], 3)
        network_overlay = np.asarray(Image.open(out / "network_overlays" / f"{prediction.image_id}.png"))
        assert network_overlay.shape == (128, 3 * 96, 3)
    breasts = _rows(out / "breasts.csv")
    assert [b["breast_id"] for b in breasts] == list(dict.fromkeys(p.breast_id for p in predictions))
    assert all(b["num_views"] == "2" for b in breasts) and len(_rows(out / "exams.csv")) == 1


def test_infer_skips_bad_items_and_lists_them(dataset: Path, checkpoint: Path, tmp_path: Path) -> None:
    items = read_datalist(dataset, "training")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    black = tmp_path / "black.png"
    write_png(black, np.zeros((64, 48), dtype=np.uint16))
    bad = [{"image": str(empty), "label": [0, 0]}, {"image": str(black), "label": [0, 1]}]
    datalist = write_datalist(tmp_path / "mixed.json", {"test": [items[0], bad[0], items[1], bad[1]]})
    out = tmp_path / "out"
    argv = ["infer", "--datalist", str(datalist), "--checkpoint", str(checkpoint), "--output", str(out)]
    assert _run([*argv, "--formats", "--no-overlays", "--no-progress"]) == 1
    assert len(_rows(out / "predictions.csv")) == 2
    failures = json.loads((out / "failures.json").read_text())
    assert [(f["index"], Path(f["image"]).name, f["stage"]) for f in failures] == [
        (1, "empty.png", "read"),
        (3, "black.png", "preprocess"),
    ]
    assert "empty file (0 bytes)" in failures[0]["error"] and "no pixel is above 0" in failures[1]["error"]
    assert not (out / "saliency").exists() and not (out / "overlays").exists()


def test_infer_accepts_a_datalist_without_labels(dataset: Path, checkpoint: Path, tmp_path: Path) -> None:
    items = read_datalist(dataset, "training")[:2]
    unlabelled = [{k: v for k, v in item.items() if k != "label"} for item in items]
    datalist = tmp_path / "unlabelled.json"
    datalist.write_text(json.dumps({"test": unlabelled}))
    out = tmp_path / "out"
    argv = ["infer", "--datalist", str(datalist), "--checkpoint", str(checkpoint), "--output", str(out)]
    assert _run([*argv, "--formats", "--no-overlays", "--no-progress"]) == 0
    rows = _rows(out / "predictions.csv")
    assert len(rows) == 2 and all(row["label_benign"] == "" and row["prob_global_benign"] for row in rows)


def test_infer_on_image_files_with_a_sliding_window(dataset: Path, checkpoint: Path, tmp_path: Path) -> None:
    images = sorted((dataset.parent / "images").glob("*.png"))[:3]
    folder = tmp_path / "images"
    folder.mkdir()
    for path in images:
        shutil.copy(path, folder / path.name)
    out = tmp_path / "out"
    argv = ["infer", "--images", str(folder), "--checkpoint", str(checkpoint), "--output", str(out)]
    assert _run([*argv, "--sliding-window", "--overlap", "0.5", "--formats", "nifti", "--no-progress"]) == 0
    predictions, _ = read_predictions(out / "predictions.csv")
    assert [p.image_id for p in predictions] == [p.stem for p in images]
    assert all(p.label is None and p.laterality in ("L", "R") for p in predictions)  # from the NYU-style names
    for prediction, path in zip(predictions, images, strict=True):
        saliency = load_mammogram(out / "saliency" / f"{prediction.image_id}_malignant.nii.gz")
        assert saliency.shape[1:] == load_mammogram(path).shape[1:]
        assert 0.0 < float(saliency.max()) <= 1.0
    assert json.loads((out / "run.json").read_text())["sliding_window"] is True


@pytest.mark.parametrize(
    ("roi", "overlap", "expected_steps"),
    [
        ((128, 96), 0.25, (96, 64)),
        ((256, 160), 0.25, (192, 112)),
        ((128, 96), 0.0, (128, 96)),
        ((64, 48), 0.9, (16, 16)),
    ],
)
def test_aligned_overlap_gives_steps_on_multiples_of_16(roi: tuple, overlap: float, expected_steps: tuple) -> None:
    overlaps = aligned_overlap(roi, overlap)
    steps = tuple(int(r * (1 - o)) for r, o in zip(roi, overlaps, strict=True))
    assert steps == expected_steps


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--checkpoint", "missing.pt"], "missing.pt.*no such checkpoint"),
        (["--thresholds", "0.5", "1.5"], r"argument --thresholds: must be a number >= 0 and <= 1, got 1.5"),
        (["--sliding-window", "--window", "130", "96"], "must be a multiple of 16"),
        (["--overlap", "1.0", "--sliding-window"], r"argument --overlap: must be a number >= 0 and < 1, got 1.0"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--overlay-size", "0"], "argument --overlay-size: must be an integer >= 1, got 0"),
        (["--split", "validation"], "has no 'validation' items"),
    ],
)
def test_user_errors_are_one_line(
    dataset: Path, checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str], message: str
) -> None:
    argv = ["infer", "--datalist", str(dataset), "--output", str(tmp_path / "out"), "--checkpoint", str(checkpoint)]
    assert run_cli([*argv, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("monai-glam infer: error: ") and "\n" not in err
    assert re.search(message, err)


def test_all_items_failing_is_an_error(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "0_L-CC.png"
    empty.write_bytes(b"")
    argv = ["infer", "--images", str(empty), "--checkpoint", str(checkpoint), "--output", str(tmp_path / "o")]
    assert run_cli([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no image could be processed; 1 item(s) failed" in err and "empty file" in err


@pytest.mark.parametrize("command", ["infer", "evaluate"])
def test_help(command: str, capsys: pytest.CaptureFixture) -> None:
    assert run_cli([command, "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--checkpoint", "--model-config", "--window", "--thresholds", "--sliding-window", "--device"):
        assert option in text
