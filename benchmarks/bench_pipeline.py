"""End-to-end inference throughput: files on disk to maps and tables on disk, against the forward pass alone.

Writes ``--num`` synthetic raw mammograms of ``--size`` (default 3328x2560; every other one as DICOM, the rest as
16-bit PNG), then runs :func:`monai_glam.engines.run_inference` on them exactly as ``monai-glam infer`` does, with
the paper preset and seeded random weights (the patch position does not change the cost): reading and decoding,
the breast crop, the forward pass and writing the NIfTI/PNG maps, masks, overlays and tables. In the same
process it times the forward pass alone on the same preprocessed inputs, once before and once after the
end-to-end run (their mean is the forward-only throughput, so a load that changes during the benchmark biases the
ratio less; both are printed), and prints a line starting ``ratio`` = end-to-end / forward-only throughput. The
model is warmed up (one forward pass) before either is timed, so neither pays the first pass's one-time cost
(about one extra second on the CPU), as in a long run; the first version of this benchmark ran the end-to-end
pass cold.

How to read the stage table: ``run_inference`` is pipelined by default (a reader thread preprocesses the next
image and a writer thread writes the previous ones while the main thread runs the forward pass), so each stage's
figure is its **busy time**, the seconds its thread spent on it, summed over the images, and the shares are of
the **wall** time of the loop (``InferenceSummary.timings["wall"]``): they add up to more than 100 % when the
stages overlap. A stage's busy time includes the time its thread waited for a core, so on a loaded machine the
busy times grow while the wall time is what counts. ``--serial`` runs everything in turn on one thread (the
shares then add up to about 100 %, the rest being the tables and the loop itself). The output folder's size per
kind of file is printed too (the compression levels trade size for time).

Usage::

    python benchmarks/bench_pipeline.py [--num 8] [--threads 2] [--size 3328 2560] [--formats nifti png] [--serial]
        [--write-workers N]
        [--engine torch|onnxruntime|openvino] [--precision fp32|bf16|auto] [--contiguous]

Wall-clock numbers depend on the machine; nothing here gates CI.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from monai_glam.data import read_datalist, write_synthetic_dataset
from monai_glam.engines import (
    ENGINES,
    build_inference_transforms,
    build_inferer,
    forward_model,
    inference_settings,
    run_inference,
)
from monai_glam.engines.inference import STAGES
from monai_glam.networks import GLAM
from monai_glam.utils import BatchKeys
from monai_glam.utils.precision import PRECISIONS


def _sizes(folder: Path) -> dict[str, tuple[int, int]]:
    """``{"<sub-folder> <suffix>": (files, bytes)}`` of the outputs under ``folder``."""
    sizes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for path in folder.rglob("*"):
        if path.is_file():
            kind = str(path.parent.relative_to(folder)) if path.parent != folder else "."
            suffix = ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix
            entry = sizes[f"{kind} {suffix}"]
            entry[0] += 1
            entry[1] += path.stat().st_size
    return {key: (count, size) for key, (count, size) in sorted(sizes.items())}


def _forward_only(inferer: Any, model: GLAM, inputs: list[torch.Tensor]) -> float:
    """Images/s of the forward pass alone over ``inputs``."""
    with torch.inference_mode():
        started = time.perf_counter()
        for image in inputs:
            inferer(image, model)
    return len(inputs) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", type=int, default=8, help="images (default 8)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    parser.add_argument("--size", type=int, nargs=2, default=(3328, 2560), help="raw image size (default 3328 2560)")
    parser.add_argument("--formats", nargs="*", default=["nifti", "png"], help="map formats (default nifti png)")
    parser.add_argument("--no-overlays", action="store_true", help="do not write overlays")
    parser.add_argument("--serial", action="store_true", help="no reader and writer threads (pipelined=False)")
    parser.add_argument(
        "--write-workers", type=int, default=1, help="writer threads of the pipelined run, as infer's (default 1)"
    )
    parser.add_argument("--engine", choices=ENGINES, default="torch", help="forward-pass engine (default torch)")
    parser.add_argument(
        "--contiguous", action="store_true", help="keep the weights contiguous (infer --no-channels-last)"
    )
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="fp32", help="forward-pass precision, as infer's (default fp32)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = GLAM().eval()
    settings = inference_settings(
        device="cpu",
        formats=args.formats,
        overlays=not args.no_overlays,
        progress=False,
        pipelined=not args.serial,
        write_workers=args.write_workers,
        engine=args.engine,
        precision=args.precision,
        channels_last=not args.contiguous,
    )
    started = time.perf_counter()
    model = forward_model(model, settings.window, engine=settings.engine, channels_last=settings.channels_last)
    if settings.engine != "torch":
        print(f"engine {settings.engine}: exported and loaded in {time.perf_counter() - started:.0f} s")
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

        chain = build_inference_transforms(
            settings.window, settings.erosion_iterations, settings.buffer, raw_image_key=None
        )
        inputs = [chain(dict(item))[BatchKeys.IMAGE].as_tensor()[None] for item in items]
        inferer = build_inferer(settings)
        with torch.inference_mode():
            inferer(inputs[0], model)  # warm-up
        before = _forward_only(inferer, model, inputs)

        started = time.perf_counter()
        summary = run_inference(items, model, Path(folder) / "out", settings)
        wall = time.perf_counter() - started
        done = len(summary.predictions)
        end_to_end = done / wall
        mode = f"pipelined, {settings.write_workers} writer(s)" if settings.pipelined else "serial"
        layout = "channels-last" if settings.channels_last else "contiguous"
        print(
            f"end to end ({mode}, {settings.precision}, {layout}, {args.threads} intra-op threads): {done} images in "
            f"{wall:.1f} s = {end_to_end:.3f} images/s"
        )
        loop = summary.timings.get("wall", wall)
        print(f"  {'stage':<10} {'busy s':>7}  {'% wall':>6}  s/image   (loop wall time {loop:.1f} s)")
        for stage in STAGES[:4]:
            seconds = summary.timings.get(stage, 0.0)
            print(f"  {stage:<10} {seconds:7.1f}  {100 * seconds / loop:5.1f} %  {seconds / max(done, 1):.2f}")
        for kind, (count, size) in _sizes(Path(folder) / "out").items():
            print(f"  {kind:<28} {count:3d} files {size / 1e6:8.2f} MB")

        after = _forward_only(inferer, model, inputs)
        forward_only = (before + after) / 2
        print(f"forward only: {forward_only:.3f} images/s (before {before:.3f}, after {after:.3f})")
        print(f"ratio {end_to_end / forward_only:.3f} (end-to-end / forward-only throughput; target >= 0.8)")


if __name__ == "__main__":
    main()
