"""``torchrun --nproc_per_node 2 monai-glam infer``: the datalist split over two gloo processes, merged by rank 0.

The merged outputs must equal a single-process run's: the same tables (same rows, same order), the same
``failures.json``, and the same map, mask and overlay files byte for byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monai_glam.apps.cli import main
from monai_glam.data import read_datalist, write_datalist
from tests.writers.synthetic_run import make_checkpoint, make_dataset


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("sharded")
    source = make_dataset(folder / "data", num=8)
    items = read_datalist(source, "training") + read_datalist(source, "test")
    broken = folder / "broken.png"
    broken.write_bytes(b"not a png")
    items.insert(3, {"image": str(broken), "label": [0, 0]})  # 9 items: an odd count, one bad in the middle
    datalist = folder / "datalist.json"
    write_datalist(datalist, {"test": items})
    return datalist, make_checkpoint(folder / "model")


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in (".png", ".csv")
    }


def test_two_processes_write_what_one_process_writes(inputs: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    datalist, checkpoint = inputs
    common = ["--datalist", str(datalist), "--checkpoint", str(checkpoint), "--no-progress", "--formats", "png"]
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    assert main(["infer", *common, "--output", str(single)]) == 1  # one item fails
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command = [*launcher, "-m", "monai_glam.apps.cli", "infer", *common, "--output", str(sharded)]
    result = subprocess.run(
        command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1, result.stderr[-4000:]  # torchrun passes the workers' status on
    assert result.stdout.count("infer: 8 image(s)") == 1  # rank 0 reports the merged run, once
    expected, got = _files(single), _files(sharded)
    assert sorted(got) == sorted(expected)
    assert [name for name in expected if got[name] != expected[name]] == []
    assert (sharded / "failures.json").read_text() == (single / "failures.json").read_text()
    run_single, run_sharded = (json.loads((folder / "run.json").read_text()) for folder in (single, sharded))
    assert run_sharded.pop("num_processes") == 2
    assert run_sharded == run_single
