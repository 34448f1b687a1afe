"""Where GLAM's maps peak, stage by stage: does the patch cover the lesion, and does the local map find it there?

The localization benchmark (``benchmarks/localization.py``) scores the final maps. This diagnosis splits the
fused map's pointing game into its two steps, per class, on the images with a lesion of that class (network
frame, the preprocessed window, so the patch boxes apply as they are):

- ``patch covers``: the lesion's centre lies inside one of the selected patches (the global module's job);
- ``S_g peak``: the centre of the global map's highest cell lies inside the lesion;
- ``S_g peak on other class``: it lies inside a lesion of the *other* class (a map that is not class-specific);
- ``S_l peak``: the local maps' highest cell (over all patches) lies inside the lesion;
- ``S_l peak if covered``: the same, only over the images whose patch covers the lesion (the local module's job);
- ``fused peak``: the fused map's maximum lies inside the lesion.

Usage::

    python benchmarks/patch_diagnosis.py --checkpoint RUN/runs/local/best.pt --datalist RUN/data/datalist.json

Nothing here gates CI.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import torch

from monai_glam.data import read_datalist
from monai_glam.engines import load_inference_model
from monai_glam.transforms import glam_transforms
from monai_glam.utils import CLASS_NAMES, BatchKeys, GLAMKeys

COLUMNS = (
    "patch covers",
    "S_g peak",
    "S_g peak on other class",
    "S_l peak",
    "S_l peak if covered",
    "fused peak",
)


def _inside(mask: np.ndarray, row: float, col: float) -> bool:
    rows, cols = mask.shape
    return bool(mask[min(max(int(row), 0), rows - 1), min(max(int(col), 0), cols - 1)] > 0)


def diagnose(outputs: dict[str, torch.Tensor], masks: np.ndarray) -> dict[int, dict[str, bool]]:
    """Per class with a lesion: the :data:`COLUMNS` outcomes of one image.

    Args:
        outputs: GLAM's outputs for one image (batch of one).
        masks: ``(C, H, W)`` network-frame lesion masks.
    """
    fused = outputs[GLAMKeys.SALIENCY][0].float().numpy()
    global_map = outputs[GLAMKeys.SALIENCY_GLOBAL][0].float().numpy()
    boxes = outputs[GLAMKeys.PATCH_BOXES][0].numpy()
    local = outputs[GLAMKeys.PATCH_SALIENCY][0].float().numpy()  # (K, C, s, s)
    height, width = fused.shape[-2:]
    cell_rows, cell_cols = height / global_map.shape[-2], width / global_map.shape[-1]
    result: dict[int, dict[str, bool]] = {}
    for c in range(masks.shape[0]):
        if not masks[c].any():
            continue
        centre_row, centre_col = np.argwhere(masks[c] > 0).mean(0)
        covered = any(b[0] <= centre_row < b[2] and b[1] <= centre_col < b[3] for b in boxes)
        g_row, g_col = np.unravel_index(global_map[c].argmax(), global_map[c].shape)
        g_centre = ((g_row + 0.5) * cell_rows, (g_col + 0.5) * cell_cols)
        other = [o for o in range(masks.shape[0]) if o != c and masks[o].any()]
        k, l_row, l_col = np.unravel_index(local[:, c].argmax(), local[:, c].shape)
        scale = (boxes[k][2] - boxes[k][0]) / local.shape[-2]
        l_hit = _inside(masks[c], boxes[k][0] + (l_row + 0.5) * scale, boxes[k][1] + (l_col + 0.5) * scale)
        f_row, f_col = np.unravel_index(fused[c].argmax(), fused[c].shape)
        result[c] = {
            "patch covers": covered,
            "S_g peak": _inside(masks[c], *g_centre),
            "S_g peak on other class": any(_inside(masks[o], *g_centre) for o in other),
            "S_l peak": l_hit,
            "fused peak": _inside(masks[c], f_row, f_col),
        }
        if covered:
            result[c]["S_l peak if covered"] = l_hit
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a GLAM checkpoint (after the local stage)")
    parser.add_argument("--datalist", required=True, help="datalist with lesion masks")
    parser.add_argument("--split", default="test")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, settings, _ = load_inference_model(args.checkpoint, device="cpu", progress=False)
    chain = glam_transforms(settings.window, with_targets=True)
    outcomes: dict[int, dict[str, list[bool]]] = {}
    for item in read_datalist(args.datalist, args.split):
        data = chain(dict(item))
        with torch.inference_mode():
            outputs = model(data[BatchKeys.IMAGE].as_tensor()[None])
        masks = np.asarray(data[BatchKeys.MASK])
        for c, found in diagnose(outputs, masks).items():
            for column, value in found.items():
                outcomes.setdefault(c, {}).setdefault(column, []).append(value)
    table = {
        CLASS_NAMES[c]: {column: float(np.mean(values)) for column, values in found.items()}
        for c, found in sorted(outcomes.items())
    }
    print("| class | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for c, found in sorted(outcomes.items()):
        cells = [f"{np.mean(found[col]):.3f} ({len(found[col])})" if found.get(col) else "-" for col in COLUMNS]
        print(f"| {CLASS_NAMES[c]} | " + " | ".join(cells) + " |")
    return table


if __name__ == "__main__":
    main()
