"""`lungus realism --real MANIFEST --out DIR`: how well a classifier trained on simulated clips
only scores real ones (docs/real-clips.md#realism)."""

from __future__ import annotations

import argparse

from lungus.commands.model_options import add_device_argument
from lungus.commands.simulate import frame_size

DESCRIPTION = """\
Realism as a number. Simulate a labelled collection (as `lungus simulate`), train a
B-line (bline2) classifier on it alone with a training recipe (as `lungus train`,
on the simulator's truth labels by default), and score that model on a real
labelled manifest (as `lungus evaluate`): pooled AUC with its 95 % patient-bootstrap
interval.

Writes DIR/realism.json (the AUC and interval, the real manifest's clips and
patients, the simulation's settings, the simulator's fingerprint: the lungus
version and a hash of the lungus/sim sources, the recipe, the seeds and the
times), DIR/sim/ (the simulated set), DIR/model/ (the run), DIR/eval/ (the
evaluation), and prints one summary line; progress goes to stderr. With --seeds N
each seed has those in DIR/seed_S/ and DIR/realism.json holds each AUC and their
mean. Report the number for each simulator change, over a few seeds (--seeds 3):
one seed's AUC moves by about 0.05 with the seed. --resume reuses a finished simulation or model
made with the same settings and simulator, and continues an interrupted training;
one made with other settings is refused."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "realism",
        help="train a classifier on simulated clips only and score it on real ones (AUC with CI)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--real", required=True, metavar="MANIFEST", help="a real labelled manifest CSV")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (new or empty, or with --resume)")
    parser.add_argument("--config", metavar="RECIPE", help="training recipe YAML, as `lungus train --config` "
                        "(default: Resources/recipes/covid_blues_bline2.yaml of the source repository; an "
                        "installed package carries no recipes, so there it is required)")
    parser.add_argument("--labels", help="the real manifest's reference labels, as `lungus evaluate --labels` "
                        "(default truth, else bline2, else bline3)")
    parser.add_argument("--clips", type=int, default=200, metavar="N", help="simulated clips (default 200)")
    parser.add_argument("--patients", type=int, metavar="P", help="their patients (default: clips / 2.5)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="seed of the simulation and of the training (default 0)")
    parser.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="repeat for N seeds from --seed on, each into DIR/seed_S; realism.json then "
                        "holds each AUC and their mean (default 1: one AUC moves by about 0.05 with the seed)")
    parser.add_argument("--frames", type=int, default=40, metavar="T", help="frames per simulated clip (default 40)")
    parser.add_argument("--size", type=frame_size, default=(256, 256), metavar="HxW",
                        help="simulated frame size (default 256x256)")
    parser.add_argument("--probe", choices=("convex", "linear", "mixed"), default="mixed",
                        help="simulated probe kind (default mixed)")
    parser.add_argument("--fit", metavar="FIT.json", help="simulate with the settings of a simulator fit "
                        "(`lungus sim-fit`; default: the simulator's own)")
    parser.add_argument("--label-source", dest="label_source", default="truth",
                        help="the simulated labels trained on, as `lungus train --label-source` (default truth)")
    add_device_argument(parser)
    parser.add_argument("--n-boot", dest="n_boot", type=int, default=1000, help="bootstrap replicates for the CI")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the finished steps in DIR (same settings and simulator only)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from lungus.studies.realism import RealismConfig, run_realism_seeds, summary_line

    patients = args.patients if args.patients is not None else max(1, round(args.clips / 2.5))
    config = RealismConfig(real=args.real, recipe=args.config, labels=args.labels, clips=args.clips,
                           patients=patients, seed=args.seed, frames=args.frames, size=args.size, probe=args.probe,
                           fit=args.fit, label_source=args.label_source, device=args.device, n_boot=args.n_boot)
    result = run_realism_seeds(args.out, config, args.seeds, resume=args.resume,
                               log=lambda message: print(message, file=sys.stderr))
    print(summary_line(result, args.out))
    if result["real"]["skipped"]:
        print(f"{result['real']['skipped']} real clip(s) could not be read and were skipped (listed in "
              f"{result['files']['evaluation']})")
        return 1
    return 0
