"""Building blocks of the GLAM networks."""

from __future__ import annotations

from monai_glam.networks.blocks.erasure import erase_salient, smooth_background
from monai_glam.networks.blocks.patch_ops import FUSION_RULES, crop_patches, fuse_patch_maps, paste_patch_maps
from monai_glam.networks.blocks.pooling import TopTPooling, top_t_count
from monai_glam.networks.blocks.region_proposal import PATCH_SELECTIONS, RegionProposal, rescale_index
from monai_glam.networks.blocks.resnet_blocks import (
    PADDING_MODES,
    BasicBlock,
    ConvBatchNorm,
    PreActBasicBlock,
    check_padding_mode,
)

__all__ = [
    "FUSION_RULES",
    "PADDING_MODES",
    "PATCH_SELECTIONS",
    "BasicBlock",
    "ConvBatchNorm",
    "PreActBasicBlock",
    "RegionProposal",
    "TopTPooling",
    "check_padding_mode",
    "crop_patches",
    "erase_salient",
    "fuse_patch_maps",
    "paste_patch_maps",
    "rescale_index",
    "smooth_background",
    "top_t_count",
]
