"""Evaluation report: every metric in one JSON-serialisable dictionary, a Markdown summary and ROC/FROC plots."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from monai_glam.metrics.froc import DEFAULT_FP_RATES, compute_lesion_froc
from monai_glam.metrics.pointing_game import pointing_game
from monai_glam.metrics.roc import aggregate_by_group, compute_roc_auc_ci, roc_curve
from monai_glam.metrics.segmentation import compute_dice_iou
from monai_glam.metrics.utils import as_score_matrix, json_safe, resolve_class_names
from monai_glam.utils.atomic import atomic_output_path, atomic_write_text
from monai_glam.utils.enums import CLASS_NAMES

__all__ = [
    "build_evaluation_report",
    "plot_froc_curves",
    "plot_roc_curves",
    "render_markdown",
    "write_evaluation_report",
]


def _classification_section(
    score_sets: Mapping[str, Any],
    labels: Any,
    names: list[str],
    num_bootstrap: int,
    confidence: float,
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """AUCs with intervals and ROC curves of every score set, for one level (images or breasts)."""
    aucs: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    for score_name, scores in score_sets.items():
        score_matrix, label_matrix = as_score_matrix(scores, labels)
        results = compute_roc_auc_ci(score_matrix, label_matrix, names, num_bootstrap, confidence, seed)
        aucs[score_name] = {name: result.to_dict() for name, result in results.items()}
        curves[score_name] = {}
        for c, name in enumerate(names):
            if 0 < label_matrix[:, c].sum() < label_matrix.shape[0]:
                fpr, tpr, _ = roc_curve(score_matrix[:, c], label_matrix[:, c])
                curves[score_name][name] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    return aucs, curves


def build_evaluation_report(
    image_scores: Mapping[str, Any] | Any,
    image_labels: Any,
    breast_ids: Sequence[Any] | None = None,
    saliency: Any | None = None,
    masks: Any | None = None,
    thresholds: float | Sequence[float] = 0.5,
    class_names: Sequence[str] = CLASS_NAMES,
    num_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    fp_rates: Sequence[float] = DEFAULT_FP_RATES,
    peak_sigma: float = 4.0,
    peak_min_distance: int = 32,
) -> dict[str, Any]:
    """Compute the GLAM evaluation and return it as a strict-JSON-serialisable dictionary.

    Sections: ``classification`` (ROC-AUC with bootstrap intervals per score set and class, at image level and,
    with ``breast_ids``, breast level, where a breast's score is the mean over its views), ``roc_curves``
    (for the plots), and, with ``saliency`` and ``masks``, ``segmentation`` (Dice and IoU at ``thresholds``),
    ``pointing_game`` and ``froc``. NaN values (undefined metrics) are ``null``.

    Args:
        image_scores: ``(N, C)`` scores, or ``{name: (N, C) scores}`` to evaluate several (e.g.
            ``{"global": prob_global, "local": prob_local}``).
        image_labels: ``(N, C)`` 0/1 labels.
        breast_ids: ``(N,)`` breast identifiers (e.g. ``"patient7_R"``) for the breast-level AUC.
        saliency: ``(N, C, H, W)`` or a sequence of ``(C, H, W)`` maps for the localization metrics.
        masks: matching lesion masks.
        thresholds: segmentation threshold(s) per class for Dice and IoU.
        class_names: class names, in channel order.
        num_bootstrap: bootstrap resamples for the AUC intervals.
        confidence: interval level.
        seed: bootstrap seed.
        fp_rates: false positives per image for the FROC sensitivities.
        peak_sigma: FROC peak smoothing (pixels).
        peak_min_distance: FROC minimum candidate distance (pixels).

    Raises:
        ValueError: on mismatched inputs, or when only one of ``saliency`` and ``masks`` is given.
    """
    score_sets = dict(image_scores) if isinstance(image_scores, Mapping) else {"score": image_scores}
    if not score_sets:
        raise ValueError("image_scores is empty.")
    if (saliency is None) != (masks is None):
        raise ValueError("saliency and masks must be given together (or neither).")
    first_scores, label_matrix = as_score_matrix(next(iter(score_sets.values())), image_labels)
    names = resolve_class_names(class_names, first_scores.shape[1])
    settings = {"num_bootstrap": num_bootstrap, "confidence": confidence, "seed": seed}
    report: dict[str, Any] = {"class_names": names, "num_images": int(first_scores.shape[0]), "settings": settings}
    image_aucs, image_curves = _classification_section(score_sets, label_matrix, names, num_bootstrap, confidence, seed)
    report["classification"] = {"image": image_aucs}
    report["roc_curves"] = {"image": image_curves}
    if breast_ids is not None:
        breast_sets = {}
        for score_name, scores in score_sets.items():
            ids, breast_scores, breast_labels = aggregate_by_group(scores, label_matrix, breast_ids)
            breast_sets[score_name] = breast_scores
        report["num_breasts"] = int(len(ids))
        breast_aucs, breast_curves = _classification_section(
            breast_sets, breast_labels, names, num_bootstrap, confidence, seed
        )
        report["classification"]["breast"] = breast_aucs
        report["roc_curves"]["breast"] = breast_curves
    if saliency is not None:
        segmentation = compute_dice_iou(saliency, masks, thresholds)
        report["segmentation"] = segmentation.to_dict(names)
        report["pointing_game"] = pointing_game(saliency, masks).to_dict(names)
        froc = compute_lesion_froc(
            saliency, masks, fp_rates, sigma=peak_sigma, min_distance=peak_min_distance, class_names=names
        )
        report["froc"] = {name: result.to_dict() for name, result in froc.items()}
        settings.update({"thresholds": segmentation.thresholds, "fp_rates": list(fp_rates)})
        settings.update({"peak_sigma": peak_sigma, "peak_min_distance": peak_min_distance})
    return json_safe(report)


def _number(value: float | None, digits: int = 3) -> str:
    """A metric for a Markdown cell; ``None`` (undefined) is an em dash."""
    return "—" if value is None else f"{value:.{digits}f}"


def render_markdown(report: Mapping[str, Any]) -> str:
    """A Markdown summary of a report from :func:`build_evaluation_report`."""
    names = list(report["class_names"])
    lines = ["# GLAM evaluation", "", f"Images: {report['num_images']}"]
    if "num_breasts" in report:
        lines[-1] += f", breasts: {report['num_breasts']}"
    level_pct = f"{100 * report['settings']['confidence']:g}%"
    for level, aucs in report["classification"].items():
        lines += ["", f"## ROC-AUC, {level} level ({level_pct} bootstrap CI)", ""]
        lines += ["| scores | class | AUC | CI | positives | negatives | note |", "|---|---|---|---|---|---|---|"]
        for score_name, per_class in aucs.items():
            for name in names:
                r = per_class[name]
                interval = f"{_number(r['ci_low'])}–{_number(r['ci_high'])}"
                lines.append(
                    f"| {score_name} | {name} | {_number(r['auc'])} | {interval} | {r['num_positive']} "
                    f"| {r['num_negative']} | {r['note']} |"
                )
    if "segmentation" in report:
        lines += ["", "## Localization", ""]
        lines += ["| class | threshold | Dice | IoU | pointing game | images with class |", "|---|---|---|---|---|---|"]
        for name in names:
            s, p = report["segmentation"][name], report["pointing_game"][name]
            lines.append(
                f"| {name} | {_number(s['threshold'], 2)} | {_number(s['dice'])} | {_number(s['iou'])} "
                f"| {_number(p['accuracy'])} | {s['num_images']} |"
            )
        rates = list(report["froc"][names[0]]["sensitivity"])
        lines += ["", "## Lesion-level FROC (sensitivity at false positives per image)", ""]
        lines += ["| class | " + " | ".join(rates) + " | mean | lesions |", "|---" * (len(rates) + 3) + "|"]
        for name in names:
            f = report["froc"][name]
            cells = " | ".join(_number(f["sensitivity"][rate]) for rate in rates)
            lines.append(f"| {name} | {cells} | {_number(f['mean_sensitivity'])} | {f['num_lesions']} |")
    return "\n".join(lines) + "\n"


def _save_figure(figure: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``figure`` atomically (the format follows the suffix, e.g. ``.png`` or ``.svg``)."""
    with atomic_output_path(path) as temp_path:
        figure.savefig(temp_path, dpi=120, bbox_inches="tight")
    return Path(path)


def plot_roc_curves(report: Mapping[str, Any], path: str | os.PathLike[str], level: str = "image") -> Path:
    """Plot the ROC curves of a report at ``level`` (``"image"`` or ``"breast"``), one panel per class.

    Returns:
        The written path.

    Raises:
        ValueError: when the report has no curves at that level.
    """
    curves = report.get("roc_curves", {}).get(level)
    if not curves:
        raise ValueError(
            f"the report has no ROC curves at level {level!r}; it has {list(report.get('roc_curves', {}))}."
        )
    names = list(report["class_names"])
    figure = Figure(figsize=(4.0 * len(names), 4.0))
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        for score_name, per_class in curves.items():
            if name in per_class:
                auc = report["classification"][level][score_name][name]["auc"]
                label = f"{score_name} (AUC {_number(auc)})"
                ax.plot(per_class[name]["fpr"], per_class[name]["tpr"], label=label)
        ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
        ax.set(title=f"{name}, {level} level", xlabel="false positive rate", ylabel="true positive rate")
        ax.set(xlim=(0, 1), ylim=(0, 1.01))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right")
    return _save_figure(figure, path)


def plot_froc_curves(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Plot the lesion-level FROC curves of a report (one line per class, log-scaled FP axis).

    Raises:
        ValueError: when the report has no FROC section.
    """
    if "froc" not in report:
        raise ValueError("the report has no FROC section (build it with saliency maps and masks).")
    figure = Figure(figsize=(5.0, 4.0))
    ax = figure.subplots()
    rates = [float(rate) for rate in report["settings"]["fp_rates"]]
    for name, result in report["froc"].items():
        if result["num_lesions"] == 0:
            continue
        fps = np.asarray(result["curve"]["fps_per_image"], dtype=np.float64)
        sens = np.asarray(result["curve"]["sensitivity"], dtype=np.float64)
        # Straight segments: the reported sensitivities interpolate the curve linearly. The (0 FP) start is drawn
        # at half the smallest rate, as a log axis has no zero.
        label = f"{name} ({result['num_lesions']} lesions)"
        ax.plot(np.maximum(fps, rates[0] / 2), sens, label=label)
    ax.set_xscale("log")
    ax.set_xticks(rates, [f"{rate:g}" for rate in rates])
    ax.set(xlabel="false positives per image", ylabel="lesion sensitivity", ylim=(0, 1.01), title="FROC")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right")
    return _save_figure(figure, path)


def write_evaluation_report(report: Mapping[str, Any], output_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``report.json``, ``report.md``, ``roc_<level>.png`` and (with localization) ``froc.png``, each
    atomically, into ``output_dir`` (created if needed).

    Returns:
        ``{"json": path, "markdown": path, "roc_image": path, ...}``.
    """
    folder = Path(output_dir)
    paths = {"json": folder / "report.json", "markdown": folder / "report.md"}
    atomic_write_text(paths["json"], json.dumps(report, indent=2, allow_nan=False) + "\n")
    atomic_write_text(paths["markdown"], render_markdown(report))
    for level in report.get("roc_curves", {}):
        paths[f"roc_{level}"] = plot_roc_curves(report, folder / f"roc_{level}.png", level)
    if "froc" in report:
        paths["froc"] = plot_froc_curves(report, folder / "froc.png")
    return paths
