"""``monai-glam train``: train one GLAM stage on a MONAI datalist."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from monai_glam.apps.cli import CommandError
from monai_glam.utils.distributed import is_main_process

__all__ = ["TRAINING_CONFIG_FILE", "add_parser", "run_training"]

#: Written into the output folder: how the run was configured (window, stage, optimisation).
TRAINING_CONFIG_FILE = "training_config.json"


def _resolve_device(device: str) -> torch.device:
    """:func:`~monai_glam.apps.infer.resolve_device`, then one GPU per ``torchrun`` process for a bare ``cuda``."""
    from monai_glam.apps.infer import resolve_device

    resolved = torch.device(resolve_device(device))
    if resolved.type == "cuda" and resolved.index is None and "LOCAL_RANK" in os.environ:
        resolved = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return resolved


def _init_distributed(device: torch.device) -> bool:
    """Join the process group that ``torchrun`` describes in the environment; False when not under torchrun."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


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

    Returns:
        The last validation metrics (empty without a validation split).
    """
    from monai.utils import set_determinism

    from monai_glam.apps.model_io import MODEL_CONFIG_NAME, save_model_config
    from monai_glam.data import MammogramDataset, read_datalist
    from monai_glam.data.atomic_io import atomic_write_text
    from monai_glam.engines import create_glam_training, create_loader
    from monai_glam.networks import GLAM, glam_preset
    from monai_glam.transforms import glam_transforms, scaled_crop_parameters

    config = glam_preset(preset)
    kwargs = {**config["glam"], **dict(glam_kwargs or {})}
    window = tuple(int(v) for v in (window or config["window"]))
    if len(window) != 2 or min(window) < 1:
        raise ValueError(f"window must be two positive integers, got {window}.")
    train_items = read_datalist(datalist, "training")
    val_items = read_datalist(datalist, "validation")
    if not train_items:
        raise CommandError(f"{datalist} has no 'training' items.")
    set_determinism(seed=seed)
    torch.manual_seed(seed)
    glam = GLAM(**kwargs, gradient_checkpointing=gradient_checkpointing)
    resolved_device = _resolve_device(device)
    started_group = _init_distributed(resolved_device)
    output_dir = Path(output_dir)
    if is_main_process():
        output_dir.mkdir(parents=True, exist_ok=True)
        erosion, buffer = scaled_crop_parameters(window)
        preprocessing = {"spatial_size": window, "erosion_iterations": erosion, "buffer": buffer}
        save_model_config(output_dir / MODEL_CONFIG_NAME, kwargs, preprocessing=preprocessing)
        run_settings = {
            "datalist": str(datalist), "stage": stage, "preset": preset, "window": list(window),
            "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
            "weight_decay": weight_decay, "seed": seed, "augment": augment,
            "init_checkpoint": str(init_checkpoint) if init_checkpoint else None,
        }
        atomic_write_text(output_dir / TRAINING_CONFIG_FILE, json.dumps(run_settings, indent=2) + "\n")

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
        image_interval=image_interval,
        early_stop_patience=early_stop_patience,
        mlflow_tracking_uri=mlflow_tracking_uri,
        resume=resume,
        init_checkpoint=init_checkpoint,
        show_progress=show_progress,
        log_interval=log_interval,
    )
    try:
        return run.run()
    finally:
        if started_group:
            import torch.distributed as dist

            dist.barrier()  # no rank tears the group down while another is still in a collective
            dist.destroy_process_group()


def _run(args: argparse.Namespace) -> int:
    glam_kwargs = None
    window = args.window
    if args.model_config:
        from monai_glam.apps.model_io import read_model_config

        config = read_model_config(args.model_config)
        glam_kwargs = config.glam
        window = window or config.preprocessing.get("spatial_size")
    metrics = run_training(
        datalist=args.datalist,
        output_dir=args.output,
        stage=args.stage,
        preset=args.preset,
        glam_kwargs=glam_kwargs,
        window=window,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        val_interval=args.val_interval,
        init_checkpoint=args.init,
        resume=args.resume,
        augment=not args.no_augment,
        num_workers=args.num_workers,
        seed=args.seed,
        device=args.device,
        early_stop_patience=args.early_stop,
        mlflow_tracking_uri=args.mlflow,
        image_interval=args.image_interval,
        gradient_checkpointing=args.gradient_checkpointing,
        show_progress=not args.no_progress,
        log_interval=args.log_interval,
    )
    if not is_main_process():
        return 0
    summary = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()) or "no validation split"
    print(f"stage {args.stage} done: {summary}")
    print(f"checkpoints: {Path(args.output) / 'best.pt'} (best validation AUC), {Path(args.output) / 'last.pt'}")
    print(f"TensorBoard: tensorboard --logdir {Path(args.output) / 'tensorboard'}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``train`` on the ``monai-glam`` command line."""
    parser = subparsers.add_parser(
        "train",
        help="train one GLAM stage (global, local or joint) on a datalist",
        description=(
            "Train a GLAM stage with image-level labels only. Typical sequence: --stage global, then --stage local "
            "--init OUT_GLOBAL/best.pt, then optionally --stage joint --init OUT_LOCAL/best.pt. Also runs under "
            "torchrun (one process per GPU, or gloo on CPU)."
        ),
    )
    parser.add_argument(
        "--datalist", required=True, help="MONAI datalist JSON with 'training' (and 'validation') items"
    )
    parser.add_argument("--output", required=True, help="output folder (checkpoints, TensorBoard, configs)")
    parser.add_argument("--stage", choices=["global", "local", "joint"], default="global", help="training stage")
    parser.add_argument("--preset", choices=["paper", "small", "tiny"], default="paper", help="model size preset")
    parser.add_argument("--model-config", help="JSON of GLAM constructor arguments overriding the preset")
    parser.add_argument("--window", type=int, nargs=2, metavar=("H", "W"), help="network input size")
    parser.add_argument("--epochs", type=int, default=10, help="epochs of this stage (default 10)")
    parser.add_argument("--batch-size", type=int, default=2, help="images per step (default 2)")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default 1e-4)")
    parser.add_argument("--weight-decay", type=float, default=1e-5, help="Adam weight decay (default 1e-5)")
    parser.add_argument("--val-interval", type=int, default=1, help="validate every N epochs (default 1)")
    parser.add_argument("--init", help="checkpoint of a previous stage to start from")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/last.pt if it exists")
    parser.add_argument("--no-augment", action="store_true", help="disable training augmentation")
    parser.add_argument("--num-workers", type=int, default=0, help="data-loading workers (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument("--early-stop", type=int, default=0, help="patience in validations (default 0: off)")
    parser.add_argument("--mlflow", metavar="URI", help="track with MLflow, e.g. sqlite:///mlflow.db")
    parser.add_argument("--image-interval", type=int, default=1, help="TensorBoard images every N epochs (0: off)")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="save memory in the local module")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--log-interval", type=int, default=20, help="log losses every N iterations (0: off)")
    parser.set_defaults(func=_run)
    return parser
