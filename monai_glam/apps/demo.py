"""``monai-glam demo``: synthetic data -> GLAM training (global, then local) -> inference -> evaluation.

:func:`run_demo` strings library functions together: :func:`~monai_glam.data.write_synthetic_dataset`,
:func:`~monai_glam.engines.run_training`, :func:`~monai_glam.engines.run_inference` with an
:class:`~monai_glam.metrics.EvaluationCollector`, :func:`~monai_glam.metrics.select_dice_thresholds` and
:func:`~monai_glam.metrics.write_evaluation_report`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from monai_glam.apps.arguments import POSITIVE_INT, SEED, device_name, integer, number
from monai_glam.data import read_datalist, write_synthetic_dataset
from monai_glam.data.synthetic import DEMO_LESIONS, SyntheticMammogramGenerator
from monai_glam.engines import load_inference_model, run_inference, run_training
from monai_glam.engines.localization import compare_glam_maps
from monai_glam.metrics import (
    EvaluationCollector,
    json_safe,
    localization_markdown,
    select_dice_thresholds,
    write_evaluation_report,
)
from monai_glam.networks import GLAM_PRESETS, glam_preset
from monai_glam.utils.atomic import atomic_write_text
from monai_glam.utils.device import resolve_device
from monai_glam.utils.output_folder import check_output_folder, remove_entries

__all__ = ["add_parser", "run_demo"]


#: The folders the demo writes in its output folder (``--overwrite`` deletes them first).
_DEMO_FOLDERS = ("data", "runs", "validation", "evaluation")


def run_demo(
    output: str | Path = "glam_demo",
    num_images: int = 480,
    preset: str = "tiny",
    global_epochs: int = 20,
    local_epochs: int = 8,
    batch_size: int = 8,
    learning_rate: float = 1e-3,
    num_bootstrap: int = 500,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Run the whole GLAM workflow on a synthetic dataset and return the paths of what it wrote.

    Steps: write ``num_images`` synthetic mammograms (with lesion masks and a datalist split by patient),
    train the global module, train the local module on the frozen global module's patches, pick Dice-optimal
    segmentation thresholds on the validation split, then run inference and evaluation on the held-out test
    split (CSV of scores, maps and masks in the original image geometry, overlays, a JSON/Markdown report
    with ROC and FROC plots).

    An ``output`` folder that already holds files is refused unless ``overwrite``; then the demo's own folders in
    it (``data``, ``runs``, ``validation``, ``evaluation``) are deleted before it starts.

    Raises:
        ValueError: fewer than 8 images, an unknown preset, an unknown or unavailable device, or an output folder
            with files and no ``overwrite`` (before anything is written).
    """
    if num_images < 8:
        raise ValueError(f"the demo needs at least 8 images (two synthetic exams), got {num_images}.")
    window = glam_preset(preset)["window"]
    resolve_device(device)  # an unknown or unavailable device fails here, before any file is written
    output = Path(output)
    check_output_folder(output, overwrite)
    if overwrite:
        remove_entries(output, _DEMO_FOLDERS)
    started = time.perf_counter()
    print(f"[1/5] writing {num_images} synthetic mammograms ({window[0]}x{window[1]}) to {output / 'data'}")
    generator = SyntheticMammogramGenerator(size=window, seed=seed, **DEMO_LESIONS)
    datalist = write_synthetic_dataset(
        output / "data",
        num=num_images,
        size=window,
        seed=seed,
        write_dicom=False,
        fractions=(0.7, 0.15, 0.15),
        progress=progress,
        generator=generator,
    )
    common: dict[str, Any] = {
        "preset": preset,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "device": device,
        "show_progress": progress,
        "log_interval": 0,
    }
    runs = output / "runs"
    print(f"[2/5] training the global module ({global_epochs} epochs) -> {runs / 'global'}")
    metrics = run_training(datalist, runs / "global", stage="global", epochs=global_epochs, **common)
    print(f"      validation: {_format(metrics)}")
    print(f"[3/5] training the local module on the global module's patches ({local_epochs} epochs) -> {runs / 'local'}")
    metrics = run_training(
        datalist, runs / "local", stage="local", epochs=local_epochs, init_checkpoint=_best(runs / "global"), **common
    )
    print(f"      validation: {_format(metrics)}")
    checkpoint = _best(runs / "local")
    print(f"[4/5] picking Dice-optimal thresholds on the validation split -> {output / 'validation'}")
    validation = _predict(datalist, "validation", checkpoint, output / "validation", device, progress)
    maps, masks = validation.localization_data()
    thresholds = (0.5, 0.5)
    if maps:
        thresholds = tuple(round(float(t), 2) for t in select_dice_thresholds(maps, masks).thresholds)
    print(f"      thresholds (benign, malignant): {', '.join(f'{t:.2f}' for t in thresholds)}")
    evaluation = output / "evaluation"
    print(f"[5/5] inference and evaluation on the test split -> {evaluation}")
    test = _predict(datalist, "test", checkpoint, evaluation / "predictions", device, progress, thresholds)
    report = test.report(thresholds, num_bootstrap=num_bootstrap, seed=seed, window_rows=window[0])
    report["inputs"].update({"checkpoint": str(checkpoint), "datalist": str(datalist), "split": "test"})
    write_evaluation_report(report, evaluation)
    print("      localization on the test split, in the original geometry (thresholds picked on validation):")
    model, settings, _ = load_inference_model(checkpoint, device=device, progress=False)
    try:
        comparison = compare_glam_maps(
            model,
            read_datalist(datalist, "validation"),
            read_datalist(datalist, "test"),
            settings.window,
            settings.device,
        )
    except ValueError as err:  # e.g. a test split too small to hold a lesion
        print(f"      skipped: {err}")
    else:
        for line in _localization_summary(comparison):
            print(f"      {line}")
        atomic_write_text(evaluation / "localization.md", localization_markdown(comparison, labels=_MAP_LABELS))
        atomic_write_text(evaluation / "localization.json", json.dumps(json_safe(comparison), indent=2) + "\n")
    paths = {
        "datalist": Path(datalist),
        "checkpoint": _best(runs / "local"),
        "tensorboard": runs,
        "predictions": evaluation / "predictions" / "predictions.csv",
        "saliency": evaluation / "predictions" / "saliency",
        "masks": evaluation / "predictions" / "masks",
        "overlays": evaluation / "predictions" / "overlays",
        "report": evaluation / "report.md",
        "localization": evaluation / "localization.md",
    }
    print(f"\ndone in {time.perf_counter() - started:.0f} s. Results:")
    for name, path in paths.items():
        print(f"  {name:<12} {path}")
    print(f"  monitor training with: tensorboard --logdir {runs}")
    return paths


