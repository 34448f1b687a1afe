"""Time GLAM's forward pass in eager torch, ``torch.compile``, ONNX Runtime and OpenVINO, in the same run.

One model (the paper preset with random weights, or ``--checkpoint``) is exported once to ONNX with
:func:`monai_glam.networks.export.export_glam_onnx`; ONNX Runtime and OpenVINO both run that file, and
``torch.compile`` (inductor) compiles the eager module. Every runtime gets the same input, the same number of
intra-op threads and float32 arithmetic. For each one the script prints the median wall time after a
warm-up, the speed-up over eager and the largest absolute difference of every map from eager's (the patch
boxes must be equal). Runtimes that are not installed are reported as skipped.

Usage::

    python -m benchmarks.bench_runtimes [--preset paper] [--threads 2] [--runs 5] [--checkpoint model_sep.ckpt]

Needs ``pip install onnx onnxscript onnxruntime openvino``. Wall-clock numbers depend on the machine;
nothing here gates CI.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from monai.utils import optional_import

from benchmarks.bench_forward import median_seconds
from monai_glam.networks import glam_network, load_nyu_glam, preset_window
from monai_glam.networks.export import ONNX_RUNTIMES, OnnxGLAM, export_glam_onnx, max_output_difference
from monai_glam.utils import GLAMKeys

#: Outputs whose parity the table reports (the maps and the scores).
PARITY_KEYS = (GLAMKeys.SALIENCY, GLAMKeys.SALIENCY_GLOBAL, GLAMKeys.PATCH_SALIENCY, GLAMKeys.PROB_GLOBAL)


def parity(
    cases: Sequence[tuple[torch.Tensor, dict[str, torch.Tensor]]],
    run: Callable[[torch.Tensor], dict[str, torch.Tensor]],
) -> list[dict[str, float]]:
    """Largest differences of ``run``'s outputs from eager's, one dict per ``(input, eager outputs)`` case."""
    with torch.no_grad():
        return [max_output_difference(expected, run(image)) for image, expected in cases]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="paper", choices=("paper", "small", "tiny"), help="model size")
    parser.add_argument("--threads", type=int, default=2, help="intra-op CPU threads of every runtime (default 2)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs after the warm-up")
    parser.add_argument(
        "--checkpoint", default=None, help="published checkpoint (paper preset; random weights if absent)"
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=("compile", *ONNX_RUNTIMES), help="runtimes to skip")
    parser.add_argument("--onnx", default=None, help="where to keep the exported model (default: a temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    warnings.filterwarnings("ignore")
    logging.getLogger("torch").setLevel(logging.ERROR)

    model = (load_nyu_glam(args.checkpoint) if args.checkpoint else glam_network(args.preset)).eval()
    window = preset_window(args.preset)
    x = torch.randn(1, 1, *window, generator=torch.Generator().manual_seed(1))
    # A second parity input with an unambiguous patch: with random weights the global map of pure noise is nearly
    # flat, and windows whose scores differ by one float32 rounding step can swap between runtimes.
    spot = x.clone()
    spot[..., window[0] // 3 : window[0] // 3 + window[0] // 8, window[1] // 2 : window[1] // 2 + window[1] // 8] += 4.0
    print(f"torch {torch.__version__}, preset {args.preset} {window[0]}x{window[1]}, {args.threads} threads")

    rows = []
    with torch.no_grad():
        reference = model(x)
        cases = [(x, reference), (spot, model(spot))]
        eager = median_seconds(lambda: model(x), args.runs, warmup=1)
    rows.append(("eager torch (float32)", eager, 0.0, []))
    print(f"eager: median {eager:.3f} s")

    channels_last = model.to(memory_format=torch.channels_last)
    with torch.no_grad():
        seconds = median_seconds(lambda: channels_last(x), args.runs, warmup=1)
        differences = parity(cases, channels_last)
    rows.append(("eager torch, channels_last", seconds, 0.0, differences))
    model = model.to(memory_format=torch.contiguous_format)

    if "compile" not in args.skip:
        compiled = torch.compile(model)
        start = time.perf_counter()
        with torch.no_grad():
            compiled(x)
            setup = time.perf_counter() - start
            seconds = median_seconds(lambda: compiled(x), args.runs, warmup=1)
            differences = parity(cases, compiled)
        rows.append(("torch.compile (inductor)", seconds, setup, differences))
        print(f"torch.compile: median {seconds:.3f} s (compile {setup:.0f} s)")

    missing = [name for name in ONNX_RUNTIMES if name not in args.skip and not optional_import(name)[1]]
    for name in missing:
        print(f"{name}: not installed, skipped")
    runtimes = [name for name in ONNX_RUNTIMES if name not in args.skip and name not in missing]
    if runtimes:
        folder = Path(args.onnx) if args.onnx else Path(tempfile.mkdtemp(prefix="glam-onnx-"))
        path = folder / f"glam_{args.preset}.onnx"
        start = time.perf_counter()
        export_glam_onnx(model, path, window, check="onnxruntime" in runtimes)
        print(f"exported {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - start:.0f} s")
        for name in runtimes:
            start = time.perf_counter()
            runner = OnnxGLAM(path, runtime=name, threads=args.threads)
            runner(x)
            setup = time.perf_counter() - start
            seconds = median_seconds(lambda runner=runner: runner(x), args.runs, warmup=1)
            rows.append((f"{name} (float32, CPU)", seconds, setup, parity(cases, runner)))
            print(f"{name}: median {seconds:.3f} s (load {setup:.0f} s)")

    print()
    print("max abs difference from eager: on the noise input / on the input with a bright square")
    header = "| runtime | median s / image | speed-up vs eager | set-up s | " + " | ".join(
        f"{key.value}" for key in PARITY_KEYS
    )
    print(header + " | same patch |")
    print("|---" * (len(PARITY_KEYS) + 5) + "|")
    for name, seconds, setup, differences in rows:
        cells = [
            " / ".join(f"{d[key.value]:.1e}" for d in differences) if differences else "reference"
            for key in PARITY_KEYS
        ]
        boxes = " / ".join("yes" if d[GLAMKeys.PATCH_BOXES.value] == 0 else "**no**" for d in differences) or "yes"
        timing = f"| {name} | {seconds:.3f} | {eager / seconds:.2f}x | {setup:.0f} | "
        print(timing + " | ".join(cells) + f" | {boxes} |")


if __name__ == "__main__":
    main()
