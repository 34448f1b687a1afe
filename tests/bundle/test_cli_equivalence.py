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
        log_interval=1,
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


def test_cli_and_bundle_evaluate_the_same_images(trained_bundle: Path, synthetic_dir: Path, tmp_path: Path) -> None:
    """Regression: the CLI counted an image for Dice when a mask *file* existed for every class, the bundle when
    every class was known; both now use one rule and report the same localization numbers."""
    import json

    from monai_glam.apps.cli import main
    from monai_glam.data import read_datalist
    from monai_glam.networks import glam_preset
    from monai_glam.networks.io import save_model_config

    # Negative classes without a mask file: known to be empty by their label, so they count (the old CLI rule
    # dropped every such image, the bundle kept them).
    items = read_datalist(synthetic_dir / "datalist.json", "test")
    for item in items:
        for c, name in enumerate(("benign", "malignant")):
            if item["label"][c] == 0:
                item.pop(f"mask_{name}", None)
    assert any(len([k for k in item if k.startswith("mask_")]) < 2 for item in items)
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"test": items}))
    bundle_out = tmp_path / "bundle_report"
    workflow = create(
        config("inference.json", "evaluate.json"),
        "eval",
        trained_bundle,
        synthetic_dir,
        datalist=str(datalist),
        output_dir=str(bundle_out),
        num_bootstrap=20,
    )
    workflow.run()
    workflow.finalize()
    model_config = save_model_config(
        tmp_path / "tiny.json", glam_preset("tiny")["glam"], preprocessing={"spatial_size": [256, 160]}
    )
    cli_out = tmp_path / "cli_report"
    argv = ["evaluate", "--datalist", str(datalist), "--split", "test", "--frame", "network"]
    argv += ["--checkpoint", str(trained_bundle / "models" / "model.pt"), "--model-config", str(model_config)]
    argv += ["--output", str(cli_out), "--num-bootstrap", "20"]  # FROC defaults: scaled to the window by both
    assert main([*argv, "--device", "cpu", "--formats", "--no-overlays", "--no-progress"]) == 0
    bundle_report = json.loads((bundle_out / "report.json").read_text())
    cli_report = json.loads((cli_out / "report.json").read_text())
    located = cli_report["inputs"]["num_localization_images"]
    assert located == bundle_report["inputs"]["num_localization_images"] == len(items)
    assert cli_report["settings"] == bundle_report["settings"]
    # Lesion counts and sensitivities are equal. The full curves are not compared: the bundle predicts in batches
    # of 4 and the CLI one image at a time, so scores differ by float rounding and a tie of two candidates can
    # split in one run and not in the other (one curve point more).
    assert cli_report["froc"].keys() == bundle_report["froc"].keys()
    for name, cli_froc in cli_report["froc"].items():
        summary = {k: v for k, v in cli_froc.items() if k != "curve"}
        assert summary == {k: v for k, v in bundle_report["froc"][name].items() if k != "curve"}, name
    for section in ("segmentation", "pointing_game"):
        for name, scores in cli_report[section].items():
            assert scores == pytest.approx(bundle_report[section][name], abs=1e-6), (section, name)
