"""The one evaluation path: which images count for localization, and the report built from memory."""

from __future__ import annotations

import numpy as np
import pytest

from monai_glam.metrics import EvaluationCollector, localization_truth
from monai_glam.writers import ImagePrediction

_MASK = np.zeros((4, 6), dtype=np.uint8)
_MASK[1:3, 2:4] = 255


@pytest.mark.parametrize(
    ("masks", "label", "counts", "first_class_sum"),
    [
        ([_MASK, _MASK], (1, 1), True, 4),  # every mask read from a file
        ([_MASK, None], (1, 0), True, 4),  # malignant: no file, negative label -> known empty
        ([None, None], (0, 0), True, 0),  # a negative image without any file
        ([_MASK, None], (1, 1), False, None),  # a positive class without its mask: the lesion is unknown
        ([None, None], None, False, None),  # no label, no masks
    ],
)
def test_localization_rule(masks, label, counts, first_class_sum) -> None:
    truth = localization_truth(masks, label, (4, 6))
    assert (truth is not None) == counts
    if truth is not None:
        assert truth.shape == (2, 4, 6) and truth.dtype == np.uint8
        assert int(truth[0].sum()) == first_class_sum and set(np.unique(truth)) <= {0, 1}


def test_localization_rule_rejects_other_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(4, 6\)"):
        localization_truth([np.zeros((3, 3)), None], (1, 0), (4, 6))


def _prediction(image_id: str, label: tuple[int, int], score: float) -> ImagePrediction:
    return ImagePrediction(image_id, f"{image_id}.png", (score, score), (score, score), label, "L", "CC", image_id)


def test_collector_builds_the_report_from_memory() -> None:
    collector = EvaluationCollector(frame="network")
    perfect = (_MASK > 0).astype(np.float32) * 0.9
    assert collector.add(_prediction("a", (1, 0), 0.9), np.stack([perfect, np.zeros_like(perfect)]), [_MASK, None])
    assert collector.add(_prediction("b", (0, 0), 0.1), np.zeros((2, 4, 6)), [None, None])
    assert not collector.add(_prediction("c", (0, 1), 0.2), np.zeros((2, 4, 6)), [None, None])
    assert not collector.add(_prediction("d", (1, 1), 0.8), None, [])
    assert collector.localization_ids == ["a", "b"] and len(collector) == 4
    report = collector.report(thresholds=(0.5, 0.5), num_bootstrap=10, peak_sigma=0.5, peak_min_distance=1)
    assert report["num_images"] == 4 and report["inputs"]["num_localization_images"] == 2
    assert report["segmentation"]["benign"]["dice"] == pytest.approx(1.0)
    assert report["segmentation"]["benign"]["num_images"] == 1  # Dice over the images with a benign lesion


def test_collector_errors() -> None:
    with pytest.raises(ValueError, match="frame"):
        EvaluationCollector(frame="raw")
    with pytest.raises(ValueError, match="downsample"):
        EvaluationCollector(downsample=0)
    with pytest.raises(ValueError, match="no image was evaluated"):
        EvaluationCollector().report()
    unlabelled = EvaluationCollector()
    unlabelled.add(ImagePrediction("x", "x.png", (0.1, 0.2), (0.1, 0.2)), None, [])
    with pytest.raises(ValueError, match="no label"):
        unlabelled.report()
    with pytest.raises(ValueError, match=r"y\.png"):
        EvaluationCollector().add(_prediction("y", (1, 0), 0.5), np.zeros((2, 4, 6)), [np.zeros((2, 2)), None])
