"""Write GLAM weights in the published checkpoint's key layout, so tests need no published file."""

from __future__ import annotations

import re

import torch

# monai_glam name -> published name; written independently of the importer's rules as a cross-check.
_INVERSE_RULES: tuple[tuple[str, str], ...] = (
    (r"global_network\.backbone\.stem\.weight", "global_network.downsampling_branch.first_conv.weight"),
    (
        r"global_network\.backbone\.stages\.(\d+)\.(\d+)\.norm(\d)\.(\w+)",
        r"global_network.downsampling_branch.layer_list.\1.\2.bn\3.\4",
    ),
    (
        r"global_network\.backbone\.stages\.(\d+)\.(\d+)\.conv(\d)\.weight",
        r"global_network.downsampling_branch.layer_list.\1.\2.conv\3.weight",
    ),
    (
        r"global_network\.backbone\.stages\.(\d+)\.(\d+)\.shortcut\.weight",
        r"global_network.downsampling_branch.layer_list.\1.\2.downsample.0.weight",
    ),
    (r"global_network\.backbone\.final_norm\.(\w+)", r"global_network.downsampling_branch.final_bn.\1"),
    (r"global_network\.heads\.0\.weight", "global_network.postprocess_module.gn_conv_1.weight"),
    (r"global_network\.heads\.1\.weight", "global_network.postprocess_module.gn_conv_2.weight"),
    (r"global_network\.heads\.2\.weight", "global_network.postprocess_module.gn_conv_last.weight"),
    (r"local_network\.stem\.conv\.weight", "detection_network.dn_resnet.conv1.weight"),
    (r"local_network\.stem\.norm\.(\w+)", r"detection_network.dn_resnet.bn1.\1"),
    (r"local_network\.head\.weight", "detection_network.gn_conv_last.weight"),
)


def _local(key: str) -> str | None:
    match = re.fullmatch(r"local_network\.stages\.(\d)\.(\d+)\.(conv1|conv2|shortcut)\.(conv|norm)\.(\w+)", key)
    if match is None:
        return None
    stage, block, part, kind, leaf = match.groups()
    prefix = f"detection_network.dn_resnet.layer{int(stage) + 1}.{block}."
    if part == "shortcut":
        return prefix + ("downsample.0." if kind == "conv" else "downsample.1.") + leaf
    index = part[-1]
    return prefix + (f"conv{index}." if kind == "conv" else f"bn{index}.") + leaf


def to_nyu_layout(state: dict[str, torch.Tensor], with_unused: bool = True) -> dict[str, torch.Tensor]:
    """Rename a ``GLAM.state_dict()`` to the published layout, optionally adding the published unused keys."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new_key = _local(key)
        for pattern, replacement in _INVERSE_RULES:
            if new_key is None and re.fullmatch(pattern, key):
                new_key = re.sub(pattern, replacement, key)
        assert new_key is not None, key
        out[new_key] = value
    if with_unused:
        out["global_network.postprocess_module.combine.weight"] = torch.zeros(2, 6, 1, 1)
        out["mil.mil_attn_V.weight"] = torch.zeros(4, 4)
        out["fusion_dnn.weight"] = torch.zeros(2, 4)
        out["shared_rep_filter.weight"] = torch.zeros(4)
    return out


def randomize_batch_norms(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every batch norm non-trivial statistics and affine parameters."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            size = module.num_features
            module.running_mean.copy_(torch.rand(size, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            module.bias.data.copy_(torch.rand(size, generator=generator) - 0.5)
