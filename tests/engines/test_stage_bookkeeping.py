"""Unit tests of the stage bookkeeping and network helpers the bundle configs call."""

from __future__ import annotations

import json
import os

import pytest
import torch

from monai_glam import engines, networks, utils
from monai_glam.data import read_datalist
from monai_glam.networks import GLAM, GLAMSingleOutput


@pytest.mark.parametrize(
    ("stage", "expected"),
    [("global", None), ("local", "model_global.pt"), ("joint", "model_local.pt")],
)
def test_previous_stage_checkpoint(stage, expected):
    found = engines.previous_stage_checkpoint("models", stage)
    assert found == (None if expected is None else os.path.join("models", expected))


def test_unknown_stage_is_rejected():
    with pytest.raises(ValueError):
        engines.previous_stage_checkpoint("models", "fine-tune")


@pytest.mark.parametrize(
    ("output_key", "cls", "shape"),
    [(None, GLAM, None), ("saliency", GLAMSingleOutput, (1, 2, 256, 160)), ("prob_global", GLAMSingleOutput, (1, 2))],
)
def test_glam_network_modes_share_weights(output_key, cls, shape):
    torch.manual_seed(0)
    reference = networks.glam_network("tiny").eval()
    net = networks.glam_network("tiny", output_key=output_key).eval()
    assert type(net) is cls
    net.load_state_dict(reference.state_dict())  # same keys and shapes in both modes
    if shape is not None:
        x = torch.randn(1, 1, 256, 160)
        with torch.no_grad():
            out = net(x)
            assert tuple(out.shape) == shape
            torch.testing.assert_close(out, reference(x)[output_key])


def test_glam_network_overrides_and_windows():
    net = networks.glam_network("tiny", num_patches=2)
    assert net.region_proposal.num_patches == 2
    assert networks.preset_window("paper") == (2944, 1920)
    assert networks.preset_window("tiny") == (256, 160)


def test_load_initial_weights(tmp_path):
    net = networks.glam_network("tiny")
    assert engines.load_initial_weights(net, None) is net
    with pytest.raises(FileNotFoundError, match="Train the previous stage first"):
        engines.load_initial_weights(net, tmp_path / "model_global.pt")
    other = networks.glam_network("tiny")
    torch.save({"network": other.state_dict()}, tmp_path / "last.pt")
    engines.load_initial_weights(net, tmp_path / "last.pt")
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), other.state_dict().values(), strict=True))


def test_publish_checkpoint(tmp_path):
    assert engines.publish_checkpoint(tmp_path / "missing.pt", tmp_path / "model.pt") is None
    assert not (tmp_path / "model.pt").exists()
    (tmp_path / "model_local.pt").write_bytes(b"weights")
    assert engines.publish_checkpoint(tmp_path / "model_local.pt", tmp_path / "model.pt")
    assert (tmp_path / "model.pt").read_bytes() == b"weights"


def test_read_inference_items_labels_optional(tmp_path):
    datalist = tmp_path / "datalist.json"
    items = [{"image": "a.png", "laterality": "left"}, {"image": "b.png", "label": [0, 1], "view": "mlo"}]
    datalist.write_text(json.dumps({"test": items}))
    found = read_datalist(datalist, "test", require_label=False)
    assert [item["image"] for item in found] == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    assert "label" not in found[0] and found[1]["label"] == [0, 1]
    assert found[0]["laterality"] == "L" and found[1]["view"] == "MLO"
    datalist.write_text(json.dumps({"test": [{"image": "c.png", "label": [0, 1, 1]}]}))
    with pytest.raises(ValueError, match=r"test\[0\]"):
        read_datalist(datalist, "test", require_label=False)
    with pytest.raises(FileNotFoundError):
        read_datalist(tmp_path / "nope.json", "test", require_label=False)


def test_is_main_process_without_distributed():
    assert utils.is_main_process()
