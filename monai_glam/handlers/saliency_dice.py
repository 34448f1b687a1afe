"""Validation Dice of a thresholded saliency map against the lesion masks, as a MONAI metric handler."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from monai.handlers.ignite_metric import IgniteMetricHandler
from monai.utils import MetricReduction

from monai_glam.metrics.saliency_dice import SaliencyDiceMetric
from monai_glam.utils.enums import BatchKeys, GLAMKeys

__all__ = ["SaliencyDice", "SaliencyMaskSelector", "dice_per_image"]


def dice_per_image(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Dice of binary maps, one value per image.

    Args:
        prediction: ``(N, H, W)`` boolean.
        target: ``(N, H, W)`` boolean.

    Returns:
        ``(N,)`` float64; 1 where both are empty.
    """
    intersection = (prediction & target).flatten(1).sum(dim=1).double()
    total = prediction.flatten(1).sum(dim=1).double() + target.flatten(1).sum(dim=1).double()
    return torch.where(total > 0, 2 * intersection / total.clamp(min=1), torch.ones_like(total))


class SaliencyMaskSelector:
    """``output_transform`` giving ``(saliency, mask)`` of one class (or all) from a GLAM engine output.

    The output is ``{"image": ..., "pred": GLAM's dict, "label": {"label": (N, C), "mask": (N, C, H, W),
    "mask_available": (N, C)}}``, batched, or a decollated list of such dicts with the batch dimension removed.
    The mask is multiplied by ``mask_available`` when the output carries it (an unavailable class never counts,
    even with a non-zero mask). When the label is a plain ``(N, C)`` tensor, or a dict without ``mask``, the
    images have no masks: the returned mask is all zeros, which the Dice metric does not count.

    A plain class rather than a lambda, so bundle configs can build it and the handler stays picklable.

    Args:
        class_index: the channel to return (kept as a size-1 channel dimension); ``None`` returns every class.

    Returns (from ``__call__``):
        ``(y_pred, y)``: ``(N, 1, H, W)`` (or ``(N, C, H, W)``) saliency and mask for a batched output, or two lists
        of ``(1, H, W)`` (``(C, H, W)``) tensors for a decollated one.

    Raises:
        ValueError: on a negative ``class_index``, or an output without ``pred["saliency"]``.
    """

    def __init__(self, class_index: int | None = None) -> None:
        if class_index is not None and int(class_index) < 0:
            raise ValueError(f"class_index must be >= 0 or None, got {class_index!r}.")
        self.class_index = None if class_index is None else int(class_index)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(class_index={self.class_index!r})"

    def _select(self, value: torch.Tensor, channel_dim: int) -> torch.Tensor:
        if self.class_index is None:
            return value
        return value.narrow(channel_dim, self.class_index, 1)

    def _pair(self, output: Mapping[str, Any], batched: bool) -> tuple[torch.Tensor, torch.Tensor]:
        pred = output.get(BatchKeys.PRED)
        if not isinstance(pred, Mapping) or GLAMKeys.SALIENCY not in pred:
            keys = sorted(pred) if isinstance(pred, Mapping) else type(pred).__name__
            raise ValueError(f"the engine output has no pred['{GLAMKeys.SALIENCY}'] map (pred: {keys}).")
        saliency = torch.as_tensor(pred[GLAMKeys.SALIENCY])
        label = output.get(BatchKeys.LABEL)
        mask = label.get(BatchKeys.MASK) if isinstance(label, Mapping) else None
        if mask is None:  # plain label tensor (or no label): no ground-truth masks
            mask = torch.zeros_like(saliency)
        else:
            mask = torch.as_tensor(mask).to(saliency.device)
            available = label.get(BatchKeys.MASK_AVAILABLE)
            if available is not None:
                available = torch.as_tensor(available).to(mask.device, mask.dtype)
                mask = mask * available.reshape(*available.shape, *([1] * (mask.dim() - available.dim())))
        channel_dim = 1 if batched else 0
        return self._select(saliency, channel_dim), self._select(mask, channel_dim)

    def __call__(
        self, output: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> tuple[torch.Tensor | list[torch.Tensor], torch.Tensor | list[torch.Tensor]]:
        if isinstance(output, Mapping):
            return self._pair(output, batched=True)
        pairs = [self._pair(item, batched=False) for item in output]
        return [p for p, _ in pairs], [m for _, m in pairs]


class SaliencyDice(IgniteMetricHandler):
    """Mean Dice of ``saliency[:, c] >= threshold`` against the class-``c`` lesion mask, over the images that have one.

    Wraps :class:`~monai_glam.metrics.SaliencyDiceMetric`: each image with a non-empty class-``c`` mask gets one
    Dice score; images without a lesion of that class, or without a mask for it (all zeros), do not count. The
    value is the mean over the counted images, NaN when none counted. By default the pair is read from
    ``engine.state.output`` with :class:`SaliencyMaskSelector` (``pred["saliency"]``, ``label["mask"]``), so the
    engine must put the masks in its output's label dict (see that class). Per-image scores are stored in
    ``engine.state.metric_details[name]`` (``(N, 1)``, NaN where not counted) when ``save_details`` is set. Under
    distributed data parallel the scores of every rank are gathered before averaging, as in MONAI's ``MeanDice``.

    Args:
        class_index: channel to evaluate; ``None`` scores every class (the value is then reduced with
            ``reduction``).
        threshold: saliency threshold, in ``[0, 1]``.
        output_transform: maps ``engine.state.output`` to ``(y_pred, y)``, both ``(N, C', H, W)`` (or lists of
            ``(C', H, W)``); every channel it returns is scored. Defaults to ``SaliencyMaskSelector(class_index)``.
        reduction: reduction of the per-image scores, as in :class:`~monai_glam.metrics.SaliencyDiceMetric`;
            ``"mean"`` gives one number.
        save_details: store the per-image scores in ``engine.state.metric_details``.

    Raises:
        ValueError: on a ``threshold`` outside ``[0, 1]`` or a negative ``class_index``.
    """

    def __init__(
        self,
        class_index: int | None = None,
        threshold: float = 0.5,
        output_transform: Callable[[Any], Any] | None = None,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        save_details: bool = True,
    ) -> None:
        metric_fn = SaliencyDiceMetric(threshold=threshold, reduction=reduction)
        selector = SaliencyMaskSelector(class_index)
        self.class_index = selector.class_index
        self.threshold = metric_fn.threshold
        super().__init__(
            metric_fn=metric_fn,
            output_transform=selector if output_transform is None else output_transform,
            save_details=save_details,
        )
