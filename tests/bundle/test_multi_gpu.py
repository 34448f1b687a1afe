"""``multi_gpu_train.json`` under ``torchrun``: two CPU processes (gloo), DDP, sharded data, rank-0 outputs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from tests.bundle.conftest import BUNDLE_DIR


@pytest.mark.slow  # torchrun / a subprocess bundle run: tens of seconds on 2 cores
def test_torchrun_two_processes(synthetic_dir, tmp_path):
    root = tmp_path / "bundle"
    root.mkdir()
    command = [
        sys.executable,
        "-W",
        "ignore",
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes=1",
        "--nproc_per_node=2",
        "-m",
        "monai.bundle",
        "run",
        "--meta_file",
        "configs/metadata.json",
        "--config_file",
        "['configs/train.json','configs/multi_gpu_train.json']",
        "--logging_file",
        "configs/logging.conf",
        "--bundle_root",
        str(root),
        "--dataset_dir",
        str(synthetic_dir),
        "--preset",
        "tiny",
        "--batch_size",
        "2",
        "--train#trainer#max_epochs",
        "1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, cwd=BUNDLE_DIR, env=env, capture_output=True, text=True, timeout=400)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    # 16 training images on 2 ranks in batches of 2: 4 iterations per rank; only rank 0 logs.
    assert log.count("Epoch[1] Metrics") == 1
    assert "Iter: 4/4" in log and "Iter: 5/" not in log
    assert sorted(p.name for p in (root / "models").iterdir()) == ["model.pt", "model_global.pt"]
    assert len(list((root / "runs" / "global" / "tensorboard").iterdir())) == 1
    last = torch.load(root / "runs" / "global" / "last.pt", weights_only=True)
    assert last["trainer"]["iteration"] == 4
