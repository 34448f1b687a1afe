"""Overlay images of GLAM's predictions, in the original image geometry and in the network frame.

``monai-glam infer`` writes ``overlays/<id>.png`` with :func:`write_original_overlay`: the raw mammogram as a reader
sees it (its own orientation and size, displayed between the 0.5 and 99.5 percentiles of the breast pixels) with
the saliency maps, patch boxes and ground-truth contours mapped back onto it. :func:`render_overlay` returns the
same picture as an RGB array, either as side-by-side panels (the PNG overlays) or as one full-resolution image
with every class blended in its own colour (``layout="combined"``, e.g. for a DICOM Secondary Capture).
:func:`write_overlay` keeps the network-frame overlay (the preprocessed window the network saw).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from monai_glam.utils.atomic import atomic_output_path
from monai_glam.visualize import CONTOUR_COLOURS, render_saliency_panel

__all__ = [
    "BOX_COLOUR",
    "COMBINED_COLOURS",
    "DISPLAY_PERCENTILES",
    "OVERLAY_LAYOUTS",
    "OVERLAY_PNG_LEVEL",
    "OverlayInputs",
    "box_outline_map",
    "display_window",
    "panel_to_uint8",
    "render_overlay",
    "write_original_overlay",
    "write_overlay",
    "write_rgb_png",
]

#: ``"panels"``: the image, then one heat-map panel per class, side by side; ``"combined"``: one image with every
#: class blended in its own colour.
OVERLAY_LAYOUTS: tuple[str, ...] = ("panels", "combined")
#: Heat colour per class of the ``"combined"`` layout: benign green, malignant red.
COMBINED_COLOURS: tuple[tuple[float, float, float], ...] = ((0.1, 0.9, 0.2), (1.0, 0.15, 0.1))
#: Patch-box colour (yellow, readable on the grey image and on the heat maps).
BOX_COLOUR: tuple[float, float, float] = (1.0, 0.85, 0.0)
#: Display window of the grey image: these percentiles of the breast pixels map to black and white.
DISPLAY_PERCENTILES: tuple[float, float] = (0.5, 99.5)
#: zlib level of the overlay PNGs (:func:`write_rgb_png`).
OVERLAY_PNG_LEVEL = 3
# The display window is estimated on at most this many pixels (a regular subsample of a large image).
_MAX_WINDOW_SAMPLES = 1 << 20


def panel_to_uint8(panel: torch.Tensor) -> np.ndarray:
    """A ``(3, h, w)`` float panel in [0, 1] as an ``(h, w, 3)`` uint8 RGB array."""
    if panel.dim() != 3 or panel.shape[0] != 3:
        raise ValueError(f"panel must be (3, h, w), got shape {tuple(panel.shape)}")
    return (panel.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def write_rgb_png(path: str | os.PathLike[str], rgb: np.ndarray) -> Path:
    """Save an ``(h, w, 3)`` uint8 array as an RGB PNG through a temporary file and ``os.replace``.

    zlib level :data:`OVERLAY_PNG_LEVEL` (3): on the overlays about 6 % larger than the default level 6 and about
    three times faster to write.
    """
    array = np.asarray(rgb)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"rgb must be an (h, w, 3) uint8 array, got {array.dtype} {array.shape}")
    target = Path(path)
    with atomic_output_path(target) as temp_path:
        Image.fromarray(array).save(temp_path, format="PNG", compress_level=OVERLAY_PNG_LEVEL)
    return target


def _as_tensor(value: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A plain CPU tensor (a MetaTensor loses its meta) without copying when possible."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    tensor = value.detach()
    if hasattr(tensor, "as_tensor"):
        tensor = tensor.as_tensor()
    return tensor.cpu()


def _as_image(image: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``(H, W)`` float32 from ``(H, W)`` or ``(1, H, W)``."""
    tensor = _as_tensor(image)
    if tensor.dim() == 3 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() != 2 or tensor.numel() == 0:
        raise ValueError(f"image must be a non-empty (H, W) or (1, H, W) array, got shape {tuple(tensor.shape)}")
    return tensor.float()


