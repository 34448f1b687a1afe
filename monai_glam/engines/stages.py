"""GLAM's three training stages: what each one trains, freezes and optimises."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from monai.utils import StrEnum
from torch import nn

from monai_glam.losses import GLAMLoss
from monai_glam.networks.blocks.erasure import erase_salient
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

    With ``erasure=True`` (``global`` and ``joint`` stages) a training-mode forward also erases from the input,
    class by class, what S_g marks (:func:`~monai_glam.networks.blocks.erase_salient`: each class map,
    upsampled, blends a copy of the image into its means over cells of the patch size) and returns, per class,
    ŷ_g of the copy that class's map erased as ``prob_global_erased``, for the loss's erasure term. That second
    pass runs the global module in eval mode (batch-norm running statistics) with detached parameters, so the
    term's gradient reaches the parameters only through the map that did the erasing: the classifier cannot
    learn to call erased images negative, only the map can learn to cover the evidence. ``local_erasure=True``
    (``local`` and ``joint`` stages) does the same for each selected patch with its local maps, returning ŷ_l of
    the erased patches as ``prob_local_erased``. Each costs a forward and backward (without parameter
    gradients) of its module on ``C`` erased copies of the batch per step.

    Args:
        glam: the model to train.
        stage: ``"global"``, ``"local"`` or ``"joint"``.
        flip_consistency: also return ``saliency_global_flipped`` in training mode.
        local_flip_consistency: also return ``patch_saliency_flipped`` in training mode.
        erasure: also return ``prob_global_erased`` in training mode.
        local_erasure: also return ``prob_local_erased`` in training mode.

    Raises:
        ValueError: an unknown stage, ``flip_consistency`` or ``erasure`` in the ``local`` stage (the global module
            is frozen), ``local_flip_consistency`` or ``local_erasure`` in the ``global`` stage (the local module
            is frozen).
    """

    def __init__(
        self,
        glam: GLAM,
        stage: str | TrainingStage,
        flip_consistency: bool = False,
        local_flip_consistency: bool = False,
        erasure: bool = False,
        local_erasure: bool = False,
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
        if erasure and self.stage == TrainingStage.LOCAL:
            raise ValueError("erasure trains the global map, which the 'local' stage keeps frozen.")
        if local_erasure and self.stage == TrainingStage.GLOBAL:
            raise ValueError("local_erasure trains the local maps, which the 'global' stage keeps frozen.")
        self.flip_consistency = bool(flip_consistency)
        self.local_flip_consistency = bool(local_flip_consistency)
        self.erasure = bool(erasure)
        self.local_erasure = bool(local_erasure)
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
        patches = None
        if (self.local_flip_consistency or self.local_erasure) and self.training:
            # The selected (possibly jittered) patches again, (N*K, C_in, p, p): GLAM's forward does not return them.
            patch_size = [int(self.glam.patch_size[0]), int(self.glam.patch_size[1])]
            patches = crop_patches(x, out[GLAMKeys.PATCH_BOXES], patch_size).flatten(0, 1)
        if self.local_flip_consistency and patches is not None:
            maps = self.glam.local_network(patches.flip(-2, -1)).flip(-2, -1)
            out[TrainingOutputKeys.PATCH_SALIENCY_FLIPPED.value] = maps.reshape(out[GLAMKeys.PATCH_SALIENCY].shape)
        if self.erasure and self.training:
            saliency = out[GLAMKeys.SALIENCY_GLOBAL]  # (N, C, h, w)
            n, c = saliency.shape[0], saliency.shape[1]
            erased = erase_salient(x, saliency, self.erasure_cell_size)  # (N, C, C_in, H, W): one copy per class
            prob = _detached_call(self.glam.global_network, erased.flatten(0, 1))[GLAMKeys.PROB_GLOBAL]
            # class c's score of the copy erased by class c's map: the diagonal of (N, C copies, C scores)
            out[TrainingOutputKeys.PROB_GLOBAL_ERASED.value] = prob.reshape(n, c, c).diagonal(dim1=1, dim2=2)
        if self.local_erasure and patches is not None:
            maps = out[GLAMKeys.PATCH_SALIENCY]  # (N, K, C, h, w)
            n, k, c = maps.shape[0], maps.shape[1], maps.shape[2]
            erased = erase_salient(patches, maps.flatten(0, 1), self.erasure_cell_size)  # (N*K, C copies, ...)
            erased_maps = _detached_call(self.glam.local_network, erased.flatten(0, 1))  # (N*K*C, C, h, w)
            erased_maps = erased_maps.reshape(n, k, c, c, erased_maps.shape[-2], erased_maps.shape[-1])
            # class c's map of the copies erased by class c's maps, pooled over the K patches as ŷ_l is
            own = erased_maps.diagonal(dim1=2, dim2=3).permute(0, 1, 4, 2, 3)  # (N, K, C, h, w)
            out[TrainingOutputKeys.PROB_LOCAL_ERASED.value] = self.glam.pool_patch_maps(own)
        return out

    @property
    def erasure_cell_size(self) -> int:
        """The erasure's background cell: the patch size (a window sized to hold a lesion), in pixels."""
        return int(max(self.glam.patch_size[0], self.glam.patch_size[1]))


def _detached_call(module: nn.Module, x: torch.Tensor) -> Any:
    """``module(x)`` in eval mode with its parameters detached: gradients reach ``x`` only.

    Eval mode, so that batch normalisation uses its running statistics: the erased copies of a batch are scored
    one by one, as the deployed model would score them (batch statistics would couple the copies of different
    classes), and the module's running statistics are left as they were.
    """
    state = {name: p.detach() for name, p in module.named_parameters()}
    was_training = module.training
    module.eval()
    try:
        return torch.func.functional_call(module, state, (x,))
    finally:
        module.train(was_training)


def loss_for_stage(stage: str | TrainingStage, **loss_kwargs: Any) -> GLAMLoss:
    """A :class:`GLAMLoss` whose terms match the stage: global terms, local terms, or all four.

    ``loss_kwargs`` (e.g. ``global_sparsity_weight``, ``pos_weight``, ``flip_consistency_weight``) override the
    defaults; weights of the terms a stage cannot compute (or does not train) are forced to zero.
    """
    stage = TrainingStage(stage)
    if stage == TrainingStage.GLOBAL:
        loss_kwargs.update(
            local_bce_weight=0.0, local_sparsity_weight=0.0, local_flip_consistency_weight=0.0, local_erasure_weight=0.0
        )
    elif stage == TrainingStage.LOCAL:
        loss_kwargs.update(
            global_bce_weight=0.0, global_sparsity_weight=0.0, flip_consistency_weight=0.0, erasure_weight=0.0
        )
    return GLAMLoss(**loss_kwargs)
