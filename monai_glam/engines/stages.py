"""GLAM's three training stages: what each one trains, freezes and optimises."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from monai.utils import StrEnum
from torch import nn

from monai_glam.losses import GLAMLoss
from monai_glam.networks.blocks.patch_ops import crop_patches
from monai_glam.networks.nets.glam import GLAM
from monai_glam.utils.enums import GLAMKeys, TrainingOutputKeys

__all__ = ["GLAMStageNetwork", "TrainingStage", "loss_for_stage"]


class TrainingStage(StrEnum):
    """The three GLAM training stages, in the order they are run.

    GLAM's authors published no training code. monai_glam trains it the way models of the GMIC family, which
    GLAM builds on, are trained: the global module first, on its own; then the local module on the patches
    that the frozen global module selects; then, optionally, both together. Every checkpoint holds the whole
    GLAM, so each stage can start from the best checkpoint of the stage before it.

    - ``global``: trains the global module; the local module is frozen and not even run. Loss terms
      ``bce_global`` (on the image score ŷ_g) and ``sparsity_global`` (on the global map S_g); validated by
      the ROC-AUC of ŷ_g.
    - ``local``: trains the local module on the patches the frozen global module selects. Loss terms
      ``bce_local`` (on ŷ_l) and ``sparsity_local`` (on the patch maps S_l); validated by the ROC-AUC of ŷ_l.
    - ``joint``: fine-tunes both modules with all four terms; validated by the ROC-AUC of ŷ_g.

    :class:`GLAMStageNetwork` does the freezing, :func:`loss_for_stage` picks the terms and
    :func:`~monai_glam.engines.workflows.stage_score_key` the validation score.
    """

    GLOBAL = "global"
    LOCAL = "local"
    JOINT = "joint"


class GLAMStageNetwork(nn.Module):
    """A view of a :class:`GLAM` for one training stage.

    It freezes (``requires_grad=False``) the module the stage does not train and keeps it in eval mode even
    when the engine calls ``train()``, so frozen batch-norm statistics stay bit-identical. In the ``global``
    stage only the global module runs; in eval mode it also returns ``saliency`` = S_g upsampled to the input
    size (nearest), so localisation can be validated before the local module exists.

    The wrapped model is :attr:`glam`; checkpoints should save it (not this wrapper) so every stage reads and
    writes the same keys.

    With ``flip_consistency=True`` (``global`` and ``joint`` stages) a training-mode forward also runs the global
    module on the input flipped along both spatial axes and returns that S_g flipped back as
    ``saliency_global_flipped`` (:class:`~monai_glam.utils.enums.TrainingOutputKeys`), for the loss's
    flip-consistency term; it costs one more global forward and backward per step. ``local_flip_consistency=True``
    (``local`` and ``joint`` stages) does the same for the local module: each selected patch is flipped along
    both axes and its map, flipped back, is returned as ``patch_saliency_flipped``.

    Args:
        glam: the model to train.
        stage: ``"global"``, ``"local"`` or ``"joint"``.
        flip_consistency: also return ``saliency_global_flipped`` in training mode.
        local_flip_consistency: also return ``patch_saliency_flipped`` in training mode.

    Raises:
        ValueError: an unknown stage, ``flip_consistency`` in the ``local`` stage (the global module is frozen) or
            ``local_flip_consistency`` in the ``global`` stage (the local module is frozen).
    """

    def __init__(
        self,
        glam: GLAM,
        stage: str | TrainingStage,
        flip_consistency: bool = False,
        local_flip_consistency: bool = False,
    ) -> None:
        super().__init__()
        try:
            self.stage = TrainingStage(stage)
        except ValueError:
            raise ValueError(f"stage must be one of {[s.value for s in TrainingStage]}, got {stage!r}.") from None
        if flip_consistency and self.stage == TrainingStage.LOCAL:
            raise ValueError("flip_consistency trains the global module, which the 'local' stage keeps frozen.")
        if local_flip_consistency and self.stage == TrainingStage.GLOBAL:
            raise ValueError("local_flip_consistency trains the local module, which the 'global' stage keeps frozen.")
        self.flip_consistency = bool(flip_consistency)
        self.local_flip_consistency = bool(local_flip_consistency)
        self.glam = glam
        for module in self.frozen_modules():
            module.requires_grad_(False)
        for module in self.trained_modules():
            module.requires_grad_(True)

    def frozen_modules(self) -> list[nn.Module]:
        """Sub-modules this stage keeps fixed."""
        if self.stage == TrainingStage.GLOBAL:
            return [self.glam.local_network]
        if self.stage == TrainingStage.LOCAL:
            return [self.glam.global_network]
        return []

    def trained_modules(self) -> list[nn.Module]:
        """Sub-modules this stage optimises."""
        if self.stage == TrainingStage.GLOBAL:
            return [self.glam.global_network]
        if self.stage == TrainingStage.LOCAL:
            return [self.glam.local_network]
        return [self.glam.global_network, self.glam.local_network]

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters an optimizer for this stage should receive."""
        return [p for module in self.trained_modules() for p in module.parameters() if p.requires_grad]

    def train(self, mode: bool = True) -> GLAMStageNetwork:
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(N, C, H, W)`` -> the stage's output dict (see :class:`GLAM`)."""
        if self.stage != TrainingStage.GLOBAL:
            out = self.glam(x)
        else:
            out = self.glam.global_network(x)
            if not self.training:
                size = (x.shape[-2], x.shape[-1])
                saliency = F.interpolate(out[GLAMKeys.SALIENCY_GLOBAL], size=size, mode="nearest")
                out[GLAMKeys.SALIENCY.value] = saliency
        if self.flip_consistency and self.training:
            flipped = self.glam.global_network(x.flip(-2, -1))[GLAMKeys.SALIENCY_GLOBAL]
            out[TrainingOutputKeys.SALIENCY_GLOBAL_FLIPPED.value] = flipped.flip(-2, -1)
        if self.local_flip_consistency and self.training:
            boxes = out[GLAMKeys.PATCH_BOXES]
            patch_size = [int(self.glam.patch_size[0]), int(self.glam.patch_size[1])]
            patches = crop_patches(x, boxes, patch_size).flatten(0, 1).flip(-2, -1)
            maps = self.glam.local_network(patches).flip(-2, -1)
            out[TrainingOutputKeys.PATCH_SALIENCY_FLIPPED.value] = maps.reshape(out[GLAMKeys.PATCH_SALIENCY].shape)
        return out


def loss_for_stage(stage: str | TrainingStage, **loss_kwargs: Any) -> GLAMLoss:
    """A :class:`GLAMLoss` whose terms match the stage: global terms, local terms, or all four.

    ``loss_kwargs`` (e.g. ``global_sparsity_weight``, ``pos_weight``, ``flip_consistency_weight``) override the
    defaults; weights of the terms a stage cannot compute (or does not train) are forced to zero.
    """
    stage = TrainingStage(stage)
    if stage == TrainingStage.GLOBAL:
        loss_kwargs.update(local_bce_weight=0.0, local_sparsity_weight=0.0, local_flip_consistency_weight=0.0)
    elif stage == TrainingStage.LOCAL:
        loss_kwargs.update(global_bce_weight=0.0, global_sparsity_weight=0.0, flip_consistency_weight=0.0)
    return GLAMLoss(**loss_kwargs)
