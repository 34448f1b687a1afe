"""One overlay PNG per image: the input with patch boxes, one heat map per class, ground-truth contours."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from monai_glam.utils.atomic import atomic_output_path
from monai_glam.visualize import render_saliency_panel

__all__ = ["panel_to_uint8", "write_overlay"]


def panel_to_uint8(panel: torch.Tensor) -> np.ndarray:
    """A ``(3, h, w)`` float panel in [0, 1] as an ``(h, w, 3)`` uint8 RGB array."""
    if panel.dim() != 3 or panel.shape[0] != 3:
        raise ValueError(f"panel must be (3, h, w), got shape {tuple(panel.shape)}")
    return (panel.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def write_overlay(
    path: str | os.PathLike[str],
    image: torch.Tensor | np.ndarray,
    saliency: torch.Tensor | np.ndarray,
    boxes: torch.Tensor | np.ndarray | None = None,
    masks: torch.Tensor | np.ndarray | None = None,
    max_size: int = 512,
    alpha: float = 0.6,
) -> Path:
    """Render :func:`~monai_glam.visualize.render_saliency_panel` and save it as an RGB PNG, atomically.

    Args:
        path: the PNG to write.
        image: ``(1, H, W)`` or ``(H, W)`` image (the network input).
        saliency: ``(C, h, w)`` maps in [0, 1] (resized to the image).
        boxes: optional ``(K, 4)`` patch boxes ``(row0, col0, row1, col1)`` in image pixels.
        masks: optional ``(C, H, W)`` ground-truth masks in image pixels, drawn as contours.
        max_size: longest side of each panel in pixels.
        alpha: heat-map opacity.

    Returns:
        The written path. The PNG is ``h x (C + 1) * w`` pixels.
    """
    panel = render_saliency_panel(image, saliency, boxes, max_size=max_size, alpha=alpha, masks=masks)
    target = Path(path)
    with atomic_output_path(target) as temp_path:
        Image.fromarray(panel_to_uint8(panel)).save(temp_path, format="PNG")
    return target