def _predict(
    datalist: Path,
    split: str,
    checkpoint: Path,
    folder: Path,
    device: str,
    progress: bool,
    thresholds: tuple[float, ...] | None = None,
) -> EvaluationCollector:
    """Run inference on one split (outputs under ``folder``) and keep the maps for evaluation in memory."""
    model, settings, run_info = load_inference_model(
        checkpoint, device=device, thresholds=thresholds, overlays=split == "test", progress=progress
    )
    run_info.update({"datalist": str(datalist), "split": split})
    collector = EvaluationCollector()
    summary = run_inference(
        read_datalist(datalist, split), model, folder, settings, run_info=run_info, collector=collector
    )
    if not summary.predictions:
        raise RuntimeError(f"inference failed on every {split} image: {summary.failures.summary()}")
    return collector


_MAP_LABELS = {"fused": "fused map", "global": "global map only", "local": "local maps only"}


def _localization_summary(comparison: dict[str, Any]) -> list[str]:
    """Dice and pointing game of the fused and the global-only map, and the fused/global Dice ratio."""
    lines = [f"{'':<18}{'Dice benign':>12}{'Dice malig.':>12}{'point. benign':>15}{'point. malig.':>15}"]
    methods = comparison["methods"]

    def cell(value: float | None, width: int) -> str:
        return f"{'n/a' if value is None else f'{value:.3f}':>{width}}"

    for method in ("fused", "global"):
        row = methods[method]
        lines.append(
            f"{_MAP_LABELS[method]:<18}{cell(row['benign']['dice'], 12)}{cell(row['malignant']['dice'], 12)}"
            f"{cell(row['benign']['pointing'], 15)}{cell(row['malignant']['pointing'], 15)}"
        )
    ratios = []
    for name in ("benign", "malignant"):
        fused, only = methods["fused"][name]["dice"], methods["global"][name]["dice"]
        ratios.append(f"{name} {fused / only:.2f}x" if fused is not None and only else f"{name} n/a")
    lines.append(f"fused / global-only Dice: {', '.join(ratios)}")
    return lines


def _best(run_dir: Path) -> Path:
    """``best.pt`` when validation produced one (a split with a single class gives no AUC), else ``last.pt``."""
    best = run_dir / "best.pt"
    return best if best.is_file() else run_dir / "last.pt"


def _format(metrics: dict[str, float]) -> str:
    return ", ".join(f"{key} {value:.3f}" for key, value in metrics.items()) or "no validation split"


def _run(args: argparse.Namespace) -> int:
    if args.minimal:
        args.num, args.global_epochs, args.local_epochs, args.num_bootstrap = 16, 1, 1, 50
    run_demo(
        output=args.output,
        num_images=args.num,
        preset=args.preset,
        global_epochs=args.global_epochs,
        local_epochs=args.local_epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        num_bootstrap=args.num_bootstrap,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
        overwrite=args.overwrite,
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``demo`` on the ``monai-glam`` command line."""
    parser = subparsers.add_parser(
        "demo",
        help="synthetic data -> train a small GLAM -> infer -> evaluate, in a few minutes on a CPU",
        description=(
            "Generate a synthetic mammography dataset, train a small GLAM (global stage, then local stage) on the "
            "CPU, run inference and evaluation on the held-out test images, and print where the CSV, maps, "
            "overlays and report are."
        ),
    )
    parser.add_argument("--output", default="glam_demo", help="output folder (default glam_demo)")
    parser.add_argument("--num", type=integer(minimum=8), default=480, help="synthetic images (default 480)")
    parser.add_argument("--preset", choices=sorted(GLAM_PRESETS), default="tiny", help="model size (default tiny)")
    parser.add_argument("--global-epochs", type=POSITIVE_INT, default=20, help="global-stage epochs (default 20)")
    parser.add_argument("--local-epochs", type=POSITIVE_INT, default=8, help="local-stage epochs (default 8)")
    parser.add_argument("--batch-size", type=POSITIVE_INT, default=8, help="images per step (default 8)")
    parser.add_argument("--lr", type=number(0.0, open_minimum=True), default=1e-3, help="learning rate (default 1e-3)")
    parser.add_argument("--num-bootstrap", type=POSITIVE_INT, default=500, help="bootstrap resamples for AUC intervals")
    parser.add_argument("--seed", type=SEED, default=0, help="random seed (default 0)")
    parser.add_argument("--device", type=device_name, default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--minimal", action="store_true", help="a seconds-long smoke run (16 images, 1 epoch each)")
    parser.add_argument(
        "--overwrite", action="store_true", help="OUTPUT holds an earlier demo: delete it, run again (default: refuse)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=_run)
    return parser
