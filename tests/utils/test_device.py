"""Device names from the command line and configs."""

from __future__ import annotations

import pytest
import torch

from monai_glam.utils import resolve_device, resolve_process_device


@pytest.mark.parametrize(("name", "expected"), [("cpu", "cpu"), (torch.device("cpu"), "cpu"), ("auto", None)])
def test_resolve_device(name, expected) -> None:
    device = resolve_device(name)
    assert device.type == (expected or ("cuda" if torch.cuda.is_available() else "cpu"))


@pytest.mark.parametrize(
    ("name", "message"),
    [("tpu", "unknown device 'tpu'"), ("gpu7", "unknown device 'gpu7'")]
    + ([] if torch.cuda.is_available() else [("cuda:1", "CUDA is not available")])
    + ([] if torch.backends.mps.is_available() else [("mps", "no MPS")]),
)
def test_bad_devices_name_the_option(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_device(name)


def test_process_device_keeps_cpu_under_torchrun(monkeypatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_process_device("cpu") == torch.device("cpu")
