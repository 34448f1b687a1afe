"""The ``monai-glam`` command line.

Each sub-command lives in its own module under :mod:`monai_glam.apps` and exposes
``add_parser(subparsers) -> argparse.ArgumentParser``; the returned parser must set a ``func`` default that
takes the parsed namespace and returns an exit code. User errors (bad paths, bad values) are raised as
:class:`~monai_glam.apps.errors.CommandError`, ``ValueError``, ``FileNotFoundError`` or ``OSError`` and
reported as one line on stderr instead of a traceback. A job stopped by SIGINT/SIGTERM
(:class:`~monai_glam.utils.signals.RunInterruptedError`) prints one line saying what was kept and exits 130 / 143.
Sub-command modules never import each other; options shared by several live in :mod:`monai_glam.apps.arguments`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence

from monai_glam.apps.arguments import OneLineArgumentParser
from monai_glam.apps.errors import CommandError
from monai_glam.utils.signals import RunInterruptedError

__all__ = ["build_parser", "main"]

# Modules that define sub-commands, in the order ``--help`` lists them.
_COMMAND_MODULES: tuple[str, ...] = (
    "monai_glam.apps.synth",
    "monai_glam.apps.train",
    "monai_glam.apps.infer",
    "monai_glam.apps.evaluate",
    "monai_glam.apps.convert_nyu",
    "monai_glam.apps.demo",
    "monai_glam.apps.monailabel_cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Create the top-level parser with every registered sub-command."""
    from monai_glam import __version__

    parser = OneLineArgumentParser(
        prog="monai-glam",
        description="GLAM weakly-supervised mammogram segmentation on MONAI.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error already printed as one line
        return int(done.code or 0) if not isinstance(done.code, str) else 2
    previous_format = warnings.formatwarning
    warnings.formatwarning = _one_line_warning(args.command)
    try:
        return int(args.func(args) or 0)
    except (CommandError, ValueError, FileNotFoundError, OSError) as err:
        print(f"monai-glam {args.command}: error: {err}", file=sys.stderr)
        return 2
    except RunInterruptedError as stopped:
        print(f"monai-glam {args.command}: {stopped}", file=sys.stderr)
        return stopped.exit_status
    except KeyboardInterrupt:  # Ctrl-C outside a safe point, or a second one: outputs are atomic, none is torn
        print(
            f"monai-glam {args.command}: interrupted; every file already written is complete "
            "(train: last.pt holds the last complete epoch, continue with --resume)",
            file=sys.stderr,
        )
        return 130
    finally:
        warnings.formatwarning = previous_format


def _one_line_warning(command: str) -> Callable[..., str]:
    """Python warnings as one line, ``monai-glam <command>: warning: <message>`` (no file name or source line)."""

    def format_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> str:
        text = " ".join(str(message).split())
        return f"monai-glam {command}: warning: {text}\n"

    return format_warning


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
