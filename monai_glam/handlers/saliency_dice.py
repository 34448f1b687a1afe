"""Validation Dice of a thresholded saliency map against lesion masks, on the images that have them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from monai.utils import CommonKeys, min_version, optional_import

from monai_glam.utils.enums import GLAMKeys

if TYPE_CHECKING:
    import ignite.distributed as idist
    from ignite.engine import Engine
    from ignite.metrics import Metric
else:
    Engine, _ = optional_import("ignite.engine", "0.4.11", min_version, "Engine")
    Metric, _ = optional_import("ignite.metrics", "0.4.11", min_version, "Metric", as_type="base")
    idist, _ = optional_import("ignite.distributed", "0.4.11", min_version)

__all__ = ["SaliencyDice", "dice_per_image"]


def dice_per_image(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Dice of binary maps, one value per image.

    Args:
        prediction: ``(N, H, W)`` boolean.
        target: ``(N, H, W)`` boolean.

    Returns:
        ``(N,)`` float; 1 where both are empty.
    """
    intersection = (prediction & target).flatten(1).sum(dim=1).double()
    total = prediction.flatten(1).sum(dim=1).double() + target.flatten(1).sum(dim=1).double()
    return torch.where(total > 0, 2 * intersection / total.clamp(min=1), torch.ones_like(total))


class SaliencyDice(Metric):
    """Mean per-image Dice of ``saliency[:, c] >= threshold`` against the lesion mask of class ``c``.

    Following the GLAM evaluation (spec §7), only images whose class-``c`` mask is available and non-empty
    count. Masks are read from the engine's *batch* (they are not network inputs): ``batch[mask_key]``
    ``(N, C, H, W)`` and, when present, ``batch[mask_available_key]`` ``(N, C)`` flags items whose mask
    exists. The map is ``pred["saliency"]`` at input resolution. Without any eligible image the value is NaN.

    Args:
        class_index: channel to evaluate.
        threshold: saliency threshold.
        mask_key: batch key of the masks.
        mask_available_key: batch key of the per-class availability flags.
        output_transform: ignite's output transform (unused: the metric reads the engine state directly).
    """

    def __init__(
        self,
        class_index: int,
        threshold: float = 0.5,
        mask_key: str = "mask",
        mask_available_key: str = "mask_available",
        output_transform: Callable = lambda x: x,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold!r}.")
        self.class_index = int(class_index)
        self.threshold = float(threshold)
        self.mask_key = mask_key
        self.mask_available_key = mask_available_key
        super().__init__(output_transform=output_transform)

    def reset(self) -> None:
        self._sum = 0.0
        self._count = 0

    def update(self, output: Any) -> None:  # the work happens in iteration_completed
        pass

    def iteration_completed(self, engine: Engine) -> None:
        batch = engine.state.batch
        if not isinstance(batch, dict) or self.mask_key not in batch:
            return
        pred = engine.state.output[CommonKeys.PRED]
        saliency = pred[GLAMKeys.SALIENCY.value][:, self.class_index].detach()
        mask = torch.as_tensor(batch[self.mask_key])[:, self.class_index].to(saliency.device) > 0
        eligible = mask.flatten(1).any(dim=1)
        if self.mask_available_key in batch:
            available = torch.as_tensor(batch[self.mask_available_key])[:, self.class_index].to(saliency.device)
            eligible = eligible & (available > 0)
        if not bool(eligible.any()):
            return
        scores = dice_per_image(saliency[eligible] >= self.threshold, mask[eligible])
        self._sum += float(scores.sum())
        self._count += int(eligible.sum())

    def compute(self) -> float:
        total, count = self._sum, self._count
        if idist.get_world_size() > 1:
            total = float(idist.all_reduce(total))
            count = int(idist.all_reduce(count))
        return total / count if count > 0 else float("nan")
