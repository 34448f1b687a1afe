"""The GLAM training wiring on MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator``, as small builders.

Each builder makes one part of a training run, and both :func:`create_glam_training` (the ``monai-glam train``
command) and the bundle's ``configs/train.json`` / ``evaluate.json`` (through ``_target_``) use them, so the
metrics, handlers and checkpoints of the two paths are the same objects:

- :class:`GLAMPrepareBatch`: the engines' batch preparation; the label becomes a dict with the ground-truth
  masks, so metrics and handlers read everything from ``engine.state.output``;
- :func:`create_key_metric`, :func:`create_additional_metrics`: validation ROC-AUC (per class and mean) of the
  stage's score, and Dice of the thresholded fused map on images with masks;
- :func:`create_validation_handlers`, :func:`create_train_handlers`: logging (stats, TensorBoard scalars and
  saliency images on one ``SummaryWriter``), the learning-rate schedule and validation;
- :func:`attach_checkpointing`: best checkpoint by validation AUC, an atomic resumable ``last.pt`` and resume;
- :func:`attach_early_stopping`, :func:`attach_mlflow`, :func:`attach_progress_bar`.

Under ``torchrun`` (``torch.distributed`` initialised) only rank 0 logs and writes files.
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
from monai.engines.utils import PrepareBatch
from monai.handlers import (
    ROCAUC,
    CheckpointLoader,
    EarlyStopHandler,
    LrScheduleHandler,
    StatsHandler,
    TensorBoardStatsHandler,
    ValidationHandler,
    stopping_fn_from_metric,
)
from monai.utils import CommonKeys, optional_import

from monai_glam.engines.stages import GLAMStageNetwork, TrainingStage, loss_for_stage
from monai_glam.handlers import (
    BestCheckpointSaver,
    GracefulStop,
    LastCheckpointSaver,
    LossTermsHandler,
    MeanFiniteROCAUC,
    SaliencyDice,
    TensorBoardSaliencyHandler,
)
from monai_glam.handlers.loss_terms import training_scalars
from monai_glam.inferers.whole_image import GLAMInferer
from monai_glam.losses import GLAMLoss
from monai_glam.metrics.utils import check_thresholds
from monai_glam.networks.io import load_glam_weights
from monai_glam.networks.nets.glam import GLAM
from monai_glam.utils.distributed import is_main_process, rank_and_world_size
from monai_glam.utils.enums import CLASS_NAMES, BatchKeys, GLAMKeys
from monai_glam.utils.output_folder import check_training_folder
from monai_glam.utils.precision import resolve_precision

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter
else:
    SummaryWriter, _ = optional_import("torch.utils.tensorboard", name="SummaryWriter")

__all__ = [
    "BEST_CHECKPOINT",
    "KEY_METRIC",
    "LAST_CHECKPOINT",
    "GLAMPrepareBatch",
    "GLAMTrainingRun",
    "ScoreSelector",
    "attach_checkpointing",
    "attach_early_stopping",
    "attach_mlflow",
    "attach_progress_bar",
    "create_additional_metrics",
    "create_glam_training",
    "create_key_metric",
    "create_loader",
    "create_train_handlers",
    "create_validation_handlers",
    "stage_score_key",
]

LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
#: Name of the validation key metric (mean ROC-AUC over the classes whose AUC is defined); the best checkpoint
#: maximises it.
KEY_METRIC = "auc"

logger = logging.getLogger(__name__)


class GLAMPrepareBatch(PrepareBatch):
    """Batch preparation for GLAM engines: the image, and a label dict that carries the ground-truth masks.

    Returns ``(image, target)`` with ``target = {"label": (N, C), "mask": (N, C, H, W), "mask_available":
    (N, C)}`` (the mask entries only when the batch has them, from :class:`~monai_glam.transforms.GLAMTargetsd`).
    MONAI's engines put ``target`` into ``engine.state.output["label"]``, so :class:`GLAMLoss`, the ROC-AUC
    selectors and :class:`~monai_glam.handlers.SaliencyDice` read masks from the output, never from the batch.
    """

    def __init__(self, channels_last: bool = False) -> None:
        """
        Args:
            channels_last: give the ``(N, C, H, W)`` images in ``torch.channels_last`` memory format (for a
                network converted with ``.to(memory_format=torch.channels_last)``: no layout conversion in its
                first convolution).
        """
        self.channels_last = bool(channels_last)

    def __call__(
        self,
        batchdata: Mapping[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not isinstance(batchdata, Mapping) or BatchKeys.IMAGE not in batchdata:
            raise ValueError("GLAMPrepareBatch needs dictionary batches with an 'image' entry")
        if batchdata.get(BatchKeys.LABEL) is None:
            raise ValueError("GLAMPrepareBatch needs image-level labels ('label') in every batch")

        def move(value: Any) -> torch.Tensor:
            return torch.as_tensor(value).to(device=device, non_blocking=non_blocking, **kwargs)

        target = {BatchKeys.LABEL.value: move(batchdata[BatchKeys.LABEL])}
        for key in (BatchKeys.MASK, BatchKeys.MASK_AVAILABLE):
            if batchdata.get(key) is not None:
                target[key.value] = move(batchdata[key])
        image = move(batchdata[BatchKeys.IMAGE])
        if self.channels_last and image.dim() == 4:
            image = image.contiguous(memory_format=torch.channels_last)
        return image, target


def _labels(value: Any) -> torch.Tensor:
    """The ``(N, C)`` labels of an engine output's label entry (a :class:`GLAMPrepareBatch` dict or a tensor)."""
    if isinstance(value, Mapping):
        value = value[BatchKeys.LABEL]
    return torch.as_tensor(value)


