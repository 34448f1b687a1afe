"""Train one GLAM stage from a datalist (the library behind ``monai-glam train``), and the bookkeeping that
chains the stages (global -> local -> joint) in the bundle."""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.utils import set_determinism

from monai_glam.data import MammogramDataset, read_datalist
from monai_glam.data.errors import NoUsableItemsError
from monai_glam.engines.stages import TrainingStage, loss_for_stage
from monai_glam.engines.workflows import LAST_CHECKPOINT, create_glam_training, create_loader
from monai_glam.networks import GLAM, glam_preset, preset_loss_weights
from monai_glam.networks.io import MODEL_CONFIG_NAME, load_glam_weights, save_model_config
from monai_glam.transforms import glam_transforms, scaled_crop_parameters
from monai_glam.utils.atomic import atomic_output_path, atomic_write_text
from monai_glam.utils.device import resolve_process_device
from monai_glam.utils.distributed import destroy_distributed, init_distributed_from_env, is_main_process
from monai_glam.utils.enums import CLASS_NAMES
from monai_glam.utils.output_folder import check_training_folder
from monai_glam.utils.precision import check_precision, resolve_precision

__all__ = [
    "TRAINING_CONFIG_FILE",
    "load_initial_weights",
    "previous_stage_checkpoint",
    "publish_checkpoint",
    "run_training",
    "stage_checkpoint_name",
]

logger = logging.getLogger(__name__)

#: Written into the output folder: how the run was configured (window, stage, optimisation).
TRAINING_CONFIG_FILE = "training_config.json"
#: The stage whose best checkpoint initialises each stage (``global`` starts from scratch).
_PREVIOUS_STAGE = {TrainingStage.LOCAL: TrainingStage.GLOBAL, TrainingStage.JOINT: TrainingStage.LOCAL}


