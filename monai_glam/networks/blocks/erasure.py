"""Erasing what a saliency map points at: the input of the training objective's erasure terms."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["erase_salient", "smooth_background"]


def smooth_background(image: torch.Tensor, cell_size: int) -> torch.Tensor:
    """A lesion-free stand-in for ``image``: its means over ``cell_size`` cells, bilinearly interpolated.

    Averaging over cells larger than a lesion leaves the tissue's slow brightness changes and removes the
    lesion's own contrast, so a region replaced by it looks like the surrounding tissue, not like a hole.

    Args:
        image: ``(N, C, H, W)``.
        cell_size: side of the averaging cells in pixels (``>= 1``; at most the image's side, and cells at the
            border may be smaller).

    Returns:
        ``(N, C, H, W)``, differentiable with respect to ``image``.

    Raises:
        ValueError: ``cell_size < 1`` or an input that is not 4-D.
    """
    if image.dim() != 4:
        raise ValueError(f"expected an (N, C, H, W) image, got shape {list(image.shape)}.")
    if int(cell_size) < 1:
        raise ValueError(f"cell_size must be >= 1, got {cell_size!r}.")
    height, width = image.shape[-2:]
    kernel = (min(int(cell_size), height), min(int(cell_size), width))  # a side shorter than a cell: one cell
    cells = F.avg_pool2d(image, kernel, ceil_mode=True)
    return F.interpolate(cells, size=(height, width), mode="bilinear", align_corners=False)


def erase_salient(image: torch.Tensor, saliency: torch.Tensor, cell_size: int) -> torch.Tensor:
    """Erase from ``image``, once per class, what that class's saliency map marks.

    For each class ``c``: ``image · (1 − m_c) + smooth_background(image) · m_c`` with ``m_c`` the class map
    bilinearly upsampled to the image. One copy per class, so that a loss on class ``c``'s score of copy ``c``
    moves only class ``c``'s map (a map shared between classes would let one class's term pull the other
    class's map onto its lesions). The result is differentiable with respect to ``saliency``, so such a loss
    moves each map towards whatever the classifier needs erased (the erasure terms of
    :class:`~monai_glam.losses.GLAMLoss`).

    Args:
        image: ``(N, C_in, H, W)``.
        saliency: ``(N, C, h, w)`` class maps in ``[0, 1]`` (for example S_g).
        cell_size: the background's averaging cell, in pixels (see :func:`smooth_background`).

    Returns:
        ``(N, C, C_in, H, W)``: copy ``c`` of each image erased by its class-``c`` map.

    Raises:
        ValueError: inputs that are not 4-D or whose batch sizes differ.
    """
    if image.dim() != 4 or saliency.dim() != 4:
        raise ValueError(
            f"expected (N, C_in, H, W) image and (N, C, h, w) saliency, got {list(image.shape)} and "
            f"{list(saliency.shape)}."
        )
    if image.shape[0] != saliency.shape[0]:
        raise ValueError(f"image and saliency batch sizes differ: {image.shape[0]} and {saliency.shape[0]}.")
    mask = F.interpolate(
        saliency.clamp(0.0, 1.0), size=(image.shape[-2], image.shape[-1]), mode="bilinear", align_corners=False
    )
    background = smooth_background(image, cell_size).detach()
    # (N, 1, C_in, H, W) + (N, 1, C_in, H, W) * (N, C, 1, H, W) -> (N, C, C_in, H, W)
    return image.unsqueeze(1) + (background - image).unsqueeze(1) * mask.to(image.dtype).unsqueeze(2)