class ScoreSelector:
    """``output_transform`` for ROC-AUC handlers: ``(scores, labels)`` of one prediction key and class.

    Works on batched (``decollate=False``) and decollated engine outputs, with the label a tensor or the
    :class:`GLAMPrepareBatch` dict.

    Args:
        key: which image score to rank by (``prob_global`` or ``prob_local``).
        class_index: one class (1-D outputs) or ``None`` for all classes ``(N, C)``.
    """

    def __init__(self, key: str = GLAMKeys.PROB_GLOBAL, class_index: int | None = None) -> None:
        self.key = str(key)
        self.class_index = class_index

    def __call__(self, output: Mapping | Sequence) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(output, Mapping):
            scores, labels = output[CommonKeys.PRED][self.key], _labels(output[CommonKeys.LABEL])
        else:
            scores = torch.stack([item[CommonKeys.PRED][self.key] for item in output])
            labels = torch.stack([_labels(item[CommonKeys.LABEL]) for item in output])
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


def stage_score_key(stage: str | TrainingStage) -> str:
    """The image score a stage is validated by: ŷ_l for the local stage, ŷ_g otherwise."""
    return GLAMKeys.PROB_LOCAL.value if TrainingStage(stage) == TrainingStage.LOCAL else GLAMKeys.PROB_GLOBAL.value


def _class_names(num_classes: int) -> tuple[str, ...]:
    return CLASS_NAMES if num_classes == len(CLASS_NAMES) else tuple(f"class{i}" for i in range(num_classes))


def create_key_metric(
    score_key: str = GLAMKeys.PROB_GLOBAL, prefix: str = "val", class_names: Sequence[str] = CLASS_NAMES
) -> dict[str, MeanFiniteROCAUC]:
    """The key metric of an evaluator: ``<prefix>_auc``, the mean ROC-AUC of ``score_key`` over the classes.

    Classes whose AUC is undefined in the split (a single label value) are left out of the mean with a warning
    (:class:`~monai_glam.handlers.MeanFiniteROCAUC`), so a validation split without, say, any malignant image still
    ranks the epochs instead of giving NaN every epoch.
    """
    return {
        f"{prefix}_{KEY_METRIC}": MeanFiniteROCAUC(output_transform=ScoreSelector(score_key), class_names=class_names)
    }


