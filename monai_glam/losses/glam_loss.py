"""GLAM's weakly-supervised multiple-instance objective: BCE on both image predictions plus map sparsity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch.nn.modules.loss import _Loss

from monai_glam.utils.enums import GLAMKeys

__all__ = ["GLAMLoss", "GLAMLossTerms"]


class GLAMLossTerms:
    """Names of the terms returned by :meth:`GLAMLoss.terms` (and logged as ``loss_<name>``)."""

    BCE_GLOBAL = "bce_global"
    BCE_LOCAL = "bce_local"
    SPARSITY_GLOBAL = "sparsity_global"
    SPARSITY_LOCAL = "sparsity_local"
    ALL = (BCE_GLOBAL, BCE_LOCAL, SPARSITY_GLOBAL, SPARSITY_LOCAL)


class GLAMLoss(_Loss):
    """Weighted sum of GLAM's four training terms, from image-level labels only.

    - ``bce_global``: Σ_c BCE(y_c, ŷ_g,c), averaged over the batch (ŷ_g is already a probability);
    - ``bce_local``: Σ_c BCE(y_c, ŷ_l,c);
    - ``sparsity_global``: Σ_c mean |S_g,c| over the batch and the map;
    - ``sparsity_local``: Σ_c mean |S_l,c| over the batch, the patches and their maps.

    The sparsity terms push saliency towards zero wherever the classification terms do not need it, which
    is what makes the maps segment (the GMIC-family objective GLAM was built around; see the spec §7).
    A term whose weight is zero is not computed, and its inputs may be absent from ``pred``: the global
    stage trains :class:`~monai_glam.networks.GlobalNetwork` alone with ``local_*_weight=0``.

    Args:
        global_bce_weight: weight of ``bce_global``.
        local_bce_weight: weight of ``bce_local``.
        global_sparsity_weight: weight β_g of ``sparsity_global``.
        local_sparsity_weight: weight β_l of ``sparsity_local``.
        pos_weight: optional per-class weights of the positive examples (e.g. ``negatives / positives``)
            for imbalanced data; ``None`` weighs positives and negatives alike.
        eps: probabilities are clamped to ``[eps, 1 - eps]`` before the logarithm.

    ``forward(pred, target)``: ``pred`` is the network's dict (:class:`GLAMKeys`), ``target`` the ``(N, C)``
    labels in {0, 1}; returns the scalar loss. :meth:`terms` returns the unweighted terms for logging.

    Raises:
        ValueError: on negative weights, a wrong ``pos_weight`` length, a missing prediction, or label and
            prediction shapes that do not match.
    """

    def __init__(
        self,
        global_bce_weight: float = 1.0,
        local_bce_weight: float = 1.0,
        global_sparsity_weight: float = 0.05,
        local_sparsity_weight: float = 0.05,
        pos_weight: Sequence[float] | None = None,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.weights = {
            GLAMLossTerms.BCE_GLOBAL: float(global_bce_weight),
            GLAMLossTerms.BCE_LOCAL: float(local_bce_weight),
            GLAMLossTerms.SPARSITY_GLOBAL: float(global_sparsity_weight),
            GLAMLossTerms.SPARSITY_LOCAL: float(local_sparsity_weight),
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

    def _bce(self, prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if prob.dim() != 2 or prob.shape != target.shape:
            raise ValueError(
                f"predictions and labels must both be (N, C), got {tuple(prob.shape)} and {tuple(target.shape)}."
            )
        if self.pos_weight is not None and self.pos_weight.numel() != prob.shape[1]:
            raise ValueError(f"pos_weight has {self.pos_weight.numel()} entries for {prob.shape[1]} classes.")
        prob = prob.clamp(self.eps, 1.0 - self.eps)
        target = target.to(prob.dtype)
        positive = target * torch.log(prob)
        if self.pos_weight is not None:
            positive = positive * self.pos_weight.to(prob)
        per_item = -(positive + (1.0 - target) * torch.log1p(-prob))
        return per_item.sum(dim=1).mean()

    @staticmethod
    def _sparsity(saliency: torch.Tensor, class_dim: int) -> torch.Tensor:
        # Σ_c mean|S_c|: mean over every dimension but the class one, then a sum over classes.
        dims = [d for d in range(saliency.dim()) if d != class_dim]
        return saliency.abs().mean(dim=dims).sum()

    @staticmethod
    def _get(pred: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
        if key not in pred:
            raise ValueError(f"the prediction has no '{key}' entry (keys: {sorted(pred)}); set its loss weight to 0.")
        return pred[key]

    def terms(self, pred: Mapping[str, torch.Tensor], target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unweighted terms whose weight is non-zero, as 0-d tensors."""
        if not isinstance(pred, Mapping):
            raise ValueError(f"GLAMLoss expects the network's output dict, got {type(pred).__name__}.")
        out: dict[str, torch.Tensor] = {}
        if self.weights[GLAMLossTerms.BCE_GLOBAL] > 0:
            out[GLAMLossTerms.BCE_GLOBAL] = self._bce(self._get(pred, GLAMKeys.PROB_GLOBAL), target)
        if self.weights[GLAMLossTerms.BCE_LOCAL] > 0:
            out[GLAMLossTerms.BCE_LOCAL] = self._bce(self._get(pred, GLAMKeys.PROB_LOCAL), target)
        if self.weights[GLAMLossTerms.SPARSITY_GLOBAL] > 0:
            out[GLAMLossTerms.SPARSITY_GLOBAL] = self._sparsity(self._get(pred, GLAMKeys.SALIENCY_GLOBAL), 1)
        if self.weights[GLAMLossTerms.SPARSITY_LOCAL] > 0:
            out[GLAMLossTerms.SPARSITY_LOCAL] = self._sparsity(self._get(pred, GLAMKeys.PATCH_SALIENCY), 2)
        return out

    def combine(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Weighted sum of terms computed by :meth:`terms`."""
        if not terms:
            raise ValueError("every GLAMLoss weight is zero: nothing to optimise.")
        return torch.stack([self.weights[name] * value for name, value in terms.items()]).sum()

    def forward(self, pred: Mapping[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """See the class docstring."""
        return self.combine(self.terms(pred, target))
