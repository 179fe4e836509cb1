"""`lungus labels MANIFEST`: crowd consensus against experts and truth (Duggan 2023 analysis)."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Compare label sources: the crowd majority vote (from the crowd_* counts or the
opinions), Dawid-Skene over per-rater opinions (from --opinions, or opinions.csv
beside the manifest), each expert_<name> column, the expert majority, and the
simulator truth_* labels when present. Reports accuracy (concordance), Cohen's
kappa and confusion matrices; the crowd consensus against the expert panel's
majority next to each expert against the other experts (Duggan et al. 2023:
crowd 87.9 % vs individual experts 85.0 %); expert against expert; and each
rater's Dawid-Skene accuracy. With --out DIR: DIR/labels.json and PNG figures
(confusion_vs_truth.png, confusion_vs_panel.png, agreement_kappa.png)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "labels",
        help="crowd consensus vs experts and truth: accuracy, kappa, confusion matrices",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("manifest", metavar="MANIFEST", help="manifest CSV")
    parser.add_argument("--opinions", metavar="FILE", help="long-format opinions CSV (clip,rater,label)")
    parser.add_argument(
        "--scheme",
        default="bline3",
        choices=("bline3", "bline2", "lus4"),
        help="label scheme to compare in (default bline3, the crowd's)",
    )
    parser.add_argument(
        "--panel",
        metavar="NAMES",
        help="comma-separated experts forming the reference panel (default: all expert columns)",
    )
    parser.add_argument("--out", metavar="DIR", help="write DIR/labels.json and the PNG figures")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from lungus.atomic import atomic_write_text
    from lungus.data.manifests.agreement import build_labels_report, format_report
    from lungus.data.manifests.manifest import Manifest

    manifest = Manifest.load(args.manifest)
    panel = [name.strip() for name in args.panel.split(",") if name.strip()] if args.panel else None
    report, sources = build_labels_report(manifest, args.opinions, args.scheme, panel)
    text = json.dumps(report, indent=2)
    if args.out:
        from lungus.data.manifests.label_figures import report_figures

        out = Path(args.out)
        atomic_write_text(out / "labels.json", text + "\n")
        figures = report_figures(report, sources, out)
        report_paths = [out / "labels.json", *figures]
    print(text if args.json else format_report(report))
    if args.out and not args.json:
        print("\nwrote " + ", ".join(str(path) for path in report_paths))
    return 0
