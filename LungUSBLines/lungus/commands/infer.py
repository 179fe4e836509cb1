"""lungus infer: score clips in batch (also under torchrun), and merge shard outputs."""

from __future__ import annotations

import argparse

from lungus.commands.manifest_paths import add_confine_paths_argument, check_confined
from lungus.commands.model_options import add_model_running_arguments
from lungus.explanations import EXPLAIN_METHODS
from lungus.progress_lines import add_progress_lines_argument

DESCRIPTION = """\
Analyse clips with a classifier (--model) and/or a B-line segmenter (--segmenter): model files
(.pt) or files `lungus export` wrote (TorchScript, ONNX). INPUTS are clip files, folders (searched
recursively; clips are recognised by content) or manifest CSVs (their clip column).

Writes into --out:
  clips.csv    one row per clip: clip, n_frames, fps, task, pred, p_<class>..., bline_count_max,
               bline_count_mean, frames_with_blines, blas_max, blas_mean, top_frame,
               classifier, segmenter, error (empty when the clip was analysed)
  frames.csv   one row per frame: clip, frame, time_s, p_blines, bline_count, blas
  clips.jsonl  one JSON record per clip (also the journal --resume reads): the above, the class
               distribution, the frames ranked by B-line evidence, B-line positions per frame
  run.json     the models (ids, sha256), the inputs and the options
  overlays/    with --overlays: <clip>.mp4, the segmentation and the score per frame;
  masks/       and <clip>.seq.nrrd, the predicted class ids (a Slicer volume sequence)
  explain/     with --explain: <clip>.<method>.mp4 and <clip>.<method>.png, the top frame
  (<clip>: the clip's file name without its suffix; inputs that share one each get _N after it,
  N their place in the input list counting from 0: a/scan.mp4 b/scan.mp4 -> scan_0, scan_1)

A clip that cannot be read is listed with its error and the run goes on; the exit status is 1
when any clip failed. A full disk (or a folder that cannot be written) stops the run with one
line naming the file, exit status 2: free space and run again with --resume. One run at a time
writes into an --out folder: a second one stops at once. Scale out with --shard i/n (job
arrays; merge with --merge) or with `torchrun --nproc_per_node N -m lungus infer ...` (each rank
takes a shard; rank 0 merges)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "infer",
        help="score clips: per-clip classes, per-frame curves, B-line counts, BLAS, overlays",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="*", metavar="INPUTS", help="clip files, folders or manifest CSVs")
    parser.add_argument("--model", metavar="CLS", help="clip classifier: model file, TorchScript or ONNX")
    parser.add_argument("--segmenter", metavar="SEG", help="frame segmenter: model file, TorchScript or ONNX")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    add_model_running_arguments(parser)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="threads decoding the next clips while the models run (default 1; 0: none)",
    )
    parser.add_argument(
        "--runtime",
        choices=("auto", "torch", "onnx"),
        default="auto",
        help="how a segmenter model file runs: auto = ONNX Runtime on the CPU (faster), PyTorch elsewhere",
    )
    parser.add_argument(
        "--overlays",
        action="store_true",
        help="write an overlay video and a .seq.nrrd mask sequence per clip; the masks are one byte per "
        "pixel, gzip-compressed: about 0.4 MB for 100 frames of 640x480 (30 MB uncompressed)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="write where the classifier saw B-lines: a heat-map video and a PNG of the top frame per clip",
    )
    parser.add_argument(
        "--explain-method",
        dest="explain_method",
        choices=EXPLAIN_METHODS,
        default="gradcam",
        help="gradcam (default, any classifier), lime (superpixels, any classifier; slower: "
        "docs/explanations.md), cam (class activation maps) or attention (attention models)",
    )
    parser.add_argument("--resume", action="store_true", help="skip clips already scored in --out")
    parser.add_argument("--shard", metavar="i/n", help="analyse only shard i of n of the inputs (0-based)")
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="DIR",
        help="merge these output folders (shards) into --out instead of analysing",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_progress_lines_argument(parser, "after each clip (WHAT: the clip)")
    add_confine_paths_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from lungus.errors import LungUSError

    if args.merge:
        if args.inputs or args.model or args.segmenter:
            raise LungUSError("--merge joins finished output folders; give no inputs or models with it")
        from lungus.infer.batch import merge_outputs

        summary = merge_outputs(args.merge, args.out)
        print(f"merged {len(args.merge)} folders: {summary.line()}")
        return 0 if summary.ok else 1
    if not args.inputs:
        raise LungUSError("no inputs: give clip files, folders or manifest CSVs (or --merge DIR...)")
    if not args.model and not args.segmenter:
        raise LungUSError("give --model (a clip classifier) and/or --segmenter")
    if args.workers < 0:
        raise LungUSError(f"--workers must be 0 or more, got {args.workers}")
    check_confined(args, [path for path in args.inputs if _is_manifest(path)])
    from lungus.infer.batch import parse_shard

    shard = parse_shard(args.shard) if args.shard else None
    rank, world, local_rank = _torchrun_rank()
    if world > 1:
        if shard is not None:
            raise LungUSError("under torchrun each rank takes its own shard; leave out --shard")
        return _run_distributed(args, rank, world, local_rank)
    summary = _analyse(
        args, args.out, args.device, shard, progress_bar=not args.quiet and sys.stderr.isatty()
    )
    print(summary.line())
    return 0 if summary.ok else 1


def _is_manifest(path: str) -> bool:
    """The inputs lungus.infer.batch.collect_inputs reads as manifests: CSV files."""
    from pathlib import Path

    return Path(path).suffix.lower() == ".csv" and Path(path).is_file()


def _analyse(args: argparse.Namespace, out, device: str, shard, progress_bar: bool, announce: bool = True):
    import sys

    from lungus.infer.analyzer import Analyzer
    from lungus.infer.batch import BatchRequest, collect_inputs, run_batch
    from lungus.progress_lines import print_progress

    items = collect_inputs(args.inputs)
    analyzer = Analyzer(
        args.model,
        args.segmenter,
        device=device,
        runtime=args.runtime,
        threads=args.threads,
        log=print,
        model_call_timeout_s=args.model_call_timeout,
    )
    warning = analyzer.simulated_training_warning()
    if warning is not None and announce:
        print(warning, file=sys.stderr, flush=True)
    request = BatchRequest(
        items,
        out,
        workers=args.workers,
        overlays=args.overlays,
        explain=args.explain_method if args.explain else None,
        resume=args.resume,
        shard=shard,
    )
    return run_batch(
        analyzer,
        request,
        progress=print_progress if getattr(args, "progress_lines", False) else None,
        progress_bar=progress_bar,
    )


def _torchrun_rank() -> tuple[int, int, int]:
    import os

    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        return 0, 1, 0
    return rank, world, local_rank


def _run_distributed(args: argparse.Namespace, rank: int, world: int, local_rank: int) -> int:
    """Each rank analyses shard rank/world into OUT/.ranks/<rank>; rank 0 waits for every rank,
    then merges (moving the pictures) into OUT, so OUT is what one process would write.

    Ranks meet through files, not a process group: a long batch never hits a collective timeout.
    """
    import shutil
    import time
    from pathlib import Path

    from lungus.atomic import atomic_write_text
    from lungus.device import resolve_device
    from lungus.infer.batch import merge_outputs

    out = Path(args.out)
    ranks = out / ".ranks"
    device = str(resolve_device(args.device, local_rank))
    own = ranks / f"{rank:04d}"
    summary = _analyse(args, own, device, (rank, world), progress_bar=False, announce=rank == 0)
    print(f"rank {rank}/{world}: {summary.line()}", flush=True)
    atomic_write_text(ranks / f"{rank:04d}.done", summary.line() + "\n")
    if rank != 0:
        return 0  # rank 0 reports the merged outcome; a non-zero exit here would stop it
    folders = [ranks / f"{r:04d}" for r in range(world)]
    while not all((ranks / f"{r:04d}.done").is_file() for r in range(world)):
        time.sleep(0.5)
    merged = merge_outputs(folders, out, move=True)
    shutil.rmtree(ranks, ignore_errors=True)
    print(f"merged {world} ranks: {merged.line()}")
    return 0 if merged.ok else 1
