"""GLAM in a spatial-only output mode, ready for ``monai.inferers.sliding_window_inference``."""

from __future__ import annotations

import torch
from torch import nn

from monai_glam.networks.blocks.patch_ops import fuse_patch_maps, paste_patch_maps
from monai_glam.networks.nets.glam import GLAM
from monai_glam.utils.enums import GLAMKeys

__all__ = ["SPATIAL_OUTPUT_KEYS", "GLAMSpatialOutputs"]

#: Names of the tensors :class:`GLAMSpatialOutputs` returns, in order. The full-resolution map comes first,
#: then the two maps at patch-map resolution, then the four maps at global-map resolution. This order is what
#: keeps MONAI 1.6.1's ``sliding_window_inference`` working: it resizes its window weights in place for each
#: output in turn and crashes when a full-resolution output follows a smaller one. A tuple (unlike a dict,
#: whose keys MONAI sorts) keeps the order we choose.
SPATIAL_OUTPUT_KEYS: tuple[str, ...] = (
    GLAMKeys.SALIENCY.value,
    "saliency_local",
    "patch_coverage",
    GLAMKeys.SALIENCY_GLOBAL.value,
    GLAMKeys.SALIENCY_A1.value,
    GLAMKeys.SALIENCY_A2.value,
    GLAMKeys.SALIENCY_A3.value,
)


class GLAMSpatialOutputs(nn.Module):
    """Wrap :class:`GLAM` so that it returns only spatial maps, as a tuple ordered by decreasing resolution.

    ``sliding_window_inference`` can only stitch outputs with spatial dimensions, so image scores
    (``(N, C)``), patch boxes and per-patch maps are replaced by maps that can be stitched and pooled later:

    ==================  ==========================  =====================================================
    name                shape                       content
    ==================  ==========================  =====================================================
    ``saliency``        ``(N, C, H, W)``            fused map ``S``
    ``saliency_local``  ``(N, C, H/s_l, W/s_l)``    patch maps ``S_l`` pasted at their own resolution
                                                    (zero outside the patches)
    ``patch_coverage``  ``(N, 1, H/s_l, W/s_l)``    1 inside the selected patches, 0 outside
    ``saliency_global`` ``(N, C, H/s_g, W/s_g)``    ``S_g``
    ``saliency_a1..a3`` ``(N, C, H/s_g, W/s_g)``    per-scale maps
    ==================  ==========================  =====================================================

    ``s_g`` is ``map_stride`` (16 for GLAM) and ``s_l`` the local network's output stride (the patch size
    divided by the patch-map size, 4 for GLAM). Keeping the local maps at their own resolution is exact (no
    upsampling) and 16 times smaller than pasting them at full resolution.

    Args:
        network: the GLAM model to wrap (its mode, train or eval, is left alone).
        map_stride: input pixels per global-map pixel. The window's height and width must be multiples of it
            and the global maps must be exactly ``(H / map_stride, W / map_stride)``; then the patch corners
            are multiples of it too, so the local maps can be pasted at their own resolution.

    Raises:
        ValueError: from the constructor when ``map_stride`` is not positive or is not a multiple of the
            local output stride; from ``forward`` when the window size or the network's map sizes do not
            match ``map_stride``.
    """

    def __init__(self, network: GLAM, map_stride: int = 16) -> None:
        super().__init__()
        if int(map_stride) < 1:
            raise ValueError(f"map_stride must be a positive integer, got {map_stride!r}.")
        self.network = network
        self.map_stride = int(map_stride)
        self.patch_size = (int(network.patch_size[0]), int(network.patch_size[1]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Map ``(N, C_in, H, W)`` windows to the tuple described in the class docstring."""
        height, width = int(x.shape[-2]), int(x.shape[-1])
        if height % self.map_stride or width % self.map_stride:
            raise ValueError(
                f"window size ({height}, {width}) must be a multiple of map_stride={self.map_stride} in both "
                "dimensions so that the global maps line up between windows."
            )
        out = self.network(x)
        saliency_global = out[GLAMKeys.SALIENCY_GLOBAL.value]
        expected = (height // self.map_stride, width // self.map_stride)
        if tuple(saliency_global.shape[-2:]) != expected:
            raise ValueError(
                f"the network's global maps are {tuple(saliency_global.shape[-2:])} for a ({height}, {width}) "
                f"window, not {expected}: its map stride is not map_stride={self.map_stride}."
            )
        patch_maps = out[GLAMKeys.PATCH_SALIENCY.value]
        boxes = out[GLAMKeys.PATCH_BOXES.value]
        local_size = (int(patch_maps.shape[-2]), int(patch_maps.shape[-1]))
        if self.patch_size[0] % local_size[0] or self.patch_size[1] % local_size[1]:
            raise ValueError(f"patch maps {local_size} do not divide the patch size {self.patch_size}.")
        local_stride = (self.patch_size[0] // local_size[0], self.patch_size[1] // local_size[1])
        if self.map_stride % local_stride[0] or self.map_stride % local_stride[1]:
            raise ValueError(
                f"map_stride={self.map_stride} must be a multiple of the local output stride {local_stride}."
            )
        # Patch corners are multiples of map_stride (the global map is exactly H / map_stride), so dividing
        # them by the local stride is exact.
        stride_tensor = torch.tensor(local_stride + local_stride, device=boxes.device, dtype=boxes.dtype)
        local_boxes = torch.div(boxes, stride_tensor, rounding_mode="floor")
        local_image_size = [height // local_stride[0], width // local_stride[1]]
        saliency_local = paste_patch_maps(patch_maps, local_boxes, local_image_size, list(local_size))
        coverage = paste_patch_maps(
            torch.ones_like(patch_maps[:, :, :1]), local_boxes, local_image_size, list(local_size)
        )
        saliency = out.get(GLAMKeys.SALIENCY.value)
        if saliency is None:  # GLAM(saliency_in_training=False) in training mode skips the fused map
            saliency = fuse_patch_maps(
                saliency_global, patch_maps, boxes, [height, width], list(self.patch_size), self.network.fusion
            )
        return (
            saliency,
            saliency_local,
            coverage,
            saliency_global,
            out[GLAMKeys.SALIENCY_A1.value],
            out[GLAMKeys.SALIENCY_A2.value],
            out[GLAMKeys.SALIENCY_A3.value],
        )
