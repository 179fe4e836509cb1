"""`lungus split MANIFEST --folds K`: assign folds by patient, stratified by label."""

from __future__ import annotations

import argparse
import textwrap

from lungus.data.labels.tasks import CLASSIFICATION_TASKS

DESCRIPTION = """\
Write a `fold` column (0..K-1) so that every clip of a patient falls in one fold
and each fold has about the same class mix (scikit-learn StratifiedGroupKFold,
shuffled by --seed: the same seed gives the same folds). Labels to stratify by:
--stratify SOURCE (bline3, bline2, lus4, truth, crowd-majority, expert:NAME,
expert-majority); by default the first of the bline3/lus4/bline2 columns, then
truth, then the crowd majority vote, then the experts. The manifest is rewritten
in place atomically, or written to --out (its clip paths are rewritten relative
to the new file's folder).

{next_step}"""


def next_step(folds: int | str) -> str:
    """What the next `lungus train` does with the folds: nothing unless told."""
    return (f"lungus train ignores the fold column unless told: train with --fold K to hold out fold K "
            f"(--folds {folds} cross-validates over these folds)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "split",
        help="assign folds by patient, stratified by label",
        description=DESCRIPTION.format(next_step=textwrap.fill(next_step("K"), 80)),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("manifest", metavar="MANIFEST", help="manifest CSV")
    parser.add_argument("--folds", type=int, required=True, metavar="K", help="number of folds (>= 2)")
    parser.add_argument("--seed", type=int, default=0, help="shuffling seed (default 0)")
    parser.add_argument(
        "--stratify", metavar="SOURCE", help="label source to stratify by (default: see above)"
    )
    parser.add_argument("--scheme", choices=CLASSIFICATION_TASKS, help="scheme of those labels")
    parser.add_argument("--opinions", metavar="FILE", help="opinions CSV, for --stratify crowd-ds")
    parser.add_argument("--out", metavar="PATH", help="write here instead of rewriting MANIFEST")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    import numpy as np

    from lungus.data.labels.schemes import scheme_classes
    from lungus.data.manifests.manifest import Manifest
    from lungus.data.manifests.split import split_manifest
    from lungus.errors import LungUSError

    if args.folds < 2:
        raise LungUSError(f"--folds must be at least 2, got {args.folds}")
    manifest = Manifest.load(args.manifest)
    split = split_manifest(manifest, args.folds, args.seed, args.stratify, args.scheme, args.opinions)
    target = manifest.save(args.out)

    patients = np.asarray(manifest.patients)
    labels = split.labels
    header = f"{'fold':>4} {'clips':>6} {'patients':>8}"
    if labels is not None:
        classes = scheme_classes(split.scheme)
        header += "".join(f" {name:>10}" for name in classes) + (" unlabelled" if (labels < 0).any() else "")
    how = f"stratified by {split.source} ({split.scheme})" if split.source else "not stratified (no labels)"
    print(f"{target}: {args.folds} folds by patient, seed {args.seed}, {how}")
    print(header)
    for fold in range(args.folds):
        rows = split.folds == fold
        line = f"{fold:>4} {int(rows.sum()):>6} {len(set(patients[rows].tolist())):>8}"
        if labels is not None:
            counts = np.bincount(labels[rows & (labels >= 0)], minlength=len(classes))
            line += "".join(f" {int(c):>10}" for c in counts)
            if (labels < 0).any():
                line += f" {int((rows & (labels < 0)).sum()):>10}"
        print(line)
    print(next_step(args.folds))
    return 0
