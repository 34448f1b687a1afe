from __future__ import annotations

import json

import pytest
import torch

from monai_glam.apps.cli import main
from monai_glam.data import write_synthetic_dataset
from monai_glam.networks import GLAM, load_glam_weights
from monai_glam.networks.io import read_model_config


@pytest.fixture(scope="module")
def datalist(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    return write_synthetic_dataset(
        folder, num=16, size=(256, 160), seed=0, write_dicom=False, fractions=(0.5, 0.5, 0.0), progress=False
    )


def test_train_global_then_local_from_the_command_line(tmp_path, datalist, capsys):
    common = ["--datalist", str(datalist), "--preset", "tiny", "--epochs", "1", "--batch-size", "4", "--no-progress"]
    assert main(["train", *common, "--output", str(tmp_path / "global"), "--stage", "global"]) == 0
    out = capsys.readouterr().out
    assert "stage global done: val_auc" in out and "best.pt" in out
    config = read_model_config(tmp_path / "global" / "model_config.json")
    assert config.glam["patch_size"] == 64
    assert config.preprocessing == {"spatial_size": (256, 160), "erosion_iterations": 9, "buffer": 4}
    settings = json.loads((tmp_path / "global" / "training_config.json").read_text())
    assert settings["window"] == [256, 160] and settings["stage"] == "global"
    assert settings["flip_consistency_weight"] == 1.0  # the tiny preset's default
    assert settings["erasure_weight"] == settings["local_erasure_weight"] == 1.0  # the tiny preset's defaults

    assert settings["precision"] == "fp32" and settings["channels_last"] is False

    init = tmp_path / "global" / "last.pt"
    local = ["--output", str(tmp_path / "local"), "--stage", "local", "--init", str(init), "--channels-last"]
    assert main(["train", *common, *local, "--precision", "auto"]) == 0
    settings = json.loads((tmp_path / "local" / "training_config.json").read_text())
    assert settings["erasure_weight"] == 1.0 and settings["local_erasure_weight"] == 1.0
    assert settings["channels_last"] is True and settings["precision"] in ("fp32", "bf16")  # auto is resolved
    first = load_glam_weights(GLAM(**config.glam), init)
    second = load_glam_weights(GLAM(**config.glam), tmp_path / "local" / "last.pt")
    for key, value in first.global_network.state_dict().items():  # frozen in the local stage
        assert torch.equal(second.global_network.state_dict()[key], value)
    assert any(
        not torch.equal(v, second.local_network.state_dict()[k]) for k, v in first.local_network.state_dict().items()
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--datalist", "/nonexistent/datalist.json"], "datalist.json"),
        (["--init", "/nonexistent/last.pt"], "checkpoint not found"),
        (["--model-config", "/nonexistent/model.json"], "no such model config file"),
        (["--device", "gpu7"], "unknown device 'gpu7'"),
    ],
)
def test_train_reports_user_errors_in_one_line(tmp_path, datalist, capsys, extra, message):
    args = ["train", "--datalist", str(datalist), "--output", str(tmp_path), "--preset", "tiny", "--no-progress"]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("monai-glam train: error:") and message in err


def test_train_help(capsys):
    assert main(["train", "--help"]) == 0
    assert "--stage {global,local,joint}" in capsys.readouterr().out


@pytest.mark.slow  # torchrun / a subprocess bundle run: tens of seconds on 2 cores
def test_train_under_torchrun_writes_from_rank_zero_only(tmp_path, datalist):
    import os
    import subprocess
    import sys

    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
    args = [
        "monai_glam.apps.cli",
        "train",
        "--datalist",
        str(datalist),
        "--output",
        str(tmp_path / "ddp"),
        "--preset",
        "tiny",
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--no-progress",
        "--log-interval",
        "0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([*launcher, *args], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("stage global done") == 1  # only rank 0 reports
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == [
        "best.pt",
        "last.pt",
        "model_config.json",
        "tensorboard",
        "training_config.json",
    ]


def test_train_init_accepts_a_published_layout_checkpoint(tmp_path, datalist):
    """Regression: ``train --init`` read only training checkpoints while ``infer`` also read the NYU layout."""
    from monai_glam.networks import glam_preset
    from tests.networks.nyu_layout import to_nyu_layout

    tiny = glam_preset("tiny")["glam"]
    torch.manual_seed(7)
    source = GLAM(**tiny)
    published = tmp_path / "model_sep.ckpt"
    torch.save(to_nyu_layout(source.state_dict()), published)
    common = ["--datalist", str(datalist), "--preset", "tiny", "--epochs", "1", "--batch-size", "4", "--no-progress"]
    argv = ["train", *common, "--output", str(tmp_path / "local"), "--stage", "local", "--init", str(published)]
    assert main(argv) == 0
    trained = load_glam_weights(GLAM(**tiny), tmp_path / "local" / "last.pt")
    for key, value in source.global_network.state_dict().items():  # the local stage keeps the imported global module
        assert torch.equal(trained.global_network.state_dict()[key], value), key


def test_resume_with_fewer_epochs_names_the_option(tmp_path, datalist, capsys):
    common = ["--datalist", str(datalist), "--preset", "tiny", "--batch-size", "4", "--no-progress"]
    out = ["--output", str(tmp_path / "run"), "--image-interval", "0"]
    assert main(["train", *common, *out, "--epochs", "2"]) == 0
    capsys.readouterr()
    assert main(["train", *common, *out, "--epochs", "1", "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--epochs 1 is fewer than the 2 epochs" in err and "--epochs 3 or more" in err


def test_window_smaller_than_the_patch_is_refused_before_training(tmp_path, datalist, capsys):
    argv = ["train", "--datalist", str(datalist), "--preset", "tiny", "--window", "32", "32", "--no-progress"]
    assert main([*argv, "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "window [32, 32] is smaller than this GLAM's 64x64 patch" in err
    assert not (tmp_path / "run" / "last.pt").exists()
