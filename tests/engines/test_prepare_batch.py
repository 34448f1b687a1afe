"""GLAMPrepareBatch: the engines' label becomes a dict that carries the ground-truth masks."""

from __future__ import annotations

import pytest
import torch

from monai_glam.engines import GLAMPrepareBatch, ScoreSelector


@pytest.mark.parametrize("with_masks", [True, False])
def test_label_dict(with_masks: bool) -> None:
    batch = {"image": torch.rand(2, 1, 8, 6), "label": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}
    if with_masks:
        batch["mask"] = torch.zeros(2, 2, 8, 6)
        batch["mask_available"] = torch.ones(2, 2)
    image, target = GLAMPrepareBatch()(batch, torch.device("cpu"))
    assert torch.equal(image, batch["image"])
    assert set(target) == ({"label", "mask", "mask_available"} if with_masks else {"label"})
    assert torch.equal(target["label"], batch["label"])
    scores, labels = ScoreSelector("prob_global", 1)({"pred": {"prob_global": torch.rand(2, 2)}, "label": target})
    assert labels.tolist() == [0.0, 1.0] and scores.shape == (2,)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({"label": torch.zeros(1, 2)}, "'image'"),
        ({"image": torch.zeros(1, 1, 4, 4)}, "labels"),
        (torch.zeros(1), "dict"),
    ],
)
def test_bad_batches(batch, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GLAMPrepareBatch()(batch)


def test_channels_last_images_keep_their_values() -> None:
    batch = {"image": torch.rand(2, 1, 8, 6), "label": torch.zeros(2, 2), "mask": torch.zeros(2, 2, 8, 6)}
    image, target = GLAMPrepareBatch(channels_last=True)(batch, torch.device("cpu"))
    assert image.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(image, batch["image"])
    assert target["mask"].is_contiguous()  # only the network input changes layout
