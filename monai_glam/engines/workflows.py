"""Build GLAM training runs on MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator``.

One call wires a stage (:class:`~monai_glam.engines.stages.TrainingStage`) with its loss, optimizer, learning
rate schedule, validation (ROC-AUC per class and, on items with masks, Dice of the thresholded map),
TensorBoard scalars and saliency images on one shared ``SummaryWriter``, checkpoints (best by validation
AUC, and an atomic resumable "last"), and optional early stopping and MLflow tracking. Under ``torchrun``
(``torch.distributed`` initialised) the network is wrapped in ``DistributedDataParallel`` and only rank 0
logs and writes files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from monai.data import DataLoader, Dataset, DistributedSampler
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import (
    ROCAUC,
    CheckpointLoader,
    CheckpointSaver,
    EarlyStopHandler,
    LrScheduleHandler,
    StatsHandler,
    TensorBoardStatsHandler,
    ValidationHandler,
    stopping_fn_from_metric,
)
from monai.inferers import SimpleInferer
from monai.utils import CommonKeys, optional_import

from monai_glam.engines.stages import GLAMStageNetwork, TrainingStage, loss_for_stage
from monai_glam.handlers.last_checkpoint import LastCheckpointSaver
from monai_glam.handlers.loss_terms import LossTermsHandler, training_scalars
from monai_glam.handlers.saliency_dice import SaliencyDice
from monai_glam.handlers.tensorboard_saliency import TensorBoardSaliencyHandler
from monai_glam.losses import GLAMLoss
from monai_glam.networks.nets.glam import GLAM
from monai_glam.utils.distributed import rank_and_world_size
from monai_glam.utils.enums import GLAMKeys

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter
else:
    SummaryWriter, _ = optional_import("torch.utils.tensorboard", name="SummaryWriter")

__all__ = [
    "CLASS_NAMES",
    "GLAMTrainingRun",
    "ScoreSelector",
    "create_glam_training",
    "create_loader",
    "load_glam_weights",
]

#: Display names of GLAM's two classes, in channel order.
CLASS_NAMES: tuple[str, ...] = ("benign", "malignant")
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"

logger = logging.getLogger(__name__)


class ScoreSelector:
    """``output_transform`` for ROC-AUC handlers: ``(scores, labels)`` of one prediction key and class.

    Works on batched (``decollate=False``) and decollated engine outputs.

    Args:
        key: which image score to rank by (``prob_global`` or ``prob_local``).
        class_index: one class (1-D outputs) or ``None`` for all classes ``(N, C)``.
    """

    def __init__(self, key: str = GLAMKeys.PROB_GLOBAL, class_index: int | None = None) -> None:
        self.key = str(key)
        self.class_index = class_index

    def __call__(self, output: Mapping | Sequence) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(output, Mapping):
            scores, labels = output[CommonKeys.PRED][self.key], output[CommonKeys.LABEL]
        else:
            scores = torch.stack([item[CommonKeys.PRED][self.key] for item in output])
            labels = torch.stack([torch.as_tensor(item[CommonKeys.LABEL]) for item in output])
        scores, labels = scores.detach().float(), labels.detach().float()
        if self.class_index is not None:
            return scores[:, self.class_index], labels[:, self.class_index]
        return scores, labels


def create_loader(
    dataset: Dataset, batch_size: int = 1, shuffle: bool = True, seed: int = 0, num_workers: int = 0, **kwargs: Any
) -> DataLoader:
    """A ``DataLoader`` with a seeded :class:`monai.data.DistributedSampler` (also in a single process).

    MONAI's workflows call ``sampler.set_epoch(epoch)`` at every epoch, so the order of epoch *e* depends only
    on ``seed`` and *e*: a resumed run sees the same batches as an uninterrupted one, and each
    ``torchrun`` rank gets its own shard.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}.")
    rank, world_size = rank_and_world_size()
    sampler = DistributedSampler(
        dataset, even_divisible=shuffle, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed
    )
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, **kwargs)


def load_glam_weights(glam: GLAM, path: str | os.PathLike[str]) -> GLAM:
    """Load weights saved by any GLAM stage (a ``last.pt`` / ``best.pt`` checkpoint or a bare state dict).

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the file holds no GLAM weights.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping) and "network" in state:
        state = state["network"]
    if not isinstance(state, Mapping):
        raise ValueError(f"{path} holds no GLAM state dict.")
    try:
        glam.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit this GLAM configuration: {err}") from err
    return glam


@dataclass
class GLAMTrainingRun:
    """The engines of one training stage. Call :meth:`run`; ``writer`` is closed when it returns."""

    glam: GLAM
    stage: TrainingStage
    trainer: SupervisedTrainer
    evaluator: SupervisedEvaluator | None
    writer: SummaryWriter | None
    output_dir: Path

    @property
    def last_checkpoint(self) -> Path:
        return self.output_dir / LAST_CHECKPOINT

    @property
    def best_checkpoint(self) -> Path:
        return self.output_dir / BEST_CHECKPOINT

    def run(self) -> dict[str, float]:
        """Train to ``max_epochs`` (resuming if configured) and return the evaluator's last metrics."""
        try:
            self.trainer.run()
        finally:
            if self.writer is not None:
                self.writer.close()
        if self.evaluator is None:
            return {}
        return {str(k): float(v) for k, v in self.evaluator.state.metrics.items()}


