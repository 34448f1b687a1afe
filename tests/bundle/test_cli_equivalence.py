"""The command line and the bundle train through one wiring: same metrics, same handlers, same weights."""

from __future__ import annotations

import inspect
import re
from collections import Counter
from pathlib import Path

import pytest
import torch

from monai_glam.engines import create_glam_training
from tests.bundle.conftest import CONFIG_WARNING, config, create

pytestmark = pytest.mark.filterwarnings(CONFIG_WARNING)


def _handler_names(engine) -> Counter:
    """Every handler attached to an engine, by class (bound methods by their object's class)."""
    names: Counter = Counter()
    for event, handlers in engine._event_handlers.items():
        for handler, _, _ in handlers:
            owner = getattr(handler, "__self__", None)
            if owner is not None:
                name = type(owner).__name__
            elif inspect.isfunction(handler):
                name = handler.__qualname__
            else:
                name = type(handler).__name__
            names[(re.sub(r"\(filter=.*\)", "", str(event)), name)] += 1
    return names


def test_cli_and_bundle_train_identically(synthetic_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import monai_glam.engines.training as training

    # Capture the run the command-line path builds, then let it train.
    captured = {}

    def capture(*args, **kwargs):
        run = create_glam_training(*args, **kwargs)
        captured["run"] = run
        return run

    monkeypatch.setattr(training, "create_glam_training", capture)
    training.run_training(
        synthetic_dir / "datalist.json",
        tmp_path / "cli",
        stage="global",
        preset="tiny",
        epochs=1,
        batch_size=4,
        learning_rate=1e-4,
        weight_decay=1e-5,
        seed=0,
        device="cpu",
        show_progress=False,
        log_interval=20,
        image_interval=1,
    )
    cli = captured["run"]

    workflow = create(
        config("train.json"), "train", tmp_path / "bundle", synthetic_dir, **{"train#trainer#max_epochs": 1}
    )
    workflow.run()
    workflow.finalize()
    trainer, evaluator = (
        workflow.parser.get_parsed_content("train#trainer"),
        workflow.parser.get_parsed_content("validate#evaluator"),
    )

    assert sorted(cli.evaluator.state.metrics) == sorted(evaluator.state.metrics)
    assert _handler_names(cli.trainer) == _handler_names(trainer)
    assert _handler_names(cli.evaluator) == _handler_names(evaluator)
    bundle_glam = workflow.parser.get_parsed_content("network")
    cli_state, bundle_state = cli.glam.state_dict(), bundle_glam.state_dict()
    assert cli_state.keys() == bundle_state.keys()
    different = [key for key in cli_state if not torch.equal(cli_state[key], bundle_state[key])]
    assert different == []
    assert cli.evaluator.state.metrics == pytest.approx(evaluator.state.metrics, nan_ok=True)
