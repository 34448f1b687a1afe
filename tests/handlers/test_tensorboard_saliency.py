from __future__ import annotations

import pytest
import torch
from monai.data import decollate_batch
from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from monai_glam.handlers import TensorBoardSaliencyHandler
from monai_glam.visualize import render_saliency_panel
from tests.handlers.engine_utils import replay_engine

SIZE = 16


def _output(batch: int = 2, label_dict: bool = True, fused: bool = True) -> dict:
    generator = torch.Generator().manual_seed(0)
    mask = torch.zeros(batch, 2, SIZE, SIZE)
    mask[:, 0, 4:8, 4:8] = 1.0
    labels = torch.tensor([[1.0, 0.0]] * batch)
    pred = {
        "saliency_global": torch.rand(batch, 2, SIZE // 4, SIZE // 4, generator=generator),
        "patch_boxes": torch.tensor([[[0, 0, 8, 8]]] * batch),
    }
    if fused:
        pred["saliency"] = torch.rand(batch, 2, SIZE, SIZE, generator=generator)
    return {
        "image": torch.rand(batch, 1, SIZE, SIZE, generator=generator),
        "pred": pred,
        "label": {"label": labels, "mask": mask, "mask_available": torch.ones(batch, 2)} if label_dict else labels,
    }


class RecordingWriter:
    """Stands in for SummaryWriter and keeps every add_image call."""

    def __init__(self) -> None:
        self.images: list[tuple[str, torch.Tensor, int]] = []

    def add_image(self, tag: str, image: torch.Tensor, global_step: int) -> None:
        self.images.append((tag, image, global_step))


@pytest.mark.parametrize(
    ("epoch_level", "interval", "epochs", "iterations", "expected_steps"),
    [
        (True, 2, 5, 2, [2, 4]),  # epochs 2 and 4
        (True, 1, 2, 3, [1, 2]),
        (False, 3, 2, 4, [3, 6]),  # iterations 3 and 6 of 8
    ],
)
def test_images_are_written_at_the_configured_interval_only(
    tmp_path, epoch_level, interval, epochs, iterations, expected_steps
):
    writer = SummaryWriter(log_dir=str(tmp_path))
    handler = TensorBoardSaliencyHandler(writer, interval=interval, epoch_level=epoch_level, max_size=32, tag="sal")
    engine = replay_engine([_output()] * iterations)
    handler.attach(engine)
    engine.run(range(iterations), max_epochs=epochs)
    writer.close()

    events = EventAccumulator(str(tmp_path), size_guidance={IMAGES: 0})
    events.Reload()
    assert events.Tags()[IMAGES] == ["sal"]
    images = events.Images("sal")
    assert [image.step for image in images] == expected_steps
    # the image panel plus one heat map per class, each SIZE x SIZE (below max_size, so not resized)
    assert {(image.height, image.width) for image in images} == {(SIZE, 3 * SIZE)}


@pytest.mark.parametrize(
    ("case", "output", "index", "expected_masks"),
    [
        ("batched, item 1, masks from the label dict", _output(), 1, True),
        ("decollated, item 1", decollate_batch(_output()), 1, True),
        ("index beyond the batch shows the last item", _output(), 5, True),
        ("plain label tensor: no outlines", _output(label_dict=False), 1, False),
    ],
)
def test_panel_shows_the_selected_item_with_its_masks(case, output, index, expected_masks):
    reference = _output()
    writer = RecordingWriter()
    handler = TensorBoardSaliencyHandler(writer, interval=1, epoch_level=False, index=index, max_size=32)
    engine = replay_engine([output])
    handler.attach(engine)
    engine.run(range(1), max_epochs=1)

    item = 1
    expected = render_saliency_panel(
        reference["image"][item],
        reference["pred"]["saliency"][item],
        reference["pred"]["patch_boxes"][item],
        max_size=32,
        masks=reference["label"]["mask"][item] if expected_masks else None,
    )
    assert [(tag, step) for tag, _, step in writer.images] == [("saliency", 1)], case
    torch.testing.assert_close(writer.images[0][1], expected)
    if expected_masks:  # the outlines really change the picture
        without = render_saliency_panel(
            reference["image"][item], reference["pred"]["saliency"][item], reference["pred"]["patch_boxes"][item], 32
        )
        assert not torch.equal(writer.images[0][1], without), case


def test_global_map_is_upsampled_when_the_fused_map_is_absent():
    output = _output(fused=False)
    writer = RecordingWriter()
    engine = replay_engine([output])
    TensorBoardSaliencyHandler(writer, epoch_level=False, max_size=32).attach(engine)
    engine.run(range(1), max_epochs=1)
    upsampled = output["pred"]["saliency_global"][0].repeat_interleave(4, dim=1).repeat_interleave(4, dim=2)
    expected = render_saliency_panel(
        output["image"][0], upsampled, output["pred"]["patch_boxes"][0], 32, masks=output["label"]["mask"][0]
    )
    torch.testing.assert_close(writer.images[0][1], expected)


@pytest.mark.parametrize(("kwargs", "match"), [({"interval": 0}, "interval"), ({"index": -1}, "index")])
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TensorBoardSaliencyHandler(RecordingWriter(), **kwargs)
