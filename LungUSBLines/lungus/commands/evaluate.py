"""lungus evaluate: score a model file on a labelled manifest."""

from __future__ import annotations

import argparse

from lungus.commands.manifest_paths import add_confine_paths_argument, check_confined
from lungus.commands.model_options import add_device_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a model on a labelled manifest (metrics with patient-bootstrap CIs, figures)",
        description="Writes DIR/metrics.json (the metric keys of docs/architecture.md#evaluation-outputs, each with a 95% patient-bootstrap _ci), "
        "DIR/predictions.csv and figures (ROC, confusion, reliability; for segmenters a pixel confusion "
        "matrix and an overlay montage). A segmenter on a manifest without masks (real clips with clip "
        "labels only), --clip-evidence or --from-infer: each clip's B-line evidence from the predicted masks "
        "(max and mean count, frames with B-lines, max and mean BLAS) scored against the B-line labels "
        "(AUC) and the 0-3 severity (Spearman rho), each with a 95% patient-bootstrap CI: "
        "DIR/clip_evidence.json, clip_evidence.csv, clip_evidence.png (docs/evaluation.md#clip-evidence).",
    )
    scored = parser.add_mutually_exclusive_group(required=True)
    scored.add_argument("--model", help="model file (RUN/model.pt)")
    scored.add_argument("--predictions", metavar="RUN", help="a predictions.csv (or its folder) to re-score without its model, "
                        "e.g. a cross-validation run's out-of-fold predictions")
    scored.add_argument("--from-infer", dest="from_infer", metavar="INFER_DIR",
                        help="the output folder (or clips.csv) of `lungus infer --segmenter`: score the clip "
                        "evidence it holds against the manifest's labels without running the segmenter again")
    parser.add_argument("--manifest", required=True, help="manifest CSV with reference labels")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--labels", help="reference labels: truth | expert:NAME | expert-majority | crowd-majority | "
                        "crowd-ds | bline2/bline3/lus4; default truth, else the task's column (with --predictions: "
                        "the table's own label column; for clip evidence: the B-line labels, default truth, "
                        "else bline2)")
    parser.add_argument("--by", action="append", default=[], metavar="COLUMN",
                        help="also break the metrics down by this manifest column (zone, lus4, site, ...): "
                        "DIR/by_COLUMN.csv and .png; repeatable")
    parser.add_argument("--clip-evidence", dest="clip_evidence", action="store_true",
                        help="score a segmenter (--model) by its clip evidence against clip labels even when the "
                        "manifest has masks (without a mask column it always is)")
    add_device_argument(parser)
    parser.add_argument("--n-boot", dest="n_boot", type=int, default=1000, help="bootstrap replicates for the CIs")
    parser.add_argument("--cache-dir", dest="cache_dir")
    add_confine_paths_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lungus.errors import LungUSError

    check_confined(args, [args.manifest])
    if args.clip_evidence and args.model is None:
        raise LungUSError("--clip-evidence runs a segmenter: give it with --model (--from-infer always scores "
                          "clip evidence)")
    if args.from_infer is not None:
        if args.by:
            raise LungUSError("--by breaks down clip-classifier metrics; --from-infer scores a segmenter's evidence")
        from lungus.evaluate.infer_eval import evaluate_infer_evidence

        evaluation = evaluate_infer_evidence(args.from_infer, args.manifest, args.out, labels=args.labels,
                                             n_boot=args.n_boot)
    elif args.predictions is not None:
        from lungus.evaluate.prediction_eval import evaluate_predictions

        evaluation = evaluate_predictions(args.predictions, args.manifest, args.out, labels=args.labels, by=args.by,
                                          n_boot=args.n_boot)
    else:
        from lungus.evaluate.model_eval import evaluate_model

        evaluation = evaluate_model(args.model, args.manifest, args.out, labels=args.labels, device=args.device,
                                    n_boot=args.n_boot, cache_dir=args.cache_dir, by=args.by,
                                    clip_evidence=args.clip_evidence)
    if "clip_evidence" in evaluation.files:
        from lungus.evaluate.clip_evidence import evidence_lines

        lines = evidence_lines(evaluation.metrics)
        print("\n".join([lines[0] + f" -> {args.out}/clip_evidence.json", *lines[1:]]))
    else:
        print(metrics_line(evaluation.metrics) + f" -> {args.out}/metrics.json")
    for column, rows in evaluation.metrics.get("by", {}).items():
        print(f"by {column}: " + "; ".join(subgroup_summary(row) for row in rows))
    if evaluation.metrics.get("not_in_manifest"):
        print(f"{evaluation.metrics['not_in_manifest']} clip(s) of {args.from_infer} are not in the manifest "
              "and were left out")
    if evaluation.skipped:
        listed = "clip_evidence.json" if "clip_evidence" in evaluation.files else "metrics.json"
        print(f"{len(evaluation.skipped)} clip(s) could not be read and were skipped (listed in {listed})")
        return 1
    return 0


def metrics_line(metrics: dict) -> str:
    parts = [f"{metrics['n_clips']} clips, {metrics['n_patients']} patients"]
    for key in ("auc", "kappa_quadratic", "accuracy", "sensitivity", "specificity", "dice_b_line", "count_mae",
                "loc_f1"):
        value = metrics.get(key)
        if value is not None:
            ci = metrics.get(f"{key}_ci")
            parts.append(f"{key} {value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
    return "; ".join(parts)


def subgroup_summary(row: dict) -> str:
    """'2: 47 clips, pos AUC 0.85, neg AUC 0.61' (binary), or the group's own AUC."""
    text = f"{row['value']}: {row['n_clips']} clips"
    for key, short in (("auc", "AUC"), ("auc_positives_vs_all_negatives", "pos AUC"),
                       ("auc_negatives_vs_all_positives", "neg AUC")):
        if row.get(key) is not None:
            text += f", {short} {row[key]:.2f}"
    return text
