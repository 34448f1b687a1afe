"""Import the published GLAM checkpoints (``model_sep.ckpt`` / ``model_joint.ckpt``) into :class:`GLAM`.

The published files are plain PyTorch state dicts in the old (non-zip) serialization format. Their keys
live under ``global_network.downsampling_branch.*``, ``global_network.postprocess_module.*``,
``detection_network.dn_resnet.*`` and ``detection_network.gn_conv_last.weight``; the real files also carry
weights that inference never uses. The weights are under a restrictive NYU licence and are not distributed
with monai_glam: users bring their own copy.

This module only knows the published key layout; :mod:`monai_glam.networks.io` reads the files (every
checkpoint reader of the package goes through :func:`monai_glam.networks.io.read_glam_state_dict`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch

from monai_glam.networks.nets.glam import GLAM

__all__ = [
    "IGNORED_NYU_KEYS",
    "NYU_KEY_PREFIXES",
    "convert_nyu_state_dict",
    "is_nyu_state_dict",
    "load_nyu_glam",
    "published_layout_problem",
]

#: Keys (regular expressions) of the published checkpoints that the published forward pass never uses:
#: the MIL and fusion heads, a shared filter, and the 6→2 ``combine`` convolution of the global module.
IGNORED_NYU_KEYS: tuple[str, ...] = (
    r"mil\..+",
    r"fusion_dnn\..+",
    r"shared_rep_filter\.weight",
    r"global_network\.postprocess_module\.combine\.weight",
)

#: Key prefixes that only the published checkpoints use; :func:`is_nyu_state_dict` detects the layout by them.
NYU_KEY_PREFIXES: tuple[str, ...] = (
    "global_network.downsampling_branch.",
    "global_network.postprocess_module.",
    "detection_network.",
)

#: Key prefixes of :class:`GLAM`'s own parameter names (a converted or trained state dict).
_GLAM_KEY_PREFIXES: tuple[str, ...] = ("global_network.backbone.", "global_network.heads.", "local_network.")
#: Entries under which checkpoints keep their weights (as :mod:`monai_glam.networks.io` unwraps them).
_WRAPPER_KEYS: tuple[str, ...] = ("network", "state_dict", "model")

_GLOBAL = r"global_network\.downsampling_branch\."
_LOCAL = r"detection_network\.dn_resnet\."


def _local_stage(match: re.Match[str]) -> str:
    stage = int(match.group(1)) - 1  # torchvision-style layer1..layer4 -> stages.0..3
    return f"local_network.stages.{stage}.{match.group(2)}."


# (pattern, replacement) pairs applied with re.fullmatch; the first match wins.
_KEY_RULES: tuple[tuple[str, str | Callable[[re.Match[str]], str]], ...] = (
    (_GLOBAL + r"first_conv\.weight", "global_network.backbone.stem.weight"),
    (_GLOBAL + r"layer_list\.(\d+)\.(\d+)\.bn([12])\.(\w+)", r"global_network.backbone.stages.\1.\2.norm\3.\4"),
    (_GLOBAL + r"layer_list\.(\d+)\.(\d+)\.conv([12])\.weight", r"global_network.backbone.stages.\1.\2.conv\3.weight"),
    (
        _GLOBAL + r"layer_list\.(\d+)\.(\d+)\.downsample\.0\.weight",
        r"global_network.backbone.stages.\1.\2.shortcut.weight",
    ),
    (_GLOBAL + r"final_bn\.(\w+)", r"global_network.backbone.final_norm.\1"),
    (r"global_network\.postprocess_module\.gn_conv_1\.weight", "global_network.heads.0.weight"),
    (r"global_network\.postprocess_module\.gn_conv_2\.weight", "global_network.heads.1.weight"),
    (r"global_network\.postprocess_module\.gn_conv_last\.weight", "global_network.heads.2.weight"),
    (_LOCAL + r"conv1\.weight", "local_network.stem.conv.weight"),
    (_LOCAL + r"bn1\.(\w+)", r"local_network.stem.norm.\1"),
    (_LOCAL + r"layer(\d)\.(\d+)\.conv([12])\.weight", lambda m: _local_stage(m) + f"conv{m.group(3)}.conv.weight"),
    (_LOCAL + r"layer(\d)\.(\d+)\.bn([12])\.(\w+)", lambda m: _local_stage(m) + f"conv{m.group(3)}.norm.{m.group(4)}"),
    (_LOCAL + r"layer(\d)\.(\d+)\.downsample\.0\.weight", lambda m: _local_stage(m) + "shortcut.conv.weight"),
    (_LOCAL + r"layer(\d)\.(\d+)\.downsample\.1\.(\w+)", lambda m: _local_stage(m) + f"shortcut.norm.{m.group(3)}"),
    (r"detection_network\.gn_conv_last\.weight", "local_network.head.weight"),
)


def _rename(key: str) -> str | None:
    for pattern, replacement in _KEY_RULES:
        match = re.fullmatch(pattern, key)
        if match is not None:
            return replacement(match) if callable(replacement) else match.expand(replacement)
    return None


def is_nyu_state_dict(state: Mapping[str, Any]) -> bool:
    """Whether a state dict uses the published checkpoints' key names (:data:`NYU_KEY_PREFIXES`)."""
    return any(str(key).startswith(NYU_KEY_PREFIXES) for key in state)