def create_additional_metrics(
    score_key: str = GLAMKeys.PROB_GLOBAL,
    dice_thresholds: float | Sequence[float] = 0.5,
    class_names: Sequence[str] = CLASS_NAMES,
    prefix: str = "val",
) -> dict[str, Any]:
    """Per-class metrics of an evaluator: ``<prefix>_auc_<class>`` (ROC-AUC of ``score_key``) and
    ``<prefix>_dice_<class>`` (mean Dice of the thresholded fused map over the images with a lesion of that class).

    Args:
        score_key: ``prob_global`` or ``prob_local``.
        dice_thresholds: one threshold for every class, or one per class.
        class_names: class names in channel order.
        prefix: metric name prefix (``val`` while training, ``test`` in ``evaluate.json``).
    """
    names = tuple(class_names)
    thresholds = check_thresholds(dice_thresholds, len(names))
    metrics: dict[str, Any] = {
        f"{prefix}_{KEY_METRIC}_{name}": ROCAUC(output_transform=ScoreSelector(score_key, c))
        for c, name in enumerate(names)
    }
    for c, name in enumerate(names):
        metrics[f"{prefix}_dice_{name}"] = SaliencyDice(class_index=c, threshold=float(thresholds[c]))
    return metrics


def _no_output(output: Any) -> None:
    """``output_transform`` of epoch-level stats handlers: log the metrics only."""
    return None


def create_validation_handlers(
    summary_writer: SummaryWriter | None = None, image_interval: int = 1, main_process: bool | None = None
) -> list[Any]:
    """Evaluator handlers: metrics to the log and TensorBoard, and saliency panels every validation.

    Returns an empty list on ranks other than 0 (``main_process`` overrides the check).
    """
    if not (is_main_process() if main_process is None else main_process):
        return []
    handlers: list[Any] = [StatsHandler(iteration_log=False, output_transform=_no_output)]
    if summary_writer is not None:
        # The evaluator's epoch is the trainer's (ValidationHandler runs it with the global epoch).
        handlers.append(
            TensorBoardStatsHandler(summary_writer=summary_writer, iteration_log=False, output_transform=_no_output)
        )
        if image_interval > 0:
            handlers.append(TensorBoardSaliencyHandler(summary_writer, interval=1, tag="val_saliency"))
    return handlers


def create_train_handlers(
    loss: GLAMLoss,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: Any,
    evaluator: SupervisedEvaluator | None = None,
    val_interval: int = 1,
    summary_writer: SummaryWriter | None = None,
    image_interval: int = 1,
    log_interval: int = 1,
    main_process: bool | None = None,
) -> list[Any]:
    """Trainer handlers: the learning-rate schedule, validation every ``val_interval`` epochs, the loss terms
    and learning rate in the output, and (rank 0) stats, TensorBoard scalars and saliency panels.

    Args:
        loss: the trainer's loss (its terms are logged).
        optimizer: the optimizer (its learning rate is logged).
        lr_scheduler: stepped once per epoch.
        evaluator: validation engine, or ``None``.
        val_interval: validate every this many epochs.
        summary_writer: TensorBoard writer, or ``None``.
        image_interval: saliency panels every this many epochs (0: never).
        log_interval: log the loss terms every this many iterations (0: epoch-level metrics only).
        main_process: whether this process logs; default :func:`~monai_glam.utils.is_main_process`.
    """
    if int(val_interval) < 1:
        raise ValueError(f"val_interval must be >= 1, got {val_interval!r}.")
    handlers: list[Any] = [LrScheduleHandler(lr_scheduler=lr_scheduler, print_lr=False)]
    if evaluator is not None:
        handlers.append(ValidationHandler(validator=evaluator, interval=int(val_interval), epoch_level=True))
    handlers.append(LossTermsHandler(loss, optimizer))
    if not (is_main_process() if main_process is None else main_process):
        return handlers
    every = int(log_interval)
    iteration_log: Any = every == 1
    if every > 1:
        iteration_log = _EveryNthIteration(every)
    handlers.append(StatsHandler(tag_name="train", output_transform=training_scalars, iteration_log=iteration_log))
    if summary_writer is not None:
        handlers.append(TensorBoardStatsHandler(summary_writer=summary_writer, output_transform=training_scalars))
        if image_interval > 0:
            handlers.append(TensorBoardSaliencyHandler(summary_writer, interval=image_interval, tag="train_saliency"))
    return handlers


class _EveryNthIteration:
    """``iteration_log`` filter of ``StatsHandler``: log every ``n``-th iteration."""

    def __init__(self, n: int) -> None:
        self.n = int(n)

    def __call__(self, engine: Any, iteration: int) -> bool:
        return iteration % self.n == 0


