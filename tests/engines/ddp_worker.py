"""Worker of the 2-process DDP test: ``torchrun --nproc_per_node 2 tests/engines/ddp_worker.py OUT``."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for ``tests.*``

from monai_glam.engines import create_glam_training, create_loader
from monai_glam.networks import GLAM
from tests.engines.synthetic_task import TINY_GLAM, make_dataset


def main(out_dir: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    glam = GLAM(**TINY_GLAM)
    train = create_loader(make_dataset(16, seed=1), batch_size=4, shuffle=True)
    val = create_loader(make_dataset(8, seed=2), batch_size=4, shuffle=False)
    seen: list[int] = []
    run = create_glam_training(glam, train, out_dir, stage="joint", val_loader=val, max_epochs=2, learning_rate=1e-3)
    from ignite.engine import Events

    run.trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.append(e.state.iteration))
    metrics = run.run()
    # Outside the run's own files: what each rank ended with, for the test to compare.
    torch.save(
        {"state": glam.state_dict(), "iterations": len(seen), "metrics": metrics},
        Path(out_dir).parent / f"rank{rank}.pt",
    )
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
