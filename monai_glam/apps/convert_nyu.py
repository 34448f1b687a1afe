"""``monai-glam convert-nyu IN OUT``: turn a published GLAM checkpoint into a plain monai_glam state dict."""

from __future__ import annotations

import argparse
import os
import warnings
from typing import Any

import torch

from monai_glam.handlers.last_checkpoint import write_checkpoint

__all__ = ["add_parser", "convert_nyu_checkpoint"]


def convert_nyu_checkpoint(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> int:
    """Convert ``src`` (published layout) into ``dst`` (``GLAM.state_dict()`` layout), atomically.

    A file in any other layout (a monai_glam state dict or training checkpoint, another model's weights) is
    refused in one line saying why. The converted weights are loaded into a paper-configuration
    :class:`~monai_glam.networks.GLAM` first, so a file is only written when every key and shape fits.

    Returns:
        The number of tensors written.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a published GLAM checkpoint, or an unreadable, unsafe or non-finite one, or weights that
            do not fit the paper's GLAM (one line naming the file).
    """
    from monai_glam.networks import load_nyu_glam
    from monai_glam.networks.nyu_checkpoint import published_layout_problem

    problem = published_layout_problem(_peek(src))
    if problem is not None:
        raise ValueError(f"{src} is not a published GLAM checkpoint (model_sep.ckpt / model_joint.ckpt): {problem}")
    model = load_nyu_glam(src)
    state = model.state_dict()
    write_checkpoint(state, dst)  # atomic; a failed write (disk full) is one OSError line naming the file
    return len(state)


def _peek(src: str | os.PathLike[str]) -> Any:
    """The file's content with every tensor on the ``meta`` device (no weights read), to check its key layout.

    Read with ``weights_only=True``, so nothing in the file runs. ``None`` when it cannot be read that way:
    :func:`~monai_glam.networks.load_nyu_glam` then reports why in one line.
    """
    if not os.path.isfile(src) or os.path.getsize(src) == 0:  # never open a FIFO or device
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. old pickle protocols; the real read reports problems
            return torch.load(src, map_location="meta", weights_only=True)
    except Exception:  # torch raises many types for missing, corrupt or unsafe files; the real read names them
        return None


def _run(args: argparse.Namespace) -> int:
    if os.path.lexists(args.dst) and not args.overwrite:
        raise ValueError(f"OUT {args.dst} already exists; pass --overwrite to replace it, or choose another path")
    count = convert_nyu_checkpoint(args.src, args.dst)
    print(f"wrote {count} tensors to {args.dst}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``convert-nyu`` on the ``monai-glam`` command line."""
    parser = subparsers.add_parser(
        "convert-nyu",
        help="convert a published GLAM checkpoint (model_sep.ckpt / model_joint.ckpt) to a monai_glam state dict",
        description=(
            "Read a published GLAM checkpoint safely (weights only), map its keys onto monai_glam's GLAM, check "
            "every key and shape, and write a plain state dict loadable with GLAM().load_state_dict(torch.load(OUT)). "
            "The published weights are under the NYU licence: do not redistribute them."
        ),
    )
    parser.add_argument("src", metavar="IN", help="published checkpoint")
    parser.add_argument("dst", metavar="OUT", help="where to write the converted state dict (.pt)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT (default: refuse)")
    parser.set_defaults(func=_run)
    return parser
