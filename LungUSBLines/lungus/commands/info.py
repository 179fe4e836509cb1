"""`lungus info CLIP... [--json]`: frames, size, fps, spacing, duration and fan of each clip."""

from __future__ import annotations

import argparse

from lungus.commands.clip_limits import add_max_voxels_argument, max_voxels
from lungus.errors import printable_path

DESCRIPTION = """\
Describe lung-ultrasound clips: frames, size, frame rate, pixel spacing, duration,
and the ultrasound fan (sector or linear; apex, angles, radii, bounding box).

CLIP is a video (.mp4 .avi .mov .m4v .mpeg .wmv .gif ...), an ultrasound DICOM,
an NRRD (.seq.nrrd Slicer sequence or plain), a .npy/.npz, a folder of numbered
frame images, or a folder of such clips (searched recursively). Files without a
suffix are recognised by their content.

A bad clip is reported on stderr and the others are still described; the exit
status is then 2. --json prints a list with one object per readable clip:
path, n_frames, height, width, fps, spacing_mm, duration_s, fan."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="describe clips: frames, size, fps, spacing, duration, fan",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("clips", nargs="+", metavar="CLIP", help="clip files or folders")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of text")
    parser.add_argument("--no-fan", action="store_true", help="skip fan detection (faster)")
    add_max_voxels_argument(parser)
    parser.set_defaults(func=run)


def expand_clip_arguments(arguments: list[str]) -> list:
    """Paths to read: files as given; a folder of frame images is one clip; any other
    folder stands for the clips found in it, recursively (in natural order)."""
    from pathlib import Path

    from lungus.io import find_clips
    from lungus.io.arrays import frame_files

    paths = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir() and not frame_files(path):
            found = find_clips(path)
            paths.extend(found if found else [path])  # an empty folder: let the reader say so
        else:
            paths.append(path)
    return paths


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from lungus.errors import LungUSError
    from lungus.io import read_clip

    voxel_limit = max_voxels(args)
    records, failures = [], 0
    for path in expand_clip_arguments(args.clips):
        try:
            clip = read_clip(path, fan=not args.no_fan, max_voxels=voxel_limit)
        except LungUSError as error:
            failures += 1
            print(f"lungus info: error: {error}", file=sys.stderr)
            continue
        record = clip.summary()
        if args.json:
            records.append(record)
        else:
            print(describe(record, clip.meta, clip.rgb is not None))
            sys.stdout.flush()
    if args.json:
        print(json.dumps(records, indent=2))
    return 2 if failures else 0


def describe(record: dict, meta: dict, colour: bool) -> str:
    """Human-readable lines for one Clip.summary() record."""
    lines = [printable_path(record["path"])]  # a newline or non-UTF-8 byte in a name would break the listing
    rate = "unknown fps" if record["fps"] is None else f"{record['fps']:.4g} fps"
    duration = "" if record["duration_s"] is None else f" ({record['duration_s']:.2f} s)"
    lines.append(f"  frames    {record['n_frames']} at {rate}{duration}")
    lines.append(f"  size      {record['height']} x {record['width']} pixels (rows x columns)")
    spacing = record["spacing_mm"]
    lines.append(
        "  spacing   unknown" if spacing is None else f"  spacing   {spacing[0]:.4g} x {spacing[1]:.4g} mm"
    )
    details = [meta.get("format", "?")]
    if meta.get("transfer_syntax"):
        details.append(str(meta["transfer_syntax"]))
    if meta.get("photometric"):
        details.append(str(meta["photometric"]))
    if colour:
        details.append("colour kept (Doppler)")
    lines.append(f"  format    {', '.join(details)}")
    fan = record["fan"]
    if fan is not None:
        row0, col0, row1, col1 = fan["bbox"]
        text = f"  fan       {fan['kind']} ({fan['source']}), rows {row0}-{row1} x columns {col0}-{col1}"
        text += f", {100 * fan['area_fraction']:.1f}% of the frame"
        if fan["apex"] is not None:
            apex, angles, radii = fan["apex"], fan["angles_deg"], fan["radii"]
            text += (
                f"\n            apex ({apex[0]:.1f}, {apex[1]:.1f}), angles {angles[0]:.1f} to {angles[1]:.1f} deg,"
                f" radii {radii[0]:.1f} to {radii[1]:.1f} px"
            )
        lines.append(text)
    return "\n".join(lines)
