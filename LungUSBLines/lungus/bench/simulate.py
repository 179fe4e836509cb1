"""`lungus bench simulate`: frames per second of the clip generator.

Times the whole generator per clip (scene drawing, rendering, scan conversion, masks,
per-frame truth and clip labels), not file writing, for each probe kind. A fixed set
of clips (seeds) is rendered ``--repeat`` times; fps = frames / median wall time, and
cpu_fps = frames / median CPU time of the process (the one-core cost even on a busy
machine: every thread pool is pinned to one thread).
"""

from __future__ import annotations

import argparse

HELP = "frames/s of the simulator (render + masks + truth) per probe kind"


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise argparse.ArgumentTypeError(f"expected HxW such as 256x256, got {text!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--size", type=_size, default=(256, 256), metavar="HxW", help="frame size (default 256x256)"
    )
    parser.add_argument("--frames", type=int, default=64, metavar="T", help="frames per clip (default 64)")
    parser.add_argument("--clips", type=int, default=4, metavar="N", help="clips per probe kind (default 4)")
    parser.add_argument("--repeat", type=int, default=3, metavar="R", help="timed repetitions (default 3)")
    parser.add_argument(
        "--probe",
        choices=("convex", "linear", "both"),
        default="both",
        help="probe kinds to time (default both)",
    )


def run(args: argparse.Namespace) -> dict:
    from lungus.bench import measure
    from lungus.errors import LungUSError
    from lungus.sim.generator import SimulationConfig, simulate_clip

    height, width = args.size
    if args.frames < 1 or args.clips < 1 or args.repeat < 1:
        raise LungUSError("--frames, --clips and --repeat must be at least 1")
    try:
        config = SimulationConfig(n_frames=args.frames, height=height, width=width, probe="mixed")
    except ValueError as error:
        raise LungUSError(f"invalid --size/--frames: {error}") from None
    probes = ("convex", "linear") if args.probe == "both" else (args.probe,)
    rows = []
    for probe in probes:
        # States cycle 0..3 so every kind of content is timed.
        def work(probe: str = probe) -> None:
            for i in range(args.clips):
                simulate_clip(config, seed=1000 + i, state=i % 4, probe=probe)

        timing = measure(work, repeat=args.repeat, warmup=1)
        frames = args.clips * args.frames
        rows.append(
            {
                "probe": probe,
                "size": f"{height}x{width}",
                "clips": args.clips,
                "frames": frames,
                "median_s": round(timing.median, 4),
                "fps": round(frames / timing.median, 1),
                "best_fps": round(frames / timing.best, 1),
                "cpu_fps": round(frames / max(timing.cpu_median, 1e-9), 1),
            }
        )
    return {
        "results": rows,
        # Wall clock, slowest probe kind: the conservative headline number.
        "fps": min(row["fps"] for row in rows),
        "cpu_fps": min(row["cpu_fps"] for row in rows),
        "target_fps": 50.0,
    }
