"""Top-t% pooling: the multiple-instance aggregation GLAM uses to turn saliency maps into image scores."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TopTPooling", "top_t_count"]


def top_t_count(num_values: int, fraction: float) -> int:
    """Number of values that top-t% pooling averages: ``round(num_values * fraction)``, at least one.

    Python's ``round`` (half to even) is used because that is how the published model sized its pooling
    (22,080 map pixels at t = 0.03 give 662 values).
    """
    return max(1, int(round(int(num_values) * fraction)))


class TopTPooling(nn.Module):
    """Mean of the largest ``t`` fraction of values over every dimension from ``start_dim`` on.

    For a saliency map ``(N, C, H, W)`` and ``start_dim=2`` this gives ``(N, C)``: for each image and class,
    the mean of the ``round(H * W * t)`` highest map values. GLAM uses it with ``t = 0.03`` on the global maps
    and ``t = 0.3`` on the patch maps (all patches of an image together, or each patch; see ``GLAM(local_pooling=)``).

    Args:
        fraction: the fraction ``t`` of values to average, in ``(0, 1]``.
        start_dim: first dimension that is pooled; the dimensions before it are kept.

    Raises:
        ValueError: when ``fraction`` is outside ``(0, 1]`` or ``start_dim`` is negative.
    """

    def __init__(self, fraction: float, start_dim: int = 2) -> None:
        super().__init__()
        if not 0.0 < float(fraction) <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction!r}.")
        if start_dim < 1:
            raise ValueError(f"start_dim must be >= 1, got {start_dim!r}.")
        self.fraction = float(fraction)
        self.start_dim = int(start_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool ``x`` of shape ``(N, ..., *pooled)`` to ``x.shape[:start_dim]``."""
        flat = torch.flatten(x, start_dim=self.start_dim)
        k = top_t_count(flat.shape[-1], self.fraction)
        return torch.topk(flat, k, dim=-1, sorted=False).values.mean(dim=-1)

    def extra_repr(self) -> str:
        return f"fraction={self.fraction}, start_dim={self.start_dim}"
