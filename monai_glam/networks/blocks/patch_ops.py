"""Batched patch cropping and pasting between an image and the windows chosen by :class:`RegionProposal`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["FUSION_RULES", "crop_patches", "fuse_patch_maps", "paste_patch_maps"]

#: How :func:`fuse_patch_maps` combines the maps: ``mean`` is the published rule, ``local`` lets the local map
#: replace the global map inside the patches.
FUSION_RULES: tuple[str, ...] = ("mean", "local")


def crop_patches(image: torch.Tensor, boxes: torch.Tensor, patch_size: list[int]) -> torch.Tensor:
    """Crop one window per box from each image, in a single gather.

    Pixels of a window that fall outside the image take the image's minimum value, which is what the
    published model did for windows that extend past the border.

    Args:
        image: ``(N, C, H, W)``.
        boxes: ``(N, K, 4)`` int64 ``(row0, col0, row1, col1)``; only the upper-left corner is used.
        patch_size: ``(p_h, p_w)``.

    Returns:
        ``(N, K, C, p_h, p_w)`` patches, differentiable with respect to ``image``.
    """
    n, c, height, width = image.shape
    k = boxes.shape[1]
    ph, pw = int(patch_size[0]), int(patch_size[1])
    rows = boxes[..., 0:1] + torch.arange(ph, device=image.device)  # (N, K, ph)
    cols = boxes[..., 1:2] + torch.arange(pw, device=image.device)  # (N, K, pw)
    valid = ((rows >= 0) & (rows < height)).unsqueeze(-1) & ((cols >= 0) & (cols < width)).unsqueeze(-2)
    flat_index = rows.clamp(0, height - 1).unsqueeze(-1) * width + cols.clamp(0, width - 1).unsqueeze(-2)
    index = flat_index.reshape(n, 1, k * ph * pw).expand(n, c, k * ph * pw)
    patches = image.reshape(n, c, height * width).gather(2, index).reshape(n, c, k, ph, pw).transpose(1, 2)
    fill = image.reshape(n, -1).amin(dim=1).reshape(n, 1, 1, 1, 1)
    return torch.where(valid.unsqueeze(2), patches, fill)


def _paste_plan(
    patch_maps: torch.Tensor, boxes: torch.Tensor, image_size: list[int], patch_size: list[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where every pixel of the nearest-upsampled patch maps goes in a flattened ``(N, C, H * W)`` map.

    Returns:
        ``index`` (flat pixel positions), ``values`` (the upsampled patch pixels) and ``keep`` (``False`` for
        pixels outside the image or covered by a later patch of the same image), each ``(N, C, K * p_h * p_w)``
        (``keep`` broadcasts over ``C``: ``(N, 1, K * p_h * p_w)``).
    """
    n, k, c, qh, qw = patch_maps.shape
    height, width = int(image_size[0]), int(image_size[1])
    ph, pw = int(patch_size[0]), int(patch_size[1])
    device = patch_maps.device
    upsampled = F.interpolate(patch_maps.reshape(n * k, c, qh, qw), size=(ph, pw), mode="nearest")
    top, left = boxes[..., 0], boxes[..., 1]  # (N, K)
    rows = top.unsqueeze(-1) + torch.arange(ph, device=device)  # (N, K, ph)
    cols = left.unsqueeze(-1) + torch.arange(pw, device=device)  # (N, K, pw)
    # hidden[n, k, i, j]: pixel (i, j) of patch k is covered by a later patch k' > k of the same image.
    other_top, other_left = top.reshape(n, 1, k, 1), left.reshape(n, 1, k, 1)
    rows_in_other = (rows.unsqueeze(2) >= other_top) & (rows.unsqueeze(2) < other_top + ph)  # (N, K, K', ph)
    cols_in_other = (cols.unsqueeze(2) >= other_left) & (cols.unsqueeze(2) < other_left + pw)  # (N, K, K', pw)
    later = torch.ones(k, k, dtype=torch.bool, device=device).triu(diagonal=1).reshape(1, k, k, 1, 1)
    hidden = (rows_in_other.unsqueeze(-1) & cols_in_other.unsqueeze(-2) & later).any(dim=2)  # (N, K, ph, pw)
    inside = ((rows >= 0) & (rows < height)).unsqueeze(-1) & ((cols >= 0) & (cols < width)).unsqueeze(-2)
    flat_index = rows.unsqueeze(-1) * width + cols.unsqueeze(-2)
    keep = (inside & ~hidden).reshape(n, 1, k * ph * pw)
    index = flat_index.reshape(n, 1, k * ph * pw).expand(n, c, k * ph * pw)
    values = upsampled.reshape(n, k, c, ph * pw).transpose(1, 2).reshape(n, c, k * ph * pw)
    return index, values, keep


