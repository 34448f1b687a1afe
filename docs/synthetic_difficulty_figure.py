"""Draw ``docs/images/synthetic_difficulty.png``: the same synthetic MLO view at the three difficulty levels.

Run from the repository root (``python docs/synthetic_difficulty_figure.py``); it needs matplotlib. Each panel is
image ``--index`` (default 1, the first exam's L-MLO) of ``SyntheticMammogramGenerator(size, seed, difficulty,
benign_probability=1, malignant_probability=1)``, with the benign mask outlined in green, the malignant one in red
and the unlabelled decoys (lymph nodes, vessels, isolated calcifications) dashed in cyan.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from monai_glam.data.synthetic import DIFFICULTIES, SyntheticMammogramGenerator

_OUTPUT = Path(__file__).resolve().parent / "images" / "synthetic_difficulty.png"


def draw(output: Path, size: tuple[int, int], seed: int, index: int) -> Path:
    """Write the three-panel figure to ``output`` and return its path."""
    figure, axes = plt.subplots(1, len(DIFFICULTIES), figsize=(9.0, 5.6), layout="constrained")
    for axis, difficulty in zip(axes, DIFFICULTIES, strict=True):
        generator = SyntheticMammogramGenerator(
            size=size, seed=seed, difficulty=difficulty, benign_probability=1.0, malignant_probability=1.0
        )
        sample = generator.image(index)
        breast = sample.image[sample.image > 0]
        low, high = np.percentile(breast, (0.5, 99.8))  # a display window, as a viewer would set
        axis.imshow(sample.image, cmap="gray", vmin=low, vmax=high, interpolation="lanczos")
        for mask, colour, style in (
            (sample.mask_benign, "lime", "solid"),
            (sample.mask_malignant, "red", "solid"),
            (sample.mask_decoy, "cyan", "dashed"),
        ):
            if mask is not None and mask.any():
                axis.contour(mask, levels=[0.5], colors=colour, linewidths=0.6, linestyles=style)
        lesions = "\n".join(f"{finding.kind} {finding.size_mm:.0f} mm" for finding in sample.lesions)
        density = f", density {sample.density}" if sample.density else ""
        axis.set_title(f"{difficulty}{density}\n{lesions}", fontsize=8)
        axis.axis("off")
    caption = f"{sample.name}, seed {seed}: benign (green), malignant (red), decoys (cyan, dashed; in no mask or label)"
    figure.supxlabel(caption, fontsize=8)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=90, bbox_inches="tight", pad_inches=0.05)
    plt.close(figure)
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=_OUTPUT, help=f"PNG to write (default: {_OUTPUT})")
    parser.add_argument("--size", type=int, nargs=2, default=(1024, 640), metavar=("H", "W"), help="image size")
    parser.add_argument("--seed", type=int, default=29, help="generator seed")
    parser.add_argument("--index", type=int, default=1, help="image index (1: exam 0's L-MLO)")
    args = parser.parse_args()
    plt.switch_backend("agg")  # files only, also on machines without a display
    print(draw(args.output, tuple(args.size), args.seed, args.index))


if __name__ == "__main__":
    main()