def create_glam_training(
    glam: GLAM,
    train_loader: DataLoader,
    output_dir: str | os.PathLike[str],
    stage: str | TrainingStage = TrainingStage.GLOBAL,
    val_loader: DataLoader | None = None,
    max_epochs: int = 10,
    learning_rate: float = 1e-4,
    weight_decay: float = 1e-5,
    val_interval: int = 1,
    device: str | torch.device = "cpu",
    loss: GLAMLoss | None = None,
    image_interval: int = 1,
    dice_threshold: float = 0.5,
    early_stop_patience: int = 0,
    mlflow_tracking_uri: str | None = None,
    resume: bool = False,
    init_checkpoint: str | os.PathLike[str] | None = None,
    tensorboard: bool = True,
    show_progress: bool = False,
    log_interval: int = 1,
) -> GLAMTrainingRun:
    """Wire one GLAM training stage.

    Args:
        glam: the model (its weights are trained in place).
        train_loader: yields dicts with ``image`` ``(N, 1, H, W)`` and ``label`` ``(N, 2)``.
        output_dir: where ``last.pt``, ``best.pt`` and the TensorBoard events go.
        stage: ``global``, ``local`` or ``joint``.
        val_loader: validation data (``mask`` ``(N, 2, H, W)`` and ``mask_available`` ``(N, 2)`` enable Dice).
        max_epochs: total epochs of this stage (a resumed run continues up to it).
        learning_rate: Adam learning rate, annealed by a cosine schedule over ``max_epochs``.
        weight_decay: Adam weight decay.
        val_interval: validate every this many epochs.
        device: training device.
        loss: the loss; defaults to :func:`~monai_glam.engines.stages.loss_for_stage` with its defaults.
        image_interval: log a saliency panel to TensorBoard every this many epochs (0 disables).
        dice_threshold: threshold of the validation Dice.
        early_stop_patience: stop after this many validations without AUC improvement (0 disables).
        mlflow_tracking_uri: enable MLflow tracking to this URI (e.g. ``sqlite:///mlruns.db``).
        resume: continue from ``output_dir/last.pt`` when it exists (epoch, iteration, optimizer, scheduler).
        init_checkpoint: start from another stage's weights (network only).
        tensorboard: write TensorBoard scalars and images.
        show_progress: show a progress bar.
        log_interval: log the loss terms every this many iterations (0: only epoch-level metrics).

    Returns:
        A :class:`GLAMTrainingRun`.
    """
    stage = TrainingStage(stage)
    if max_epochs < 1:
        raise ValueError(f"max_epochs must be >= 1, got {max_epochs!r}.")
    if val_interval < 1:
        raise ValueError(f"val_interval must be >= 1, got {val_interval!r}.")
    rank, world_size = rank_and_world_size()
    output_dir = Path(output_dir)
    if rank == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    if init_checkpoint is not None:
        load_glam_weights(glam, init_checkpoint)
    glam.to(device)
    network: torch.nn.Module = GLAMStageNetwork(glam, stage)
    parameters = network.trainable_parameters()
    if world_size > 1:
        # ignite builds its distributed context lazily with a collective call; a rank-0-only handler would
        # otherwise trigger it on one rank alone and deadlock. Build it now, on every rank.
        import ignite.distributed as idist

        idist.sync()
        device_ids = [device.index] if device.type == "cuda" and device.index is not None else None
        network = torch.nn.parallel.DistributedDataParallel(network, device_ids=device_ids)
    loss = loss if loss is not None else loss_for_stage(stage)
    optimizer = torch.optim.Adam(parameters, lr=learning_rate, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)
    writer = SummaryWriter(log_dir=str(output_dir / "tensorboard")) if tensorboard and rank == 0 else None
    score_key = GLAMKeys.PROB_LOCAL if stage == TrainingStage.LOCAL else GLAMKeys.PROB_GLOBAL
    class_names = CLASS_NAMES if glam.num_classes == len(CLASS_NAMES) else tuple(
        f"class{i}" for i in range(glam.num_classes)
    )

    evaluator = None
    if val_loader is not None:
        eval_network = network.module if isinstance(network, torch.nn.parallel.DistributedDataParallel) else network
        additional: dict[str, Any] = {
            f"val_auc_{name}": ROCAUC(output_transform=ScoreSelector(score_key, c))
            for c, name in enumerate(class_names)
        }
        additional.update(
            {
                f"val_dice_{name}": SaliencyDice(class_index=c, threshold=dice_threshold)
                for c, name in enumerate(class_names)
            }
        )
        val_handlers: list[Any] = [StatsHandler(iteration_log=False, output_transform=lambda x: None)]
        if writer is not None:
            val_handlers.append(
                TensorBoardStatsHandler(
                    summary_writer=writer,
                    iteration_log=False,
                    output_transform=lambda x: None,
                    global_epoch_transform=lambda epoch: trainer.state.epoch,
                )
            )
            if image_interval > 0:
                val_handlers.append(TensorBoardSaliencyHandler(writer, interval=1, tag="val_saliency"))
        evaluator = SupervisedEvaluator(
            device=device,
            val_data_loader=val_loader,
            network=eval_network,
            inferer=SimpleInferer(),
            key_val_metric={"val_auc": ROCAUC(output_transform=ScoreSelector(score_key))},
            additional_metrics=additional,
            val_handlers=val_handlers if rank == 0 else None,
            decollate=False,
        )
        if rank == 0:
            CheckpointSaver(
                save_dir=str(output_dir),
                save_dict={"network": glam},
                save_key_metric=True,
                key_metric_name="val_auc",
                key_metric_filename=BEST_CHECKPOINT,
            ).attach(evaluator)

    train_handlers: list[Any] = [LrScheduleHandler(lr_scheduler=scheduler, print_lr=False)]
    if evaluator is not None:
        train_handlers.append(ValidationHandler(validator=evaluator, interval=val_interval, epoch_level=True))
    train_handlers.append(LossTermsHandler(loss, optimizer))
    if rank == 0:
        every = int(log_interval)
        iteration_log = (lambda engine, iteration: iteration % every == 0) if every > 1 else every == 1
        train_handlers.append(
            StatsHandler(tag_name="train", output_transform=training_scalars, iteration_log=iteration_log)
        )
        if writer is not None:
            train_handlers.append(TensorBoardStatsHandler(summary_writer=writer, output_transform=training_scalars))
            if image_interval > 0:
                train_handlers.append(TensorBoardSaliencyHandler(writer, interval=image_interval, tag="train_saliency"))
    trainer = SupervisedTrainer(
        device=device,
        max_epochs=max_epochs,
        train_data_loader=train_loader,
        network=network,
        optimizer=optimizer,
        loss_function=loss,
        inferer=SimpleInferer(),
        train_handlers=train_handlers,
        decollate=False,
    )
    save_dict = {"network": glam, "optimizer": optimizer, "lr_scheduler": scheduler, "trainer": trainer}
    if rank == 0:
        LastCheckpointSaver(output_dir / LAST_CHECKPOINT, save_dict).attach(trainer)
    if resume and (output_dir / LAST_CHECKPOINT).is_file():
        CheckpointLoader(load_path=str(output_dir / LAST_CHECKPOINT), load_dict=save_dict, map_location=device).attach(
            trainer
        )
    if evaluator is not None and early_stop_patience > 0:
        EarlyStopHandler(
            patience=early_stop_patience, score_function=stopping_fn_from_metric("val_auc"), trainer=trainer
        ).attach(evaluator)
    if mlflow_tracking_uri is not None and rank == 0:
        _attach_mlflow(mlflow_tracking_uri, trainer, evaluator, output_dir)
    if show_progress and rank == 0:
        from ignite.handlers import ProgressBar

        ProgressBar(persist=False).attach(
            trainer, output_transform=lambda out: {"loss": float(out[CommonKeys.LOSS].detach())}
        )
    return GLAMTrainingRun(glam, stage, trainer, evaluator, writer, output_dir)


def _attach_mlflow(
    tracking_uri: str, trainer: SupervisedTrainer, evaluator: SupervisedEvaluator | None, output_dir: Path
) -> None:
    from monai.handlers import MLFlowHandler

    _, has_mlflow = optional_import("mlflow")
    if not has_mlflow:
        raise ValueError("MLflow tracking needs the 'mlflow' package: pip install mlflow")
    MLFlowHandler(
        tracking_uri=tracking_uri, output_transform=training_scalars, experiment_name="monai_glam", artifacts=None
    ).attach(trainer)
    if evaluator is not None:
        MLFlowHandler(
            tracking_uri=tracking_uri,
            iteration_log=False,
            output_transform=lambda x: None,
            experiment_name="monai_glam",
            global_epoch_transform=lambda epoch: trainer.state.epoch,
        ).attach(evaluator)
