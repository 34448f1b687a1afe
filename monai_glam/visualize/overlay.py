"""Render a mammogram with its patch boxes and per-class saliency heat maps as one RGB panel."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["CONTOUR_COLOURS", "mask_contours", "render_saliency_panel"]

_BOX_COLOUR = (1.0, 0.85, 0.0)  # yellow reads well on both the grey image and the heat maps
#: Ground-truth contour colour per class (benign green, malignant cyan), distinct from the boxes and heat maps.
CONTOUR_COLOURS: tuple[tuple[float, float, float], ...] = ((0.2, 1.0, 0.2), (0.0, 0.9, 1.0))


def _fit(size: Sequence[int], max_size: int) -> tuple[int, int]:
    height, width = int(size[0]), int(size[1])
    scale = min(1.0, max_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _draw_boxes(rgb: torch.Tensor, boxes: torch.Tensor, scale: tuple[float, float], thickness: int) -> None:
    _, height, width = rgb.shape
    colour = torch.tensor(_BOX_COLOUR, dtype=rgb.dtype).reshape(3, 1)
    for r0, c0, r1, c1 in boxes.tolist():  # a few boxes at display resolution, not a model hot path
        top, bottom = int(r0 * scale[0]), int(r1 * scale[0]) - 1
        left, right = int(c0 * scale[1]), int(c1 * scale[1]) - 1
        top, left = max(top, 0), max(left, 0)
        bottom, right = min(bottom, height - 1), min(right, width - 1)
        if top > bottom or left > right:
            continue
        rgb[:, top : top + thickness, left : right + 1] = colour.unsqueeze(-1)
        rgb[:, max(bottom - thickness + 1, 0) : bottom + 1, left : right + 1] = colour.unsqueeze(-1)
        rgb[:, top : bottom + 1, left : left + thickness] = colour.unsqueeze(-1)
        rgb[:, top : bottom + 1, max(right - thickness + 1, 0) : right + 1] = colour.unsqueeze(-1)


def mask_contours(masks: torch.Tensor | np.ndarray, size: Sequence[int], thickness: int = 1) -> torch.Tensor:
    """Outlines of binary masks at display size.

    A display pixel is inside a mask when any source pixel it covers is (so a small calcification survives the
    downscaling); the outline is the inside pixels with an outside 4-neighbour, thickened to ``thickness``.

    Args:
        masks: ``(C, H, W)`` masks, non-zero is inside.
        size: display ``(h, w)``.
        thickness: outline width in display pixels.

    Returns:
        ``(C, h, w)`` boolean outlines.
    """
    if thickness < 1:
        raise ValueError(f"thickness must be positive, got {thickness!r}.")
    values = torch.as_tensor(np.asarray(masks) if isinstance(masks, np.ndarray) else masks).detach().cpu()
    if values.dim() != 3:
        raise ValueError(f"masks must be (C, H, W), got shape {tuple(values.shape)}.")
    size = (int(size[0]), int(size[1]))
    inside = (F.interpolate((values != 0).float()[None], size=size, mode="area")[0] > 0).float()
    # Erosion as a min-pool (a max-pool of the negation); pixels beyond the border do not count as outside.
    eroded = -F.max_pool2d(-inside[None], kernel_size=3, stride=1, padding=1)[0]
    edge = inside * (1.0 - eroded)
    if thickness > 1:
        edge = F.max_pool2d(edge[None], kernel_size=2 * thickness - 1, stride=1, padding=thickness - 1)[0]
    return edge > 0


def render_saliency_panel(
    image: torch.Tensor | np.ndarray,
    saliency: torch.Tensor | np.ndarray,
    boxes: torch.Tensor | np.ndarray | None = None,
    max_size: int = 512,
    alpha: float = 0.6,
    colormap: str = "inferno",
    masks: torch.Tensor | np.ndarray | None = None,
) -> torch.Tensor:
    """Side-by-side panels: the image with patch boxes, then one heat-map overlay per saliency class.

    With ground-truth ``masks`` their outlines are drawn (class ``c`` in ``CONTOUR_COLOURS[c]``) on the image
    panel, every class, and on class ``c``'s heat-map panel.

    Args:
        image: ``(1, H, W)`` or ``(H, W)`` grey image at any intensity scale (min-max normalised for display).
        saliency: ``(C, h, w)`` maps in ``[0, 1]`` at any resolution (resized to the displayed image).
        boxes: optional ``(K, 4)`` ``(row0, col0, row1, col1)`` boxes in ``image`` pixels.
        max_size: longest side of each displayed panel, in pixels.
        alpha: heat-map opacity.
        colormap: a matplotlib colour-map name.
        masks: optional ``(C, H, W)`` ground-truth masks in ``image`` pixels (non-zero is lesion).

    Returns:
        ``(3, h, (C + 1) * w)`` float tensor in ``[0, 1]``, ready for ``SummaryWriter.add_image``.

    Raises:
        ValueError: on inputs of the wrong dimensionality or a non-positive ``max_size``.
    """
    import matplotlib

    if max_size < 1:
        raise ValueError(f"max_size must be positive, got {max_size!r}.")
    image = torch.as_tensor(np.asarray(image) if isinstance(image, np.ndarray) else image).detach().float().cpu()
    saliency = torch.as_tensor(saliency).detach().float().cpu()
    if image.dim() == 3 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 2:
        raise ValueError(f"image must be (1, H, W) or (H, W), got shape {tuple(image.shape)}.")
    if saliency.dim() != 3:
        raise ValueError(f"saliency must be (C, h, w), got shape {tuple(saliency.shape)}.")
    if masks is not None and (np.ndim(masks) != 3 or tuple(np.shape(masks)[1:]) != tuple(image.shape)):
        raise ValueError(f"masks must be (C, {image.shape[0]}, {image.shape[1]}), got shape {tuple(np.shape(masks))}.")
    height, width = _fit(image.shape, max_size)
    small = F.interpolate(image[None, None], size=(height, width), mode="area")[0, 0]
    low, high = float(small.min()), float(small.max())
    grey = (small - low) / (high - low) if high > low else torch.zeros_like(small)
    grey_rgb = grey.expand(3, height, width).clone()
    maps = F.interpolate(saliency[None], size=(height, width), mode="bilinear", align_corners=False)[0].clamp(0, 1)
    cmap = matplotlib.colormaps[colormap]
    panels = [grey_rgb.clone()]
    for class_map in maps:
        heat = torch.from_numpy(cmap(class_map.numpy())[..., :3]).permute(2, 0, 1).float()
        panels.append((1 - alpha) * grey_rgb + alpha * heat)
    thickness = max(1, round(max(height, width) / 256))
    if boxes is not None:
        scale = (height / image.shape[0], width / image.shape[1])
        for panel in panels:
            _draw_boxes(panel, torch.as_tensor(boxes).reshape(-1, 4), scale, thickness)
    if masks is not None:
        outlines = mask_contours(masks, (height, width), thickness)
        for c, outline in enumerate(outlines):
            colour = torch.tensor(CONTOUR_COLOURS[c % len(CONTOUR_COLOURS)]).reshape(3, 1)
            targets = [panels[0]] + ([panels[c + 1]] if c + 1 < len(panels) else [])
            for panel in targets:
                panel[:, outline] = colour
    return torch.cat(panels, dim=2).clamp(0, 1)
