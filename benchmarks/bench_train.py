"""Benchmark one paper-size GLAM training step on CPU: time, peak memory and the FLOP-based lower bound.

A step is the ``joint`` stage on one 2944×1920 image with one 512×512 patch: forward, all loss terms (BCE on
ŷ_g and ŷ_l, sparsity on S_g and the patch maps), backward and an Adam update. The lower bound is the
step's FLOPs (forward + backward, ``torch.utils.flop_counter``) divided by the practical peak measured in
the same run (a 512→512 3×3 convolution on 1×512×128×128, channels-last).

Usage::

    python benchmarks/bench_train.py [--threads 2] [--runs 3] [--gradient-checkpointing] [--precision bf16]

Run once with and once without ``--gradient-checkpointing``: peak RSS is per process. ``--precision bf16`` runs the
forward pass under bfloat16 autocast, as ``monai-glam train --precision bf16`` does (use it only where the CPU runs
bfloat16 natively; elsewhere oneDNN's reference path takes minutes per step). Nothing here gates CI.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.bench_forward import peak_conv_gflops
from monai_glam.engines import GLAMStageNetwork, loss_for_stage
from monai_glam.networks import GLAM
from monai_glam.utils.precision import autocast, to_float32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="intra-op CPU threads (default 2)")
    parser.add_argument("--runs", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="recompute local blocks in backward")
    parser.add_argument(
        "--memory-format",
        choices=["channels_last", "contiguous"],
        default="contiguous",
        help="model and input layout (default contiguous, as monai-glam train without --channels-last)",
    )
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="forward-pass precision")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    memory_format = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    glam = GLAM(gradient_checkpointing=args.gradient_checkpointing).to(memory_format=memory_format)
    network = GLAMStageNetwork(glam, "joint").train()
    loss_fn = loss_for_stage("joint")
    optimizer = torch.optim.Adam(network.trainable_parameters(), lr=1e-5)
    x = torch.randn(1, 1, 2944, 1920).contiguous(memory_format=memory_format)
    y = torch.tensor([[1.0, 0.0]])

    def forward() -> dict[str, torch.Tensor]:
        with autocast(args.precision, x.device):  # as the training engines' GLAMInferer does
            return to_float32(network(x))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(forward(), y)
        loss.backward()
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(forward(), y).backward()
    flops = counter.get_total_flops()
    step()  # warm-up
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak = peak_conv_gflops(5)
    bound = flops / (peak * 1e9)
    # A bf16 step's convolutions can run at the bfloat16 peak: its bound uses that peak, measured the same way.
    step_peak = peak_conv_gflops(5, args.precision) if args.precision == "bf16" else peak
    step_bound = flops / (step_peak * 1e9)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, layout {args.memory_format}, "
        f"gradient checkpointing {'on' if args.gradient_checkpointing else 'off'}, precision {args.precision}"
    )
    print(f"train step: median {seconds:.2f} s over {args.runs} steps, peak RSS {rss / 1024:.2f} GiB")
    print(f"flops {flops / 1e9:.1f} GFLOP per step (forward + backward, as counted)")
    print(f"peak {peak:.1f} GFLOP/s (float32) -> lower bound {bound:.2f} s; step / bound = {seconds / bound:.2f}")
    if args.precision == "bf16":
        print(
            f"bf16 peak {step_peak:.1f} GFLOP/s -> lower bound {step_bound:.2f} s; "
            f"step / bf16 bound = {seconds / step_bound:.2f}"
        )


if __name__ == "__main__":
    main()
