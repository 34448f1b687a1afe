"""GLAM networks in MONAI's layout (``nets`` and ``blocks``) and the published-checkpoint importer."""

from __future__ import annotations

from monai_glam.networks.blocks import RegionProposal, TopTPooling
from monai_glam.networks.nets import (
    GLAM,
    GLAM_PRESETS,
    GLAMSingleOutput,
    GlobalNetwork,
    LocalNetwork,
    PreActResNet,
    glam_preset,
)
from monai_glam.networks.nyu_checkpoint import convert_nyu_state_dict, load_nyu_glam

__all__ = [
    "GLAM",
    "GLAM_PRESETS",
    "GLAMSingleOutput",
    "GlobalNetwork",
    "LocalNetwork",
    "PreActResNet",
    "RegionProposal",
    "TopTPooling",
    "convert_nyu_state_dict",
    "glam_preset",
    "load_nyu_glam",
]
