"""The --max-voxels option shared by the commands that read clips (info, convert)."""

from __future__ import annotations

import argparse


def add_max_voxels_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-voxels",
        type=int,
        default=None,
        metavar="N",
        help="refuse clips with more frames x rows x columns than this (default 1.5e9)",
    )


def max_voxels(args: argparse.Namespace) -> int:
    """The --max-voxels value, or the reader's default; a one-line error if it is not positive."""
    from lungus.errors import LungUSError
    from lungus.io import DEFAULT_MAX_VOXELS

    value = DEFAULT_MAX_VOXELS if args.max_voxels is None else args.max_voxels
    if value <= 0:
        raise LungUSError(f"--max-voxels must be a positive number, got {value}")
    return value
