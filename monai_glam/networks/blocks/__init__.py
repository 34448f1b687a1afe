"""Building blocks of the GLAM networks."""

from __future__ import annotations

from monai_glam.networks.blocks.patch_ops import crop_patches, paste_patch_maps
from monai_glam.networks.blocks.pooling import TopTPooling, top_t_count
from monai_glam.networks.blocks.region_proposal import RegionProposal, rescale_index
from monai_glam.networks.blocks.resnet_blocks import BasicBlock, ConvBatchNorm, PreActBasicBlock

__all__ = [
    "BasicBlock",
    "ConvBatchNorm",
    "PreActBasicBlock",
    "RegionProposal",
    "TopTPooling",
    "crop_patches",
    "paste_patch_maps",
    "rescale_index",
    "top_t_count",
]
