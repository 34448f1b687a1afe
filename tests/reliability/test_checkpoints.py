"""Checkpoint writes under a file-size limit (a full disk): the previous checkpoint survives and still loads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE is POSIX only")

REPO = Path(__file__).resolve().parents[2]

#: Saves a small checkpoint, then a large one under RLIMIT_FSIZE; prints the error of the second save.
SCRIPT = textwrap.dedent(
    """
    import resource
    import sys

    import torch
    from ignite.engine import Engine

    from monai_glam.handlers.best_checkpoint import BestCheckpointSaver
    from monai_glam.handlers.last_checkpoint import LastCheckpointSaver

    kind, path = sys.argv[1], sys.argv[2]
    network = torch.nn.Linear(4, 2)
    engine = Engine(lambda engine, batch: None)
    engine.state.epoch = 1
    if kind == "best":
        saver = BestCheckpointSaver(path, {"network": network}, "val_auc")
        engine.state.metrics = {"val_auc": 0.5}
    else:
        saver = LastCheckpointSaver(path, {"network": network})
    saver(engine)
    network.weight = torch.nn.Parameter(torch.zeros(4096, 4096))  # 64 MiB: over the limit below
    engine.state.metrics = {"val_auc": 0.9}
    engine.state.epoch = 2
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        saver(engine)
    except OSError as err:
        print(err)
        sys.exit(3)
    sys.exit(0)
    """
)


@pytest.mark.parametrize(("kind", "name"), [("best", "best.pt"), ("last", "last.pt")])
def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path: Path, kind: str, name: str) -> None:
    path = tmp_path / name
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, kind, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    message = result.stdout.strip()
    assert message.startswith(f"cannot write checkpoint {path}: "), message
    assert "\n" not in message and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left
    checkpoint = torch.load(path, weights_only=True)
    weights = checkpoint if kind == "best" else checkpoint["network"]
    assert tuple(weights["weight"].shape) == (2, 4)
