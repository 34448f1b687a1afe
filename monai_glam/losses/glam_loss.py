"""GLAM's weakly-supervised multiple-instance objective: BCE on both image predictions plus map sparsity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.nn.modules.loss import _Loss

from monai_glam.utils.enums import BatchKeys, GLAMKeys, LossTermKeys, TrainingOutputKeys

__all__ = ["GLAMLoss", "GLAMLossTerms"]


class GLAMLossTerms:
    """Backward-compatible alias of :class:`~monai_glam.utils.enums.LossTermKeys`, plus ``ALL``.

    New code should use ``LossTermKeys``; the members here are the same enum members, and ``ALL`` lists every
    term in the enum's order.
    """

    BCE_GLOBAL = LossTermKeys.BCE_GLOBAL
    BCE_LOCAL = LossTermKeys.BCE_LOCAL
    SPARSITY_GLOBAL = LossTermKeys.SPARSITY_GLOBAL
    SPARSITY_LOCAL = LossTermKeys.SPARSITY_LOCAL
    FLIP_CONSISTENCY = LossTermKeys.FLIP_CONSISTENCY
    FLIP_CONSISTENCY_LOCAL = LossTermKeys.FLIP_CONSISTENCY_LOCAL
    ERASURE_GLOBAL = LossTermKeys.ERASURE_GLOBAL
    ERASURE_LOCAL = LossTermKeys.ERASURE_LOCAL
    ALL: tuple[LossTermKeys, ...] = tuple(LossTermKeys)


class GLAMLoss(_Loss):
    """Weighted sum of GLAM's four training terms, from image-level labels only.

    - ``bce_global``: Σ_c BCE(y_c, ŷ_g,c), averaged over the batch (ŷ_g is already a probability);
    - ``bce_local``: Σ_c BCE(y_c, ŷ_l,c);
    - ``sparsity_global``: Σ_c mean |S_g,c| over the batch and the map;
    - ``sparsity_local``: Σ_c mean |S_l,c| over the batch, the patches and their maps;
    - ``flip_consistency``: Σ_c mean |S_g,c(x) − flip(S_g,c(flip(x)))|, the global map of the input against that
      of the input flipped along both axes and flipped back (``saliency_global_flipped``, which
      :class:`~monai_glam.engines.GLAMStageNetwork` adds with ``flip_consistency=True``). Off by default (not
      in the paper). A convolutional network trained with MIL pooling alone may learn to fire a fixed distance
      away from the evidence (the pooling does not care where), so its map and the patches it selects land
      next to the lesion; such a constant shift of ``δ`` shows as ``2δ`` between the two maps, so this
      self-supervised term (an equivariance constraint as in SEAM, Wang et al., CVPR 2020) pulls the map onto
      the evidence without any location label;
    - ``flip_consistency_local``: the same for the patch maps, Σ_c mean |S_l,c(p) − flip(S_l,c(flip(p)))| over the
      batch and the patches (``patch_saliency_flipped``, ``GLAMStageNetwork(local_flip_consistency=True)``);
    - ``erasure_global``: Σ_c mean over the batch of y_c · −log(1 − ŷ^e_g,c), with ŷ^e_g the global score of the
      input after the regions S_g marks were erased (``prob_global_erased``, ``GLAMStageNetwork(erasure=True)``).
      Off by default (not in the paper). Where the map is beside the lesion, erasing it leaves the lesion and the
      score of a positive image stays high; the term's gradient, which reaches the network only through the map,
      moves the map onto what the classifier needs erased — the evidence. Together with the sparsity term it
      asks for the smallest region whose removal explains the label (a deletion objective, as in the learned
      saliency masks of Dabkowski & Gal, NeurIPS 2017, or Fong & Vedaldi's meaningful perturbations, ICCV 2017);
    - ``erasure_local``: the same for ŷ_l of the patches erased by their local maps (``prob_local_erased``,
      ``GLAMStageNetwork(local_erasure=True)``): a map that rings a mass leaves the mass and the score.

    The sparsity terms push saliency towards zero wherever the classification terms do not need it, which
    is what makes the maps segment: GLAM inherits this objective from GMIC, and only image-level labels are
    needed (the lesion masks, when a batch carries them, are used for evaluation only, never by the loss).
    A term whose weight is zero is not computed, and its inputs may be absent from ``pred``: the global
    stage trains :class:`~monai_glam.networks.GlobalNetwork` alone with ``local_*_weight=0``.

    Args:
        global_bce_weight: weight of ``bce_global``.
        local_bce_weight: weight of ``bce_local``.
        global_sparsity_weight: weight β_g of ``sparsity_global``.
        local_sparsity_weight: weight β_l of ``sparsity_local``.
        flip_consistency_weight: weight of ``flip_consistency`` (0: not computed).
        local_flip_consistency_weight: weight of ``flip_consistency_local`` (0: not computed).
        erasure_weight: weight of ``erasure_global`` (0: not computed).
        local_erasure_weight: weight of ``erasure_local`` (0: not computed).
        pos_weight: optional per-class weights of the positive examples (e.g. ``negatives / positives``)
            for imbalanced data; ``None`` weighs positives and negatives alike.
        eps: probabilities are clamped to ``[eps, 1 - eps]`` before the logarithm.

    ``forward(pred, target)``: ``pred`` is the network's dict (:class:`GLAMKeys`); ``target`` the ``(N, C)``
    labels in {0, 1}, or the engines' label dict ``{"label": (N, C), "mask": (N, C, H, W), "mask_available":
    (N, C)}`` (:class:`BatchKeys`) of which only ``"label"`` is used; returns the scalar loss. :meth:`terms`
    returns the unweighted terms (keyed by :class:`LossTermKeys`) for logging.

    Raises:
        ValueError: on negative weights, a wrong ``pos_weight`` length, a missing prediction, a label dict
            without ``"label"``, or label and prediction shapes that do not match.
    """

    def __init__(
        self,
        global_bce_weight: float = 1.0,
        local_bce_weight: float = 1.0,
        global_sparsity_weight: float = 0.05,
        local_sparsity_weight: float = 0.05,
        pos_weight: Sequence[float] | None = None,
        eps: float = 1e-6,
        flip_consistency_weight: float = 0.0,
        local_flip_consistency_weight: float = 0.0,
        erasure_weight: float = 0.0,
        local_erasure_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.weights = {
            LossTermKeys.BCE_GLOBAL: float(global_bce_weight),
            LossTermKeys.BCE_LOCAL: float(local_bce_weight),
            LossTermKeys.SPARSITY_GLOBAL: float(global_sparsity_weight),
            LossTermKeys.SPARSITY_LOCAL: float(local_sparsity_weight),
            LossTermKeys.FLIP_CONSISTENCY: float(flip_consistency_weight),
            LossTermKeys.FLIP_CONSISTENCY_LOCAL: float(local_flip_consistency_weight),
            LossTermKeys.ERASURE_GLOBAL: float(erasure_weight),
            LossTermKeys.ERASURE_LOCAL: float(local_erasure_weight),
        }
        for name, weight in self.weights.items():
            if not weight >= 0.0:  # also rejects NaN
                raise ValueError(f"the weight of {name} must be >= 0, got {weight!r}.")
        if not 0.0 < eps < 0.5:
            raise ValueError(f"eps must be in (0, 0.5), got {eps!r}.")
        self.eps = float(eps)
        if pos_weight is not None:
            values = [float(w) for w in pos_weight]
            if not values or any(not w > 0 for w in values):
                raise ValueError(f"pos_weight must be positive numbers, got {pos_weight!r}.")
            self.register_buffer("pos_weight", torch.tensor(values), persistent=False)
        else:
            self.pos_weight: torch.Tensor | None = None

    def _clamped_pair(
        self, prob: torch.Tensor, target: torch.Tensor | None, what: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, C)`` probabilities clamped to ``[eps, 1 - eps]`` and the labels in their dtype, checked to match."""
        if target is None:  # unreachable: terms() reads the labels whenever a term that needs them is weighted
            raise ValueError(f"the {what} terms need the (N, C) labels, got None.")
        if prob.dim() != 2 or prob.shape != target.shape:
            raise ValueError(
                f"{what} predictions and labels must both be (N, C), got {tuple(prob.shape)} and {tuple(target.shape)}."
            )
        prob = prob.clamp(self.eps, 1.0 - self.eps)
        return prob, target.to(prob.dtype)

    def _bce(self, prob: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        prob, target = self._clamped_pair(prob, target, "BCE")
        if self.pos_weight is not None and self.pos_weight.numel() != prob.shape[1]:
            raise ValueError(f"pos_weight has {self.pos_weight.numel()} entries for {prob.shape[1]} classes.")
        positive = target * torch.log(prob)
        if self.pos_weight is not None:
            positive = positive * self.pos_weight.to(prob)
        per_item = -(positive + (1.0 - target) * torch.log1p(-prob))
        return per_item.sum(dim=1).mean()

    def _erasure(self, prob_erased: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        # −log(1 − ŷ^e) on the positive labels only: a negative image has nothing to erase.
        prob_erased, target = self._clamped_pair(prob_erased, target, "erasure")
        return -(target * torch.log1p(-prob_erased)).sum(dim=1).mean()

    @staticmethod
    def _class_mean_abs(saliency: torch.Tensor, class_dim: int) -> torch.Tensor:
        # Σ_c mean|S_c|: mean over every dimension but the class one, then a sum over classes. The sparsity terms
        # apply it to a map, the flip-consistency terms to the difference of two maps.
        dims = [d for d in range(saliency.dim()) if d != class_dim]
        return saliency.abs().mean(dim=dims).sum()

    @staticmethod
    def _get(pred: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
        if key not in pred:
            raise ValueError(f"the prediction has no '{key}' entry (keys: {sorted(pred)}); set its loss weight to 0.")
        return pred[key]

    @staticmethod
    def _labels(target: torch.Tensor | Mapping[str, Any]) -> torch.Tensor:
        """The ``(N, C)`` image labels of ``target``: the tensor itself, or the label dict's ``"label"`` entry."""
        if isinstance(target, Mapping):
            if BatchKeys.LABEL not in target:
                raise ValueError(f"the label dict has no '{BatchKeys.LABEL}' entry (keys: {sorted(map(str, target))}).")
            target = target[BatchKeys.LABEL]
        return torch.as_tensor(target)

    def terms(
        self, pred: Mapping[str, torch.Tensor], target: torch.Tensor | Mapping[str, Any]
    ) -> dict[LossTermKeys, torch.Tensor]:
        """The unweighted terms whose weight is non-zero, as 0-d tensors.

        Args:
            pred: the network's output dict (:class:`GLAMKeys`).
            target: ``(N, C)`` labels in {0, 1}, or the label dict whose ``"label"`` entry holds them.

        Returns:
            ``{LossTermKeys member: 0-d tensor}`` for every term with a non-zero weight, in the enum's order.
        """
        if not isinstance(pred, Mapping):
            raise ValueError(f"GLAMLoss expects the network's output dict, got {type(pred).__name__}.")
        out: dict[LossTermKeys, torch.Tensor] = {}
        needs_labels = any(
            self.weights[key] > 0
            for key in (
                LossTermKeys.BCE_GLOBAL,
                LossTermKeys.BCE_LOCAL,
                LossTermKeys.ERASURE_GLOBAL,
                LossTermKeys.ERASURE_LOCAL,
            )
        )
        labels = self._labels(target) if needs_labels else None
        if self.weights[LossTermKeys.BCE_GLOBAL] > 0:
            out[LossTermKeys.BCE_GLOBAL] = self._bce(self._get(pred, GLAMKeys.PROB_GLOBAL), labels)
        if self.weights[LossTermKeys.BCE_LOCAL] > 0:
            out[LossTermKeys.BCE_LOCAL] = self._bce(self._get(pred, GLAMKeys.PROB_LOCAL), labels)
        if self.weights[LossTermKeys.SPARSITY_GLOBAL] > 0:
            out[LossTermKeys.SPARSITY_GLOBAL] = self._class_mean_abs(self._get(pred, GLAMKeys.SALIENCY_GLOBAL), 1)
        if self.weights[LossTermKeys.SPARSITY_LOCAL] > 0:
            out[LossTermKeys.SPARSITY_LOCAL] = self._class_mean_abs(self._get(pred, GLAMKeys.PATCH_SALIENCY), 2)
        if self.weights[LossTermKeys.FLIP_CONSISTENCY] > 0:
            flipped = self._get(pred, TrainingOutputKeys.SALIENCY_GLOBAL_FLIPPED)
            out[LossTermKeys.FLIP_CONSISTENCY] = self._class_mean_abs(
                self._get(pred, GLAMKeys.SALIENCY_GLOBAL) - flipped, 1
            )
        if self.weights[LossTermKeys.FLIP_CONSISTENCY_LOCAL] > 0:
            flipped = self._get(pred, TrainingOutputKeys.PATCH_SALIENCY_FLIPPED)
            out[LossTermKeys.FLIP_CONSISTENCY_LOCAL] = self._class_mean_abs(
                self._get(pred, GLAMKeys.PATCH_SALIENCY) - flipped, 2
            )
        if self.weights[LossTermKeys.ERASURE_GLOBAL] > 0:
            erased = self._get(pred, TrainingOutputKeys.PROB_GLOBAL_ERASED)
            out[LossTermKeys.ERASURE_GLOBAL] = self._erasure(erased, labels)
        if self.weights[LossTermKeys.ERASURE_LOCAL] > 0:
            erased = self._get(pred, TrainingOutputKeys.PROB_LOCAL_ERASED)
            out[LossTermKeys.ERASURE_LOCAL] = self._erasure(erased, labels)
        return out

    @property
    def uses_flipped_global_map(self) -> bool:
        """Whether the loss needs ``saliency_global_flipped`` (its flip-consistency weight is not zero)."""
        return self.weights[LossTermKeys.FLIP_CONSISTENCY] > 0

    @property
    def uses_flipped_patch_maps(self) -> bool:
        """Whether the loss needs ``patch_saliency_flipped`` (its local flip-consistency weight is not zero)."""
        return self.weights[LossTermKeys.FLIP_CONSISTENCY_LOCAL] > 0

    @property
    def uses_erased_global_score(self) -> bool:
        """Whether the loss needs ``prob_global_erased`` (its erasure weight is not zero)."""
        return self.weights[LossTermKeys.ERASURE_GLOBAL] > 0

    @property
    def uses_erased_local_score(self) -> bool:
        """Whether the loss needs ``prob_local_erased`` (its local erasure weight is not zero)."""
        return self.weights[LossTermKeys.ERASURE_LOCAL] > 0

    def combine(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Weighted sum of terms computed by :meth:`terms`."""
        if not terms:
            raise ValueError("every GLAMLoss weight is zero: nothing to optimise.")
        return torch.stack([self.weights[name] * value for name, value in terms.items()]).sum()

    def forward(  # type: ignore[override]
        self, pred: Mapping[str, torch.Tensor], target: torch.Tensor | Mapping[str, Any]
    ) -> torch.Tensor:
        """See the class docstring."""
        return self.combine(self.terms(pred, target))
