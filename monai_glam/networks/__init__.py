"""GLAM networks in MONAI's layout (``nets`` and ``blocks``), named presets, the checkpoint reader
(:mod:`monai_glam.networks.io`) and the published-checkpoint key layout."""

from __future__ import annotations

from monai_glam.networks.blocks import RegionProposal, TopTPooling
from monai_glam.networks.io import (
    MODEL_CONFIG_NAME,
    PREPROCESSING_KEYS,
    ModelConfig,
    glam_argument_names,
    is_nyu_state_dict,
    load_glam_weights,
    load_model,
    read_glam_state_dict,
    read_model_config,
    resolve_model_config,
    save_model_config,
)
from monai_glam.networks.nets import (
    GLAM,
    GLAM_PRESETS,
    LOCAL_POOLINGS,
    PRESET_LOSS_WEIGHTS,
    GLAMSingleOutput,
    GlobalNetwork,
    LocalNetwork,
    PreActResNet,
    glam_network,
    glam_preset,
    preset_flip_consistency,
    preset_loss_weights,
    preset_window,
)
from monai_glam.networks.nyu_checkpoint import convert_nyu_state_dict, load_nyu_glam

__all__ = [
    "GLAM",
    "GLAM_PRESETS",
    "LOCAL_POOLINGS",
    "MODEL_CONFIG_NAME",
    "PREPROCESSING_KEYS",
    "PRESET_LOSS_WEIGHTS",
    "GLAMSingleOutput",
    "GlobalNetwork",
    "LocalNetwork",
    "ModelConfig",
    "PreActResNet",
    "RegionProposal",
    "TopTPooling",
    "convert_nyu_state_dict",
    "glam_argument_names",
    "glam_network",
    "glam_preset",
    "is_nyu_state_dict",
    "load_glam_weights",
    "load_model",
    "load_nyu_glam",
    "preset_flip_consistency",
    "preset_loss_weights",
    "preset_window",
    "read_glam_state_dict",
    "read_model_config",
    "resolve_model_config",
    "save_model_config",
]
