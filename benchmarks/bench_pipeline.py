"""End-to-end inference throughput: files on disk to maps and tables on disk, against the forward pass alone.

Writes ``--num`` synthetic raw mammograms of ``--size`` (default 3328x2560; every other one as DICOM, the rest as
16-bit PNG), then runs :func:`monai_glam.engines.run_inference` on them exactly as ``monai-glam infer`` does, with
the paper preset and seeded random weights (the patch position does not change the cost): reading and decoding,
the breast crop, the forward pass and writing the NIfTI/PNG maps, masks, overlays and tables. It prints the time
per stage (read, preprocess, forward, write) and images/s, then, in the same run, the forward pass alone on the
same preprocessed inputs, and a line starting ``ratio`` = end-to-end / forward-only throughput.

Usage::

    python benchmarks/bench_pipeline.py [--num 8] [--threads 2] [--size 3328 2560] [--formats nifti png]

Wall-clock numbers depend on the machine; nothing here gates CI.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from monai_glam.data import read_datalist, write_synthetic_dataset
from monai_glam.engines import build_inference_transforms, build_inferer, inference_settings, run_inference
from monai_glam.engines.inference import STAGES
from monai_glam.networks import GLAM
from monai_glam.utils import BatchKeys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", type=int, default=8, help="images (default 8)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    parser.add_argument("--size", type=int, nargs=2, default=(3328, 2560), help="raw image size (default 3328 2560)")
    parser.add_argument("--formats", nargs="*", default=["nifti", "png"], help="map formats (default nifti png)")
    parser.add_argument("--no-overlays", action="store_true", help="do not write overlays")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = GLAM().eval()
    settings = inference_settings(device="cpu", formats=args.formats, overlays=not args.no_overlays, progress=False)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        datalist = write_synthetic_dataset(
            Path(folder) / "data", num=args.num, size=tuple(args.size), seed=11, fractions=(0, 0, 1), progress=False
        )
        items = read_datalist(datalist, "test")  # paths resolved against the datalist's folder
        for i, item in enumerate(items):  # every other image read from its DICOM twin
            if i % 2 and item.get("image_dicom"):
                item["image"] = item["image_dicom"]
        print(
            f"{len(items)} synthetic {args.size[0]}x{args.size[1]} mammograms written in "
            f"{time.perf_counter() - started:.1f} s ({sum(i % 2 for i in range(len(items)))} read as DICOM)"
        )

        started = time.perf_counter()
        summary = run_inference(items, model, Path(folder) / "out", settings)
        wall = time.perf_counter() - started
        done = len(summary.predictions)
        end_to_end = done / wall
        print(f"end to end: {done} images in {wall:.1f} s = {end_to_end:.3f} images/s")
        for stage in STAGES[:4]:
            seconds = summary.timings.get(stage, 0.0)
            print(
                f"  {stage:<10} {seconds:7.1f} s  {100 * seconds / wall:5.1f} %  {seconds / max(done, 1):.2f} s/image"
            )

        chain = build_inference_transforms(
            settings.window, settings.erosion_iterations, settings.buffer, raw_image_key=None
        )
        inputs = [chain(dict(item))[BatchKeys.IMAGE].as_tensor()[None] for item in items]
        inferer = build_inferer(settings)
        with torch.inference_mode():
            inferer(inputs[0], model)  # warm-up
            started = time.perf_counter()
            for image in inputs:
                inferer(image, model)
        forward_only = len(inputs) / (time.perf_counter() - started)
        print(f"forward only: {forward_only:.3f} images/s")
        print(f"ratio {end_to_end / forward_only:.3f} (end-to-end / forward-only throughput; target >= 0.8)")


if __name__ == "__main__":
    main()
