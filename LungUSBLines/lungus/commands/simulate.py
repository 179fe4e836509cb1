"""`lungus simulate --out DIR --clips N --patients P --seed S`: a synthetic, crowd-labelled LUS set."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Simulate lung-ultrasound clips with ground truth and simulated raters.

Each clip shows a convex or linear probe's fan with chest-wall layers, a sliding
pleural line, A-lines, discrete B-lines that come and go, confluent B-lines, rib
shadows and sub-pleural consolidations, with speckle, gain and breathing motion.
Patients share traits (severity, chest wall, gain, probe), so split by patient.
The same seed gives the same set.

Writes into DIR:
  manifest.csv   clip, patient, zone, mask, truth_bline2/bline3/lus4, crowd_none/
                 discrete/confluent, expert_<name>, probe, n_frames, fps, sim_*
  opinions.csv   crowd opinions, one per row (clip, rater, label)
  frames.csv     per-frame truth (bline_count, discrete_blines, confluent_share, ...)
  patients.csv   each patient's traits
  clips/         the clips (+ <name>.json: the fan, AnonymizeUltrasound schema)
  masks/         <name>.seq.nrrd: uint8 class ids per frame (1 pleural line, 2 A-line,
                 3 B-line, 4 confluent B-line, 5 rib shadow)
  preview.png    with --preview: frames beside their coloured masks"""


def frame_size(text: str) -> tuple[int, int]:
    parts = text.lower().replace("*", "x").split("x")
    try:
        if len(parts) == 1:
            side = int(parts[0])
            return side, side
        if len(parts) == 2:
            return int(parts[0]), int(parts[1])
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(
        f"expected HxW such as 256x256 (or one number for a square), got {text!r}"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate a labelled LUS collection (clips, masks, crowd opinions)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--clips", type=int, required=True, metavar="N", help="number of clips")
    parser.add_argument("--patients", type=int, required=True, metavar="P", help="number of patients (<= N)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument("--frames", type=int, default=40, metavar="T", help="frames per clip (default 40)")
    parser.add_argument(
        "--size", type=frame_size, default=(256, 256), metavar="HxW", help="frame size (default 256x256)"
    )
    parser.add_argument("--fps", type=float, default=25.0, metavar="F", help="frame rate (default 25)")
    parser.add_argument(
        "--probe", choices=("convex", "linear", "mixed"), default="mixed", help="probe kind (default mixed)"
    )
    parser.add_argument(
        "--format", choices=("mp4", "seq.nrrd", "dicom"), default="mp4", help="clip file format (default mp4)"
    )
    parser.add_argument("--fit", metavar="FIT.json",
                        help="draw the image settings from a simulator fit (`lungus sim-fit`); default: the "
                        "simulator's own")
    parser.add_argument("--preview", action="store_true", help="also write DIR/preview.png (first 12 clips)")
    parser.add_argument("--no-annotations", action="store_true", help="no burned-in text outside the fan")
    parser.add_argument("--overwrite", action="store_true", help="write into a folder that already has a set")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from lungus.errors import LungUSError
    from lungus.sim.dataset import write_dataset
    from lungus.sim.fitted import read_fit
    from lungus.sim.generator import SimulationConfig

    if args.clips < 1:
        raise LungUSError(f"--clips must be at least 1, got {args.clips}")
    if not 1 <= args.patients <= args.clips:
        raise LungUSError(f"--patients must be from 1 to --clips ({args.clips}), got {args.patients}")
    try:
        config = SimulationConfig(
            n_frames=args.frames,
            height=args.size[0],
            width=args.size[1],
            fps=args.fps,
            probe=args.probe,
            annotations=not args.no_annotations,
            fit=read_fit(args.fit) if args.fit else None,
        )
    except ValueError as error:
        raise LungUSError(f"invalid --frames/--size/--fps: {error}") from None
    if config.fit is not None and (doubt := config.fit.size_warning(config.height, config.width, config.probe)):
        import warnings

        warnings.warn(doubt, stacklevel=1)

    bar = None
    if not args.quiet:
        from lungus.progress_lines import progress_bar

        bar = progress_bar(args.clips, "simulate", file=sys.stderr)

    def progress(done: int, total: int, name: str) -> None:
        if bar is not None:
            bar.set_postfix_str(name, refresh=False)
            bar.update(1)

    try:
        summary = write_dataset(
            args.out,
            args.clips,
            args.patients,
            seed=args.seed,
            config=config,
            clip_format=args.format,
            preview=args.preview,
            overwrite=args.overwrite,
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()
    print(
        f"{summary.manifest}: {summary.n_clips} clip(s) of {summary.n_patients} patient(s), "
        f"{summary.n_frames} frames ({config.height}x{config.width}, {args.format}), seed {args.seed}"
    )
    for scheme, counts in summary.label_counts.items():
        print(f"  truth_{scheme}: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
    if "preview" in summary.files:
        print(f"  preview: {summary.files['preview']}")
    return 0
