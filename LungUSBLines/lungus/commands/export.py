"""lungus export: a model file to TorchScript or ONNX, with its card inside."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Export a model file (RUN/model.pt) to TorchScript (.ts) or ONNX (.onnx). The model card travels
inside the exported file (TorchScript: the card.json extra file; ONNX: the lungus_card metadata
entry), so `lungus infer` and the Slicer modules run it with the same preprocessing. Batch,
frame count and frame size stay dynamic. After writing, the exported model is loaded again and
its output compared with the model file's on a random input (skip with --no-check).

Exported files give clip scores and masks; per-frame evidence from the model's own frame logits
and Grad-CAM need the model file."""

SUFFIXES = {"torchscript": ".ts", "onnx": ".onnx"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model file to TorchScript or ONNX with its card embedded",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="M", help="model file (.pt) to export")
    parser.add_argument("--format", required=True, choices=tuple(SUFFIXES), help="torchscript or onnx")
    parser.add_argument(
        "--out", metavar="PATH", help="output file (default: the model file with .ts / .onnx)"
    )
    parser.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="do not reload the export and compare its output with the model file's",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lungus.infer.model_export import check_export, export_model

    out = Path(args.out) if args.out else Path(args.model).with_suffix(SUFFIXES[args.format])
    path = export_model(args.model, args.format, out)
    size_mb = path.stat().st_size / 2**20
    print(f"wrote {path} ({args.format}, {size_mb:.1f} MB, card embedded)")
    if args.check:
        difference = check_export(args.model, path)
        print(
            f"checked: the export reloads and matches the model file (max |logit difference| {difference:.2g})"
        )
    return 0
