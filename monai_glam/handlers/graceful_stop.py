"""Stop training cleanly on SIGINT / SIGTERM, after the current iteration, with ``last.pt`` saved."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from monai.utils import min_version, optional_import

from monai_glam.utils.distributed import rank_and_world_size
from monai_glam.utils.signals import RunInterruptedError, StopRequest, signal_name

if TYPE_CHECKING:
    from ignite.engine import Engine, Events
else:
    Engine, _ = optional_import("ignite.engine", "0.4.11", min_version, "Engine")
    Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = ["GracefulStop"]


class GracefulStop:
    """Turn the first SIGINT or SIGTERM during training into a stop at the end of the current iteration.

    While the trainer runs, the signals are caught by a :class:`~monai_glam.utils.signals.StopRequest`. After
    each training (and validation) iteration the handler checks it; under ``torch.distributed`` the ranks agree
    (a max all-reduce of the signal number), so every rank stops at the same iteration. It then terminates the
    evaluator (its partial metrics are not recorded) and the trainer; a signal during the last iteration of an
    epoch lets that epoch end first. On the trainer's ``TERMINATE`` event it calls
    ``checkpoint`` (normally the :class:`~monai_glam.handlers.LastCheckpointSaver` of the run), so ``--resume``
    continues from the interrupted iteration. :attr:`signum` tells the caller afterwards that the run was
    interrupted. A second signal stops at once (``KeyboardInterrupt``); ``last.pt`` then holds the last complete
    epoch.

    Args:
        checkpoint: called with the trainer when it stops (``None``: save nothing).
    """

    def __init__(self, checkpoint: Any | None = None) -> None:
        self.checkpoint = checkpoint
        self.request = StopRequest(what="the current iteration")
        self.stopped_at: tuple[int, int] | None = None
        self._finishing_epoch = False

    @property
    def signum(self) -> int | None:
        """The signal that stopped the run, or ``None``."""
        return self.request.signum if self.stopped_at is not None else None

    def attach(self, trainer: Engine, evaluator: Engine | None = None) -> None:
        """Catch the signals while ``trainer`` runs and check them after every iteration."""
        trainer.add_event_handler(Events.STARTED, self._install)
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self)
        trainer.add_event_handler(Events.TERMINATE, self._save)
        trainer.add_event_handler(Events.COMPLETED, self._uninstall)
        if evaluator is not None:
            evaluator.add_event_handler(Events.ITERATION_COMPLETED, self._after_validation_iteration, trainer)

    def _install(self, engine: Engine) -> None:
        self.request.install()

    def _uninstall(self, engine: Engine) -> None:
        self.request.uninstall()

    def _agreed_signal(self) -> int:
        """The signal any rank received, 0 for none (a collective call under ``torch.distributed``)."""
        signum = self.request.signum or 0
        if rank_and_world_size()[1] > 1:
            import ignite.distributed as idist

            signum = int(idist.all_reduce(signum, op="MAX"))
        if signum and self.request.signum is None:  # another rank received it
            self.request.signum = signum
        return signum

    def __call__(self, trainer: Engine) -> None:
        """After a training iteration or epoch: terminate the trainer when a signal came.

        A signal that came during the last iteration of an epoch lets the epoch end first (its validation,
        learning-rate step and ``last.pt``), so a resumed run starts cleanly with the next epoch.
        """
        signum = self._agreed_signal()
        if not signum:
            return
        length = trainer.state.epoch_length
        at_epoch_end = bool(length) and trainer.state.iteration % int(length) == 0
        if trainer.last_event_name == Events.ITERATION_COMPLETED and at_epoch_end:
            self._finishing_epoch = True
            return
        trainer.terminate(skip_completed=True)

    def _after_validation_iteration(self, evaluator: Engine, trainer: Engine) -> None:
        if self._finishing_epoch:  # the signal came before this validation: let it finish
            return
        if self._agreed_signal():
            evaluator.terminate(skip_completed=True)  # partial metrics are not recorded
            trainer.terminate(skip_completed=True)  # after the trainer's other end-of-epoch handlers

    def _save(self, trainer: Engine) -> None:
        self.stopped_at = (int(trainer.state.epoch), int(trainer.state.iteration))
        try:
            if self.checkpoint is not None:
                self.checkpoint(trainer)
        finally:
            self.request.uninstall()

    def raise_if_stopped(self, checkpoint: str | os.PathLike[str] | None = None) -> None:
        """Raise :class:`~monai_glam.utils.signals.RunInterruptedError` when a signal stopped the run.

        Args:
            checkpoint: the ``last.pt`` the message points to.
        """
        if self.signum is None or self.stopped_at is None:
            return
        epoch, iteration = self.stopped_at
        saved = "last.pt holds that state" if checkpoint is None else f"{os.fspath(checkpoint)} holds that state"
        raise RunInterruptedError(
            self.signum,
            f"stopped by {signal_name(self.signum)} in epoch {epoch} after iteration {iteration}; {saved}: run the "
            "same command with --resume to continue",
        )

    def uninstall(self) -> None:
        """Restore the previous signal handlers (the run ended with an error)."""
        self.request.uninstall()
