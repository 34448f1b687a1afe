from __future__ import annotations

import json

import pytest
import torch

from monai_glam.networks import GLAM, convert_nyu_state_dict, load_nyu_glam
from tests.networks.nyu_layout import randomize_batch_norms, to_nyu_layout
from tests.networks.small_configs import small


@pytest.fixture(scope="module")
def small_model() -> GLAM:
    torch.manual_seed(0)
    model = GLAM(**small())
    randomize_batch_norms(model)
    return model.eval()


@pytest.mark.parametrize("zip_format", [False, True])
@pytest.mark.parametrize("wrapped", [False, True])
def test_round_trip_through_published_layout(tmp_path, small_model, zip_format, wrapped):
    state = to_nyu_layout(small_model.state_dict())
    path = tmp_path / "model_sep.ckpt"
    torch.save({"state_dict": state} if wrapped else state, path, _use_new_zipfile_serialization=zip_format)
    loaded = load_nyu_glam(path, **small())
    assert not loaded.training
    for key, value in small_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    x = torch.randn(1, 1, 256, 160)
    with torch.no_grad():
        assert torch.equal(loaded(x)["saliency"], small_model(x)["saliency"])


def test_unknown_key_is_named(small_model):
    state = to_nyu_layout(small_model.state_dict())
    state["detection_network.extra_head.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"unexpected key\(s\).*detection_network\.extra_head\.weight"):
        convert_nyu_state_dict(state)


def test_missing_key_is_named(tmp_path, small_model):
    state = to_nyu_layout(small_model.state_dict())
    del state["detection_network.gn_conv_last.weight"]
    torch.save(state, tmp_path / "m.ckpt")
    with pytest.raises(ValueError, match=r"missing 1 key\(s\): local_network\.head\.weight"):
        load_nyu_glam(tmp_path / "m.ckpt", **small())


def test_mis_shaped_key_is_named(tmp_path, small_model):
    state = to_nyu_layout(small_model.state_dict())
    torch.save(state, tmp_path / "m.ckpt")
    with pytest.raises(ValueError, match=r"mis-shaped .*global_network\.backbone\.stem\.weight \(8, 1, 7, 7\) != \(16"):
        load_nyu_glam(tmp_path / "m.ckpt")  # paper configuration: every width differs


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_nyu_glam(tmp_path / "absent.ckpt")
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_nyu_glam(corrupt)


class _Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"weight": torch.zeros(1), "payload": _Payload()}, path)
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_nyu_glam(path)


def test_published_key_list_maps_completely(shared_dir):
    """Every key of the published layout either maps onto GLAM or is a known-unused one."""
    shapes = json.loads((shared_dir / "reference" / "nyu_layout_keys.json").read_text())
    state = {key: torch.zeros(shape) for key, shape in shapes.items()}
    converted = convert_nyu_state_dict(state)
    expected = GLAM().state_dict()
    assert set(converted) == set(expected)
    assert all(tuple(converted[k].shape) == tuple(expected[k].shape) for k in expected)


def test_published_layout_problem(small_model):
    from monai_glam.networks.nyu_checkpoint import published_layout_problem

    published = to_nyu_layout(small_model.state_dict())
    for loaded in (published, {"state_dict": published}, {"model": {"network": published}}):
        assert published_layout_problem(loaded) is None
    for loaded in (None, [], torch.zeros(2), {}):  # the reader has the words for what is no state dict
        assert published_layout_problem(loaded) is None
    ours = small_model.state_dict()
    assert published_layout_problem({"network": ours, "epoch": 1}) == (
        f"its {len(ours)} keys are already monai_glam's GLAM names (global_network.backbone.stem.weight, ...), so "
        "there is nothing to convert; pass it to --checkpoint or --init as it is"
    )
    assert published_layout_problem({"conv." + "x" * 80: torch.zeros(1), 3: torch.zeros(1)}) == (
        "none of its 2 keys starts with global_network.downsampling_branch., global_network.postprocess_module. or "
        f"detection_network. (first keys: conv.{'x' * 52}..., 3)"
    )
