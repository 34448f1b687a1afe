"""Localization benchmark: GLAM's fused map against its global map, its local maps and a plain CNN with Grad-CAM.

One command generates a synthetic dataset (``--difficulty``), trains GLAM (global stage, local stage, optional
joint stage) and a plain MONAI classifier (``monai.networks.nets.resnet18``, BCE on the image labels) on its
training split, then scores every method on the same test split, with thresholds picked on the same validation
split, in the original image geometry (maps mapped back onto the raw mammograms, as ``monai-glam infer`` writes
them):

- ``glam_fused``: GLAM's fused map under ``--fusion`` (default the published rule), scored by ŷ_g;
- ``glam_fused_<rule>``: the same forward pass fused under the other rule (``mean``: the published
  ``(paste(S_l) + up(S_g)) / 2``; ``local``: S_l inside the patches, S_g outside), scored by ŷ_g;
- ``glam_global``: S_g alone, nearest-upsampled (GMIC-style, what the global module gives), scored by ŷ_g;
- ``glam_local``: the local module's patch maps alone (zero outside the patches), scored by ŷ_l;
- ``cnn_gradcam``: ResNet-18 scores with ``monai.visualize.GradCAM`` maps of its last stage (per-image min-max
  normalised, MONAI's default).

Columns per class: image ROC-AUC, Dice and IoU at the validation-picked threshold, pointing game, lesion FROC
sensitivity at 1 false positive per image, overall and for lesions below / at-or-above the median diameter. It
writes ``table.md``, ``results.json`` and ``figure.png`` (image, ground truth and each method's maps for a few
test images) into ``--output``, and prints the table. Training wall times are in ``results.json``.

Usage::

    python benchmarks/localization.py --output bench/loc                    # the demo's data and recipe
    python benchmarks/localization.py --output bench/loc-moderate --difficulty moderate --preset small --num 960

``--reuse`` keeps the data and any finished training run in ``--output`` (to re-score, or to add a method).
Wall-clock numbers depend on the machine; nothing here gates CI.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_glam.data import MammogramDataset, read_datalist, write_synthetic_dataset
from monai_glam.data.synthetic import DEMO_LESIONS, SyntheticMammogramGenerator
from monai_glam.engines import create_loader, load_inference_model, run_training
from monai_glam.engines.localization import collect_localization, glam_localization_predictor
from monai_glam.metrics import (
    LocalizationSplit,
    compare_localization,
    froc_peak_settings,
    json_safe,
    localization_markdown,
    roc_auc,
)
from monai_glam.networks import LOCAL_POOLINGS, glam_preset
from monai_glam.networks.blocks import FUSION_RULES, PADDING_MODES
from monai_glam.transforms import glam_transforms
from monai_glam.utils import BatchKeys
from monai_glam.utils.atomic import atomic_write_text
from monai_glam.utils.precision import PRECISIONS

METHOD_LABELS = {
    "glam_fused": "GLAM fused map",
    "glam_fused_mean": "GLAM fused map, published rule (mean)",
    "glam_fused_local": "GLAM fused map, local rule (S_l in the patches)",
    "glam_global": "GLAM global map only (S_g)",
    "glam_local": "GLAM local maps only (S_l)",
    "cnn_gradcam": "ResNet-18 + Grad-CAM",
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="folder for the data, the runs and the results")
    parser.add_argument(
        "--difficulty",
        default="demo",
        choices=("demo", "easy", "moderate", "realistic"),
        help="synthetic level; demo (default) = the easy level with monai-glam demo's lesions, the demo's data",
    )
    parser.add_argument("--preset", default="tiny", choices=("tiny", "small"), help="GLAM preset (sets the window)")
    parser.add_argument("--num", type=int, default=480, help="synthetic images (default 480, the demo's)")
    parser.add_argument("--seed", type=int, default=0, help="data and training seed")
    parser.add_argument("--global-epochs", type=int, default=20)
    parser.add_argument("--local-epochs", type=int, default=8)
    parser.add_argument("--joint-epochs", type=int, default=0, help="joint fine-tuning after the local stage")
    parser.add_argument("--lr", type=float, default=1e-3, help="GLAM learning rate of the global and local stages")
    parser.add_argument("--joint-lr", type=float, default=1e-3)
    parser.add_argument("--local-lr", type=float, default=None, help="local-stage learning rate (default --lr)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-patches", type=int, default=None, help="K, patches per image (default: the preset's)")
    parser.add_argument("--global-top-t", type=float, default=None, help="top-t fraction (default: the preset's)")
    parser.add_argument("--local-top-k", type=float, default=None, help="top-k fraction (default: the preset's)")
    parser.add_argument("--global-padding-mode", default=None, choices=PADDING_MODES, help="default: the preset's")
    parser.add_argument("--local-padding-mode", default=None, choices=PADDING_MODES, help="default: the preset's")
    parser.add_argument(
        "--fusion",
        default="mean",
        choices=FUSION_RULES,
        help="fusion rule of the 'GLAM fused map' row (default mean, the published one); the other gets its own row",
    )
    parser.add_argument("--patch-selection", default=None, choices=("summed", "per_class"), help="default: preset")
    parser.add_argument(
        "--local-pooling", default=None, choices=LOCAL_POOLINGS, help="how ŷ_l pools the K patch maps (default: preset)"
    )
    parser.add_argument(
        "--patch-jitter",
        type=float,
        default=None,
        help="random training patch offset, a fraction of the patch size (default: the preset's, 0.25 in small, tiny)",
    )
    parser.add_argument("--scale-weights", type=float, nargs=3, default=None, help="weights of A1..A3 in S_g")
    parser.add_argument("--sparsity-global", type=float, default=0.05, help="β_g (default 0.05)")
    parser.add_argument("--sparsity-local", type=float, default=0.05, help="β_l (default 0.05)")
    parser.add_argument(
        "--flip-consistency",
        type=float,
        default=None,
        help="weight of the global map's flip-consistency term (default: the preset's, 1 for small and tiny)",
    )
    parser.add_argument(
        "--local-flip-consistency", type=float, default=0.0, help="weight of the patch maps' flip-consistency term"
    )
    parser.add_argument(
        "--erasure", type=float, default=None, help="weight of the global map's erasure term (default: the preset's)"
    )
    parser.add_argument(
        "--local-erasure",
        type=float,
        default=None,
        help="weight of the patch maps' erasure term (default: the preset's)",
    )
    parser.add_argument("--no-augment", action="store_true", help="train GLAM and the CNN without augmentation")
    parser.add_argument("--cnn-epochs", type=int, default=12, help="ResNet-18 epochs (default 12)")
    parser.add_argument("--cnn-lr", type=float, default=1e-3)
    parser.add_argument("--figure-images", type=int, default=4, help="test images in the figure")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=PRECISIONS,
        help="GLAM's training forward passes (fp32, bf16 autocast, or auto); scoring always runs in float32",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-cnn", action="store_true", help="score GLAM only")
    parser.add_argument("--reuse", action="store_true", help="keep existing data and finished runs in --output")
    return parser.parse_args(argv)


def train_glam(args: argparse.Namespace, datalist: Path, runs: Path) -> tuple[Path, dict[str, float]]:
    """The GLAM stages in order; returns the final checkpoint and each stage's wall time."""
    common = {"preset": args.preset, "batch_size": args.batch_size, "seed": args.seed, "device": "cpu"}
    common["precision"] = args.precision
    common.update(image_interval=0, log_interval=0, show_progress=False, augment=not args.no_augment)
    common.update(global_sparsity_weight=args.sparsity_global, local_sparsity_weight=args.sparsity_local)
    common.update(
        flip_consistency_weight=args.flip_consistency, local_flip_consistency_weight=args.local_flip_consistency
    )
    common.update(erasure_weight=args.erasure, local_erasure_weight=args.local_erasure)
    glam_kwargs = {
        key: value
        for key, value in (
            ("num_patches", args.num_patches),
            ("global_top_t", args.global_top_t),
            ("local_top_k", args.local_top_k),
            ("global_padding_mode", args.global_padding_mode),
            ("scale_weights", tuple(args.scale_weights) if args.scale_weights else None),
            ("patch_selection", args.patch_selection),
            ("fusion", args.fusion),
            ("local_pooling", args.local_pooling),
            ("patch_jitter", args.patch_jitter),
            ("local_padding_mode", args.local_padding_mode),
        )
        if value is not None
    }
    common["glam_kwargs"] = glam_kwargs
    local_lr = args.lr if args.local_lr is None else args.local_lr
    stages = [("global", args.global_epochs, args.lr), ("local", args.local_epochs, local_lr)]
    if args.joint_epochs:
        stages.append(("joint", args.joint_epochs, args.joint_lr))
    times: dict[str, float] = {}
    previous: Path | None = None
    for stage, epochs, lr in stages:
        folder = runs / stage
        if args.reuse and (folder / "best.pt").is_file() and json_done(folder, epochs):
            print(f"  {stage}: reusing {folder}")
        else:
            started = time.perf_counter()
            metrics = run_training(
                datalist,
                folder,
                stage=stage,
                epochs=epochs,
                learning_rate=lr,
                init_checkpoint=previous,
                overwrite=True,
                **common,
            )
            times[stage] = time.perf_counter() - started
            shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k.startswith("val_auc"))
            print(f"  {stage}: {epochs} epochs in {times[stage]:.0f} s ({shown})")
            (folder / "benchmark_done.json").write_text(json.dumps({"epochs": epochs}))
        previous = folder / "best.pt"
    assert previous is not None
    return previous, times


