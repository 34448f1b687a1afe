"""Copy GLAMLoss's individual terms (and the learning rate) into the trainer's output for logging."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys, min_version, optional_import

from monai_glam.losses import GLAMLoss
from monai_glam.utils.enums import BatchKeys

if TYPE_CHECKING:
    from ignite.engine import Engine
else:
    Engine, _ = optional_import("ignite.engine", "0.4.11", min_version, "Engine")

__all__ = ["LossTermsHandler", "training_scalars"]

#: Prefix of the loss-term entries this handler adds to ``engine.state.output``.
TERM_PREFIX = "loss_"
LEARNING_RATE_KEY = "lr"


class LossTermsHandler:
    """After each loss computation, store ``loss_<term>`` (detached, unweighted) and ``lr`` in the output.

    The terms (:class:`~monai_glam.utils.enums.LossTermKeys`) are recomputed without gradient from
    ``engine.state.output`` alone: the prediction ``output["pred"]`` and ``output["label"]``, which is either the
    ``(N, C)`` labels or the label dict ``{"label", "mask", "mask_available"}`` (:meth:`GLAMLoss.terms` reads
    its ``"label"``). That is a handful of reductions, negligible next to the forward pass. Pair it with
    :func:`training_scalars` as the ``output_transform`` of ``StatsHandler`` / ``TensorBoardStatsHandler``.

    Args:
        loss: the trainer's loss.
        optimizer: when given, its first parameter group's learning rate is logged as ``lr``.
    """

    def __init__(self, loss: GLAMLoss, optimizer: torch.optim.Optimizer | None = None) -> None:
        self.loss = loss
        self.optimizer = optimizer

    def attach(self, engine: Engine) -> None:
        """Run on ``IterationEvents.LOSS_COMPLETED`` of a MONAI trainer."""
        engine.add_event_handler(IterationEvents.LOSS_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        """Add ``loss_<term>`` (0-d tensors) and, with an optimizer, ``lr`` to the batched output dict.

        Raises:
            ValueError: when the output is not a batched dict (attach before decollation, as :meth:`attach` does).
        """
        output = engine.state.output
        if not isinstance(output, dict):
            raise ValueError(
                f"LossTermsHandler needs the batched output dict, got {type(output).__name__}; "
                "run it on IterationEvents.LOSS_COMPLETED (before any decollation)."
            )
        with torch.no_grad():
            terms = self.loss.terms(output[BatchKeys.PRED], output[BatchKeys.LABEL])
        for name, value in terms.items():
            output[TERM_PREFIX + str(name)] = value.detach()
        if self.optimizer is not None:
            output[LEARNING_RATE_KEY] = torch.tensor(self.optimizer.param_groups[0]["lr"])


def training_scalars(output: dict | list) -> dict[str, float]:
    """``output_transform`` for stats handlers: the total loss, every ``loss_<term>`` and ``lr`` as floats."""
    if isinstance(output, list):  # decollated output: scalars are replicated in every item
        output = output[0]
    keys = [CommonKeys.LOSS, LEARNING_RATE_KEY, *(k for k in output if str(k).startswith(TERM_PREFIX))]
    return {str(key): float(torch.as_tensor(output[key]).detach()) for key in keys if key in output}
