"""MONAI's bundle checks and exports on the bundle: verify_net_in_out, ckpt_export (TorchScript), the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from monai_glam.networks import glam_network
from monai_glam.utils.enums import GLAMKeys
from tests.bundle.conftest import BUNDLE_DIR, CONFIG_WARNING, CONFIGS

pytestmark = pytest.mark.filterwarnings(CONFIG_WARNING, "ignore::DeprecationWarning")

META = str(CONFIGS / "metadata.json")
INFER = str(CONFIGS / "inference.json")


def test_verify_net_in_out_single_tensor_mode():
    from monai.bundle import verify_net_in_out

    # The default preset at the metadata's input size, in the single-tensor mode the check needs.
    verify_net_in_out(
        net_id="network_def", meta_file=META, config_file=INFER, device="cpu", **{"network_def#output_key": "saliency"}
    )


def test_verify_net_in_out_detects_wrong_channels():
    from monai.bundle import verify_net_in_out

    with pytest.raises(ValueError, match="output channel number"):
        verify_net_in_out(
            net_id="network_def",
            meta_file=META,
            config_file=INFER,
            device="cpu",
            **{"network_def#output_key": "saliency", "network_def#num_classes": 3},  # metadata: 2 channels
        )


@pytest.mark.parametrize("output_key", [None, "saliency"])
def test_ckpt_export_reproduces_eager_outputs(trained_bundle, tmp_path, output_key):
    from monai.bundle import ckpt_export

    exported = tmp_path / "model.ts"
    overrides = {"preset": "tiny"} if output_key is None else {"preset": "tiny", "network_def#output_key": output_key}
    ckpt_export(
        net_id="network_def",
        filepath=str(exported),
        ckpt_file=str(trained_bundle / "models" / "model.pt"),
        meta_file=META,
        config_file=INFER,
        **overrides,
    )
    scripted = torch.jit.load(str(exported))
    eager = glam_network("tiny").eval()
    eager.load_state_dict(torch.load(trained_bundle / "models" / "model.pt", weights_only=True))
    x = torch.randn(2, 1, 256, 160, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, actual = eager(x), scripted(x)
    if output_key is not None:
        torch.testing.assert_close(actual, expected[output_key], rtol=1e-5, atol=1e-6)
        return
    assert set(actual) == {k.value for k in GLAMKeys}
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value, rtol=1e-5, atol=1e-6, msg=key)
    extra = {"metadata.json": "", "inference.json": ""}
    torch.jit.load(str(exported), _extra_files=extra)
    assert json.loads(extra["metadata.json"])["network_data_format"]["outputs"]["pred"]["num_channels"] == 2
    assert json.loads(extra["inference.json"]) == json.loads(Path(INFER).read_text())  # MONAI stores the file as is


@pytest.mark.slow  # torchrun / a subprocess bundle run: tens of seconds on 2 cores
def test_cli_verify_net_in_out_as_documented():
    """The README's command line (fire parses ``--network_def#output_key``)."""
    command = [
        sys.executable,
        "-W",
        "ignore",
        "-m",
        "monai.bundle",
        "verify_net_in_out",
        "network_def",
        "--meta_file",
        "configs/metadata.json",
        "--config_file",
        "configs/inference.json",
        "--network_def#output_key",
        "saliency",
        "--preset",
        "tiny",
        "--_meta_#network_data_format#inputs#image#spatial_shape",
        "[256,160]",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    result = subprocess.run(command, cwd=BUNDLE_DIR, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "data shape of network is verified with no error" in result.stdout + result.stderr