class _ValidationProgress:
    """What ``--resume`` restores besides the weights and the optimizer: the evaluator's best key metric (MONAI
    logs it), the best checkpoint's score and the early-stopping counter, so the first validation after a resume
    is compared with the run's best instead of replacing ``best.pt`` unconditionally."""

    def __init__(self, evaluator: SupervisedEvaluator, best: BestCheckpointSaver | None, early_stop: Any) -> None:
        self.evaluator = evaluator
        self.best = best
        self.early_stop = early_stop

    def _early_stopping(self) -> Any:
        return getattr(self.early_stop, "_handler", None) if self.early_stop is not None else None

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "best_metric": float(self.evaluator.state.best_metric),
            "best_metric_epoch": int(self.evaluator.state.best_metric_epoch),
        }
        if self.best is not None:
            state["best_checkpoint"] = self.best.state_dict()
        stopping = self._early_stopping()
        if stopping is not None:
            state["early_stopping"] = {"counter": int(stopping.counter), "best_score": stopping.best_score}
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.evaluator.state.best_metric = float(state.get("best_metric", -1))
        self.evaluator.state.best_metric_epoch = int(state.get("best_metric_epoch", -1))
        if self.best is not None and "best_checkpoint" in state:
            self.best.load_state_dict(state["best_checkpoint"])
        stopping = self._early_stopping()
        if stopping is not None and "early_stopping" in state:
            stopping.counter = int(state["early_stopping"]["counter"])
            stopping.best_score = state["early_stopping"]["best_score"]


def attach_checkpointing(
    trainer: SupervisedTrainer,
    glam: GLAM,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: Any,
    output_dir: str | os.PathLike[str],
    evaluator: SupervisedEvaluator | None = None,
    best_checkpoint: str | os.PathLike[str] | None = None,
    key_metric_name: str = f"val_{KEY_METRIC}",
    resume: bool = False,
    device: str | torch.device = "cpu",
    overwrite: bool = False,
    early_stopping: EarlyStopHandler | None = None,
) -> GracefulStop:
    """Best and last checkpoints, resume, and a clean stop on SIGINT/SIGTERM.

    - the output folder is checked first: if it already holds ``best.pt``/``last.pt`` (or ``best_checkpoint``)
      the run refuses unless ``resume`` (continue it) or ``overwrite`` (delete them and start again);
    - ``best_checkpoint`` (default ``output_dir/best.pt``): ``{"network": glam}`` whenever the evaluator's key
      metric improves (:class:`~monai_glam.handlers.BestCheckpointSaver`: written atomically; a NaN key metric
      falls back to the mean of the finite per-class metrics, else the latest model; rank 0);
    - ``output_dir/last.pt``: network, optimizer, scheduler, trainer state and the validation bookkeeping (best
      score, early-stopping counter) after every epoch, written atomically (rank 0);
    - with ``resume`` and an existing ``last.pt``: all of it is restored before the first epoch;
    - SIGINT/SIGTERM: training stops after the current iteration and ``last.pt`` is saved there
      (:class:`~monai_glam.handlers.GracefulStop`, returned; its ``signum`` tells whether it happened).

    Raises:
        ValueError: the folder holds checkpoints and neither ``resume`` nor ``overwrite`` is set, or both are.
    """
    output = Path(output_dir)
    last = output / LAST_CHECKPOINT
    best_path = Path(best_checkpoint) if best_checkpoint is not None else output / BEST_CHECKPOINT
    main = is_main_process()
    check_training_folder(output, resume=resume, overwrite=overwrite, extra_checkpoints=[best_path], delete=main)
    save_dict: dict[str, Any] = {
        "network": glam,
        "optimizer": optimizer,
        "lr_scheduler": lr_scheduler,
        "trainer": trainer,
    }
    best_saver = None
    if main:
        output.mkdir(parents=True, exist_ok=True)
        if evaluator is not None:
            best_saver = BestCheckpointSaver(best_path, {"network": glam}, key_metric_name)
            best_saver.attach(evaluator)
    if evaluator is not None:
        save_dict["validation"] = _ValidationProgress(evaluator, best_saver, early_stopping)
    last_saver = LastCheckpointSaver(last, save_dict) if main else None
    if last_saver is not None:
        last_saver.attach(trainer)
    stop = GracefulStop(last_saver)
    stop.attach(trainer, evaluator)
    if resume and last.is_file():
        CheckpointLoader(load_path=str(last), load_dict=save_dict, map_location=torch.device(device)).attach(trainer)
    return stop


