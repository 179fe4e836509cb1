"""lungus demo: the end-to-end run on simulated data (no private data needed)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="simulate, train crowd- and expert-trained models, evaluate and compare them",
        description="The main job, end to end on CPU with no private data: simulate a crowd-labelled collection, "
        "train a crowd-trained and an expert-trained classifier, score both on held-out patients against "
        "truth, compare them, and write DIR/report.md and DIR/summary.json.",
    )
    parser.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    parser.add_argument("--quick", action="store_true", help="a smaller run (about 75 s on 2 CPU cores; the default takes about 3 minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier demo in --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from lungus.demo import DemoConfig, run_demo

    config = DemoConfig.quick() if args.quick else DemoConfig()
    config = dataclasses.replace(config, seed=args.seed)
    result = run_demo(args.out, config, overwrite=args.overwrite)
    crowd, expert = result["crowd"], result["expert"]
    print(f"held-out AUC: crowd-trained {crowd['auc']:.3f}, expert-trained {expert['auc']:.3f} "
          f"(difference {result['comparison']['auc_diff']:+.3f}, p = {result['comparison']['p_value']:.3g})")
    print(f"report: {args.out}/report.md")
    return 0
