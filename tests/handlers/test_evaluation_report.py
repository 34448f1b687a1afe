"""EvaluationReportWriter on a dummy engine: what it counts and what it writes."""

from __future__ import annotations

import json

import pytest
import torch
from monai.data import MetaTensor

from monai_glam.handlers import EvaluationReportWriter
from tests.handlers.engine_utils import replay_engine


def _output(labels, masks, available, scores, names):
    mask = torch.as_tensor(masks, dtype=torch.float32)
    image = MetaTensor(torch.zeros(len(labels), 1, *mask.shape[-2:]))
    image.meta["filename_or_obj"] = names
    return {
        "image": image,
        "pred": {
            "prob_global": torch.as_tensor(scores, dtype=torch.float32),
            "prob_local": torch.as_tensor(scores, dtype=torch.float32),
            "saliency": mask * 0.9,  # a perfect map of every mask
        },
        "label": {
            "label": torch.as_tensor(labels, dtype=torch.float32),
            "mask": mask,
            "mask_available": torch.as_tensor(available, dtype=torch.float32),
        },
    }


def test_counts_known_ground_truth_and_writes_the_report(tmp_path) -> None:
    lesion = [[0.0] * 4, [0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0] * 4]
    empty = [[0.0] * 4] * 4
    batch = _output(
        labels=[[1, 0], [0, 0], [0, 1]],
        masks=[[lesion, empty], [empty, empty], [empty, empty]],
        # image 0: benign mask read, malignant negative -> counts; image 1: negative, no files -> counts;
        # image 2: malignant positive without its mask -> does not count.
        available=[[1, 0], [0, 0], [0, 0]],
        scores=[[0.9, 0.1], [0.1, 0.2], [0.2, 0.8]],
        names=["a.png", "b.png", "a.png"],
    )
    writer = EvaluationReportWriter(tmp_path, thresholds=0.5, num_bootstrap=10, peak_sigma=0.5, peak_min_distance=1)
    engine = replay_engine([batch])
    writer.attach(engine)
    engine.run(range(1), max_epochs=1)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["num_images"] == 3 and report["inputs"]["num_localization_images"] == 2
    assert report["segmentation"]["benign"]["dice"] == pytest.approx(1.0)
    assert report["segmentation"]["benign"]["num_images"] == 1
    ids = [line.split(",")[0] for line in (tmp_path / "predictions.csv").read_text().splitlines()[1:]]
    assert ids == ["a", "b", "a-2"]  # unique ids, as monai-glam infer names them
    assert writer.report == report


def test_rejects_bad_thresholds_and_decollated_outputs(tmp_path) -> None:
    with pytest.raises(ValueError, match="thresholds"):
        EvaluationReportWriter(tmp_path, thresholds=(0.5, 1.5))
    engine = replay_engine([[{"pred": {}, "label": torch.zeros(2)}]])
    EvaluationReportWriter(tmp_path).attach(engine)
    with pytest.raises(ValueError, match="decollate=False"):
        engine.run(range(1), max_epochs=1)