def box_outline_map(
    boxes: torch.Tensor | np.ndarray | Sequence[Sequence[int]], shape: Sequence[int], width: int = 1
) -> torch.Tensor:
    """Rasterize box outlines, e.g. GLAM's patch boxes in the network frame before mapping them back.

    Args:
        boxes: ``(K, 4)`` boxes ``(row0, col0, row1, col1)``, ``row1``/``col1`` exclusive (GLAM's ``patch_boxes``).
            A box reaching past the frame is clipped and outlined along the frame border.
        shape: ``(h, w)`` of the frame.
        width: outline width in pixels, drawn inside the box.

    Returns:
        ``(h, w)`` boolean map, ``True`` on the outlines.
    """
    if width < 1:
        raise ValueError(f"width must be positive, got {width!r}")
    height, wide = int(shape[0]), int(shape[1])
    out = torch.zeros(height, wide, dtype=torch.bool)
    values = torch.as_tensor(np.asarray(boxes) if not isinstance(boxes, torch.Tensor) else boxes.detach().cpu())
    for r0, c0, r1, c1 in values.reshape(-1, 4).round().long().tolist():  # K boxes, not pixels
        r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, height), min(c1, wide)
        if r0 >= r1 or c0 >= c1:
            continue
        out[r0 : min(r0 + width, r1), c0:c1] = True
        out[max(r1 - width, r0) : r1, c0:c1] = True
        out[r0:r1, c0 : min(c0 + width, c1)] = True
        out[r0:r1, max(c1 - width, c0) : c1] = True
    return out


def display_window(
    image: torch.Tensor | np.ndarray, percentiles: Sequence[float] = DISPLAY_PERCENTILES
) -> tuple[float, float]:
    """Intensities shown as black and white: ``percentiles`` of the breast pixels.

    Breast pixels are those above the image minimum (the background of a mammogram after DICOM rescaling and
    MONOCHROME1 inversion is its darkest value); a regular subsample of at most about a million pixels is used.
    When the percentiles coincide (e.g. a flat breast) the window is the image's minimum to maximum.

    Args:
        image: ``(H, W)`` or ``(1, H, W)`` grey image at any intensity scale.
        percentiles: low and high percentiles in [0, 100].

    Returns:
        ``(low, high)``; ``low == high`` only for a constant image.
    """
    low_q, high_q = (float(q) for q in percentiles)
    if not 0.0 <= low_q < high_q <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {tuple(percentiles)}")
    flat = _as_image(image).reshape(-1)
    step = max(1, math.ceil(flat.numel() / _MAX_WINDOW_SAMPLES))
    sample = flat[::step].numpy()
    darkest, brightest = float(flat.min()), float(flat.max())
    breast = sample[sample > darkest]
    if breast.size == 0:
        return darkest, brightest
    low, high = (float(v) for v in np.percentile(breast, (low_q, high_q)))
    return (low, high) if high > low else (darkest, brightest)


