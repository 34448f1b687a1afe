"""TensorBoard images of the input, the selected patches and the benign / malignant saliency maps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from monai.utils import CommonKeys, min_version, optional_import

from monai_glam.utils.enums import GLAMKeys
from monai_glam.visualize import render_saliency_panel

if TYPE_CHECKING:
    from ignite.engine import Engine, Events
    from torch.utils.tensorboard import SummaryWriter
else:
    Engine, _ = optional_import("ignite.engine", "0.4.11", min_version, "Engine")
    Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")
    SummaryWriter, _ = optional_import("torch.utils.tensorboard", name="SummaryWriter")

__all__ = ["TensorBoardSaliencyHandler"]


def _item(value: Any, index: int) -> Any:
    """Item ``index`` of a batched tensor / dict, or of a decollated list."""
    if isinstance(value, list):
        return value[index]
    if isinstance(value, dict):
        return {key: _item(v, index) for key, v in value.items()}
    return value[index] if isinstance(value, torch.Tensor) and value.dim() > 0 else value


class TensorBoardSaliencyHandler:
    """Every ``interval`` epochs (or iterations) log one image of the batch as a saliency panel.

    The panel (see :func:`~monai_glam.visualize.render_saliency_panel`) shows the downsampled input with the
    selected patch boxes, then one heat-map overlay per class: the fused map ``saliency`` when the output has
    it, otherwise the global map ``saliency_global``. It reads ``engine.state.output`` (image and the
    network's dict), batched or decollated.

    Args:
        summary_writer: the run's shared ``SummaryWriter`` (one writer keeps one event file).
        interval: how often to log.
        epoch_level: count epochs (True) or iterations (False).
        index: which item of the batch to show.
        max_size: longest side of each panel in pixels (mammograms are downsampled for TensorBoard).
        tag: TensorBoard tag.
    """

    def __init__(
        self,
        summary_writer: SummaryWriter,
        interval: int = 1,
        epoch_level: bool = True,
        index: int = 0,
        max_size: int = 384,
        tag: str = "saliency",
    ) -> None:
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval!r}.")
        self.writer = summary_writer
        self.interval = int(interval)
        self.epoch_level = bool(epoch_level)
        self.index = int(index)
        self.max_size = int(max_size)
        self.tag = tag

    def attach(self, engine: Engine) -> None:
        event = Events.EPOCH_COMPLETED if self.epoch_level else Events.ITERATION_COMPLETED
        engine.add_event_handler(event(every=self.interval), self)

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        if isinstance(output, list):
            output = output[min(self.index, len(output) - 1)]
            image, pred = output[CommonKeys.IMAGE], output[CommonKeys.PRED]
        else:
            index = min(self.index, output[CommonKeys.IMAGE].shape[0] - 1)
            image, pred = _item(output[CommonKeys.IMAGE], index), _item(output[CommonKeys.PRED], index)
        saliency = pred.get(GLAMKeys.SALIENCY.value)
        if saliency is None:
            global_map = pred[GLAMKeys.SALIENCY_GLOBAL.value][None]
            saliency = F.interpolate(global_map, size=image.shape[-2:], mode="nearest")[0]
        panel = render_saliency_panel(image, saliency, pred.get(GLAMKeys.PATCH_BOXES.value), max_size=self.max_size)
        step = engine.state.epoch if self.epoch_level else engine.state.iteration
        self.writer.add_image(self.tag, panel, global_step=step)
