"""lungus analyse: one clip's full analysis into a file another program reads back."""

from __future__ import annotations

import argparse

from lungus.commands.model_options import add_model_running_arguments
from lungus.explanations import EXPLAIN_METHODS
from lungus.progress_lines import add_progress_lines_argument, print_progress

DESCRIPTION = """\
Analyse one clip with a classifier (--model) and/or a B-line segmenter (--segmenter) and write
everything the analysis holds to --out, one .npz file (arrays, and a JSON text entry for the
rest; no pickles): the clip's class and scores, the per-frame curves, the segmenter's masks,
the explanation maps and the fan. lungus.infer.results.read_analysis_file reads it back.

This is how Slicer's LungUS B-lines module analyses a clip without freezing its window: it
runs this command in a separate process and reads its progress from --progress-lines.
For many clips and CSV tables use `lungus infer`.

With --list-explanations (and --model, no CLIP or --out) it prints which --explain methods that
classifier supports as one JSON line, {"model": PATH, "explanations": [...]}: gradcam for every
model file, cam and attention for the architectures that give those maps, none for exported
TorchScript / ONNX files and segmenters. The module asks this before offering the methods."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyse",
        help="analyse one clip into a results file (masks, curves, explanation maps) for another program",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "clip", metavar="CLIP", nargs="?", help="a clip file or folder of frames (any format lungus reads)"
    )
    parser.add_argument("--model", metavar="CLS", help="clip classifier: model file, TorchScript or ONNX")
    parser.add_argument("--segmenter", metavar="SEG", help="frame segmenter: model file, TorchScript or ONNX")
    parser.add_argument(
        "--explain",
        choices=EXPLAIN_METHODS,
        help="also compute where the classifier saw B-lines with this method (needs --model)",
    )
    add_model_running_arguments(parser)
    parser.add_argument("--name", help="what the results call the clip (default: CLIP as given)")
    parser.add_argument("--out", metavar="FILE", help="the results file to write (.npz; required to analyse)")
    add_progress_lines_argument(
        parser, "WHAT the step just done (load, read, classify, explain, segment, done)"
    )
    parser.add_argument(
        "--list-explanations",
        dest="list_explanations",
        action="store_true",
        help="analyse nothing: print the --explain methods the --model classifier supports as one JSON line",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from lungus.errors import LungUSError

    if args.list_explanations:
        return list_explanations(args.model)
    if not args.clip or not args.out:
        raise LungUSError("give the CLIP to analyse and --out, the results file to write")
    if not args.model and not args.segmenter:
        raise LungUSError("give --model (a clip classifier) and/or --segmenter")
    if args.explain and not args.model:
        raise LungUSError("--explain needs a classifier (--model)")
    if not Path(args.clip).exists():
        raise LungUSError("no such clip file or folder", args.clip)
    if Path(args.out).is_dir():
        raise LungUSError("--out must be a file, not a folder", args.out)
    progress = print_progress if args.progress_lines else None
    if progress is not None:
        progress(0, 1, "load")  # importing torch and loading the models take a while
    from lungus.infer.analyzer import Analyzer
    from lungus.infer.results import write_analysis_file

    analyzer = Analyzer(
        args.model, args.segmenter, device=args.device, threads=args.threads,
        model_call_timeout_s=args.model_call_timeout,
    )
    warning = analyzer.simulated_training_warning()
    if warning is not None:
        print(warning, file=sys.stderr, flush=True)
    analysis = analyzer.analyse(args.clip, name=args.name, explain=args.explain, progress=progress)
    analyzer.record_warnings(analysis)
    write_analysis_file(analysis, args.out)
    print(f"analysed {analysis.n_frames} frames of {analysis.clip} into {args.out}")
    return 0


def list_explanations(model: str | None) -> int:
    """Print ``{"model": PATH, "explanations": [...]}`` for the classifier ``model`` (one line)."""
    import json
    import os

    from lungus.errors import LungUSError

    if not model:
        raise LungUSError("--list-explanations needs a classifier (--model)")
    from lungus.infer.runners import explanation_methods

    methods = explanation_methods(model)
    print(json.dumps({"model": os.path.abspath(model), "explanations": list(methods)}))
    return 0
