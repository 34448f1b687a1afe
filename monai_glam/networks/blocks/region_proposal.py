"""Greedy selection of the most salient windows of a global saliency map (GLAM's patch selection)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PATCH_SELECTIONS", "RegionProposal", "rescale_index"]


def rescale_index(index: torch.Tensor, src_size: int, dst_size: int) -> torch.Tensor:
    """``round(index / src_size * dst_size)`` for integer tensors, exactly, rounding half to even.

    Integer arithmetic avoids float rounding at exact halves and works on every device and under tracing.
    """
    scaled = index * dst_size
    quotient = torch.div(scaled, src_size, rounding_mode="floor")
    twice_remainder = 2 * (scaled - quotient * src_size)
    round_up = (twice_remainder > src_size) | ((twice_remainder == src_size) & (quotient % 2 == 1))
    return quotient + round_up.to(quotient.dtype)


#: How :class:`RegionProposal` scores windows: ``summed`` (published) or ``per_class``.
PATCH_SELECTIONS: tuple[str, ...] = ("summed", "per_class")


class RegionProposal(nn.Module):
    """Pick ``num_patches`` windows of a saliency map greedily, without parameters.

    Each class channel of the map is min-max normalised over its own spatial extent and the channels are
    summed. Then, ``num_patches`` times: the map is average-pooled with the window size (stride 1), the first
    arg-max gives the window's upper-left corner (row = flat index floor-divided by the pooled width), and
    that window is zeroed before the next pick. Corners are mapped to image pixels with
    ``round(row / h * H)``, ``round(col / w * W)``.

    Selection is not differentiable; call it on a detached map. The loop runs over the greedy steps only
    (each step depends on the previous one) and is batched over images.

    ``selection="per_class"`` (not in the published model) scores pick ``k`` on class ``k mod C``'s normalised map
    alone instead of the sum, so with ``K = C`` every class gets its own window: with the sum, the window goes
    to whichever class's map is sharper, and the local module then rarely sees the other class's lesions.

    Args:
        num_patches: windows to select per image, ``K``.
        patch_size: window size ``(height, width)`` in image pixels (an int means a square).
        selection: ``"summed"`` (published) or ``"per_class"``.

    ``forward(saliency, image_size)``: ``saliency`` is ``(N, C, h, w)``, ``image_size`` the input's
    ``(H, W)``; returns ``(N, K, 4)`` int64 boxes ``(row0, col0, row1, col1)`` in image pixels (``row1``,
    ``col1`` exclusive) in selection order.
    """

    def __init__(self, num_patches: int = 1, patch_size: int | Sequence[int] = 512, selection: str = "summed") -> None:
        super().__init__()
        if selection not in PATCH_SELECTIONS:
            raise ValueError(f"selection must be one of {list(PATCH_SELECTIONS)}, got {selection!r}.")
        self.selection = selection
        if int(num_patches) < 1:
            raise ValueError(f"num_patches must be positive, got {num_patches!r}.")
        size = (int(patch_size), int(patch_size)) if isinstance(patch_size, int) else tuple(int(s) for s in patch_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"patch_size must be a positive int or (height, width), got {patch_size!r}.")
        self.num_patches = int(num_patches)
        self.patch_size = (size[0], size[1])

    def window_in_map(self, map_size: list[int], image_size: list[int]) -> tuple[int, int]:
        """Window size in map units, ``round(p * h / H)``; raises ``ValueError`` if it does not fit."""
        h, w = int(map_size[0]), int(map_size[1])
        height, width = int(image_size[0]), int(image_size[1])
        if self.patch_size[0] > height or self.patch_size[1] > width:
            raise ValueError(f"patch_size {self.patch_size} is larger than the input image ({height}, {width}).")
        win_h = max(1, int(round(self.patch_size[0] * h / height)))
        win_w = max(1, int(round(self.patch_size[1] * w / width)))
        if win_h > h or win_w > w:
            raise ValueError(
                f"a {self.patch_size} patch covers ({win_h}, {win_w}) map cells, more than the map ({h}, {w})."
            )
        return win_h, win_w

    def forward(self, saliency: torch.Tensor, image_size: list[int]) -> torch.Tensor:
        """See the class docstring."""
        n, _, h, w = saliency.shape
        win_h, win_w = self.window_in_map([h, w], image_size)
        flat = saliency.flatten(2)
        low = flat.amin(dim=-1, keepdim=True)
        span = flat.amax(dim=-1, keepdim=True) - low
        # A flat channel carries no location information: it contributes zeros instead of 0/0.
        normalised = torch.where(span > 0, (flat - low) / torch.where(span > 0, span, torch.ones_like(span)), 0.0)
        # One score map (published: the sum of the classes) or one per class (``per_class``).
        score = (
            normalised.reshape(n, -1, h, w)
            if self.selection == "per_class"
            else normalised.sum(dim=1).reshape(n, 1, h, w)
        )
        channels = score.shape[1]
        pooled_w = w - win_w + 1
        rows_grid = torch.arange(h, device=saliency.device).reshape(1, h, 1)
        cols_grid = torch.arange(w, device=saliency.device).reshape(1, 1, w)
        corners: list[torch.Tensor] = []
        for step in range(self.num_patches):
            channel = step % channels
            pooled = F.avg_pool2d(score[:, channel : channel + 1], kernel_size=(win_h, win_w), stride=1)
            index = pooled.flatten(1).argmax(dim=1)
            row = torch.div(index, pooled_w, rounding_mode="floor")
            col = index - row * pooled_w
            corners.append(torch.stack([row, col], dim=-1))
            inside = (
                (rows_grid >= row.reshape(n, 1, 1))
                & (rows_grid < row.reshape(n, 1, 1) + win_h)
                & (cols_grid >= col.reshape(n, 1, 1))
                & (cols_grid < col.reshape(n, 1, 1) + win_w)
            )
            score = score.masked_fill(inside.unsqueeze(1), 0.0)
        corner = torch.stack(corners, dim=1)
        top = rescale_index(corner[..., 0], h, int(image_size[0]))
        left = rescale_index(corner[..., 1], w, int(image_size[1]))
        return torch.stack([top, left, top + self.patch_size[0], left + self.patch_size[1]], dim=-1)

    def extra_repr(self) -> str:
        return f"num_patches={self.num_patches}, patch_size={self.patch_size}, selection={self.selection!r}"
