"""`lungus review-queue RESULTS... --out queue.csv`: the clips worth reviewing first (docs/review.md#review-queue)."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Rank the clips of one or more `lungus infer` output folders (several: the members
of an ensemble, fold models or seeds over the same clips) by how much a review
would teach, and write the ranking as a CSV: rank, clip, score, model_label,
probability, patient, zone, and every signal behind the score, each in [0, 1]:

  uncertainty                         the prediction near the decision threshold
  member_disagreement                 the results folders disagree (BALD)
  classifier_segmenter_disagreement   e.g. "present" with no B-line pixels
  crowd_model_disagreement            the model against the manifest's labels
  mask_model_disagreement             the segmenter against the manifest's masks

The score is their weighted mean (--weight). The Slicer review module walks the
CSV with next/previous. Details: docs/review.md#review-queue."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "review-queue",
        help="rank inferred clips by how much a review would teach: uncertainty and disagreements",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("results", nargs="+", metavar="RESULTS",
                        help="`lungus infer` output folder (or its clips.jsonl); several for ensemble members")
    parser.add_argument("--out", required=True, metavar="CSV", help="the queue CSV to write")
    parser.add_argument("--manifest", metavar="M", help="manifest holding the clips: patient, zone, reference "
                        "labels (crowd_model_disagreement) and masks (mask_model_disagreement)")
    parser.add_argument("--label-source", dest="label_source", metavar="SOURCE",
                        help="the manifest's reference labels: crowd-soft | crowd-majority | crowd-ds | expert:NAME "
                        "| expert-majority | bline2/bline3/lus4 (default: crowd-soft, else the task's column, else "
                        "the expert majority)")
    parser.add_argument("--top", type=int, metavar="N", help="keep the first N clips (default: all)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="bline2: P(present) at which the decision flips (default 0.5)")
    parser.add_argument("--weight", action="append", default=[], metavar="NAME=VALUE",
                        help="a signal's weight in the score (defaults: crowd_model_disagreement 3, the others 1); "
                        "repeatable")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lungus.review.queue import QueueConfig, QueueWeights, review_queue, write_queue_csv

    config = QueueConfig(weights=QueueWeights.parse(args.weight), threshold=args.threshold,
                         label_source=args.label_source)
    entries = review_queue(args.results, manifest=args.manifest, config=config, top=args.top)
    path = write_queue_csv(entries, args.out)
    for entry in entries[:10]:
        strongest = max(entry.reasons, key=entry.reasons.get) if entry.reasons else "-"
        label = entry.model_label or "-"
        print(f"{entry.rank:>4}  {entry.score:.3f}  {label:>9}  {strongest:<34} {Path(entry.clip).name}")
    more = " (first 10 above)" if len(entries) > 10 else ""
    print(f"wrote {len(entries)} clips, most worth reviewing first, to {path}{more}")
    return 0
