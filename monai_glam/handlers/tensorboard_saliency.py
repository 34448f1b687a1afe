"""TensorBoard images of the input, the selected patches and the benign / malignant saliency maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from monai.utils import min_version, optional_import

from monai_glam.utils.enums import BatchKeys, GLAMKeys
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
    if isinstance(value, Mapping):
        return {key: _item(v, index) for key, v in value.items()}
    return value[index] if isinstance(value, torch.Tensor) and value.dim() > 0 else value


class TensorBoardSaliencyHandler:
    """Every ``interval`` epochs (or iterations) log one image of the batch as a saliency panel.

    The panel (see :func:`~monai_glam.visualize.render_saliency_panel`) shows the downsampled input with the
    selected patch boxes, then one heat-map overlay per class: the fused map ``saliency`` when the output has
    it, otherwise the global map ``saliency_global``. When the output's label is the dict
    ``{"label", "mask", "mask_available"}`` the ground-truth mask outlines are drawn too; a plain ``(N, C)`` label
    tensor means no masks. Only ``engine.state.output`` is read (``image`` ``(N, 1, H, W)``, ``pred`` and
    ``label``), batched or decollated.

    Args:
        summary_writer: the run's shared ``SummaryWriter`` (one writer keeps one event file).
        interval: how often to log.
        epoch_level: count epochs (True) or iterations (False).
        index: which item of the batch to show (the last one when the batch is smaller).
        max_size: longest side of each panel in pixels (mammograms are downsampled for TensorBoard).
        tag: TensorBoard tag.

    Raises:
        ValueError: on an ``interval`` below 1 or a negative ``index``.
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
        if index < 0:
            raise ValueError(f"index must be >= 0, got {index!r}.")
        self.writer = summary_writer
        self.interval = int(interval)
        self.epoch_level = bool(epoch_level)
        self.index = int(index)
        self.max_size = int(max_size)
        self.tag = tag

    def attach(self, engine: Engine) -> None:
        event = Events.EPOCH_COMPLETED if self.epoch_level else Events.ITERATION_COMPLETED
        engine.add_event_handler(event(every=self.interval), self)

    def _select_item(self, output: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        """One item of the output, without its batch dimension."""
        if isinstance(output, Mapping):
            index = min(self.index, output[BatchKeys.IMAGE].shape[0] - 1)
            return {key: _item(value, index) for key, value in output.items()}
        return output[min(self.index, len(output) - 1)]

    def __call__(self, engine: Engine) -> None:
        item = self._select_item(engine.state.output)
        image, pred = item[BatchKeys.IMAGE], item[BatchKeys.PRED]
        saliency = pred.get(GLAMKeys.SALIENCY)
        if saliency is None:
            global_map = pred[GLAMKeys.SALIENCY_GLOBAL][None]
            saliency = F.interpolate(global_map, size=image.shape[-2:], mode="nearest")[0]
        label = item.get(BatchKeys.LABEL)
        masks = label.get(BatchKeys.MASK) if isinstance(label, Mapping) else None
        panel = render_saliency_panel(
            image, saliency, pred.get(GLAMKeys.PATCH_BOXES), max_size=self.max_size, masks=masks
        )
        step = engine.state.epoch if self.epoch_level else engine.state.iteration
        self.writer.add_image(self.tag, panel, global_step=step)
