"""lungus explain: pictures of where a classifier saw B-lines in chosen frames of one clip."""

from __future__ import annotations

import argparse

from lungus.commands.model_options import add_model_running_arguments
from lungus.explanations import EXPLAIN_METHODS, GRADCAM, LIME

#: How many frames ``--frames top`` explains.
TOP_FRAMES = 3

DESCRIPTION = """\
Explain a classifier's view of chosen frames of one clip: for each frame, a PNG in --out of the
frame with the method's heat map inside the fan, under a band naming the frame, the method, the
explained class and the classifier's B-line evidence p(B) for that frame, as the overlays of
`lungus infer --explain` show them:

  OUT/<clip>.frame<N>.<method>.png     (<clip>: the clip's file name without its suffix)

--method gradcam: Grad-CAM at the layer the model names; lime: LIME on superpixels of the frame
(random samples hide superpixels, a weighted linear fit says how much each adds to the class's
probability); cam and attention for architectures that give those maps. The explained class is
the predicted one, or the likeliest B-line class when the clip is called negative.
--frames: frame numbers from 0 (3,10), or top (the 3 frames with the most B-line evidence) or
top:K. LIME's samples, superpixels and seed are options; its defaults take a few seconds per
frame on a CPU for the 64-96 px models (docs/explanations.md)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    from lungus.explanations import LIME_FILLS, LIME_SEGMENTATIONS

    parser = subparsers.add_parser(
        "explain",
        help="PNGs of where a classifier saw B-lines in chosen frames of a clip (Grad-CAM or LIME)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("clip", metavar="CLIP", help="a clip file or folder of frames (any format lungus reads)")
    parser.add_argument("--model", metavar="CLS", required=True, help="clip classifier model file (.pt)")
    parser.add_argument("--method", choices=EXPLAIN_METHODS, default=GRADCAM, help="explanation method")
    parser.add_argument("--frames", default="top", metavar="N,M|top|top:K",
                        help="frames to explain (default: top, the 3 with the most B-line evidence)")
    parser.add_argument("--out", metavar="DIR", required=True, help="folder for the PNGs")
    lime = parser.add_argument_group("LIME (--method lime)")
    lime.add_argument("--samples", type=int, metavar="N", help="perturbed samples per frame (default 256)")
    lime.add_argument("--superpixels", type=int, metavar="N", help="superpixels to aim for (default 40)")
    lime.add_argument("--segmentation", choices=LIME_SEGMENTATIONS, help="superpixel method (default slic)")
    lime.add_argument("--fill", choices=LIME_FILLS, help="what hidden superpixels show (default mean)")
    lime.add_argument("--seed", type=int, metavar="S", help="random seed of the samples (default 0)")
    add_model_running_arguments(parser)
    parser.set_defaults(func=run)


def parse_frames(text: str) -> list[int] | int:
    """``3,10`` -> [3, 10]; ``top`` -> 3 and ``top:K`` -> K (how many top frames). LungUSError
    for anything else."""
    from lungus.errors import LungUSError

    text = text.strip()
    if text == "top" or text.startswith("top:"):
        count = text[4:] or str(TOP_FRAMES)
        if not count.isdigit() or int(count) < 1:
            raise LungUSError(f"--frames top:K needs a whole number K >= 1, got {text!r}")
        return int(count)
    parts = [part.strip() for part in text.split(",")]
    if not parts or not all(part.isdigit() for part in parts):
        raise LungUSError(f"--frames must be frame numbers from 0 such as 3,10, or top, or top:K; got {text!r}")
    return sorted({int(part) for part in parts})


def _lime_settings(args: argparse.Namespace):
    from lungus.errors import LungUSError
    from lungus.models.lime import LimeSettings

    given = {name: getattr(args, name) for name in ("samples", "superpixels", "segmentation", "fill", "seed")}
    given = {name: value for name, value in given.items() if value is not None}
    if args.method != LIME:
        if given:
            raise LungUSError(f"--{next(iter(given))} is a LIME setting; use it with --method lime")
        return None
    return LimeSettings(**given)


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from lungus.errors import LungUSError

    frames = parse_frames(args.frames)
    lime = _lime_settings(args)
    if not Path(args.clip).exists():
        raise LungUSError("no such clip file or folder", args.clip)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise LungUSError("--out must be a folder", out)
    from lungus.folder_lock import exclusive_folder
    from lungus.infer.analyzer import Analyzer, explained_class
    from lungus.infer.overlays import explained_frame, save_png
    from lungus.io.formats import file_stem

    started = time.monotonic()
    analyzer = Analyzer(args.model, device=args.device, threads=args.threads,
                        model_call_timeout_s=args.model_call_timeout)
    if not analyzer.classifier.explains:
        raise LungUSError("explanations need the model file (.pt), not an exported TorchScript/ONNX file",
                          args.model)
    loaded = analyzer.load(args.clip)
    n_frames = loaded.clip.n_frames
    analysis = analyzer.analyse(loaded)
    if isinstance(frames, int):
        frames = sorted(frame for frame, _ in analysis.top_frames(frames))
    beyond = [frame for frame in frames if frame >= n_frames]
    if beyond:
        raise LungUSError(f"frame {beyond[0]} is beyond the clip's {n_frames} frames (0-{n_frames - 1})",
                          args.clip)
    target = explained_class(analysis.probabilities, analysis.predicted_class)
    explanation = analyzer.explain_frames(loaded, frames, args.method, target, lime)
    stem = file_stem(args.clip)
    written = []
    with exclusive_folder(out, "lungus explain", ".lungus-explain.lock"):
        for position, frame in enumerate(explanation.source_frames):
            path = out / f"{stem}.frame{int(frame):04d}.{args.method}.png"
            save_png(explained_frame(loaded.clip, analysis, explanation, position), path)
            written.append(path)
    print(f"{args.method}: {len(written)} frame(s) of {args.clip} ({analysis.pred}, "
          f"p_{analysis.class_names[target]} {analysis.probabilities[target]:.2f}) in {out} "
          f"({time.monotonic() - started:.1f} s)")
    for path in written:
        print(f"  {path}")
    return 0