def attach_early_stopping(
    trainer: SupervisedTrainer,
    evaluator: SupervisedEvaluator | None,
    patience: int = 0,
    key_metric_name: str = f"val_{KEY_METRIC}",
) -> EarlyStopHandler | None:
    """Stop after ``patience`` validations without improvement of the key metric (0 or no evaluator: never).

    Returns:
        The handler (pass it to :func:`attach_checkpointing` so ``--resume`` restores its counter), or ``None``.
    """
    if evaluator is None or int(patience) <= 0:
        return None
    handler = EarlyStopHandler(
        patience=int(patience), score_function=stopping_fn_from_metric(key_metric_name), trainer=trainer
    )
    handler.attach(evaluator)
    return handler


def attach_mlflow(tracking_uri: str | None, trainer: SupervisedTrainer, evaluator: SupervisedEvaluator | None) -> None:
    """Track the run with MLflow (rank 0): training scalars per iteration, validation metrics per epoch."""
    if tracking_uri is None or not is_main_process():
        return
    from monai.handlers import MLFlowHandler

    _, has_mlflow = optional_import("mlflow")
    if not has_mlflow:
        raise ValueError("MLflow tracking needs the 'mlflow' package: pip install mlflow")
    MLFlowHandler(
        tracking_uri=tracking_uri, output_transform=training_scalars, experiment_name="monai_glam", artifacts=None
    ).attach(trainer)
    if evaluator is not None:
        MLFlowHandler(
            tracking_uri=tracking_uri, iteration_log=False, output_transform=_no_output, experiment_name="monai_glam"
        ).attach(evaluator)


def attach_progress_bar(trainer: SupervisedTrainer) -> None:
    """An ignite progress bar with the running loss (rank 0)."""
    if not is_main_process():
        return
    from ignite.handlers import ProgressBar

    ProgressBar(persist=False).attach(trainer, output_transform=_loss_value)


def _loss_value(output: Any) -> dict[str, float]:
    return {"loss": float(output[CommonKeys.LOSS].detach())}