def json_done(folder: Path, epochs: int) -> bool:
    marker = folder / "benchmark_done.json"
    return marker.is_file() and json.loads(marker.read_text()).get("epochs") == epochs


def build_cnn() -> torch.nn.Module:
    """MONAI's ResNet-18 with the usual stride-2 first convolution (MONAI's default stride 1 costs 4x more)."""
    from monai.networks.nets import resnet18

    return resnet18(spatial_dims=2, n_input_channels=1, num_classes=2, conv1_t_stride=2)


def train_cnn(args: argparse.Namespace, datalist: Path, window: Sequence[int], path: Path) -> float:
    """Train the plain classifier (BCE on the image labels, Adam, cosine schedule), keep the best validation AUC."""
    if args.reuse and path.is_file():
        print(f"  cnn: reusing {path}")
        return math.nan
    torch.manual_seed(args.seed)
    model = build_cnn()
    epochs = args.cnn_epochs
    train = MammogramDataset(read_datalist(datalist, "training"), glam_transforms(window, augment=not args.no_augment))
    val = MammogramDataset(read_datalist(datalist, "validation"), glam_transforms(window, augment=False))
    train_loader = create_loader(train, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    val_loader = create_loader(val, batch_size=args.batch_size, shuffle=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.cnn_lr, weight_decay=1e-5)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best, best_state = -1.0, None
    started = time.perf_counter()
    for epoch in range(epochs):
        train_loader.sampler.set_epoch(epoch)
        model.train()
        for batch in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(model(batch[BatchKeys.IMAGE]), batch[BatchKeys.LABEL].float())
            loss.backward()
            optimizer.step()
        scheduler.step()
        model.eval()
        scores, labels = [], []
        with torch.no_grad():
            for batch in val_loader:
                scores.append(torch.sigmoid(model(batch[BatchKeys.IMAGE])))
                labels.append(batch[BatchKeys.LABEL])
        auc = float(np.nanmean(roc_auc(torch.cat(scores).numpy(), torch.cat(labels).numpy())))
        if auc > best:
            best, best_state = auc, {k: v.clone() for k, v in model.state_dict().items()}
        print(f"  cnn epoch {epoch + 1}/{epochs}: val AUC {auc:.3f} (best {best:.3f})")
    elapsed = time.perf_counter() - started
    torch.save(best_state, path)
    return elapsed


def cnn_gradcam_predictor(model: torch.nn.Module):
    """ResNet scores and one Grad-CAM map per class (``layer4``, MONAI's defaults)."""
    from monai.visualize import GradCAM

    cam = GradCAM(nn_module=model, target_layers="layer4")

    def predict(image: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        with torch.no_grad():
            scores = torch.sigmoid(model(image))[0]
        maps = torch.cat([cam(image, class_idx=c) for c in range(scores.numel())], dim=1)[0]
        return {"cnn_gradcam": (scores, maps.detach())}

    return predict


def write_figure(
    path: Path,
    items: Sequence[Mapping[str, Any]],
    test: Mapping[str, LocalizationSplit],
    thresholds: Mapping[str, Sequence[float]],
    count: int,
) -> None:
    """Image, ground truth and every method's maps (benign | malignant) for the first test images with lesions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from monai_glam.data.image_reader import read_image_array

    reference = next(iter(test.values()))
    by_id = {Path(str(item[BatchKeys.IMAGE])).stem: item for item in items}
    chosen = [i for i, masks in enumerate(reference.masks) if masks.any()][:count]
    methods = list(test)
    fig, axes = plt.subplots(len(chosen), 2 + len(methods), figsize=(2.2 * (2 + len(methods)), 3.2 * len(chosen)))
    axes = np.atleast_2d(axes)
    for row, index in enumerate(chosen):
        image_id = reference.image_ids[index]
        image = np.asarray(read_image_array(str(by_id[image_id][BatchKeys.IMAGE]))[0], dtype=np.float32)
        masks = reference.masks[index]
        axes[row, 0].imshow(image, cmap="gray")
        axes[row, 0].set_title(image_id, fontsize=8)
        truth = np.zeros((*masks.shape[1:], 3))
        truth[..., 0], truth[..., 1] = masks[1], masks[0]  # malignant red, benign green
        axes[row, 1].imshow(image, cmap="gray")
        axes[row, 1].imshow(truth, alpha=0.5)
        axes[row, 1].set_title("truth (green benign, red malignant)", fontsize=7)
        for col, method in enumerate(methods, start=2):
            maps = test[method].maps[index].astype(np.float32)
            rgb = np.zeros((*maps.shape[1:], 3))
            rgb[..., 0], rgb[..., 1] = maps[1], maps[0]
            axes[row, col].imshow(np.clip(rgb, 0, 1))
            for c, colour in ((0, "lime"), (1, "red")):
                if masks[c].any():
                    axes[row, col].contour(masks[c], levels=[0.5], colors=colour, linewidths=0.6)
            t = thresholds[method]
            axes[row, col].set_title(f"{METHOD_LABELS.get(method, method)}\nthr {t[0]:.2f}/{t[1]:.2f}", fontsize=7)
        for ax in axes[row]:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    window = tuple(int(v) for v in glam_preset(args.preset)["window"])
    datalist = out / "data" / "datalist.json"
    started = time.perf_counter()
    if not (args.reuse and datalist.is_file()):
        generator = None
        if args.difficulty == "demo":
            generator = SyntheticMammogramGenerator(size=window, seed=args.seed, **DEMO_LESIONS)
        write_synthetic_dataset(
            out / "data",
            num=args.num,
            size=window,
            seed=args.seed,
            write_dicom=False,
            fractions=(0.7, 0.15, 0.15),  # the demo's split
            progress=False,
            generator=generator,
            difficulty=None if generator is not None else args.difficulty,
        )
    print(f"[1/4] data: {args.num} {args.difficulty} images of {window[0]}x{window[1]} ({datalist})")
    print("[2/4] training GLAM")
    checkpoint, glam_times = train_glam(args, datalist, out / "runs")
    cnn_path = out / "runs" / "cnn_resnet18.pt"
    cnn_time = math.nan
    if not args.skip_cnn:
        print("[3/4] training ResNet-18")
        cnn_time = train_cnn(args, datalist, window, cnn_path)
    print("[4/4] scoring on the validation and test splits")
    model, settings, _ = load_inference_model(checkpoint, device="cpu")
    model.fusion = args.fusion  # the rule has no parameters: a reused run is scored under the one asked for
    other_rules = [rule for rule in FUSION_RULES if rule != args.fusion]
    predictors = {"glam": glam_localization_predictor(model, extra_fusions=other_rules)}
    if not args.skip_cnn:
        cnn = build_cnn()
        cnn.load_state_dict(torch.load(cnn_path, weights_only=True))
        predictors["cnn"] = cnn_gradcam_predictor(cnn.eval())
    splits: dict[str, dict[str, LocalizationSplit]] = {"validation": {}, "test": {}}
    for split in splits:
        items = read_datalist(datalist, split)
        for predict in predictors.values():
            collected = collect_localization(items, predict, settings.window, progress=True, description=split)
            for method, value in collected.items():
                name = method if method.startswith("cnn") else f"glam_{method}"
                splits[split][name] = value
    sigma, distance = froc_peak_settings(window[0])
    order = [m for m in METHOD_LABELS if m in splits["test"]]
    comparison = compare_localization(
        {m: splits["validation"][m] for m in order},
        {m: splits["test"][m] for m in order},
        peak_sigma=sigma,
        peak_min_distance=distance,
    )
    comparison["inputs"] = {
        **{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "window": list(window),
        "training_seconds": {**{f"glam_{k}": v for k, v in glam_times.items()}, "cnn": cnn_time},
        "total_seconds": time.perf_counter() - started,
    }
    table = localization_markdown(comparison, labels=METHOD_LABELS)
    atomic_write_text(out / "table.md", table)
    atomic_write_text(out / "results.json", json.dumps(json_safe(comparison), indent=2) + "\n")
    thresholds = {m: comparison["methods"][m]["thresholds"] for m in order}
    write_figure(out / "figure.png", read_datalist(datalist, "test"), splits["test"], thresholds, args.figure_images)
    print(table)
    print(f"results in {out} (table.md, results.json, figure.png); {time.perf_counter() - started:.0f} s in all")
    return comparison


if __name__ == "__main__":
    main()
