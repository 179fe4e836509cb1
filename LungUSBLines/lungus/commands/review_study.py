"""`lungus review-study --out DIR`: does reviewing the queue's first clips teach a model more than
reviewing random ones? (docs/review.md#does-the-queue-help)"""

from __future__ import annotations

import argparse

from lungus.commands.model_options import add_device_argument
from lungus.device import DEFAULT_DEVICE

DESCRIPTION = """\
On simulated data, per seed: train a B-line classifier on a noisy expert's labels
and a segmenter on a hurried rater's masks (B-lines erased from some clips), score
the training pool out of fold, rank it with the review queue, let the simulator's
truth review the first --review-share of the queue or as many random clips,
retrain, and score before, after the ranked review and after the random one on
held-out patients (AUC, Dice, 95 % patient-bootstrap intervals). Writes
DIR/report.md, DIR/summary.json and DIR/review_loop.png. How long the defaults
take, and what they gave: docs/review.md#does-the-queue-help."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "review-study",
        help="does reviewing the queue's first clips beat reviewing random ones? (simulated)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (new or empty)")
    parser.add_argument("--clips", type=int, metavar="N", help="training-pool clips per seed (default 120)")
    parser.add_argument("--patients", type=int, metavar="P", help="their patients (default: clips / 2.5)")
    parser.add_argument("--test-clips", dest="test_clips", type=int, metavar="N",
                        help="held-out clips per seed (default 120)")
    parser.add_argument("--seeds", type=int, metavar="N", help="how many seeds (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--epochs", type=int, metavar="N", help="classifier epochs (default 16)")
    parser.add_argument("--seg-epochs", dest="seg_epochs", type=int, metavar="N",
                        help="segmenter epochs (default 16)")
    parser.add_argument("--folds", type=int, metavar="K", help="out-of-fold scoring folds (default 3)")
    parser.add_argument("--seg-folds", dest="seg_folds", type=int, metavar="K",
                        help="the segmenter's out-of-fold folds (default 2)")
    parser.add_argument("--review-share", dest="review_share", type=float, metavar="F",
                        help="share of the pool reviewed (default 0.2)")
    parser.add_argument("--no-segmenter", dest="segmenter", action="store_false", help="the classifier loop only")
    add_device_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier study in --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shlex

    from lungus.studies.review_loop import ReviewStudyConfig, run_review_study

    changes = {name: getattr(args, name) for name in ("clips", "patients", "test_clips", "seeds", "epochs",
                                                      "seg_epochs", "folds", "seg_folds", "review_share")
               if getattr(args, name) is not None}
    if "clips" in changes and "patients" not in changes:
        changes["patients"] = max(1, round(changes["clips"] / 2.5))
    if "test_clips" in changes:
        changes["test_patients"] = max(2, round(changes["test_clips"] / 2.5))
    config = ReviewStudyConfig(**changes, seed=args.seed, segmenter=args.segmenter, device=args.device)
    words = ["lungus", "review-study", "--out", args.out]
    for name, value in changes.items():
        if getattr(args, name, None) is not None:
            words += [f"--{name.replace('_', '-')}", str(value)]
    words += [] if args.seed == 0 else ["--seed", str(args.seed)]
    words += [] if args.segmenter else ["--no-segmenter"]
    words += [] if args.device == DEFAULT_DEVICE else ["--device", args.device]
    command = " ".join(shlex.quote(word) for word in words)
    summary = run_review_study(args.out, config, overwrite=args.overwrite, command=command)
    mean = summary["mean"]["classifier"]
    print("mean test AUC: " + ", ".join(f"{arm} {mean[arm]:.3f}" for arm in ("before", "ranked", "random")
                                        if mean[arm] is not None))
    if "segmenter" in summary["mean"]:
        seg = summary["mean"]["segmenter"]
        print("mean test B-line Dice: " + ", ".join(f"{arm} {seg[arm]['dice_b_line']:.3f}"
                                                   for arm in ("before", "ranked", "random")
                                                   if seg[arm]["dice_b_line"] is not None))
    print(f"report: {args.out}/report.md")
    return 0
