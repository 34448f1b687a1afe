"""Fault injection on real ``monai-glam`` processes: SIGKILL, SIGINT and SIGTERM during training and inference.

Every test runs the command line in a subprocess, as a user or a job scheduler would, on a tiny synthetic data
set and the tiny preset. The SIGKILL test runs once in the default suite and five more times, at other random
moments, with ``-m slow``.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from monai_glam.data import write_synthetic_dataset

EPOCHS = 3
TRAIN_OPTIONS = [
    "--preset",
    "tiny",
    "--batch-size",
    "4",
    "--no-progress",
    "--image-interval",
    "0",
    "--log-interval",
    "0",
]


def _env() -> dict[str, str]:
    # One thread per process: identical arithmetic in every run (bit-identical resume) and no oversubscription.
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "monai_glam.apps.cli", *args]


def _train(datalist: Path, output: Path, *extra: str, epochs: int = EPOCHS) -> list[str]:
    return _command(
        "train", "--datalist", str(datalist), "--output", str(output), "--epochs", str(epochs), *TRAIN_OPTIONS, *extra
    )


def _run(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, env=_env(), timeout=timeout)


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the process ended (status {process.returncode}) before {path} appeared")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.02)


def _last_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _network(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("network", state)


def _assert_same_weights(a: Path, b: Path) -> None:
    first, second = _network(a), _network(b)
    assert first.keys() == second.keys()
    for key, value in first.items():
        assert torch.equal(value, second[key]), f"{key} differs between {a} and {b}"


@pytest.fixture(scope="module")
def datalist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_dataset(
        tmp_path_factory.mktemp("data"),
        num=12,
        size=(256, 160),
        seed=1,
        write_dicom=False,
        fractions=(0.67, 0.33, 0.0),
        progress=False,
    )


@pytest.fixture(scope="module")
def reference(datalist: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """An uninterrupted run: its folder and how long its training took (from its first file to the end)."""
    output = tmp_path_factory.mktemp("reference") / "run"
    process = subprocess.Popen(
        _train(datalist, output), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    _wait_for(output / "training_config.json", process)
    started = time.monotonic()
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-2000:]
    return output, time.monotonic() - started


def _kill_and_resume(datalist: Path, reference: tuple[Path, float], output: Path, seed: int) -> None:
    reference_dir, duration = reference
    process = subprocess.Popen(
        _train(datalist, output), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env()
    )
    _wait_for(output / "training_config.json", process)
    time.sleep(random.Random(seed).uniform(0.0, duration))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    for checkpoint in output.glob("*.pt"):  # whatever the moment, every checkpoint on disk is complete
        torch.load(checkpoint, map_location="cpu", weights_only=True)
    resumed = _run(_train(datalist, output, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not [p.name for p in output.iterdir() if ".tmp" in p.name]  # the killed run's temporaries are gone
    _assert_same_weights(output / "last.pt", reference_dir / "last.pt")
    _assert_same_weights(output / "best.pt", reference_dir / "best.pt")
    finished = torch.load(reference_dir / "last.pt", weights_only=True)["trainer"]
    assert torch.load(output / "last.pt", weights_only=True)["trainer"]["iteration"] == finished["iteration"]


def test_sigkill_at_a_random_moment_then_resume_is_bit_identical(datalist, reference, tmp_path) -> None:
    _kill_and_resume(datalist, reference, tmp_path / "run", seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_sigkill_repeated(datalist, reference, tmp_path, seed) -> None:
    _kill_and_resume(datalist, reference, tmp_path / "run", seed=seed)


# Slow (about 30 s): the default suite keeps the SIGKILL-and-resume test (bit-identical resume) and the SIGTERM
# inference test (a signal stops a run with consistent outputs); this one adds the SIGINT path of training.
@pytest.mark.slow
def test_sigint_stops_training_cleanly_and_resume_finishes(datalist, tmp_path) -> None:
    output = tmp_path / "run"
    epochs = 12  # long enough that the signal lands mid-run
    process = subprocess.Popen(
        _train(datalist, output, epochs=epochs), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    _wait_for(output / "last.pt", process)  # the first epoch is done
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    line = _last_line(stderr)
    assert line.startswith("monai-glam train: stopped by SIGINT in epoch ") and "--resume" in line, line
    state = torch.load(output / "last.pt", weights_only=True)
    stopped_at, epoch_length = int(state["trainer"]["iteration"]), int(state["trainer"]["epoch_length"])
    assert epoch_length <= stopped_at < epochs * epoch_length and f"after iteration {stopped_at};" in line
    from monai_glam.apps.cli import main

    assert main(_train(datalist, output, epochs=epochs)[3:]) == 2  # no silent restart over the interrupted run
    resumed = _run(_train(datalist, output, "--resume", epochs=epochs))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert torch.load(output / "last.pt", weights_only=True)["trainer"]["iteration"] == epochs * epoch_length


def test_sigterm_stops_inference_with_consistent_tables(tmp_path) -> None:
    images = write_synthetic_dataset(
        tmp_path / "data", num=40, size=(256, 160), seed=2, write_dicom=False, fractions=(0.0, 0.0, 1.0), progress=False
    )
    from tests.writers.synthetic_run import make_checkpoint

    checkpoint = make_checkpoint(tmp_path / "model")
    output = tmp_path / "out"
    argv = _command(
        "infer", "--datalist", str(images), "--checkpoint", str(checkpoint), "--output", str(output), "--no-progress"
    )
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    _wait_for(output / "overlays", process)
    while process.poll() is None and not any((output / "overlays").iterdir()):
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr[-2000:]
    assert "Traceback" not in stderr
    line = _last_line(stderr)
    assert line.startswith("monai-glam infer: stopped by SIGTERM after ") and "of 40 images" in line, line
    with open(output / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    done = int(line.split("after ")[1].split(" of")[0])
    assert 1 <= len(rows) == done < 40
    assert len(list((output / "overlays").iterdir())) == done  # every listed image has its outputs, and no more
    run = json.loads((output / "run.json").read_text())
    assert run["interrupted"] == "SIGTERM" and run["num_images"] == done