def _display_size(shape: Sequence[int], max_size: int | None) -> tuple[int, int]:
    height, width = int(shape[0]), int(shape[1])
    if max_size is None:
        return height, width
    scale = min(1.0, max_size / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _resize(maps: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """``(K, H, W)`` float maps at ``size`` (unchanged when already that size)."""
    if tuple(maps.shape[1:]) == size:
        return maps
    if mode == "area":
        return F.interpolate(maps[None], size=size, mode="area")[0]
    return F.interpolate(maps[None], size=size, mode="bilinear", align_corners=False)[0]


def _bins(length: int, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Start and (exclusive) end of each of ``bins`` output pixels over ``length`` input pixels, as PyTorch's
    adaptive pooling (``F.interpolate(..., mode="area")``) takes them: ``floor(i * n / m)``, ``ceil((i + 1) * n / m)``.
    """
    index = torch.arange(bins)
    return index * length // bins, ((index + 1) * length + bins - 1) // bins


def _any_along(inside: torch.Tensor, dim: int, starts: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    """Whether any pixel of each bin ``[starts[i], ends[i])`` of ``inside`` along ``dim`` (0 or 1) is set."""
    counts = torch.cumsum(inside, dim=dim, dtype=torch.int32)
    counts = F.pad(counts, (1, 0) if dim == 1 else (0, 0, 1, 0))  # counts[j] = set pixels before j
    return counts.index_select(dim, ends) > counts.index_select(dim, starts)


def _binary_at(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(K, H, W)`` non-zero masks at display ``size``: a display pixel is set when any pixel it covers is.

    The same pixels as ``F.interpolate(inside.float()[None], size, mode="area")[0] > 0``, computed only over the
    bins that meet a set pixel's bounding box (a lesion or a patch box covers a small part of the image).
    """
    inside = maps if maps.dtype == torch.bool else maps != 0  # (``!= 0`` on bool is several times slower)
    if tuple(inside.shape[1:]) == size:
        return inside
    out = torch.zeros(inside.shape[0], *size, dtype=torch.bool)
    row_starts, row_ends = _bins(inside.shape[1], size[0])
    col_starts, col_ends = _bins(inside.shape[2], size[1])
    for channel, target in zip(inside, out, strict=True):
        region = _bounds(channel, 0)
        if region is None:
            continue
        rows = torch.nonzero((row_starts < region[0].stop) & (row_ends > region[0].start)).reshape(-1)
        cols = torch.nonzero((col_starts < region[1].stop) & (col_ends > region[1].start)).reshape(-1)
        r0, r1 = int(row_starts[rows[0]]), int(row_ends[rows[-1]])
        c0, c1 = int(col_starts[cols[0]]), int(col_ends[cols[-1]])
        crop = channel[r0:r1, c0:c1]
        hit = _any_along(crop, 0, row_starts[rows] - r0, row_ends[rows] - r0)
        hit = _any_along(hit, 1, col_starts[cols] - c0, col_ends[cols] - c0)
        target[int(rows[0]) : int(rows[-1]) + 1, int(cols[0]) : int(cols[-1]) + 1] = hit
    return out


def _bounds(mask: torch.Tensor, margin: int) -> tuple[slice, slice] | None:
    """Row and column slices around the set pixels of an ``(h, w)`` mask plus ``margin``; ``None`` if empty."""
    rows = torch.nonzero(mask.any(dim=1)).reshape(-1)
    if rows.numel() == 0:
        return None
    cols = torch.nonzero(mask.any(dim=0)).reshape(-1)
    height, width = mask.shape
    r0, r1 = max(int(rows[0]) - margin, 0), min(int(rows[-1]) + margin + 1, height)
    c0, c1 = max(int(cols[0]) - margin, 0), min(int(cols[-1]) + margin + 1, width)
    return slice(r0, r1), slice(c0, c1)


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Grow an ``(h, w)`` boolean mask by ``radius`` pixels (square), working only around its set pixels."""
    if radius < 1:
        return mask
    region = _bounds(mask, radius)
    if region is None:
        return mask
    kernel = 2 * radius + 1
    crop = mask[region].float()[None, None]
    crop = F.max_pool2d(crop, (1, kernel), stride=1, padding=(0, radius))
    crop = F.max_pool2d(crop, (kernel, 1), stride=1, padding=(radius, 0))
    out = mask.clone()
    out[region] = crop[0, 0] > 0
    return out


def _outline(inside: torch.Tensor, radius: int) -> torch.Tensor:
    """The border pixels of an ``(h, w)`` boolean region (those with an outside 4-neighbour), grown by ``radius``.

    Pixels beyond the image do not count as outside, so a lesion cut by the image border stays open there.
    """
    region = _bounds(inside, 1)
    if region is None:
        return inside
    crop = inside[region].float()[None, None]
    eroded = -F.max_pool2d(-crop, kernel_size=3, stride=1, padding=1)
    edge = torch.zeros_like(inside)
    edge[region] = (crop * (1.0 - eroded))[0, 0] > 0
    return _dilate(edge, radius)


def _paint(rgb: np.ndarray, where: torch.Tensor, colour: Sequence[float]) -> None:
    """Set the pixels ``where`` of an ``(h, w, 3)`` uint8 image to a [0, 1] ``colour``, in place."""
    rgb[where.numpy()] = np.round(np.asarray(colour, dtype=np.float32) * 255.0).astype(np.uint8)


def _to_uint8(channel: torch.Tensor) -> torch.Tensor:
    """A [0, 1] float map as uint8 (in place on ``channel``)."""
    return channel.clamp_(0, 1).mul_(255.0).round_().to(torch.uint8)


def _check_overlay_inputs(
    image: torch.Tensor, saliency: torch.Tensor, box_map: torch.Tensor | None, masks: torch.Tensor | None
) -> None:
    if saliency.dim() != 3 or saliency.shape[0] < 1:
        raise ValueError(f"saliency must be (C, H, W), got shape {tuple(saliency.shape)}")
    shape = tuple(image.shape)
    if box_map is not None and tuple(box_map.shape) != shape:
        raise ValueError(f"box_map must be ({shape[0]}, {shape[1]}) like the image, got {tuple(box_map.shape)}")
    if masks is not None and (masks.dim() != 3 or tuple(masks.shape[1:]) != shape):
        raise ValueError(f"masks must be (C, {shape[0]}, {shape[1]}) like the image, got {tuple(masks.shape)}")


def render_overlay(
    image: torch.Tensor | np.ndarray,
    saliency: torch.Tensor | np.ndarray,
    box_map: torch.Tensor | np.ndarray | None = None,
    masks: torch.Tensor | np.ndarray | None = None,
    max_size: int | None = 512,
    alpha: float = 0.6,
    layout: str = "panels",
    percentiles: Sequence[float] = DISPLAY_PERCENTILES,
    line_width: int | None = None,
    colormap: str = "inferno",
    class_colours: Sequence[Sequence[float]] = COMBINED_COLOURS,
) -> np.ndarray:
    """Render a mammogram in its own geometry with its saliency maps, patch boxes and ground-truth contours.

    Meant for the raw image and the maps mapped back onto it (:class:`~monai_glam.writers.OriginalGeometryInverter`),
    but any image with maps of its size works. The grey image is shown between :func:`display_window`'s
    ``percentiles`` of the breast pixels (bright = dense tissue). Patch boxes are yellow (:data:`BOX_COLOUR`),
    ground-truth contours benign green and malignant cyan (:data:`~monai_glam.visualize.CONTOUR_COLOURS`).
    Everything is vectorised; lines are processed only around their pixels, so a 3328×2560 image renders in well
    under a second or two on one CPU thread.

    Layouts:

    - ``"panels"``: the image with the boxes and every class's contours, then one panel per class with its heat
      map (``colormap``, opacity ``alpha``), the boxes and that class's contours; ``(h, (C + 1) * w, 3)``.
    - ``"combined"``: one ``(h, w, 3)`` image where class ``c`` is blended in ``class_colours[c]`` (benign green,
      malignant red) with opacity ``alpha * saliency[c]``, so unremarkable tissue stays grey; boxes and contours on
      top.

    Args:
        image: ``(H, W)`` or ``(1, H, W)`` grey image at any intensity scale.
        saliency: ``(C, H', W')`` maps in [0, 1]; resized to the displayed image when ``(H', W') != (H, W)``.
        box_map: optional ``(H, W)`` map, non-zero on the patch-box outlines (:func:`box_outline_map`, mapped back
            with nearest-neighbour interpolation); drawn ``line_width`` wide.
        masks: optional ``(C, H, W)`` ground-truth masks (non-zero is lesion), drawn as contours.
        max_size: longest side of the displayed image (of each panel) in pixels; ``None`` keeps the full
            resolution. Images are only shrunk (area averaging), never enlarged.
        alpha: heat-map opacity in [0, 1].
        layout: ``"panels"`` or ``"combined"``.
        percentiles: display window of the grey image.
        line_width: width of box and contour lines in displayed pixels (made odd); default grows with the image,
            3 px up to 1200 px, 9 px at 3328 px.
        colormap: matplotlib colour map of the ``"panels"`` heat maps.
        class_colours: ``"combined"`` heat colour per class (RGB in [0, 1], cycled).

    Returns:
        ``(h, w, 3)`` (``"combined"``) or ``(h, (C + 1) * w, 3)`` (``"panels"``) uint8 RGB array, where ``(h, w)``
        is ``(H, W)`` scaled so that its longest side is at most ``max_size``.

    Raises:
        ValueError: an unknown ``layout``, inputs of the wrong shape, or a bad ``max_size``, ``alpha`` or
            ``line_width``.
    """
    if layout not in OVERLAY_LAYOUTS:
        raise ValueError(f"layout must be one of {list(OVERLAY_LAYOUTS)}, got {layout!r}")
    if max_size is not None and int(max_size) < 1:
        raise ValueError(f"max_size must be positive or None, got {max_size!r}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    if line_width is not None and int(line_width) < 1:
        raise ValueError(f"line_width must be positive, got {line_width!r}")
    grey_full = _as_image(image)
    maps = _as_tensor(saliency).float()
    boxes = None if box_map is None else _as_tensor(box_map)
    truth = None if masks is None else _as_tensor(masks)
    _check_overlay_inputs(grey_full, maps, boxes, truth)

    size = _display_size(grey_full.shape, max_size)
    low, high = display_window(grey_full, percentiles)
    grey = _resize(grey_full[None], size, "area")[0]
    grey = (grey - low).div_(high - low) if high > low else torch.zeros(size)
    grey.clamp_(0, 1)
    same_grid = tuple(maps.shape[1:]) == tuple(grey_full.shape)
    maps = _resize(maps, size, "area" if same_grid else "bilinear").clamp(0, 1)
    radius = (int(line_width) if line_width is not None else 2 * max(1, round(max(size) / 800)) + 1) // 2
    box_lines = None if boxes is None else _dilate(_binary_at(boxes[None], size)[0], radius)
    contours = [] if truth is None else [_outline(inside, radius) for inside in _binary_at(truth, size)]

    if layout == "combined":
        out = np.empty((*size, 3), dtype=np.uint8)
        weights = maps.mul_(float(alpha))  # maps is already a clamped copy
        target = torch.from_numpy(out)
        scratch = torch.empty(size)
        for k in range(3):
            channel = grey.clone()
            for c in range(weights.shape[0]):
                colour = float(class_colours[c % len(class_colours)][k])
                # channel = channel * (1 - w) + colour * w, in place
                torch.mul(channel, -1.0, out=scratch).add_(colour).mul_(weights[c])
                channel.add_(scratch)
            target[..., k] = _to_uint8(channel)
        if box_lines is not None:
            _paint(out, box_lines, BOX_COLOUR)
        for c, outline in enumerate(contours):
            _paint(out, outline, CONTOUR_COLOURS[c % len(CONTOUR_COLOURS)])
        return out

    import matplotlib

    table = torch.from_numpy(matplotlib.colormaps[colormap](np.linspace(0.0, 1.0, 256))[:, :3]).float()
    grey_u8 = _to_uint8(grey.clone())
    panels = [grey_u8[..., None].expand(*size, 3).numpy().copy()]
    for class_map in maps:
        heat = table[class_map.mul(255.0).round_().long()]  # (h, w, 3) colour-map lookup
        blended = heat.mul_(float(alpha)).add_(grey[..., None], alpha=1.0 - float(alpha))
        panels.append(_to_uint8(blended).numpy())
    for index, panel in enumerate(panels):
        if box_lines is not None:
            _paint(panel, box_lines, BOX_COLOUR)
        for c, outline in enumerate(contours):
            if index in (0, c + 1):
                _paint(panel, outline, CONTOUR_COLOURS[c % len(CONTOUR_COLOURS)])
    return np.concatenate(panels, axis=1)


@dataclass
class OverlayInputs:
    """One image's overlay ingredients in the original geometry, ready to render (e.g. again, at another size).

    Attributes:
        image: ``(H, W)`` raw mammogram (after DICOM rescaling / MONOCHROME1 inversion, before the breast crop).
        saliency: ``(C, H, W)`` fused saliency mapped back onto it, in [0, 1].
        box_map: ``(H, W)`` boolean patch-box outlines mapped back, or ``None`` (no boxes, e.g. sliding window).
        masks: ``(C, H, W)`` boolean ground-truth masks, or ``None``.
        image_id: the image's id in the run.
        window_only: ``image`` was rebuilt from the preprocessed window (no raw copy was available): only the
            window region is shown, the rest is black.
    """

    image: torch.Tensor
    saliency: torch.Tensor
    box_map: torch.Tensor | None = None
    masks: torch.Tensor | None = None
    image_id: str = ""
    window_only: bool = False

    def render(self, layout: str = "combined", max_size: int | None = None, alpha: float = 0.6) -> np.ndarray:
        """:func:`render_overlay` of these inputs (default: one full-resolution ``(H, W, 3)`` uint8 image)."""
        return render_overlay(
            self.image, self.saliency, self.box_map, self.masks, max_size=max_size, alpha=alpha, layout=layout
        )


def write_original_overlay(
    path: str | os.PathLike[str],
    image: torch.Tensor | np.ndarray,
    saliency: torch.Tensor | np.ndarray,
    box_map: torch.Tensor | np.ndarray | None = None,
    masks: torch.Tensor | np.ndarray | None = None,
    max_size: int | None = 512,
    alpha: float = 0.6,
    layout: str = "panels",
) -> Path:
    """Write :func:`render_overlay` as an RGB PNG, atomically (``overlays/<id>.png`` of ``monai-glam infer``).

    Args:
        path: the PNG to write.
        image: ``(H, W)`` or ``(1, H, W)`` raw image.
        saliency: ``(C, H, W)`` maps in [0, 1] in the image's geometry.
        box_map: optional ``(H, W)`` patch-box outlines in the image's geometry.
        masks: optional ``(C, H, W)`` ground-truth masks in the image's geometry.
        max_size: longest side of each panel; ``None`` for full resolution.
        alpha: heat-map opacity.
        layout: ``"panels"`` (``h × (C + 1) · w``) or ``"combined"`` (``h × w``).

    Returns:
        The written path.
    """
    rgb = render_overlay(image, saliency, box_map, masks, max_size=max_size, alpha=alpha, layout=layout)
    return write_rgb_png(path, rgb)


def write_overlay(
    path: str | os.PathLike[str],
    image: torch.Tensor | np.ndarray,
    saliency: torch.Tensor | np.ndarray,
    boxes: torch.Tensor | np.ndarray | None = None,
    masks: torch.Tensor | np.ndarray | None = None,
    max_size: int = 512,
    alpha: float = 0.6,
) -> Path:
    """The network-frame overlay: :func:`~monai_glam.visualize.render_saliency_panel` saved as an RGB PNG, atomically.

    The image is shown as the network saw it (the preprocessed window: mirrored to face right, standardized,
    zero-padded); ``monai-glam infer --network-frame`` writes it as ``network_overlays/<id>.png``. For the
    overlay in the raw image's orientation and size see :func:`write_original_overlay`.

    Args:
        path: the PNG to write.
        image: ``(1, H, W)`` or ``(H, W)`` image (the network input), min-max normalised for display.
        saliency: ``(C, h, w)`` maps in [0, 1] (resized to the image).
        boxes: optional ``(K, 4)`` patch boxes ``(row0, col0, row1, col1)`` in image pixels.
        masks: optional ``(C, H, W)`` ground-truth masks in image pixels, drawn as contours.
        max_size: longest side of each panel in pixels.
        alpha: heat-map opacity.

    Returns:
        The written path. The PNG is ``h x (C + 1) * w`` pixels.
    """
    panel = render_saliency_panel(image, saliency, boxes, max_size=max_size, alpha=alpha, masks=masks)
    return write_rgb_png(path, panel_to_uint8(panel))
