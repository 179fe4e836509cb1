"""lungus features: per-frame deep features of a manifest's clips from one or more backbones."""

from __future__ import annotations

import argparse

from lungus.commands.manifest_paths import add_confine_paths_argument, check_confined
from lungus.progress_lines import add_progress_lines_argument

DESCRIPTION = """\
Embed every frame of every clip of MANIFEST with each BACKBONE and cache the features in --out,
per clip, frame and backbone (docs/frame-fusion.md#features). A backbone is a lungus model file of a
frame classifier (its per-frame encoder), or a torchvision backbone: resnet18, resnet34 or
mobilenet_v3_small with ImageNet weights (downloaded once: needs internet), or NAME=WEIGHTS_FILE
for local weights (as --init PATH does in training). Entries are keyed by the clip's content, the
backbone's weights and the preprocessing, so a changed clip or model is computed again and a
stopped run resumes; a clip that cannot be read is reported and skipped (exit status 1).
`lungus train --model fusion --backbones ... --features-dir DIR` reads the same folder."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("features", help="cache per-frame deep features of clips from trained backbones",
                                   description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", metavar="MANIFEST", help="manifest CSV of the clips")
    parser.add_argument("--backbone", action="append", required=True, metavar="BACKBONE",
                        help="a model file, or resnet18 / resnet34 / mobilenet_v3_small[=WEIGHTS_FILE] (repeatable)")
    parser.add_argument("--out", required=True, metavar="DIR", help="the feature folder")
    parser.add_argument("--size", default="96", metavar="N|HxW",
                        help="frame size after fan crop; a fusion run must use the same (default: 96)")
    parser.add_argument("--target-fps", type=float, default=None, help="resample clips to this frame rate "
                        "(default: the clip's own rate)")
    parser.add_argument("--no-fan-crop", action="store_true", help="do not crop clips to their ultrasound fan")
    parser.add_argument("--cache-dir", default=None, help="where prepared clips are cached "
                        "(default: .lungus-cache beside --out)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (default: auto)")
    add_progress_lines_argument(parser, "DONE of TOTAL clips")
    add_confine_paths_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lungus.data.manifests.manifest import Manifest
    from lungus.data.pipeline.clip_preparation import ClipCache
    from lungus.device import resolve_device
    from lungus.features.backbones import resolve_backbones
    from lungus.features.store import FeatureStore
    from lungus.progress_lines import print_progress
    from lungus.train.config import TrainConfig

    check_confined(args, [args.manifest])
    # The same settings, checks and preprocessing a fusion run uses, so its cache keys match.
    config = TrainConfig(manifest=args.manifest, out=args.out, size=args.size, target_fps=args.target_fps,
                         fan_crop=not args.no_fan_crop, cache_dir=args.cache_dir, device=args.device)
    manifest = Manifest.load(args.manifest)
    backbones = resolve_backbones(args.backbone)
    cache = ClipCache(args.cache_dir or Path(args.out).resolve().parent / ".lungus-cache")
    store = FeatureStore(args.out, config.preprocessing(), cache, resolve_device(args.device))
    report = store.extract(manifest.clip_paths(), backbones,
                           progress=print_progress if args.progress_lines else None)
    names = ", ".join(f"{b.name} ({b.encoder.out_channels})" for b in backbones)
    print(f"features of {len(manifest)} clips from {names} in {args.out}: {report.summary()}")
    return 1 if report.failed else 0
