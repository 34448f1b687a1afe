"""``multi_gpu_train.json`` under ``torchrun``: two CPU processes (gloo), DDP, sharded data, rank-0 outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.bundle.conftest import BUNDLE_DIR


def _torchrun_bundle(configs: list[str], bundle_root, synthetic_dir, *overrides: str) -> str:
    """``torchrun`` two CPU processes of ``monai.bundle run`` on ``configs``; returns the log (after a 0 exit)."""
    command = [sys.executable, "-W", "ignore", "-m", "torch.distributed.run", "--standalone", "--nnodes=1"]
    command += ["--nproc_per_node=2", "-m", "monai.bundle", "run", "--meta_file", "configs/metadata.json"]
    command += [
        "--config_file",
        repr([f"configs/{name}" for name in configs]),
        "--logging_file",
        "configs/logging.conf",
    ]
    command += ["--bundle_root", str(bundle_root), "--dataset_dir", str(synthetic_dir), "--preset", "tiny", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, cwd=BUNDLE_DIR, env=env, capture_output=True, text=True, timeout=400)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    return log


@pytest.mark.slow  # torchrun / a subprocess bundle run: tens of seconds on 2 cores
def test_torchrun_two_processes(synthetic_dir, tmp_path):
    root = tmp_path / "bundle"
    root.mkdir()
    log = _torchrun_bundle(
        ["train.json", "multi_gpu_train.json"],
        root,
        synthetic_dir,
        "--batch_size",
        "2",
        "--train#trainer#max_epochs",
        "1",
    )
    # 16 training images on 2 ranks in batches of 2: 4 iterations per rank; only rank 0 logs.
    assert log.count("Epoch[1] Metrics") == 1
    assert "Iter: 4/4" in log and "Iter: 5/" not in log
    assert sorted(p.name for p in (root / "models").iterdir()) == ["model.pt", "model_global.pt"]
    assert len(list((root / "runs" / "global" / "tensorboard").iterdir())) == 1
    last = torch.load(root / "runs" / "global" / "last.pt", weights_only=True)
    assert last["trainer"]["iteration"] == 4


def _result_files(folder) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.suffix in (".png", ".csv")
    }


@pytest.mark.slow  # torchrun / a subprocess bundle run: tens of seconds on 2 cores
def test_sharded_inference_writes_what_one_process_writes(trained_bundle, synthetic_dir, tmp_path):
    from monai_glam.data import read_datalist, write_datalist
    from tests.bundle.conftest import config, create

    items = read_datalist(synthetic_dir / "datalist.json", "test")[:4]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    items.insert(2, {"image": str(broken), "label": [0, 0]})  # 5 items: an odd count, one bad in the middle
    datalist = tmp_path / "datalist.json"
    write_datalist(datalist, {"test": items})
    # One image per batch in both runs: batches of other sizes sum the convolutions in other orders (1-ulp changes).
    overrides = {"datalist": str(datalist), "prediction_writer#formats": ["png"], "batch_size": 1}
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    workflow = create(
        config("inference.json"), "infer", trained_bundle, synthetic_dir, output_dir=str(single), **overrides
    )
    workflow.run()
    workflow.finalize()
    configs = ["inference.json", "multi_gpu_inference.json"]
    cli = ["--datalist", str(datalist), "--output_dir", str(sharded), "--prediction_writer#formats", "['png']"]
    cli += ["--batch_size", "1"]
    _torchrun_bundle(configs, trained_bundle, synthetic_dir, *cli)
    expected, got = _result_files(single), _result_files(sharded)
    assert len([name for name in expected if name.startswith("saliency")]) == 8  # 4 good images x 2 classes
    assert sorted(got) == sorted(expected)
    assert [name for name in expected if got[name] != expected[name]] == []
    failures = json.loads((sharded / "failures.json").read_text())
    assert failures == json.loads((single / "failures.json").read_text())
    assert [(f["index"], f["stage"]) for f in failures] == [(2, "load")]
    run = json.loads((sharded / "run.json").read_text())
    assert run.pop("num_processes") == 2
    assert run == json.loads((single / "run.json").read_text())
