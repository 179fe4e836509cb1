"""lungus ensemble: several trained clip classifiers as one model file."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Write one model file whose output is the average of the class probabilities of MODEL files: models
of the same task trained with the same input settings (size, frames, layout, normalisation), for
example runs with different --seed, or the fold models of a cross-validation (lungus train --folds
K writes that ensemble as RUN/model.pt itself). The ensemble runs everywhere a model file does:
lungus evaluate, infer (Grad-CAM at the first member), export, and the Slicer modules."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ensemble",
        help="average several trained classifiers into one model file",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("models", nargs="+", metavar="MODEL", help="model files (.pt) or run folders")
    parser.add_argument("--out", required=True, metavar="PATH", help="the ensemble's model file")
    parser.add_argument("--name", default="", help="short id for result tables (default: the file name)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lungus.models.ensemble import write_ensemble_file

    members = [Path(m) / "model.pt" if Path(m).is_dir() else Path(m) for m in args.models]
    path = write_ensemble_file(args.out, members, name=args.name)
    print(f"wrote {path}: {len(members)} models averaged")
    return 0
