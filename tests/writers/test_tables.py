"""Prediction tables: per-image rows, breast and exam means over views, and reading them back."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from monai_glam.writers import ImagePrediction, aggregate_predictions, read_predictions, write_prediction_tables


def _predictions() -> list[ImagePrediction]:
    def make(image_id, laterality, view, label, g, loc, exam="e1"):
        return ImagePrediction(image_id, f"/d/{image_id}.png", g, loc, label, laterality, view, "p1", exam)

    return [
        make("a", "L", "CC", (0, 1), (0.2, 0.8), (0.1, 0.6)),
        make("b", "L", "MLO", (0, 1), (0.4, 0.6), (0.3, 0.8)),
        make("c", "R", "CC", (1, 0), (0.9, 0.1), (0.7, 0.3)),
        make("d", "R", "CC", None, (0.5, 0.5), (0.5, 0.5), exam=""),  # no exam id: grouped by patient
    ]


def test_breast_and_exam_means_over_views() -> None:
    rows = aggregate_predictions(_predictions()[:3], "breast")
    assert [r["breast_id"] for r in rows] == ["e1_L", "e1_R"]
    left = rows[0]
    assert left["num_views"] == "2" and left["views"] == "CC;MLO"
    assert (left["label_benign"], left["label_malignant"]) == ("0", "1")
    assert float(left["prob_global_benign"]) == pytest.approx(0.3)
    assert float(left["prob_global_malignant"]) == pytest.approx(0.7)
    assert float(left["prob_local_benign"]) == pytest.approx(0.2)
    assert float(left["prob_local_malignant"]) == pytest.approx(0.7)
    exams = aggregate_predictions(_predictions()[:3], "exam")
    assert len(exams) == 1 and exams[0]["views"] == "L-CC;L-MLO;R-CC"
    assert (exams[0]["label_benign"], exams[0]["label_malignant"]) == ("1", "1")  # the largest label of the exam
    assert float(exams[0]["prob_global_benign"]) == pytest.approx((0.2 + 0.4 + 0.9) / 3)


@pytest.mark.parametrize(
    ("prediction", "breast", "exam"),
    [
        (ImagePrediction("x", "x.png", (0.1, 0.2), (0.3, 0.4), exam_id="7", laterality="R"), "7_R", "7"),
        (ImagePrediction("x", "x.png", (0.1, 0.2), (0.3, 0.4), patient_id="p", laterality="L"), "p_L", "p"),
        (ImagePrediction("x", "x.png", (0.1, 0.2), (0.3, 0.4), exam_id="7"), "x", "7"),  # laterality unknown
        (ImagePrediction("x", "x.png", (0.1, 0.2), (0.3, 0.4), laterality="L"), "x", "x"),  # exam unknown
    ],
)
def test_breast_and_exam_ids(prediction: ImagePrediction, breast: str, exam: str) -> None:
    assert prediction.breast_id == breast
    assert prediction.exam_key == exam


def test_unknown_labels_leave_the_aggregate_label_empty() -> None:
    rows = aggregate_predictions(_predictions(), "exam")
    assert [r["exam_id"] for r in rows] == ["e1", ""]
    assert rows[1]["label_benign"] == "" and rows[1]["num_views"] == "1"
    with pytest.raises(ValueError, match="level"):
        aggregate_predictions(_predictions(), "patient")


def test_tables_round_trip(tmp_path: Path) -> None:
    predictions = _predictions()
    predictions[0].masks = {"benign": "/d/a_b.png", "malignant": "/d/a_m.png"}
    paths = write_prediction_tables(predictions, tmp_path)
    assert sorted(p.name for p in paths.values()) == ["breasts.csv", "exams.csv", "predictions.csv"]
    with open(paths["images"], newline="") as handle:
        header = next(csv.reader(handle))
    assert header[:7] == ["image_id", "image", "patient_id", "exam_id", "breast_id", "laterality", "view"]
    assert "prob_global_malignant" in header and "prob_local_benign" in header
    back, names = read_predictions(paths["images"])
    assert names == ("benign", "malignant")
    assert back == predictions
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary file


def test_read_predictions_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such predictions file"):
        read_predictions(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("image_id,score\nx,1\n")
    with pytest.raises(ValueError, match="not a predictions table"):
        read_predictions(bad)
    write_prediction_tables(_predictions()[:1], tmp_path)
    text = (tmp_path / "predictions.csv").read_text().replace("0.2,", "zero,", 1)
    (tmp_path / "predictions.csv").write_text(text)
    with pytest.raises(ValueError, match="line 2"):
        read_predictions(tmp_path / "predictions.csv")
