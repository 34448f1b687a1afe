"""Run localization methods over labelled items and collect their maps on the original images.

:func:`collect_localization` preprocesses every item once with the inference chain, hands the network input to
a *predictor* that returns one ``(scores, maps)`` pair per method, maps every map back onto the raw mammogram
(:class:`~monai_glam.writers.OriginalGeometryInverter`, as ``monai-glam infer`` does) and records it with the
datalist's raw masks in one :class:`~monai_glam.metrics.LocalizationSplit` per method.
:func:`glam_localization_predictor` is the predictor of a GLAM: its fused map, its global map alone (``S_g``,
nearest-upsampled, the GMIC-style baseline) and its local maps alone (pasted at the patch positions, zero
elsewhere). :func:`~monai_glam.metrics.compare_localization` turns two such collections into the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from monai_glam.engines.evaluation import read_item_masks
from monai_glam.engines.inference import build_inference_transforms
from monai_glam.metrics.evaluation import froc_peak_settings, localization_truth
from monai_glam.metrics.localization import LocalizationSplit, compare_localization
from monai_glam.networks.blocks.patch_ops import FUSION_RULES, fuse_patch_maps, paste_patch_maps
from monai_glam.networks.nets.glam import GLAM
from monai_glam.transforms.pipeline import scaled_crop_parameters
from monai_glam.utils.enums import CLASS_NAMES, BatchKeys, GLAMKeys, mask_keys_for
from monai_glam.writers.geometry import OriginalGeometryInverter
from monai_glam.writers.prediction_writer import image_id_from_path

__all__ = [
    "GLAM_MAP_METHODS",
    "LocalizationPredictor",
    "collect_localization",
    "compare_glam_maps",
    "glam_localization_predictor",
]

#: The maps of one GLAM forward pass that :func:`glam_localization_predictor` returns.
GLAM_MAP_METHODS: tuple[str, ...] = ("fused", "global", "local")

#: ``(1, 1, H, W)`` network input -> ``{method: ((C,) scores, (C, H, W) maps)}``.
LocalizationPredictor = Callable[[torch.Tensor], Mapping[str, tuple[torch.Tensor, torch.Tensor]]]


def glam_localization_predictor(model: GLAM, extra_fusions: Sequence[str] = ()) -> LocalizationPredictor:
    """GLAM's three maps of one forward pass, with the image score of each.

    - ``fused``: the model's fused map (``model.fusion``; the published ``(paste(S_l) + up(S_g)) / 2`` unless
      set otherwise), scored by ``ŷ_g`` (the published image prediction);
    - ``global``: ``S_g`` nearest-upsampled to the input (what the global module alone gives), scored by ``ŷ_g``;
    - ``local``: the patch maps ``S_l`` pasted at their positions, zero elsewhere, scored by ``ŷ_l``;
    - ``fused_<rule>`` for each rule in ``extra_fusions``: the same forward pass fused under another of
      :data:`~monai_glam.networks.blocks.FUSION_RULES` (the rule has no parameters), scored by ``ŷ_g``.

    Args:
        model: a GLAM in eval mode.
        extra_fusions: further fusion rules to score beside the model's own.

    Raises:
        ValueError: an unknown rule in ``extra_fusions``.
    """
    unknown = [rule for rule in extra_fusions if rule not in FUSION_RULES]
    if unknown:
        raise ValueError(f"extra_fusions must be among {list(FUSION_RULES)}, got {unknown}.")

    def predict(image: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        with torch.inference_mode():
            out = model(image)
            size = [int(image.shape[-2]), int(image.shape[-1])]
            saliency_global, patch_maps = out[GLAMKeys.SALIENCY_GLOBAL], out[GLAMKeys.PATCH_SALIENCY]
            boxes = out[GLAMKeys.PATCH_BOXES]
            global_map = F.interpolate(saliency_global, size=size, mode="nearest")
            patch = [int(model.patch_size[0]), int(model.patch_size[1])]
            local_map = paste_patch_maps(patch_maps, boxes, size, patch)
            extra = {
                f"fused_{rule}": fuse_patch_maps(saliency_global, patch_maps, boxes, size, patch, rule)[0]
                for rule in extra_fusions
            }
        prob_global, prob_local = out[GLAMKeys.PROB_GLOBAL][0], out[GLAMKeys.PROB_LOCAL][0]
        return {
            "fused": (prob_global, out[GLAMKeys.SALIENCY][0]),
            "global": (prob_global, global_map[0]),
            "local": (prob_local, local_map[0]),
            **{name: (prob_global, value) for name, value in extra.items()},
        }

    return predict


def collect_localization(
    items: Sequence[Mapping[str, Any]],
    predict: LocalizationPredictor,
    window: Sequence[int],
    class_names: Sequence[str] = CLASS_NAMES,
    device: str | torch.device = "cpu",
    map_dtype: Any = np.float16,
    progress: bool = False,
    description: str = "localization",
) -> dict[str, LocalizationSplit]:
    """Run ``predict`` on every item and collect each method's scores and original-frame maps.

    An image counts for localization under the evaluation rule of
    :func:`~monai_glam.metrics.localization_truth` (every class's mask read, or the class known absent);
    its scores count either way. Items need a ``label``.

    Args:
        items: labelled datalist items (``image``, ``label``, optional ``mask_<class>`` paths).
        predict: see :data:`LocalizationPredictor`.
        window: the network input ``(H, W)`` (the breast crop is scaled to it as in training).
        class_names: class names in channel order (the mask keys follow from them).
        device: where the network input goes.
        map_dtype: storage dtype of the maps (see :class:`~monai_glam.metrics.LocalizationSplit`).
        progress: show a progress bar.
        description: the progress bar's label.

    Returns:
        ``{method: LocalizationSplit}``, the methods in the order ``predict`` returns them.

    Raises:
        ValueError: an item without a label, a mask whose shape differs from its image (naming the file).
    """
    from tqdm import tqdm

    mask_keys = mask_keys_for(class_names)
    erosion, buffer = scaled_crop_parameters(window)
    chain = build_inference_transforms(window, erosion, buffer, mask_keys=mask_keys, raw_image_key=None)
    inverter = OriginalGeometryInverter(chain)
    splits: dict[str, LocalizationSplit] = {}
    for item in tqdm(items, desc=description, unit="image", disable=not progress):
        source = str(item.get(BatchKeys.IMAGE, "?"))
        if item.get(BatchKeys.LABEL) is None:
            raise ValueError(f"{source}: no label (localization needs labelled items)")
        label = np.asarray(item[BatchKeys.LABEL], dtype=np.int64).reshape(-1)
        data = chain({key: value for key, value in item.items() if key not in mask_keys})
        image = data[BatchKeys.IMAGE]
        outputs = predict(image.as_tensor()[None].to(device))
        masks = read_item_masks(item, mask_keys)
        image_id = image_id_from_path(source)
        truth: np.ndarray | None = None
        for position, (method, (scores, maps)) in enumerate(outputs.items()):
            original = inverter(maps.detach().float().cpu(), image)
            if position == 0:  # every method's maps come back on the same raw image: one ground truth for all
                try:
                    truth = localization_truth(masks, label, original.shape[-2:])
                except ValueError as err:
                    raise ValueError(f"{source}: {err}") from None
            split = splits.setdefault(method, LocalizationSplit(map_dtype))
            split.add(image_id, scores.detach().float().cpu(), label, original if truth is not None else None, truth)
    return splits


def compare_glam_maps(
    model: GLAM,
    validation_items: Sequence[Mapping[str, Any]],
    test_items: Sequence[Mapping[str, Any]],
    window: Sequence[int],
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """GLAM's fused map against its global map alone and its local maps alone, on the original images.

    Thresholds are picked per map on ``validation_items``; the table
    (:func:`~monai_glam.metrics.compare_localization`, FROC settings scaled to ``window``) is computed on
    ``test_items``. ``monai-glam demo`` prints it; ``benchmarks/localization.py`` adds a plain CNN.

    Returns:
        The comparison, methods ``fused``, ``global``, ``local``.
    """
    predict = glam_localization_predictor(model)
    validation = collect_localization(validation_items, predict, window, device=device, progress=progress)
    test = collect_localization(test_items, predict, window, device=device, progress=progress)
    sigma, distance = froc_peak_settings(int(window[0]))
    return compare_localization(validation, test, peak_sigma=sigma, peak_min_distance=distance)
