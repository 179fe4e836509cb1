"""`lungus sim-fit --real MANIFEST --out FIT.json`: fit the simulator's settings to real clips' statistics
(docs/real-clips.md#realism)."""

from __future__ import annotations

import argparse

from lungus.commands.simulate import frame_size

DESCRIPTION = """\
Fit the simulator to real clips. Measures every clip of a real manifest inside its
fan (grey levels, speckle contrast and grain, depth profile, fan geometry, frame-to-
frame change, rib shadows: lungus.sim.clip_stats), then fits the simulator's settings
(fan geometry, speckle size, imaging depth, the lung's echo, attenuation, dynamic
range, gain, motion) so that simulated clips show the same statistics: each setting
is calibrated on small simulated sets and drawn per clip from its fitted
distribution. Takes minutes (thousands of small simulated clips).

Writes FIT.json (the settings' distributions; the real, default-simulator and
fitted-simulator statistics; the calibration curves; what it was fitted on), and
prints a table of the statistics (median [IQR]) of the three. Use the fit with
`lungus simulate --fit FIT.json` or `lungus realism --fit FIT.json`, at the same
--size and --probe. Fit on development clips only; when cross-validating, never on a
fold's test patients (--exclude-fold)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sim-fit",
        help="fit the simulator's settings to real clips' image statistics (FIT.json)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--real", required=True, metavar="MANIFEST", help="a manifest of real clips")
    parser.add_argument("--out", required=True, metavar="FIT.json", help="the fit file to write")
    parser.add_argument("--figure", metavar="PNG", help="also write the real vs simulated statistics figure")
    parser.add_argument("--stats", metavar="CSV", help="also write every measured clip's statistics")
    parser.add_argument("--exclude-fold", dest="exclude_fold", type=int, metavar="K",
                        help="leave out the manifest's clips of fold K (its test patients)")
    parser.add_argument("--size", type=frame_size, default=(256, 256), metavar="HxW",
                        help="simulated frame size the fit is for (default 256x256)")
    parser.add_argument("--probe", choices=("convex", "linear", "mixed"), default="convex",
                        help="simulated probe kind the fit is for (default convex)")
    parser.add_argument("--frames", type=int, default=6, metavar="T",
                        help="frames per simulated clip while fitting (default 6)")
    parser.add_argument("--calibration-clips", dest="calibration_clips", type=int, default=48, metavar="N",
                        help="simulated clips per calibrated value (default 48)")
    parser.add_argument("--check-clips", dest="check_clips", type=int, default=48, metavar="N",
                        help="simulated clips of the default and of the fitted simulator compared (default 48)")
    parser.add_argument("--passes", type=int, default=2, metavar="P", help="rounds over the calibrated settings (default 2)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the simulated sets (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from lungus.data.csvfile import write_csv_table
    from lungus.sim.clip_stats import DEPTH_NAMES, STATISTICS
    from lungus.sim.fitted import write_fit
    from lungus.sim.fitting import FitConfig, fit_simulator, real_statistics, statistics_table

    config = FitConfig(size=args.size, frames=args.frames, probe=args.probe, calibration_clips=args.calibration_clips,
                       check_clips=args.check_clips, seed=args.seed, passes=args.passes)
    config.simulation()  # bad sizes are found before the real clips are read

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr)

    def progress(done: int, total: int, name: str) -> None:
        if not args.quiet and (done == total or done % 20 == 0):
            print(f"progress {done}/{total} {name}", file=sys.stderr)

    real = real_statistics(args.real, args.exclude_fold, progress)
    log(f"measured {len(real.rows)} real clips of {real.n_patients} patients ({len(real.skipped)} skipped)")
    fit, groups = fit_simulator(real, config, log)
    write_fit(fit, args.out)
    if args.stats:
        names = [*STATISTICS, *DEPTH_NAMES]
        table = [[group, clip, *(row[n] for n in names)]
                 for group, rows in groups.items()
                 for clip, row in zip(real.clips if group == "real" else range(len(rows)), rows)]
        write_csv_table(args.stats, ["group", "clip", *names], table)
    if args.figure:
        from lungus.sim.fit_figure import statistics_figure

        statistics_figure(groups, args.figure, title=f"{len(real.rows)} real clips ({real.manifest.name}) vs "
                          f"{config.check_clips} simulated clips, default and fitted ({args.out})")
    print(f"sim-fit: {len(real.rows)} real clips of {real.n_patients} patients -> {args.out}")
    print(statistics_table(groups))
    if real.skipped:
        print(f"{len(real.skipped)} clip(s) could not be measured and were left out, e.g. {real.skipped[0]}")
    return 0
