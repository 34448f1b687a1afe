from __future__ import annotations

import math
import pickle

import pytest
import torch
from monai.data import decollate_batch

from monai_glam.handlers import SaliencyDice, SaliencyMaskSelector
from monai_glam.metrics import SaliencyDiceMetric
from tests.handlers.engine_utils import replay_engine
from tests.metrics.test_saliency_dice import MASK, SALIENCY

# Per image and class (see tests/metrics/test_saliency_dice.py): [[0.5, 0], [NaN, 0.5], [1, NaN]], so the
# benign Dice over the images with a benign lesion is (0.5 + 1) / 2 and the malignant one (0 + 0.5) / 2.
EXPECTED = {0: 0.75, 1: 0.25}


def _output(index: slice, mask: torch.Tensor = MASK, available: torch.Tensor | None = None, label_dict: bool = True):
    n = SALIENCY[index].shape[0]
    labels = torch.ones(n, 2)
    label = {"label": labels, "mask": mask[index]} if label_dict else labels
    if label_dict and available is not None:
        label["mask_available"] = available[index]
    return {
        "image": torch.rand(n, 1, 4, 4),
        "pred": {"saliency": SALIENCY[index], "prob_global": torch.full((n, 2), 0.5)},
        "label": label,
    }


def _run(handler: SaliencyDice, outputs: list) -> tuple[float, torch.Tensor]:
    engine = replay_engine(outputs)
    handler.attach(engine, "dice")
    engine.run(range(len(outputs)), max_epochs=1)
    return engine.state.metrics["dice"], engine.state.metric_details["dice"]


BATCHES = [_output(slice(0, 2)), _output(slice(2, 3))]


@pytest.mark.parametrize(
    ("case", "outputs", "class_index", "expected"),
    [
        ("batched benign", BATCHES, 0, 0.75),
        ("batched malignant", BATCHES, 1, 0.25),
        ("decollated", [decollate_batch(b) for b in BATCHES], 0, 0.75),
        ("one batch", [_output(slice(0, 3))], 1, 0.25),
        # image 0's benign mask is flagged unavailable: only image 2 counts, Dice 1
        (
            "unavailable mask ignored",
            [_output(slice(0, 3), available=torch.tensor([[0.0, 1.0], [1.0, 1.0], [1.0, 1.0]]))],
            0,
            1.0,
        ),
        ("all masks empty", [_output(slice(0, 3), mask=torch.zeros_like(MASK))], 0, math.nan),
        ("plain label tensor: no masks", [_output(slice(0, 3), label_dict=False)], 1, math.nan),
    ],
)
def test_handler_value_matches_hand_computed_dice(case, outputs, class_index, expected):
    value, details = _run(SaliencyDice(class_index=class_index, threshold=0.5), outputs)
    assert isinstance(value, float), case
    if math.isnan(expected):
        assert math.isnan(value), case
    else:
        assert value == pytest.approx(expected), case
    assert details.shape == (3, 1)


def test_metric_details_hold_per_image_scores_with_nan_for_uncounted_images():
    _, details = _run(SaliencyDice(class_index=0), BATCHES)
    torch.testing.assert_close(details[:, 0], torch.tensor([0.5, math.nan, 1.0]), equal_nan=True)


def test_all_classes_with_mean_batch_reduction_gives_a_per_class_tensor():
    value, _ = _run(SaliencyDice(class_index=None, reduction="mean_batch"), BATCHES)
    torch.testing.assert_close(value, torch.tensor([EXPECTED[0], EXPECTED[1]]))


def test_threshold_is_applied():
    # at 0.8: benign image 0 -> 0.5 (0.9 >= 0.8), image 2 -> 0 (0.6 < 0.8); mean 0.25
    value, _ = _run(SaliencyDice(class_index=0, threshold=0.8), BATCHES)
    assert value == pytest.approx(0.25)


def test_user_output_transform_is_honoured():
    # swap the classes: score the malignant map against the malignant mask through a custom transform
    def transform(output):
        return output["pred"]["saliency"][:, 1:2], output["label"]["mask"][:, 1:2]

    value, _ = _run(SaliencyDice(class_index=0, output_transform=transform), BATCHES)
    assert value == pytest.approx(EXPECTED[1])


def test_the_metric_is_reset_every_run():
    handler = SaliencyDice(class_index=0)
    engine = replay_engine(BATCHES)
    handler.attach(engine, "dice")
    engine.run(range(2), max_epochs=1)
    engine.run(range(2), max_epochs=1)  # a second validation round: same value, not a running mean
    assert engine.state.metrics["dice"] == pytest.approx(0.75)
    assert engine.state.metric_details["dice"].shape == (3, 1)


@pytest.mark.parametrize("class_index", [0, 1, None])
def test_selector_shapes_and_pickling(class_index):
    selector = pickle.loads(pickle.dumps(SaliencyMaskSelector(class_index)))
    channels = 2 if class_index is None else 1
    y_pred, y = selector(BATCHES[0])
    assert y_pred.shape == y.shape == (2, channels, 4, 4)
    if class_index is not None:
        torch.testing.assert_close(y_pred, SALIENCY[:2, class_index : class_index + 1])
        torch.testing.assert_close(y, MASK[:2, class_index : class_index + 1])
    preds, masks = selector(decollate_batch(BATCHES[0]))
    assert [p.shape for p in preds] == [m.shape for m in masks] == [(channels, 4, 4)] * 2


def test_handler_is_picklable_and_keeps_its_arguments():
    handler = pickle.loads(pickle.dumps(SaliencyDice(class_index=1, threshold=0.3)))
    assert (handler.class_index, handler.threshold) == (1, 0.3)
    assert isinstance(handler.metric_fn, SaliencyDiceMetric)
    assert isinstance(handler._output_transform, SaliencyMaskSelector)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"class_index": 0, "threshold": 2.0}, "2.0"), ({"class_index": -1}, "-1"), ({"reduction": "max"}, "max")],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SaliencyDice(**kwargs)


def test_output_without_saliency_is_a_clear_error():
    outputs = [
        {"image": torch.zeros(1, 1, 4, 4), "pred": {"prob_global": torch.zeros(1, 2)}, "label": torch.ones(1, 2)}
    ]
    with pytest.raises(ValueError, match="saliency"):
        _run(SaliencyDice(class_index=0), outputs)
