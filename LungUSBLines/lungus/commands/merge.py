"""`lungus merge MANIFEST... --out OUT [--train-only MANIFEST...]`: several manifests as one."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Write one manifest with the clips of several: clip and mask paths are rewritten
relative to OUT's folder, columns are the union (blank where a manifest lacks one).
Clips of --train-only manifests are marked `train_only` = yes: `lungus train`
puts them in the training set of every fold and never holds them out, validates
or scores them, and `lungus split` gives them no fold. Use it for simulated clips
with dense truth beside real clips that have clip labels only
(docs/segmenter-weak-labels.md#simulated-truth-beside-weak-labels).

Refused: a clip listed twice, and a patient id with clips in a train-only and in
another manifest (its clips would train the models that score them)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="several manifests as one (some clips marked train-only)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("manifests", nargs="+", metavar="MANIFEST", help="manifests whose clips are scored")
    parser.add_argument("--train-only", dest="train_only", nargs="+", default=[], metavar="MANIFEST",
                        help="manifests whose clips only train (in every fold, never scored)")
    parser.add_argument("--out", required=True, metavar="OUT", help="the merged manifest CSV")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lungus.data.manifests.merge import merge_manifests

    merged = merge_manifests(args.out, args.manifests, args.train_only)
    target = merged.save()
    train_only = merged.train_only()
    patients = {only: {p for p, o in zip(merged.patients, train_only) if o == only} for only in (False, True)}
    n_only = sum(train_only)
    print(f"{target}: {len(merged) - n_only} clips of {len(patients[False])} patients"
          + (f", and {n_only} train-only clips of {len(patients[True])} patients" if n_only else ""))
    return 0
