"""GLAM networks: the global module, the local module and the composed model."""

from __future__ import annotations

from monai_glam.networks.nets.glam import GLAM, LOCAL_POOLINGS, GLAMSingleOutput
from monai_glam.networks.nets.global_network import GlobalNetwork, PreActResNet
from monai_glam.networks.nets.local_network import LocalNetwork
from monai_glam.networks.nets.presets import (
    GLAM_PRESETS,
    PRESET_LOSS_WEIGHTS,
    glam_network,
    glam_preset,
    preset_flip_consistency,
    preset_loss_weights,
    preset_window,
)

__all__ = [
    "GLAM",
    "GLAM_PRESETS",
    "LOCAL_POOLINGS",
    "PRESET_LOSS_WEIGHTS",
    "GLAMSingleOutput",
    "GlobalNetwork",
    "LocalNetwork",
    "PreActResNet",
    "glam_network",
    "glam_preset",
    "preset_flip_consistency",
    "preset_loss_weights",
    "preset_window",
]
