"""Every numeric option is checked at the edge: one line naming the option, exit status 2, nothing run."""

from __future__ import annotations

import pytest

from monai_glam.apps.cli import main

_TRAIN = ["train", "--datalist", "d.json", "--output", "out"]
_INFER = ["infer", "--images", "x.png", "--output", "out"]
_EVAL = ["evaluate", "--predictions", "p", "--output", "out"]
_DEMO = ["demo", "--output", "out"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([*_TRAIN, "--seed", "-1"], "argument --seed: must be an integer >= 0 and <= 4294967295, got -1"),
        ([*_TRAIN, "--epochs", "0"], "argument --epochs: must be an integer >= 1, got 0"),
        ([*_TRAIN, "--epochs", "two"], "argument --epochs: must be an integer >= 1, got 'two'"),
        ([*_TRAIN, "--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got 0"),
        ([*_TRAIN, "--lr", "0"], "argument --lr: must be a number > 0, got 0"),
        ([*_TRAIN, "--lr", "nan"], "argument --lr: must be a number > 0, got nan"),
        ([*_TRAIN, "--weight-decay=-1e-5"], "argument --weight-decay: must be a number >= 0, got -1e-5"),
        ([*_TRAIN, "--window", "0", "160"], "argument --window: must be an integer >= 1 and <= 16384, got 0"),
        ([*_TRAIN, "--num-workers", "-2"], "argument --num-workers: must be an integer >= 0, got -2"),
        ([*_TRAIN, "--log-interval", "-1"], "argument --log-interval: must be an integer >= 0, got -1"),
        ([*_INFER, "--window", "256", "-160"], "argument --window: must be an integer >= 1 and <= 16384, got -160"),
        ([*_INFER, "--erosion-iterations", "-1"], "argument --erosion-iterations: must be an integer >= 0, got -1"),
        ([*_INFER, "--thresholds", "0.5", "inf"], "argument --thresholds: must be a number >= 0 and <= 1, got inf"),
        ([*_INFER, "--sw-batch-size", "0"], "argument --sw-batch-size: must be an integer >= 1, got 0"),
        ([*_INFER, "--write-workers", "0"], "argument --write-workers: must be an integer >= 1, got 0"),
        ([*_EVAL, "--num-bootstrap", "0"], "argument --num-bootstrap: must be an integer >= 1, got 0"),
        ([*_EVAL, "--peak-sigma", "0"], "argument --peak-sigma: must be a number > 0, got 0"),
        ([*_DEMO, "--num", "7"], "argument --num: must be an integer >= 8, got 7"),
        ([*_DEMO, "--local-epochs", "0"], "argument --local-epochs: must be an integer >= 1, got 0"),
    ],
)
def test_bad_numbers_are_one_line_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert err.startswith(f"monai-glam {argv[0]}: error: ") and f"(see monai-glam {argv[0]} --help)" in err
