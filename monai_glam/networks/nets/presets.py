"""Named GLAM configurations: the published one and smaller ones that train on a CPU."""

from __future__ import annotations

import copy
from typing import Any

from monai_glam.networks.nets.glam import GLAM, GLAMSingleOutput

__all__ = [
    "GLAM_PRESETS",
    "PRESET_LOSS_WEIGHTS",
    "glam_network",
    "glam_preset",
    "preset_flip_consistency",
    "preset_loss_weights",
    "preset_window",
]

#: ``name -> {"window": (H, W), "glam": GLAM kwargs}``. ``paper`` is the published model; ``small`` and
#: ``tiny`` keep its structure (5 pre-activation stages, a stride-1 local ResNet) at lower resolution and width
#: so a CPU trains them in minutes. These choices differ from the paper, all measured in docs/localization.md:
#: they pad the global backbone's convolutions by replication (trained from scratch with the published zero
#: padding, their global maps fired on the image's frame instead of the lesions), and they select two patches,
#: one per class (``num_patches=2, patch_selection="per_class"``): with one window chosen on the summed maps
#: the malignant lesion rarely got a patch, and the fused maps barely beat the global map. They also move each
#: training patch by up to a quarter of its size (``patch_jitter=0.25``, training mode only): it raised the fused
#: Dice in all six seed × class cells measured (demo, two seeds; moderate level). The local module pads by
#: replication too (with zeros its maps lit the top edge of every patch at the moderate level). ``"training"`` holds
#: the training defaults that differ between presets (:func:`preset_loss_weights`): the weights of the global
#: map's flip-consistency term and of the two erasure terms (a positive image erased where a class map points must
#: score negative, for the global and the local maps), on for the presets trained from scratch, off for ``paper``,
#: whose published objective (and weights) do without them.
GLAM_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "window": (2944, 1920),
        "glam": {},
        "training": {"flip_consistency_weight": 0.0, "erasure_weight": 0.0, "local_erasure_weight": 0.0},
    },
    "small": {
        "window": (512, 320),
        "glam": {
            "patch_size": 128,
            "global_channels": (16, 32, 64, 128, 128),
            "global_blocks": (1, 1, 1, 1, 1),
            "local_channels": (16, 32, 64, 64),
            "local_blocks": (1, 1, 1, 1),
            "global_padding_mode": "replicate",
            "num_patches": 2,
            "patch_selection": "per_class",
            "patch_jitter": 0.25,
            "local_padding_mode": "replicate",
        },
        "training": {"flip_consistency_weight": 1.0, "erasure_weight": 1.0, "local_erasure_weight": 1.0},
    },
    "tiny": {
        "window": (256, 160),
        "glam": {
            "patch_size": 64,
            "global_channels": (8, 16, 32, 32, 64),
            "global_blocks": (1, 1, 1, 1, 1),
            "local_channels": (8, 16, 32, 32),
            "local_blocks": (1, 1, 1, 1),
            "global_top_t": 0.05,
            "global_padding_mode": "replicate",
            "num_patches": 2,
            "patch_selection": "per_class",
            "patch_jitter": 0.25,
            "local_padding_mode": "replicate",
        },
        "training": {"flip_consistency_weight": 1.0, "erasure_weight": 1.0, "local_erasure_weight": 1.0},
    },
}


def glam_preset(name: str) -> dict[str, Any]:
    """A deep copy of preset ``name`` (``{"window": (H, W), "glam": kwargs, "training": defaults}``).

    Raises:
        ValueError: for an unknown name.
    """
    if name not in GLAM_PRESETS:
        raise ValueError(f"unknown GLAM preset {name!r}; choose one of {sorted(GLAM_PRESETS)}.")
    return copy.deepcopy(GLAM_PRESETS[name])


def glam_network(preset: str = "paper", output_key: str | None = None, **glam_kwargs: Any) -> GLAM:
    """A :class:`GLAM` of a named preset (``paper``, ``small``, ``tiny``), with ``glam_kwargs`` overriding it.

    Args:
        preset: see :data:`GLAM_PRESETS`.
        output_key: ``None`` for the dictionary-output GLAM; a :class:`~monai_glam.utils.GLAMKeys` name (e.g.
            ``"saliency"``) for :class:`GLAMSingleOutput`, which returns that one tensor (bundle checks,
            ONNX/TorchScript users that need a tensor). Both have the same state dict.
        glam_kwargs: GLAM constructor arguments overriding the preset's.

    Raises:
        ValueError: for an unknown preset or ``output_key``, or invalid GLAM arguments.
    """
    kwargs = {**glam_preset(preset)["glam"], **glam_kwargs}
    if output_key is None:
        return GLAM(**kwargs)
    return GLAMSingleOutput(output_key=str(output_key), **kwargs)


#: The loss weights a preset may set in its ``"training"`` entry (:class:`~monai_glam.losses.GLAMLoss` arguments),
#: with the value of a preset that does not set them.
PRESET_LOSS_WEIGHTS: dict[str, float] = {
    "flip_consistency_weight": 0.0,
    "erasure_weight": 0.0,
    "local_erasure_weight": 0.0,
}


def preset_loss_weights(preset: str = "paper") -> dict[str, float]:
    """The default weights of the loss terms that differ between presets, for training ``preset``.

    ``{"flip_consistency_weight", "erasure_weight", "local_erasure_weight"}``: all ``0`` for ``paper`` (the
    published objective), all ``1`` for ``small`` and ``tiny``. Trained from scratch with MIL pooling alone, their
    global maps settled beside the lesions and their local maps ringed the masses; the flip-consistency and
    erasure terms put both on the lesions (docs/localization.md).

    Raises:
        ValueError: for an unknown preset.
    """
    training = glam_preset(preset).get("training", {})
    return {name: float(training.get(name, default)) for name, default in PRESET_LOSS_WEIGHTS.items()}


def preset_flip_consistency(preset: str = "paper") -> float:
    """The default weight of the global map's flip-consistency loss term for training ``preset``.

    ``0`` for ``paper`` (the published objective), ``1`` for ``small`` and ``tiny``: trained from scratch with MIL
    pooling alone, their global maps settled beside the lesions, and the term pulled them back (docs/
    localization.md).

    Raises:
        ValueError: for an unknown preset.
    """
    return preset_loss_weights(preset)["flip_consistency_weight"]


def preset_window(preset: str = "paper") -> tuple[int, int]:
    """The network input ``(H, W)`` of a preset (``paper``: 2944 x 1920).

    Raises:
        ValueError: for an unknown preset.
    """
    height, width = glam_preset(preset)["window"]
    return int(height), int(width)