@dataclass
class GLAMTrainingRun:
    """The engines of one training stage. Call :meth:`run`; ``writer`` is closed when it returns."""

    glam: GLAM
    stage: TrainingStage
    trainer: SupervisedTrainer
    evaluator: SupervisedEvaluator | None
    writer: SummaryWriter | None
    output_dir: Path
    stop: GracefulStop | None = None

    @property
    def last_checkpoint(self) -> Path:
        return self.output_dir / LAST_CHECKPOINT

    @property
    def best_checkpoint(self) -> Path:
        return self.output_dir / BEST_CHECKPOINT

    def run(self) -> dict[str, float]:
        """Train to ``max_epochs`` (resuming if configured) and return the evaluator's last metrics.

        Raises:
            RunInterruptedError: SIGINT/SIGTERM stopped the run after an iteration; ``last.pt`` holds that iteration.
        """
        try:
            self.trainer.run()
        except BaseException:
            if self.stop is not None:
                self.stop.uninstall()
            raise
        finally:
            if self.writer is not None:
                self.writer.close()
        if self.stop is not None:
            self.stop.raise_if_stopped(self.last_checkpoint)
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
    overwrite: bool = False,
    init_checkpoint: str | os.PathLike[str] | None = None,
    tensorboard: bool = True,
    show_progress: bool = False,
    log_interval: int = 1,
    precision: str = "fp32",
    channels_last: bool = False,
) -> GLAMTrainingRun:
    """Wire one GLAM training stage from the builders of this module (the same ones the bundle uses).

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
        overwrite: delete the checkpoints of an earlier run in ``output_dir`` and start again (without it, or
            ``resume``, such a folder is refused).
        init_checkpoint: start from another stage's weights (any checkpoint :func:`monai_glam.networks.io.
            read_glam_state_dict` reads, the published NYU layout included).
        tensorboard: write TensorBoard scalars and images.
        show_progress: show a progress bar.
        log_interval: log the loss terms every this many iterations (0: only epoch-level metrics).
        precision: ``fp32`` (default), ``bf16`` (the training and validation forward passes under bfloat16
            autocast on ``device``, outputs and loss in float32; worth it only where the device runs bfloat16
            natively) or ``auto`` (``bf16`` there, ``fp32`` elsewhere); see :mod:`monai_glam.utils.precision`.
        channels_last: train in ``torch.channels_last`` memory format (model and images), the layout GPU
            tensor-core kernels prefer; on the CPU build measured in docs/performance.md it made the backward pass
            about 2× slower, hence off by default.

    Returns:
        A :class:`GLAMTrainingRun`.
    """
    stage = TrainingStage(stage)
    if max_epochs < 1:
        raise ValueError(f"max_epochs must be >= 1, got {max_epochs!r}.")
    if val_interval < 1:
        raise ValueError(f"val_interval must be >= 1, got {val_interval!r}.")
    _, world_size = rank_and_world_size()
    output_dir = Path(output_dir)
    main = is_main_process()
    if main:
        output_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    precision = resolve_precision(precision, device)
    if init_checkpoint is not None:
        load_glam_weights(glam, init_checkpoint)
    glam.to(device)
    if channels_last:
        glam.to(memory_format=torch.channels_last)
    loss = loss if loss is not None else loss_for_stage(stage)
    # The loss's flip-consistency term needs the global map of the flipped input, which the network computes.
    network: torch.nn.Module = GLAMStageNetwork(
        glam,
        stage,
        flip_consistency=bool(getattr(loss, "uses_flipped_global_map", False)),
        local_flip_consistency=bool(getattr(loss, "uses_flipped_patch_maps", False)),
        erasure=bool(getattr(loss, "uses_erased_global_score", False)),
        local_erasure=bool(getattr(loss, "uses_erased_local_score", False)),
    )
    parameters = network.trainable_parameters()
    eval_network = network
    if world_size > 1:
        # ignite builds its distributed context lazily with a collective call; a rank-0-only handler would
        # otherwise trigger it on one rank alone and deadlock. Build it now, on every rank.
        import ignite.distributed as idist

        idist.sync()
        device_ids = [device.index] if device.type == "cuda" and device.index is not None else None
        network = torch.nn.parallel.DistributedDataParallel(network, device_ids=device_ids)
    optimizer = torch.optim.Adam(parameters, lr=learning_rate, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)
    writer = SummaryWriter(log_dir=str(output_dir / "tensorboard")) if tensorboard and main else None
    score_key = stage_score_key(stage)
    prepare_batch = GLAMPrepareBatch(channels_last=channels_last)
    # GLAMInferer runs the forward pass under the precision's autocast and gives float32 outputs to the loss.
    inferer = GLAMInferer(precision=precision)

    evaluator = None
    if val_loader is not None:
        evaluator = SupervisedEvaluator(
            device=device,
            val_data_loader=val_loader,
            network=eval_network,
            prepare_batch=prepare_batch,
            inferer=inferer,
            key_val_metric=create_key_metric(score_key),
            additional_metrics=create_additional_metrics(score_key, dice_threshold, _class_names(glam.num_classes)),
            val_handlers=create_validation_handlers(writer, image_interval),
            decollate=False,
        )
    trainer = SupervisedTrainer(
        device=device,
        max_epochs=max_epochs,
        train_data_loader=train_loader,
        network=network,
        optimizer=optimizer,
        loss_function=loss,
        prepare_batch=prepare_batch,
        inferer=inferer,
        train_handlers=create_train_handlers(
            loss, optimizer, scheduler, evaluator, val_interval, writer, image_interval, log_interval
        ),
        decollate=False,
    )
    early_stopping = attach_early_stopping(trainer, evaluator, early_stop_patience)
    stop = attach_checkpointing(
        trainer,
        glam,
        optimizer,
        scheduler,
        output_dir,
        evaluator,
        resume=resume,
        device=device,
        overwrite=overwrite,
        early_stopping=early_stopping,
    )
    attach_mlflow(mlflow_tracking_uri, trainer, evaluator)
    if show_progress:
        attach_progress_bar(trainer)
    return GLAMTrainingRun(glam, stage, trainer, evaluator, writer, output_dir, stop)