def run_training(
    datalist: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    stage: str = "global",
    preset: str = "paper",
    glam_kwargs: Mapping[str, Any] | None = None,
    window: Sequence[int] | None = None,
    epochs: int = 10,
    batch_size: int = 2,
    learning_rate: float = 1e-4,
    weight_decay: float = 1e-5,
    val_interval: int = 1,
    init_checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    augment: bool = True,
    num_workers: int = 0,
    seed: int = 0,
    device: str = "auto",
    early_stop_patience: int = 0,
    mlflow_tracking_uri: str | None = None,
    image_interval: int = 1,
    gradient_checkpointing: bool = False,
    skip_bad_items: bool = True,
    show_progress: bool = True,
    log_interval: int = 20,
    global_sparsity_weight: float = 0.05,
    local_sparsity_weight: float = 0.05,
    pos_weight: Sequence[float] | None = None,
    flip_consistency_weight: float | None = None,
    local_flip_consistency_weight: float = 0.0,
    erasure_weight: float | None = None,
    local_erasure_weight: float | None = None,
    precision: str = "fp32",
    channels_last: bool = False,
) -> dict[str, float]:
    """Train one GLAM stage on the ``training`` split of a datalist, validating on its ``validation`` split.

    Args:
        datalist: MONAI datalist JSON (items with ``image``, ``label`` = [benign, malignant], optional
            ``mask_benign`` / ``mask_malignant``, ``laterality``, ``view``).
        output_dir: where checkpoints (``best.pt``, ``last.pt``), TensorBoard events and the configs go.
        stage: ``global``, ``local`` or ``joint``.
        preset: ``paper``, ``small`` or ``tiny`` (see :data:`~monai_glam.networks.GLAM_PRESETS`).
        glam_kwargs: GLAM constructor arguments overriding the preset's.
        window: network input ``(H, W)``; default the preset's.
        epochs: epochs of this stage.
        batch_size: images per step.
        learning_rate: Adam learning rate (cosine-annealed).
        weight_decay: Adam weight decay.
        val_interval: validate every this many epochs.
        init_checkpoint: weights of a previous stage to start from.
        resume: continue an interrupted run from ``output_dir/last.pt``.
        overwrite: delete the checkpoints of an earlier run in ``output_dir`` and start again. Without ``resume``
            or ``overwrite``, a folder that holds ``best.pt`` or ``last.pt`` is refused.
        augment: training augmentation (published window noise, affine, intensity).
        num_workers: data-loading worker processes.
        seed: seeds the data order, the augmentation and the initial weights.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        early_stop_patience: stop after this many validations without AUC improvement (0: never).
        mlflow_tracking_uri: also track the run with MLflow (e.g. ``sqlite:///mlflow.db``).
        image_interval: TensorBoard saliency images every this many epochs (0: never).
        gradient_checkpointing: trade compute for memory in the local module.
        skip_bad_items: report and skip unreadable items instead of stopping.
        show_progress: show a progress bar.
        log_interval: log the loss terms every this many iterations (0: epoch-level metrics only).
        global_sparsity_weight: β_g, weight of the global map's L1 sparsity term (:class:`~monai_glam.losses.GLAMLoss`).
        local_sparsity_weight: β_l, weight of the patch maps' L1 sparsity term.
        pos_weight: per-class weights of the positive images in the BCE terms (e.g. negatives / positives of the
            training split, for imbalanced data); ``None`` weighs them like negatives.
        flip_consistency_weight: weight of the global map's flip-consistency term (``global`` and ``joint`` stages;
            0: off, the paper's objective); ``None``: the preset's default (:func:`~monai_glam.networks.
            preset_loss_weights`: 1 for ``small`` and ``tiny``, 0 for ``paper``). It keeps a from-scratch
            global map from settling beside the lesions, at the cost of one more global forward and backward per
            step (docs/localization.md).
        local_flip_consistency_weight: the same term for the patch maps of the local module (``local`` and ``joint``
            stages; 0: off); one more local forward and backward per step.
        erasure_weight: weight of the global map's erasure term (``global`` and ``joint`` stages; 0: off, the
            paper's objective): a positive image erased where its class's S_g points must score negative
            (:class:`~monai_glam.losses.GLAMLoss`), which pulls the map onto the evidence; a global forward and
            backward (without weight gradients) on ``C`` erased copies of the batch per step. ``None``: the
            preset's default (:func:`~monai_glam.networks.preset_loss_weights`: 1 for ``small`` and ``tiny``, 0
            for ``paper``).
        local_erasure_weight: the same term for the patch maps (``local`` and ``joint`` stages); ``None``: the
            preset's default (1 for ``small`` and ``tiny``, 0 for ``paper``).
        precision: ``fp32`` (default), ``bf16`` (forward passes under bfloat16 autocast, loss in float32) or
            ``auto`` (``bf16`` where the device runs bfloat16 natively); see :func:`~monai_glam.engines.
            create_glam_training`.
        channels_last: train in ``torch.channels_last`` memory format.

    Returns:
        The last validation metrics (empty without a validation split).

    Raises:
        ValueError: bad arguments or datalist, or an output folder that holds another run (see ``overwrite``).
        RunInterruptedError: SIGINT/SIGTERM stopped the run after an iteration, with ``last.pt`` saved there.
    """
    check_precision(precision)
    config = glam_preset(preset)
    kwargs = {**config["glam"], **dict(glam_kwargs or {})}
    window = tuple(int(v) for v in (window or config["window"]))
    if len(window) != 2 or min(window) < 1:
        raise ValueError(f"window must be two positive integers, got {window}.")
    preset_weights = preset_loss_weights(preset)
    if flip_consistency_weight is None:
        flip_consistency_weight = preset_weights["flip_consistency_weight"]
    if erasure_weight is None:
        erasure_weight = preset_weights["erasure_weight"]
    if local_erasure_weight is None:
        local_erasure_weight = preset_weights["local_erasure_weight"]
    loss = loss_for_stage(
        stage,
        global_sparsity_weight=global_sparsity_weight,
        local_sparsity_weight=local_sparsity_weight,
        pos_weight=pos_weight,
        flip_consistency_weight=flip_consistency_weight,
        local_flip_consistency_weight=local_flip_consistency_weight,
        erasure_weight=erasure_weight,
        local_erasure_weight=local_erasure_weight,
    )  # checks the weights before anything is read or written
    check_training_folder(output_dir, resume=resume, overwrite=overwrite, delete=False)
    if resume:
        _check_resume(Path(output_dir) / LAST_CHECKPOINT, epochs)
    train_items = read_datalist(datalist, "training")
    val_items = read_datalist(datalist, "validation")
    if not train_items:
        raise ValueError(f"{datalist} has no 'training' items.")
    for split, items in (("training", train_items), ("validation", val_items)):
        _warn_single_label_classes(items, split, datalist)
    set_determinism(seed=seed)
    torch.manual_seed(seed)
    glam = GLAM(**kwargs, gradient_checkpointing=gradient_checkpointing)
    glam.check_input_size(window)
    resolved_device = resolve_process_device(device)
    precision = resolve_precision(precision, resolved_device)  # once, for the engines and training_config.json
    started_group = init_distributed_from_env(resolved_device)
    output_dir = Path(output_dir)
    if is_main_process():
        output_dir.mkdir(parents=True, exist_ok=True)
        erosion, buffer = scaled_crop_parameters(window)
        preprocessing = {"spatial_size": window, "erosion_iterations": erosion, "buffer": buffer}
        save_model_config(output_dir / MODEL_CONFIG_NAME, kwargs, preprocessing=preprocessing)
        run_settings = {
            "datalist": str(datalist),
            "stage": stage,
            "preset": preset,
            "window": list(window),
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "weight_decay": weight_decay,
            "seed": seed,
            "augment": augment,
            "global_sparsity_weight": global_sparsity_weight,
            "local_sparsity_weight": local_sparsity_weight,
            "pos_weight": list(pos_weight) if pos_weight is not None else None,
            "flip_consistency_weight": flip_consistency_weight,
            "local_flip_consistency_weight": local_flip_consistency_weight,
            "erasure_weight": erasure_weight,
            "local_erasure_weight": local_erasure_weight,
            "precision": precision,
            "channels_last": channels_last,
            "init_checkpoint": str(init_checkpoint) if init_checkpoint else None,
        }
        atomic_write_text(output_dir / TRAINING_CONFIG_FILE, json.dumps(run_settings, indent=2) + "\n")

    for split, items in (("training", train_items), ("validation", val_items)):
        if items and skip_bad_items:
            _check_split_loads(items, window, split, datalist)
    train_data = MammogramDataset(train_items, glam_transforms(window, augment=augment), skip_bad_items)
    train_loader = create_loader(train_data, batch_size=batch_size, shuffle=True, seed=seed, num_workers=num_workers)
    val_loader = None
    if val_items:
        val_data = MammogramDataset(val_items, glam_transforms(window, augment=False), skip_bad_items)
        val_loader = create_loader(val_data, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    run = create_glam_training(
        glam,
        train_loader,
        output_dir,
        stage=stage,
        val_loader=val_loader,
        max_epochs=epochs,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        val_interval=val_interval,
        device=resolved_device,
        loss=loss,
        image_interval=image_interval,
        early_stop_patience=early_stop_patience,
        mlflow_tracking_uri=mlflow_tracking_uri,
        resume=resume,
        overwrite=overwrite,
        init_checkpoint=init_checkpoint,
        show_progress=show_progress,
        log_interval=log_interval,
        precision=precision,
        channels_last=channels_last,
    )
    try:
        return run.run()
    finally:
        if started_group:
            destroy_distributed()


def _check_split_loads(
    items: Sequence[Mapping[str, Any]], window: Sequence[int], split: str, datalist: str | os.PathLike[str]
) -> None:
    """Load the first readable item of a split before the engines start, so a split of unreadable files is one
    error line (the bad items are reported as they are tried) instead of an exception inside the trainer."""
    try:
        MammogramDataset(items, glam_transforms(window, augment=False), skip_bad_items=True)[0]
    except NoUsableItemsError as err:
        raise NoUsableItemsError(f"{split} split of {datalist}: {err}") from None


def _warn_single_label_classes(
    items: Sequence[Mapping[str, Any]], split: str, datalist: str | os.PathLike[str]
) -> None:
    """Warn when a class has one label value in a split: nothing to learn (training) or an undefined AUC
    (validation, where the key metric then averages the other classes)."""
    if not items:
        return
    labels = [item.get("label") for item in items]
    if not all(isinstance(label, (list, tuple)) and len(label) == len(CLASS_NAMES) for label in labels):
        return
    for c, name in enumerate(CLASS_NAMES):
        values = {int(label[c]) for label in labels}  # type: ignore[index]
        if len(values) == 1:
            kind = "positive" if values == {1} else "negative"
            effect = "GLAM cannot learn it" if split == "training" else "its AUC is undefined and left out of val_auc"
            warnings.warn(
                f"{split} split of {datalist}: all {len(items)} images are {kind} for {name}; {effect}",
                RuntimeWarning,
                stacklevel=3,
            )


def _check_resume(last: Path, epochs: int) -> None:
    """Refuse to resume with fewer epochs than ``last`` already holds (ignite's own message names no option)."""
    if not last.is_file():
        return
    try:
        state = torch.load(last, map_location="cpu", weights_only=True)
        trainer = state["trainer"]  # ignite keeps the iteration and the epoch length, not the epoch
        done = (
            int(trainer["epoch"]) if "epoch" in trainer else int(trainer["iteration"]) // int(trainer["epoch_length"])
        )
    except Exception as err:  # torch raises many types for corrupt or foreign files
        raise ValueError(f"cannot resume from {last}: not a training checkpoint of monai-glam train ({err})") from None
    if done > epochs:
        raise ValueError(
            f"--epochs {epochs} is fewer than the {done} epochs {last} already holds; pass --epochs {done + 1} or more "
            "to continue training"
        )


def stage_checkpoint_name(stage: str) -> str:
    """File name of a stage's best checkpoint in the bundle's ``models/`` folder: ``model_<stage>.pt``."""
    return f"model_{TrainingStage(stage).value}.pt"


def previous_stage_checkpoint(ckpt_dir: str | os.PathLike[str], stage: str) -> str | None:
    """Where a stage starts from: ``None`` for ``global``, the best ``global`` model for ``local`` and the best
    ``local`` model for ``joint``."""
    previous = _PREVIOUS_STAGE.get(TrainingStage(stage))
    return None if previous is None else os.path.join(os.fspath(ckpt_dir), stage_checkpoint_name(previous))


def load_initial_weights(glam: GLAM, path: str | os.PathLike[str] | None) -> GLAM:
    """Load the weights a stage starts from (``None`` or ``""``: keep the initialisation).

    Raises:
        FileNotFoundError: with a hint to train the previous stage first.
    """
    if path is None or str(path) == "":
        return glam
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"initial checkpoint not found: {path}. Train the previous stage first, or pass --init_checkpoint "
            "(a GLAM state dict, a training checkpoint, or a published NYU checkpoint)."
        )
    logger.info("initialising GLAM from %s", path)
    return load_glam_weights(glam, path)


def publish_checkpoint(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> str | None:
    """Copy a stage's best model to the bundle's default ``models/model.pt`` (main process only, atomically).

    Returns:
        The target path, or ``None`` when nothing was copied (no such source, or not the main process).
    """
    if not is_main_process():
        return None
    if not os.path.isfile(source):
        logger.warning("no checkpoint at %s to publish (was there a validation split?)", source)
        return None
    with atomic_output_path(target) as temp_path:
        shutil.copyfile(source, temp_path)
    logger.info("published %s as %s", source, target)
    return os.fspath(target)
