from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_two_process_ddp_training_on_cpu(tmp_path):
    out_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command = [*launcher, str(WORKER), str(out_dir)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # 16 items over 2 ranks in batches of 4: 2 iterations per epoch per rank, 2 epochs.
    assert [r["iterations"] for r in ranks] == [4, 4]
    for key, value in ranks[0]["state"].items():
        if "running_" in key or "num_batches" in key:
            continue  # batch-norm statistics are per rank (DDP broadcasts rank 0's before each forward)
        assert torch.equal(value, ranks[1]["state"][key]), key  # gradients are averaged: identical weights
    assert ranks[0]["metrics"]["val_auc"] == ranks[1]["metrics"]["val_auc"]  # metrics gathered over ranks
    # Only rank 0 writes checkpoints and logs.
    assert sorted(p.name for p in out_dir.iterdir()) == ["best.pt", "last.pt", "tensorboard"]
    assert len(list((out_dir / "tensorboard").iterdir())) == 1
