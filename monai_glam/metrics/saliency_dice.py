"""Dice of a thresholded saliency map against the lesion masks, on the images whose mask is non-empty."""

from __future__ import annotations

from typing import Any

import torch
from monai.metrics import CumulativeIterationMetric
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction

__all__ = ["SaliencyDiceMetric", "compute_saliency_dice"]

#: Reductions after which an entry with no counted image is a mean of nothing (reported as NaN, not 0).
_MEAN_REDUCTIONS = (MetricReduction.MEAN, MetricReduction.MEAN_BATCH, MetricReduction.MEAN_CHANNEL)


def compute_saliency_dice(saliency: torch.Tensor, mask: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per-image, per-class Dice of ``saliency >= threshold`` against ``mask > 0``.

    Dice is ``2 |P ∩ G| / (|P| + |G|)`` over the spatial dimensions. It is only defined where the mask ``G`` is
    non-empty: an image whose class mask is all zeros (no lesion of that class, or no mask file for it) gives
    NaN there, so a mean over the NaN-free entries counts only the images that have the lesion.

    Args:
        saliency: ``(N, C, *spatial)`` maps in ``[0, 1]``, e.g. ``(N, C, H, W)``.
        mask: ``(N, C, *spatial)`` ground truth, non-zero is lesion; moved to ``saliency``'s device.
        threshold: maps are binarised with ``saliency >= threshold``.

    Returns:
        ``(N, C)`` float32 Dice in ``[0, 1]``, NaN where the mask is empty.

    Raises:
        ValueError: when the shapes differ or have no spatial dimension.
    """
    if saliency.dim() < 3 or tuple(saliency.shape) != tuple(mask.shape):
        raise ValueError(
            "saliency and mask must both be (N, C, *spatial) with the same shape, "
            f"got {tuple(saliency.shape)} and {tuple(mask.shape)}."
        )
    prediction = (saliency >= threshold).flatten(2)
    target = (mask.to(saliency.device) > 0).flatten(2)
    intersection = (prediction & target).sum(dim=2).double()
    target_size = target.sum(dim=2).double()
    total = prediction.sum(dim=2).double() + target_size
    nan = torch.full_like(total, float("nan"))
    return torch.where(target_size > 0, 2.0 * intersection / total.clamp(min=1.0), nan).float()


class SaliencyDiceMetric(CumulativeIterationMetric):
    """Dice of a binarised saliency map against the lesion masks, averaged over the images that have a lesion.

    Every call scores each image and class with :func:`compute_saliency_dice` (``(N, C)``, NaN where the class
    mask is empty) and appends the scores to the buffer; :meth:`aggregate` averages the non-NaN entries. Masks of
    classes without a ground-truth file are all zeros in a GLAM batch, so those images never count. Under
    distributed data parallel the buffers of every rank are gathered by MONAI before aggregation.

    Example::

        metric = SaliencyDiceMetric(threshold=0.5)
        for batch in loader:
            out = glam(batch["image"])
            metric(out["saliency"], batch["mask"])  # (N, C, H, W) each
        per_class = metric.aggregate()  # (C,): mean Dice over the images with a lesion of that class

    Args:
        threshold: saliency maps are binarised with ``saliency >= threshold``; in ``[0, 1]``.
        class_index: score only this channel of the ``(N, C, ...)`` inputs (the buffer is then ``(N, 1)``);
            ``None`` scores every class.
        reduction: how :meth:`aggregate` reduces the ``(N, C)`` buffer, over its non-NaN entries, as in MONAI
            (:class:`~monai.utils.MetricReduction`): ``"mean_batch"`` (default) gives the ``(C,)`` per-class means,
            ``"mean"`` one value, shape ``(1,)`` (the per-image means over classes, then their mean over images),
            ``"none"`` the buffer itself. A mean over no counted entry is NaN.
        get_not_nans: also return the number of counted entries behind each aggregated value.

    Raises:
        ValueError: on a ``threshold`` outside ``[0, 1]``, a negative ``class_index`` or an unknown ``reduction``.
    """

    def __init__(
        self,
        threshold: float = 0.5,
        class_index: int | None = None,
        reduction: MetricReduction | str = MetricReduction.MEAN_BATCH,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= float(threshold) <= 1.0:  # also rejects NaN
            raise ValueError(f"threshold must be in [0, 1], got {threshold!r}.")
        if class_index is not None and int(class_index) < 0:
            raise ValueError(f"class_index must be >= 0 or None, got {class_index!r}.")
        self.threshold = float(threshold)
        self.class_index = None if class_index is None else int(class_index)
        self.reduction = MetricReduction(reduction)  # ValueError naming an unknown reduction
        self.get_not_nans = get_not_nans

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        """Score one batch.

        Args:
            y_pred: ``(N, C, *spatial)`` saliency maps in ``[0, 1]``.
            y: ``(N, C, *spatial)`` masks, non-zero is lesion.

        Returns:
            ``(N, C)`` Dice, or ``(N, 1)`` with ``class_index``; NaN where the mask is empty.
        """
        if y is None:
            raise ValueError("SaliencyDiceMetric needs the ground-truth masks y, got None.")
        if self.class_index is not None:
            if y_pred.dim() < 2 or self.class_index >= y_pred.shape[1]:
                raise ValueError(
                    f"class_index {self.class_index} is out of range for y_pred of shape {tuple(y_pred.shape)}."
                )
            index = slice(self.class_index, self.class_index + 1)
            y_pred, y = y_pred[:, index], y[:, index]
        return compute_saliency_dice(y_pred, y, self.threshold)

    def aggregate(
        self, reduction: MetricReduction | str | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Reduce the buffered ``(N, C)`` scores over their non-NaN entries.

        Args:
            reduction: overrides the constructor's ``reduction`` for this call.

        Returns:
            The reduced scores (``(C,)`` for ``"mean_batch"``, ``(1,)`` for ``"mean"`` as in MONAI, ``(N, C)`` for
            ``"none"``), NaN where a mean has no counted entry; with ``get_not_nans`` also the counts behind them.

        Raises:
            ValueError: when nothing has been buffered yet.
        """
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(f"the data to aggregate must be a PyTorch Tensor (call the metric first), got {data!r}.")
        mode = MetricReduction(reduction or self.reduction)
        scores, not_nans = do_metric_reduction(data, mode)
        if mode in _MEAN_REDUCTIONS:
            scores = torch.where(not_nans > 0, scores, torch.full_like(scores, float("nan")))
        return (scores, not_nans) if self.get_not_nans else scores
