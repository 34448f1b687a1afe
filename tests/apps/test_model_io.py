"""Model configs and checkpoint loading: resolution order, layouts, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from monai_glam.apps.model_io import (
    MODEL_CONFIG_NAME,
    ModelConfig,
    load_model,
    read_model_config,
    resolve_model_config,
    save_model_config,
)
from monai_glam.networks import GLAM
from tests.networks.nyu_layout import to_nyu_layout
from tests.writers.synthetic_run import TINY_GLAM, TINY_PREPROCESSING, make_checkpoint


def test_save_and_read_round_trip(tmp_path: Path) -> None:
    path = save_model_config(tmp_path / "c.json", TINY_GLAM, TINY_PREPROCESSING, thresholds=(0.2, 0.7))
    document = json.loads(path.read_text())
    assert document["global_channels"] == [8, 8, 16, 16, 16]
    assert document["preprocessing"] == {"spatial_size": [128, 96], "erosion_iterations": 9, "buffer": 4}
    config = read_model_config(path)
    assert config.glam == TINY_GLAM  # lists come back as tuples
    assert config.preprocessing == TINY_PREPROCESSING
    assert config.thresholds == (0.2, 0.7) and config.source == path


def test_resolution_order(tmp_path: Path) -> None:
    checkpoint = make_checkpoint(tmp_path / "run")
    beside = resolve_model_config(checkpoint)
    assert beside.source == tmp_path / "run" / MODEL_CONFIG_NAME and beside.glam == TINY_GLAM
    explicit = save_model_config(tmp_path / "other.json", {**TINY_GLAM, "num_patches": 2})
    assert resolve_model_config(checkpoint, explicit).glam["num_patches"] == 2
    bare = make_checkpoint(tmp_path / "bare", with_config=False)
    assert resolve_model_config(bare) == ModelConfig()


@pytest.mark.parametrize("layout", ["training", "state_dict", "nyu"])
def test_load_model_reads_every_checkpoint_layout(tmp_path: Path, layout: str) -> None:
    torch.manual_seed(1)
    reference = GLAM(**TINY_GLAM).eval()
    state = reference.state_dict()
    saved = {"training": {"network": state, "epoch": 3}, "state_dict": state, "nyu": to_nyu_layout(state)}[layout]
    torch.save(saved, tmp_path / "weights.pt")
    save_model_config(tmp_path / MODEL_CONFIG_NAME, TINY_GLAM)
    model = load_model(tmp_path / "weights.pt")
    assert not model.training
    image = torch.randn(1, 1, 128, 96)
    with torch.no_grad():
        assert torch.equal(model(image)["prob_global"], reference(image)["prob_global"])


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"patch_sise": 32}, r"unknown GLAM argument\(s\) \['patch_sise'\]"),
        ({"preprocessing": {"window": [1, 2]}}, r"unknown preprocessing key\(s\) \['window'\]"),
        ({"preprocessing": {"spatial_size": [128]}}, "spatial_size must be two positive integers"),
        ({"preprocessing": {"buffer": -1}}, "buffer must be an integer >= 0"),
        ({"thresholds": [0.5, 2]}, r"thresholds must lie in \[0, 1\]"),
        ({"thresholds": "high"}, "thresholds must be a list of numbers"),
        ([1, 2], "a model config is a JSON object"),
    ],
)
def test_bad_model_configs_name_the_problem(tmp_path: Path, document: object, message: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=message):
        read_model_config(path)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="no such model config"):
        read_model_config(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_model_config(tmp_path / "broken.json")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_model(tmp_path / "junk.pt")
    checkpoint = make_checkpoint(tmp_path / "run", with_config=False)
    with pytest.raises(ValueError, match="does not fit the paper's GLAM configuration"):
        load_model(checkpoint)
    wrong = save_model_config(tmp_path / "wrong.json", {**TINY_GLAM, "local_channels": (8, 8, 8, 16)})
    with pytest.raises(ValueError, match=r"does not fit model config .*wrong\.json"):
        load_model(checkpoint, wrong)
    invalid = save_model_config(tmp_path / "invalid.json", {"global_channels": (8, 8)})
    with pytest.raises(ValueError, match=r"invalid\.json: .*3 stages"):
        load_model(checkpoint, invalid)
