"""``monai-glam train``: train one GLAM stage on a MONAI datalist.

Argument parsing only; the work is :func:`monai_glam.engines.run_training`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from monai_glam.apps.arguments import NON_NEGATIVE_INT, POSITIVE_INT, SEED, WINDOW_SIDE, device_name, number
from monai_glam.engines import run_training
from monai_glam.networks import GLAM_PRESETS
from monai_glam.networks.io import read_model_config
from monai_glam.utils.distributed import is_main_process
from monai_glam.utils.precision import PRECISIONS

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    glam_kwargs = None
    window = args.window
    if args.model_config:
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
        overwrite=args.overwrite,
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
        global_sparsity_weight=args.sparsity_global,
        local_sparsity_weight=args.sparsity_local,
        pos_weight=args.pos_weight,
        flip_consistency_weight=args.flip_consistency,
        local_flip_consistency_weight=args.local_flip_consistency,
        erasure_weight=args.erasure,
        local_erasure_weight=args.local_erasure,
        precision=args.precision,
        channels_last=args.channels_last,
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
            "torchrun (one process per GPU, or gloo on CPU). An OUTPUT that already holds checkpoints is refused "
            "unless --resume or --overwrite is given. Ctrl-C (SIGINT) or SIGTERM stops after the current iteration "
            "with last.pt saved (exit status 130 / 143); --resume continues."
        ),
    )
    parser.add_argument(
        "--datalist", required=True, help="MONAI datalist JSON with 'training' (and 'validation') items"
    )
    parser.add_argument("--output", required=True, help="output folder (checkpoints, TensorBoard, configs)")
    parser.add_argument("--stage", choices=["global", "local", "joint"], default="global", help="training stage")
    parser.add_argument("--preset", choices=sorted(GLAM_PRESETS), default="paper", help="model size preset")
    parser.add_argument("--model-config", help="JSON of GLAM constructor arguments overriding the preset")
    parser.add_argument("--window", type=WINDOW_SIDE, nargs=2, metavar=("H", "W"), help="network input size")
    parser.add_argument("--epochs", type=POSITIVE_INT, default=10, help="epochs of this stage (default 10)")
    parser.add_argument("--batch-size", type=POSITIVE_INT, default=2, help="images per step (default 2)")
    parser.add_argument(
        "--lr", type=number(0.0, open_minimum=True), default=1e-4, help="Adam learning rate (default 1e-4)"
    )
    parser.add_argument("--weight-decay", type=number(0.0), default=1e-5, help="Adam weight decay (default 1e-5)")
    parser.add_argument("--val-interval", type=POSITIVE_INT, default=1, help="validate every N epochs (default 1)")
    parser.add_argument("--init", help="checkpoint of a previous stage to start from")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/last.pt if it exists")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="OUTPUT holds an earlier run: delete its best.pt/last.pt and start again (default: refuse)",
    )
    parser.add_argument("--no-augment", action="store_true", help="disable training augmentation")
    parser.add_argument(
        "--sparsity-global", type=number(0.0), default=0.05, help="β_g, global map sparsity weight (default 0.05)"
    )
    parser.add_argument(
        "--sparsity-local", type=number(0.0), default=0.05, help="β_l, patch map sparsity weight (default 0.05)"
    )
    parser.add_argument(
        "--pos-weight",
        type=number(0.0, open_minimum=True),
        nargs=2,
        metavar=("BENIGN", "MALIGNANT"),
        help="weights of positive images in the BCE terms, e.g. negatives/positives (default: 1 1)",
    )
    parser.add_argument(
        "--flip-consistency",
        type=number(0.0),
        default=None,
        metavar="WEIGHT",
        help="weight of the global map's flip-consistency term (global/joint stages; default: the preset's, "
        "1 for small and tiny, 0 for paper)",
    )
    parser.add_argument(
        "--local-flip-consistency",
        type=number(0.0),
        default=0.0,
        metavar="WEIGHT",
        help="weight of the patch maps' flip-consistency term (local/joint stages; default 0: off)",
    )
    parser.add_argument(
        "--erasure",
        type=number(0.0),
        default=None,
        metavar="WEIGHT",
        help="weight of the global map's erasure term: a positive image erased where its class's S_g points must "
        "score negative (global/joint stages; default: the preset's, 1 for small and tiny, 0 for paper)",
    )
    parser.add_argument(
        "--local-erasure",
        type=number(0.0),
        default=None,
        metavar="WEIGHT",
        help="weight of the patch maps' erasure term (local/joint stages; default: the preset's, 1 for small and "
        "tiny, 0 for paper)",
    )
    parser.add_argument("--num-workers", type=NON_NEGATIVE_INT, default=0, help="data-loading workers (default 0)")
    parser.add_argument("--seed", type=SEED, default=0, help="random seed (default 0)")
    parser.add_argument("--device", type=device_name, default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    parser.add_argument(
        "--early-stop", type=NON_NEGATIVE_INT, default=0, help="patience in validations (default 0: off)"
    )
    parser.add_argument("--mlflow", metavar="URI", help="track with MLflow, e.g. sqlite:///mlflow.db")
    parser.add_argument(
        "--image-interval", type=NON_NEGATIVE_INT, default=1, help="TensorBoard images every N epochs (0: off)"
    )
    parser.add_argument("--gradient-checkpointing", action="store_true", help="save memory in the local module")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32, bf16 (forward passes under bfloat16 autocast, loss in float32; only where the device runs "
        "bfloat16 natively) or auto (bf16 there, fp32 elsewhere) (default: fp32)",
    )
    parser.add_argument(
        "--channels-last", action="store_true", help="train in channels_last memory format (model and images)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--log-interval", type=NON_NEGATIVE_INT, default=20, help="log losses every N iterations (0: off)"
    )
    parser.set_defaults(func=_run)
    return parser
