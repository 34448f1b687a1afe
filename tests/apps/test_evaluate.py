"""``monai-glam evaluate``: report values on hand-made predictions, inference runs and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from monai_glam.apps import evaluate
from monai_glam.data import load_mammogram, read_datalist
from monai_glam.engines import evaluate_predictions
from monai_glam.metrics import downsample_maps, roc_auc
from monai_glam.writers import ImagePrediction, read_predictions, write_class_maps, write_prediction_tables
from tests.writers.synthetic_run import make_checkpoint, make_dataset, run_cli, run_command

CLASSES = ("benign", "malignant")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("synthetic"), num=16, seed=3)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("model"))


def _run(argv: list[str]) -> int:
    return run_command(evaluate, argv)


def _perfect_predictions(items: list[dict], folder: Path) -> Path:
    """An infer-style folder whose scores equal the labels and whose maps are the lesion masks."""
    predictions = []
    for index, item in enumerate(items):
        label = tuple(item["label"])
        scores = tuple(0.1 + 0.8 * v for v in label)
        image_id = f"img{index}"
        masks = np.stack([load_mammogram(item[f"mask_{n}"])[0].numpy() > 0 for n in CLASSES])
        write_class_maps(folder / "saliency", image_id, masks * 0.9, CLASSES, ("nifti",))
        masks_paths = {n: item[f"mask_{n}"] for n in CLASSES}
        predictions.append(
            ImagePrediction(image_id, item["image"], scores, scores, label, item["laterality"], item["view"],
                            item["patient_id"], item["exam_id"], masks_paths)
        )  # fmt: skip
    write_prediction_tables(predictions, folder)
    (folder / "run.json").write_text(json.dumps({"window": [256, 160], "thresholds": [0.5, 0.5]}))
    return folder


def test_perfect_predictions_score_one(dataset: Path, tmp_path: Path) -> None:
    items = read_datalist(dataset, "training") + read_datalist(dataset, "test")
    folder = _perfect_predictions(items, tmp_path / "predictions")
    report, paths = evaluate_predictions(folder, tmp_path / "report", num_bootstrap=100)
    assert {p.name for p in paths.values()} == {
        "report.json",
        "report.md",
        "roc_image.png",
        "roc_breast.png",
        "froc.png",
    }
    labels = np.asarray([item["label"] for item in items])
    for c, name in enumerate(CLASSES):
        if 0 < labels[:, c].sum() < len(labels):
            for level in ("image", "breast"):
                assert report["classification"][level]["global"][name]["auc"] == 1.0
        if labels[:, c].any():
            assert report["segmentation"][name]["dice"] == pytest.approx(1.0)
            assert report["segmentation"][name]["iou"] == pytest.approx(1.0)
            assert report["pointing_game"][name]["accuracy"] == 1.0
            assert report["froc"][name]["sensitivity"]["8"] > 0.5
    assert report["num_breasts"] == len(items) // 2
    assert report["inputs"]["num_localization_images"] == len(items)
    # Block-averaged maps and block-max masks still overlap almost perfectly.
    coarse, _ = evaluate_predictions(folder, tmp_path / "coarse", downsample=2, num_bootstrap=10)
    malignant = coarse["segmentation"]["malignant"]
    assert malignant["dice"] is None or malignant["dice"] > 0.6


def test_evaluate_runs_inference_and_rereads_its_output(dataset: Path, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    argv = ["evaluate", "--datalist", str(dataset), "--split", "test", "--checkpoint", str(checkpoint)]
    assert _run([*argv, "--output", str(out), "--num-bootstrap", "50", "--no-overlays", "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    predictions, _ = read_predictions(out / "predictions" / "predictions.csv")
    assert report["num_images"] == len(read_datalist(dataset, "test")) == len(predictions)
    scores = np.asarray([p.prob_local for p in predictions])
    labels = np.asarray([p.label for p in predictions])
    for c, name in enumerate(CLASSES):
        expected = roc_auc(scores[:, c : c + 1], labels[:, c : c + 1])[0]
        reported = report["classification"]["image"]["local"][name]["auc"]
        assert (reported is None and np.isnan(expected)) or reported == pytest.approx(expected)
    assert report["settings"]["thresholds"] == [0.3, 0.3]  # from the model config, through run.json
    assert report["inputs"]["frame"] == "original" and report["inputs"]["num_localization_images"] == len(predictions)
    again = tmp_path / "again"
    assert (
        _run(["evaluate", "--predictions", str(out / "predictions"), "--output", str(again), "--num-bootstrap", "50"])
        == 0
    )
    second = json.loads((again / "report.json").read_text())
    assert {k: v for k, v in second.items() if k != "inputs"} == {k: v for k, v in report.items() if k != "inputs"}


def test_evaluate_with_png_maps_only(dataset: Path, checkpoint: Path, tmp_path: Path) -> None:
    """Regression: ``--formats png`` failed because the report re-read ``*.nii.gz`` maps from disk."""
    argv = ["evaluate", "--datalist", str(dataset), "--split", "test", "--checkpoint", str(checkpoint)]
    common = ["--num-bootstrap", "20", "--no-overlays", "--no-progress"]
    assert _run([*argv, "--output", str(tmp_path / "png"), "--formats", "png", *common]) == 0
    assert _run([*argv, "--output", str(tmp_path / "nifti"), "--formats", "nifti", *common]) == 0
    assert _run([*argv, "--output", str(tmp_path / "none"), "--formats", *common]) == 0
    reports = {name: json.loads((tmp_path / name / "report.json").read_text()) for name in ("png", "nifti", "none")}
    assert not list((tmp_path / "png" / "predictions" / "saliency").glob("*.nii.gz"))
    assert reports["png"]["segmentation"] == reports["nifti"]["segmentation"] == reports["none"]["segmentation"]
    # An existing folder with PNG maps only is read back too (16-bit PNG: within 1/65535 of the map).
    again, _ = evaluate_predictions(tmp_path / "png" / "predictions", tmp_path / "again", num_bootstrap=20)
    for name, scores in reports["png"]["segmentation"].items():
        if scores["dice"] is not None:
            assert again["segmentation"][name]["dice"] == pytest.approx(scores["dice"], abs=0.02)


def test_network_frame_evaluation(dataset: Path, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    argv = ["evaluate", "--datalist", str(dataset), "--checkpoint", str(checkpoint), "--output", str(out)]
    assert _run([*argv, "--frame", "network", "--formats", "nifti", "--num-bootstrap", "20", "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["inputs"]["frame"] == "network" and "segmentation" in report
    assert (out / "predictions" / "network_frame" / "ground_truth").is_dir()


@pytest.mark.parametrize(
    ("values", "factor", "reduce", "expected"),
    [
        ([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], 2, "mean", [[0.25, 0.5]]),
        ([[1, 0, 0], [0, 0, 1]], 2, "max", [[1, 1]]),
        ([[0.5, 0.25]], 1, "mean", [[0.5, 0.25]]),
    ],
)
def test_downsample_maps(values: list, factor: int, reduce: str, expected: list) -> None:
    out = downsample_maps(np.asarray([values]), factor, reduce)
    assert out.tolist() == [expected]


def test_user_errors(dataset: Path, checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    unlabelled = tmp_path / "unlabelled"
    write_prediction_tables([ImagePrediction("a", "a.png", (0.1, 0.2), (0.3, 0.4))], unlabelled)
    cases = [
        (["--predictions", str(tmp_path / "none")], "no predictions.csv"),
        (["--predictions", str(unlabelled)], "1 image(s) have no label (e.g. a.png)"),
        (["--datalist", str(dataset)], "--datalist needs --checkpoint"),
        (
            ["--datalist", str(dataset), "--checkpoint", str(checkpoint), "--downsample", "0"],
            "argument --downsample: must be an integer >= 1, got 0",
        ),
    ]
    for extra, message in cases:
        status = run_cli(["evaluate", "--output", str(tmp_path / "r"), "--no-progress", *extra])
        err = capsys.readouterr().err.strip()
        assert status == 2 and err.startswith("monai-glam evaluate: error: ") and "\n" not in err
        assert message in err
    plain = tmp_path / "plain"
    assert _run(["evaluate", "--datalist", str(dataset), "--checkpoint", str(checkpoint), "--output", str(plain),
                 "--num-bootstrap", "10", "--no-progress", "--no-overlays"]) == 0  # fmt: skip
    with pytest.raises(FileNotFoundError, match="run monai-glam infer with --network-frame"):
        _run(
            [
                "evaluate",
                "--predictions",
                str(plain / "predictions"),
                "--output",
                str(tmp_path / "n"),
                "--frame",
                "network",
            ]
        )
