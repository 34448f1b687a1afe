"""Speed and accuracy of ``--precision bf16`` against float32, on the reference vectors and synthetic data.

For each input it times GLAM's paper-size forward pass through :class:`~monai_glam.inferers.GLAMInferer` in
``fp32`` and in ``bf16`` (median of ``--runs`` after a warm-up) and prints the largest absolute change of the
image scores and of the fused saliency map, and whether the selected patches stay the same. Inputs:

- the published model's test vector (``../shared/reference/forward_case_public.npz`` with the NYU-layout weights
  beside it), when that folder exists;
- ``--num`` synthetic mammograms (raw size about 1.13x the preset's window) preprocessed as ``monai-glam
  infer`` does, with seeded random weights of ``--preset`` (or ``--checkpoint``).

The weights are in channels-last memory format, as ``monai-glam infer`` loads them (``--contiguous``: as
``infer --no-channels-last``). Also prints what ``auto`` resolves to on the device. On a CPU without native
bfloat16 (AVX2 only) oneDNN runs bfloat16 convolutions on a slow reference path (about 170x slower than float32
there), so a paper-size bf16 pass takes minutes: use ``--preset small`` or ``tiny``, or ``--device cuda``.
Wall-clock numbers depend on the machine; nothing here gates CI.

Usage::

    python benchmarks/bench_precision.py [--preset paper] [--device cpu] [--threads 2] [--runs 2] [--num 3]
        [--checkpoint best.pt] [--contiguous]
    python benchmarks/bench_precision.py --runs 0 --num 0   # the reference vector only, one pass each
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from monai_glam.data import write_synthetic_dataset
from monai_glam.engines import build_inference_transforms, forward_model
from monai_glam.inferers import GLAMInferer
from monai_glam.networks import GLAM, glam_preset, load_glam_weights, load_nyu_glam
from monai_glam.transforms import scaled_crop_parameters
from monai_glam.utils import GLAMKeys
from monai_glam.utils.precision import resolve_precision

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def timed(fn, runs: int) -> tuple[float, dict[str, torch.Tensor]]:
    """Median time of ``runs`` calls after a warm-up call; ``runs=0``: the time of one cold call."""
    if runs == 0:
        start = time.perf_counter()
        out = fn()
        return time.perf_counter() - start, out
    out = fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def compare(name: str, model: GLAM, image: torch.Tensor, runs: int, rows: list[dict]) -> None:
    results = {}
    for precision in ("fp32", "bf16"):
        inferer = GLAMInferer(precision=precision)
        with torch.inference_mode():
            results[precision] = timed(lambda inferer=inferer: inferer(image, model), runs)
    (t32, o32), (t16, o16) = results["fp32"], results["bf16"]
    same_patches = bool(torch.equal(o32[GLAMKeys.PATCH_BOXES], o16[GLAMKeys.PATCH_BOXES]))
    row = {
        "input": name,
        "fp32 s": t32,
        "bf16 s": t16,
        "speed-up": t32 / t16,
        "max |Δ| ŷ_g": float((o32[GLAMKeys.PROB_GLOBAL] - o16[GLAMKeys.PROB_GLOBAL]).abs().max()),
        "max |Δ| ŷ_l": float((o32[GLAMKeys.PROB_LOCAL] - o16[GLAMKeys.PROB_LOCAL]).abs().max()),
        "max |Δ| S_g": float((o32[GLAMKeys.SALIENCY_GLOBAL] - o16[GLAMKeys.SALIENCY_GLOBAL]).abs().max()),
        "max |Δ| fused": float((o32[GLAMKeys.SALIENCY] - o16[GLAMKeys.SALIENCY]).abs().max()),
        "same patches": same_patches,
    }
    rows.append(row)
    print(" | ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2, help="timed runs after a warm-up (0: one cold run)")
    parser.add_argument("--num", type=int, default=3, help="synthetic mammograms (default 3; 0: none)")
    parser.add_argument("--checkpoint", help="weights for the synthetic inputs (default: seeded random)")
    parser.add_argument("--preset", default="paper", choices=("paper", "small", "tiny"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--contiguous", action="store_true", help="contiguous weights (infer --no-channels-last)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    capability = torch.backends.cpu.get_cpu_capability() if device.type == "cpu" else torch.cuda.get_device_name()
    print(f"auto resolves to {resolve_precision('auto', device)} on {device} ({capability})")
    rows: list[dict] = []
    if args.preset == "paper" and (REFERENCE / "forward_case_public.npz").is_file():
        reference = np.load(REFERENCE / "forward_case_public.npz")
        model = load_nyu_glam(REFERENCE / "nyu_layout_random.ckpt").eval().to(device)
        image = torch.from_numpy(reference["input"].astype(np.float32)).to(device)
        model = forward_model(model, image.shape[-2:], channels_last=not args.contiguous)  # the layout infer runs
        compare("reference vector", model, image, args.runs, rows)
    else:
        print(f"reference vectors skipped (preset {args.preset}, or none at {REFERENCE})")
    if args.num > 0:
        synthetic(args, device, rows)
    if not rows:
        return
    speedups = [row["speed-up"] for row in rows]
    print(
        f"median speed-up {statistics.median(speedups):.2f}x over {len(rows)} inputs; largest |Δ| ŷ_g "
        f"{max(r['max |Δ| ŷ_g'] for r in rows):.2e}, ŷ_l {max(r['max |Δ| ŷ_l'] for r in rows):.2e}, fused map "
        f"{max(r['max |Δ| fused'] for r in rows):.2e}; same patches on {sum(r['same patches'] for r in rows)} of "
        f"{len(rows)}"
    )


def synthetic(args: argparse.Namespace, device: torch.device, rows: list[dict]) -> None:
    """Compare the precisions on ``args.num`` synthetic mammograms preprocessed as ``monai-glam infer`` does."""
    preset = glam_preset(args.preset)
    torch.manual_seed(0)
    model = GLAM(**preset["glam"]).eval()
    if args.checkpoint:
        load_glam_weights(model, args.checkpoint)
    model.to(device)
    window = tuple(preset["window"])
    model = forward_model(model, window, channels_last=not args.contiguous)  # the layout infer runs
    chain = build_inference_transforms(window, *scaled_crop_parameters(window))
    raw = (int(window[0] * 1.13) // 16 * 16, int(window[1] * 1.33) // 16 * 16)
    with tempfile.TemporaryDirectory() as folder:
        datalist = write_synthetic_dataset(
            folder, num=args.num, size=raw, seed=5, write_dicom=False, fractions=(0, 0, 1), progress=False
        )
        for item in json.loads(Path(datalist).read_text())["test"]:
            image = chain({"image": str(Path(folder) / item["image"])})["image"].as_tensor()[None].to(device)
            compare(Path(item["image"]).name, model, image, args.runs, rows)


if __name__ == "__main__":
    main()