def published_layout_problem(loaded: Any) -> str | None:
    """Why a loaded checkpoint is not in the published layout, in words; ``None`` when it is (or is no dict).

    Weights wrapped under ``network``, ``state_dict`` or ``model`` are looked into. Anything that is not a
    mapping gives ``None``: :func:`~monai_glam.networks.io.read_glam_state_dict` has the words for that.

    Args:
        loaded: what ``torch.load(..., weights_only=True)`` returned for the file.

    Returns:
        ``None``, or a reason such as ``"its keys are already monai_glam's GLAM names ..."``.
    """
    state = loaded
    for _ in _WRAPPER_KEYS:
        if not isinstance(state, Mapping) or is_nyu_state_dict(state):
            break
        inner = next((state[key] for key in _WRAPPER_KEYS if isinstance(state.get(key), Mapping)), None)
        if inner is None:
            break
        state = inner
    if not isinstance(state, Mapping) or not state or is_nyu_state_dict(state):
        return None
    keys = [str(key) for key in state]
    if all(key.startswith(_GLAM_KEY_PREFIXES) for key in keys):
        return (
            f"its {len(keys)} keys are already monai_glam's GLAM names ({keys[0]}, ...), so there is nothing to "
            "convert; pass it to --checkpoint or --init as it is"
        )
    examples = ", ".join(key if len(key) <= 60 else key[:57] + "..." for key in keys[:3])
    prefixes = ", ".join(NYU_KEY_PREFIXES[:-1]) + f" or {NYU_KEY_PREFIXES[-1]}"
    return f"none of its {len(keys)} keys starts with {prefixes} (first keys: {examples})"


def convert_nyu_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a published-layout state dict to :class:`GLAM`'s parameter names.

    Known-unused keys (:data:`IGNORED_NYU_KEYS`) are dropped by name; any other key that has no place in
    GLAM is an error.

    Args:
        state_dict: the published checkpoint's state dict.

    Returns:
        A new state dict with monai_glam names (tensors are shared, not copied).

    Raises:
        ValueError: listing every key that is neither mapped nor known to be unused.
    """
    converted: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in state_dict.items():
        if any(re.fullmatch(pattern, key) for pattern in IGNORED_NYU_KEYS):
            continue
        new_key = _rename(key)
        if new_key is None:
            unknown.append(key)
        else:
            converted[new_key] = value
    if unknown:
        raise ValueError(f"{len(unknown)} unexpected key(s) in the published GLAM checkpoint: {', '.join(unknown)}.")
    return converted


def load_nyu_glam(path: str | os.PathLike[str], map_location: str | torch.device = "cpu", **glam_kwargs: Any) -> GLAM:
    """Build a :class:`GLAM` and load a published checkpoint into it.

    A thin wrapper over :func:`monai_glam.networks.io.load_glam_weights`, so it reads every layout that
    function reads (the published one included) with the same checks.

    Args:
        path: ``model_sep.ckpt`` or ``model_joint.ckpt`` (or a file in the same layout).
        map_location: the device of the returned model.
        glam_kwargs: :class:`GLAM` constructor arguments; the defaults are the published configuration.

    Returns:
        The model in eval mode.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: on an unreadable file, or unexpected, missing or mis-shaped keys (counted, with examples).
    """
    from monai_glam.networks.io import load_glam_weights  # io imports this module: import at call time

    return load_glam_weights(GLAM(**glam_kwargs), path).to(map_location).eval()
