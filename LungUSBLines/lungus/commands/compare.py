"""lungus compare: paired AUC difference of two models on the same clips."""

from __future__ import annotations

import argparse

from lungus.commands.model_options import add_device_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="paired comparison of two models (AUC difference, bootstrap CI, p-value)",
        description="RUN_A and RUN_B are run folders (with model.pt), model files, or folders holding a "
        "predictions.csv (from lungus evaluate or cross-validation). With --manifest both models are scored on "
        "it; the AUC difference A - B gets a paired patient-bootstrap 95% CI and a two-sided p-value. The ROC "
        "figure names each curve by its model card's name (else the run folder's); --names overrides them.",
    )
    parser.add_argument("run_a", metavar="RUN_A")
    parser.add_argument("run_b", metavar="RUN_B")
    parser.add_argument("--manifest", help="score both models on this manifest")
    parser.add_argument("--labels", help="reference labels (as in lungus evaluate)")
    parser.add_argument("--out", default="compare_out", help="output folder (comparison.json, roc_compare.png)")
    parser.add_argument("--n-boot", dest="n_boot", type=int, default=2000,
                        help="paired bootstrap replicates (default 2000)")
    add_device_argument(parser, "for scoring with --manifest")
    parser.add_argument("--names", nargs=2, metavar=("NAME_A", "NAME_B"),
                        help="what to call the two runs in the figure and the output (e.g. crowd-trained expert-trained)")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from lungus.evaluate.compare_runs import compare_runs

    result = compare_runs(Path(args.run_a), Path(args.run_b), manifest=args.manifest and Path(args.manifest),
                          out=Path(args.out), labels=args.labels, n_boot=args.n_boot, device=args.device,
                          names=tuple(args.names) if args.names else None)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        low, high = result["auc_diff_ci"] or (float("nan"), float("nan"))
        print(f"AUC A ({result['name_a']}) {result['auc_a']:.3f} vs B ({result['name_b']}) {result['auc_b']:.3f}: "
              f"difference {result['auc_diff']:+.3f} "
              f"[{low:+.3f}, {high:+.3f}], p = {result['p_value']:.3g} ({result['n_clips']} clips, "
              f"{result['n_patients']} patients, {result['method']})")
    return 0