def paste_patch_maps(
    patch_maps: torch.Tensor, boxes: torch.Tensor, image_size: list[int], patch_size: list[int]
) -> torch.Tensor:
    """Paste nearest-upsampled patch maps into an all-zero full-resolution map.

    Each ``(q_h, q_w)`` patch map is upsampled (nearest) to ``patch_size`` and written at its box's upper-left
    corner; where boxes overlap, the later patch wins; parts outside the image are dropped and pixels outside
    every box are zero. Everything is one scatter whose indices are unique (hidden or outside pixels go to a
    discarded slot), so the result is deterministic and gradients flow back into ``patch_maps``.

    Args:
        patch_maps: ``(N, K, C, q_h, q_w)``.
        boxes: ``(N, K, 4)`` int64 ``(row0, col0, row1, col1)`` in image pixels; the corner is used.
        image_size: ``(H, W)`` of the output.
        patch_size: ``(p_h, p_w)``, the box size in image pixels.

    Returns:
        ``(N, C, H, W)``.
    """
    n, c = patch_maps.shape[0], patch_maps.shape[2]
    height, width = int(image_size[0]), int(image_size[1])
    index, values, keep = _paste_plan(patch_maps, boxes, image_size, patch_size)
    return _paste_onto(patch_maps.new_zeros(n, c, height * width + 1), index, values, keep, image_size)


def _paste_onto(
    canvas: torch.Tensor, index: torch.Tensor, values: torch.Tensor, keep: torch.Tensor, image_size: list[int]
) -> torch.Tensor:
    """The kept pixels of a :func:`_paste_plan` written over a flattened canvas (not in place).

    One scatter whose indices are unique (hidden or outside pixels go to the canvas's extra last slot, which is
    dropped), so the result is deterministic and gradients reach both the canvas's other pixels and the values.

    Args:
        canvas: ``(N, C, H * W + 1)``: the map underneath, flattened, plus the discarded slot.
        index, values, keep: from :func:`_paste_plan`.
        image_size: ``(H, W)``.

    Returns:
        ``(N, C, H, W)``.
    """
    height, width = int(image_size[0]), int(image_size[1])
    discard = height * width
    index = torch.where(keep, index, torch.full_like(index, discard))
    return canvas.scatter(2, index, values)[..., :discard].reshape(canvas.shape[0], canvas.shape[1], height, width)


def fuse_patch_maps(
    saliency_global: torch.Tensor,
    patch_maps: torch.Tensor,
    boxes: torch.Tensor,
    image_size: list[int],
    patch_size: list[int],
    rule: str = "mean",
) -> torch.Tensor:
    """GLAM's fused full-resolution map from the global map and the patch maps, in one full-resolution tensor.

    - ``rule="mean"`` (published): ``S = (paste(S_l) + nearest_up(S_g)) / 2``, i.e. the mean of both maps inside
      the patches and half the global map outside them. Equal to ``(paste_patch_maps(patch_maps, ...) +
      F.interpolate(saliency_global, image_size)) / 2`` (halving is exact in floating point, so ``a / 2 + b / 2``
      rounds like ``(a + b) / 2``), but the half global map is upsampled once and the halved patch pixels are
      added into it in place, instead of building the pasted map, the upsampled map, their sum and its half: at
      the paper size that is 43 MB instead of about 170 MB at once. Pixels that are not pasted (outside the image
      or under a later patch) add an exact zero at position 0.
    - ``rule="local"``: ``S = S_l`` inside the patches and ``nearest_up(S_g)`` outside them. Inside a patch the
      local module has seen the pixels at full resolution, so its map replaces the global map's coarse cells
      there (under the mean rule a global cell that peaks beside a small lesion moves the fused maximum off it);
      where boxes overlap the later patch wins, as in :func:`paste_patch_maps`. Not the published model: see
      ``docs/localization.md`` for when it helps.

    Args:
        saliency_global: ``(N, C, h, w)`` global map S_g.
        patch_maps: ``(N, K, C, q_h, q_w)`` patch maps S_l.
        boxes: ``(N, K, 4)`` int64 patch boxes in image pixels.
        image_size: ``(H, W)`` of the output.
        patch_size: ``(p_h, p_w)``.
        rule: one of :data:`FUSION_RULES`.

    Returns:
        ``(N, C, H, W)``, differentiable with respect to ``saliency_global`` and ``patch_maps``.

    Raises:
        ValueError: an unknown ``rule``.
    """
    n, c = saliency_global.shape[0], saliency_global.shape[1]
    height, width = int(image_size[0]), int(image_size[1])
    index, values, keep = _paste_plan(patch_maps, boxes, image_size, patch_size)
    if rule == "local":
        upsampled = F.interpolate(saliency_global.contiguous(), size=(height, width), mode="nearest")
        canvas = torch.cat([upsampled.reshape(n, c, height * width), upsampled.new_zeros(n, c, 1)], dim=2)
        return _paste_onto(canvas, index, values, keep, image_size)
    if rule != "mean":
        raise ValueError("rule must be one of ['mean', 'local'], got '" + rule + "'.")  # TorchScript: no f-strings
    fused = F.interpolate((saliency_global * 0.5).contiguous(), size=(height, width), mode="nearest")
    index = torch.where(keep, index, torch.zeros_like(index))
    values = torch.where(keep, values * 0.5, torch.zeros_like(values))
    return fused.reshape(n, c, height * width).scatter_add_(2, index, values).reshape(n, c, height, width)
