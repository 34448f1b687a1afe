"""GLAM networks in MONAI's layout (``nets`` and ``blocks``) and the published-checkpoint importer."""

from __future__ import annotations

from monai_glam.networks.blocks import RegionProposal, TopTPooling
from monai_glam.networks.nets import GLAM, GlobalNetwork, LocalNetwork, PreActResNet
from monai_glam.networks.nyu_checkpoint import convert_nyu_state_dict, load_nyu_glam

__all__ = [
    "GLAM",
    "GlobalNetwork",
    "LocalNetwork",
    "PreActResNet",
    "RegionProposal",
    "TopTPooling",
    "convert_nyu_state_dict",
    "load_nyu_glam",
]
