"""The `lungus` command line.

Each subcommand lives in ``lungus.commands.<name>`` (``-`` in a command's name is ``_`` in its
module's: review-queue is lungus.commands.review_queue) and exposes ``register(subparsers)``
(which builds its parser and sets ``func``). Command modules import only argparse at the
top so ``lungus --help`` stays fast; heavy imports happen inside their ``run``.

Bad input raises LungUSError, which is printed as one line; the exit status is 2. A stop
request (Ctrl+C, or lungus.job_control's stop file) ends a command as KeyboardInterrupt: it
keeps what it has done, and the exit status is 130.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from lungus import __version__
from lungus.errors import LungUSError
from lungus.job_control import listening
from lungus.model_calls import exit_process

# Order here is the order in `lungus --help`: the data -> models -> train -> infer flow.
COMMANDS = (
    "info",
    "convert",
    "simulate",
    "sim-fit",
    "validate",
    "split",
    "merge",
    "labels",
    "features",
    "pretrain",
    "train",
    "evaluate",
    "compare",
    "ensemble",
    "export",
    "infer",
    "analyse",
    "explain",
    "review-queue",
    "demo",
    "bench",
    "review-study",
    "realism",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lungus",
        description="Find B-lines in lung-ultrasound clips: read, simulate, train, evaluate, infer.",
    )
    parser.add_argument("--version", action="version", version=f"lungus {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"lungus.commands.{name.replace('-', '_')}").register(subparsers)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """``warnings.showwarning`` for the CLI: ``warning: TEXT`` on one line, without Python's source line."""
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr if file is None else file)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        # Stop requests (Ctrl+C, or the stop file of a program that started us) arrive as KeyboardInterrupt.
        with listening(), warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            result = args.func(args)
    except LungUSError as error:
        print(f"lungus {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lungus {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `lungus info ... | head` closed our stdout: not an error worth a traceback.
        sys.stderr.close()
        return 0
    return int(result or 0)


if __name__ == "__main__":
    exit_process(main())  # os._exit while a timed-out model call still runs
