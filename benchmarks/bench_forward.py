"""Benchmark GLAM's paper-size forward pass on CPU against this machine's practical convolution peak.

Prints the median wall time of the paper configuration (input 2944×1920, one 512×512 patch) after a
warm-up, the peak resident memory, the forward FLOPs counted by ``torch.utils.flop_counter``, and, measured
in the same run, the throughput of a 512→512 3×3 convolution on ``1×512×128×128`` (channels-last) — the
layer shape that dominates GLAM's local module — as the practical peak. The line starting with ``ratio``
gives achieved / peak. A bfloat16 autocast run follows, with its speed-up and its largest deviations.

Usage::

    python benchmarks/bench_forward.py [--threads 2] [--runs 5] [--checkpoint model_sep.ckpt]

Wall-clock numbers depend on the machine; nothing here gates CI.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from monai_glam.networks import GLAM, load_nyu_glam
from monai_glam.utils import GLAMKeys


def median_seconds(fn: Callable[[], object], runs: int, warmup: int) -> float:
    """Median wall time of ``fn`` over ``runs`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_conv_gflops(runs: int, precision: str = "fp32") -> float:
    """Throughput of a 512→512 3×3 convolution on 1×512×128×128, channels-last.

    Args:
        runs: timed calls (median) after two warm-up calls.
        precision: ``fp32``, or ``bf16`` for the same convolution under bfloat16 autocast (the peak a bf16 forward
            pass can reach).
    """
    conv = torch.nn.Conv2d(512, 512, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(1, 512, 128, 128).contiguous(memory_format=torch.channels_last)
    flops = 2 * 512 * 512 * 9 * 128 * 128
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        seconds = median_seconds(lambda: conv(x), runs, warmup=2)
    return flops / seconds / 1e9


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="intra-op CPU threads (default 2)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs after the warm-up (at least 5)")
    parser.add_argument("--checkpoint", default=None, help="published checkpoint to load (random weights if absent)")
    parser.add_argument(
        "--memory-format", choices=["channels_last", "contiguous"], default="channels_last", help="model layout"
    )
    parser.add_argument("--no-bf16", action="store_true", help="skip the bfloat16 autocast run")
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = load_nyu_glam(args.checkpoint) if args.checkpoint else GLAM().eval()
    memory_format = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    x = torch.randn(1, 1, 2944, 1920).contiguous(memory_format=memory_format)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, layout {args.memory_format}")

    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            reference = model(x)
        flops = counter.get_total_flops()
        seconds = median_seconds(lambda: model(x), args.runs, warmup=1)
    rss = peak_rss_mib()
    peak = peak_conv_gflops(args.runs)
    achieved = flops / seconds / 1e9
    print(f"forward float32: median {seconds:.3f} s over {args.runs} runs, peak RSS {rss:.0f} MiB")
    print(f"flops {flops / 1e9:.1f} GFLOP per image")
    print(f"achieved {achieved:.1f} GFLOP/s, peak (512->512 3x3 conv, 1x512x128x128) {peak:.1f} GFLOP/s")
    print(f"ratio {achieved / peak:.3f}")

    if not args.no_bf16:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
            bf16_seconds = median_seconds(lambda: model(x), args.runs, warmup=1)
        prob_diff = (low[GLAMKeys.PROB_GLOBAL].float() - reference[GLAMKeys.PROB_GLOBAL]).abs().max().item()
        map_diff = (low[GLAMKeys.SALIENCY].float() - reference[GLAMKeys.SALIENCY]).abs().max().item()
        print(
            f"bfloat16 autocast: median {bf16_seconds:.3f} s, speed-up {seconds / bf16_seconds:.2f}x, "
            f"max |diff| prob_global {prob_diff:.2e}, fused map {map_diff:.2e}"
        )
        bf16_peak = peak_conv_gflops(args.runs, "bf16")
        print(f"bf16 peak (same convolution under autocast) {bf16_peak:.1f} GFLOP/s")
        print(f"ratio bf16 {flops / bf16_seconds / 1e9 / bf16_peak:.3f}")


if __name__ == "__main__":
    main()
