from __future__ import annotations

import json

import numpy as np
import pytest

from monai_glam.metrics import (
    build_evaluation_report,
    plot_froc_curves,
    plot_roc_curves,
    render_markdown,
    write_evaluation_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _inputs() -> dict:
    """Four images (two breasts × two views); benign labels vary, malignant labels are all negative."""
    labels = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    global_scores = np.array([[0.9, 0.2], [0.7, 0.3], [0.4, 0.1], [0.2, 0.2]])
    local_scores = np.array([[0.6, 0.1], [0.3, 0.3], [0.5, 0.2], [0.1, 0.1]])
    maps = np.zeros((4, 2, 32, 32))
    masks = np.zeros((4, 2, 32, 32), dtype=np.uint8)
    masks[0, 0, 4:12, 4:12] = 1
    masks[1, 0, 20:28, 20:28] = 1
    maps[0, 0, 4:12, 4:12] = 0.8  # a perfect map for image 0
    maps[1, 0, 4:12, 4:12] = 0.8  # image 1's map points at the wrong place
    return {
        "image_scores": {"global": global_scores, "local": local_scores},
        "image_labels": labels,
        "breast_ids": ["p1_L", "p1_L", "p1_R", "p1_R"],
        "saliency": maps,
        "masks": masks,
        "num_bootstrap": 50,
        "peak_sigma": 1.0,
        "peak_min_distance": 4,
    }


def test_report_contents():
    report = build_evaluation_report(**_inputs())
    json.dumps(report, allow_nan=False)  # strict JSON: undefined values are null
    assert report["class_names"] == ["benign", "malignant"]
    assert report["num_images"] == 4 and report["num_breasts"] == 2
    image_auc = report["classification"]["image"]
    assert image_auc["global"]["benign"]["auc"] == 1.0
    assert image_auc["local"]["benign"]["auc"] == 0.75  # 0.6 and 0.3 against 0.5 and 0.1
    assert image_auc["global"]["malignant"]["auc"] is None
    assert "all 4 labels are negative" in image_auc["global"]["malignant"]["note"]
    # Breasts: means (0.8, 0.3) for global and (0.45, 0.3) for local -> both rank the positive breast first.
    assert report["classification"]["breast"]["local"]["benign"]["auc"] == 1.0
    assert report["segmentation"]["benign"] == {"dice": 0.5, "iou": 0.5, "num_images": 2, "threshold": 0.5}
    assert report["segmentation"]["malignant"]["dice"] is None
    assert report["pointing_game"]["benign"] == {"accuracy": 0.5, "num_images": 2}
    assert report["froc"]["benign"]["num_lesions"] == 2
    assert report["froc"]["benign"]["sensitivity"]["1"] == 0.5  # one lesion found, one false positive
    assert report["froc"]["malignant"]["mean_sensitivity"] is None
    assert set(report["roc_curves"]["image"]["global"]) == {"benign"}


def test_report_without_maps_or_breasts():
    inputs = _inputs()
    report = build_evaluation_report(inputs["image_scores"]["global"], inputs["image_labels"], num_bootstrap=20)
    assert set(report["classification"]) == {"image"} and "segmentation" not in report
    assert list(report["classification"]["image"]) == ["score"]
    markdown = render_markdown(report)
    assert "ROC-AUC, image level" in markdown and "Localization" not in markdown


def test_markdown_summary():
    markdown = render_markdown(build_evaluation_report(**_inputs()))
    assert markdown.startswith("# GLAM evaluation")
    assert "| global | benign | 1.000 |" in markdown
    assert "| local | malignant | — | —–— |" in markdown
    assert "| benign | 0.50 | 0.500 | 0.500 | 0.500 | 2 |" in markdown
    assert "| class | 0.25 | 0.5 | 1 | 2 | 4 | 8 | mean | lesions |" in markdown


def test_written_files_are_complete_and_atomic(tmp_path):
    report = build_evaluation_report(**_inputs())
    paths = write_evaluation_report(report, tmp_path / "eval")
    assert set(paths) == {"json", "markdown", "roc_image", "roc_breast", "froc"}
    assert json.loads(paths["json"].read_text()) == report
    assert paths["markdown"].read_text() == render_markdown(report)
    for key in ("roc_image", "roc_breast", "froc"):
        assert paths[key].read_bytes().startswith(PNG_SIGNATURE)
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == sorted(p.name for p in paths.values())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"masks": None}, "together"),
        ({"image_scores": {}}, "empty"),
        ({"class_names": ("only",)}, "class_names"),
        ({"breast_ids": ["a", "b"]}, "2 group ids for 4 images"),
    ],
)
def test_report_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_evaluation_report(**{**_inputs(), **kwargs})


def test_plots_need_their_sections(tmp_path):
    inputs = _inputs()
    report = build_evaluation_report(inputs["image_scores"], inputs["image_labels"], num_bootstrap=10)
    with pytest.raises(ValueError, match="level 'breast'"):
        plot_roc_curves(report, tmp_path / "roc.png", level="breast")
    with pytest.raises(ValueError, match="no FROC"):
        plot_froc_curves(report, tmp_path / "froc.png")
    assert not list(tmp_path.iterdir())
