"""`lungus convert IN OUT [--crop-fan]`: convert a clip between formats."""

from __future__ import annotations

import argparse

from lungus.commands.clip_limits import add_max_voxels_argument, max_voxels

DESCRIPTION = """\
Convert a lung-ultrasound clip between formats. IN is any clip `lungus info`
reads; OUT's suffix chooses the format:

  .seq.nrrd   Slicer volume sequence (loads as a sequence in 3D Slicer)
  .nrrd       NRRD 3-D stack (columns, rows, frames)
  .mp4 .m4v .mov  MPEG-4 video ('mp4v')      .avi  MJPG video
  .gif        animated GIF                    .dcm  Ultrasound Multi-frame DICOM
  .npy        NumPy array (T, H, W) uint8     .npz  frames, fps, spacing_mm (+ rgb)
  a name without suffix: a folder of PNG frames (frame_0000.png ...)

--crop-fan crops to the ultrasound fan and sets everything outside it to black,
removing burned-in text, calipers and logos (pixel de-identification). Inside
the fan, text and graphics that stay put while the image moves are covered with
black boxes too, so that text a generous fan estimate lets in goes as well
(docs/deidentification.md states the rule and its limits: look before sharing). What was removed is printed and written to
OUT.deid.json. Output is written atomically: OUT appears complete or not at
all. DICOM output never carries patient identifiers."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a clip between formats (optionally cropped to its fan)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", metavar="IN", help="clip to read")
    parser.add_argument("output", metavar="OUT", help="clip to write; the suffix chooses the format")
    parser.add_argument(
        "--crop-fan",
        action="store_true",
        help="crop to the fan, black out everything else and static text inside it; report in OUT.deid.json",
    )
    parser.add_argument(
        "--compression",
        choices=("gzip", "jpeg"),
        default=None,
        help="gzip for .nrrd/.seq.nrrd/.npz, jpeg (baseline) for .dcm; default: none",
    )
    parser.add_argument(
        "--quality", type=int, default=95, metavar="Q", help="JPEG quality 1-100 (default 95)"
    )
    add_max_voxels_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from lungus.atomic import atomic_write_text
    from lungus.errors import LungUSError
    from lungus.io import read_clip, write_clip
    from lungus.io.deidentify import deidentify
    from lungus.io.writer import output_kind

    source, target = Path(args.input), Path(args.output)
    if source.exists() and target.exists() and source.resolve() == target.resolve():
        raise LungUSError("OUT is the same file as IN; write to a new name", target)
    output_kind(target)  # an unsupported suffix fails before the (slow) read
    voxel_limit = max_voxels(args)
    clip = read_clip(source, fan=args.crop_fan, max_voxels=voxel_limit)
    note, report = "", None
    if args.crop_fan:
        clip, report = deidentify(clip)
        note = f", cropped to the {clip.fan.kind} fan"
    try:
        written = write_clip(clip, target, compression=args.compression, quality=args.quality)
    except ValueError as error:
        raise LungUSError(str(error), target) from error
    rate = "" if clip.fps is None else f" at {clip.fps:.4g} fps"
    print(f"wrote {written}: {clip.n_frames} frames of {clip.height}x{clip.width}{rate}{note}")
    if report is not None:
        sidecar = report_path(written)
        atomic_write_text(sidecar, json.dumps({"input": source.name, **report.to_dict()}, indent=2) + "\n")
        print(f"de-identified: {report.summary()}; report {sidecar}")
    return 0


def report_path(output):
    """The de-identification report beside OUT: ``<OUT>.deid.json`` (OUT keeps its full name,
    so the report names the file it describes and is never taken for a fan JSON)."""
    from pathlib import Path

    output = Path(output)
    return output.with_name(output.name + ".deid.json")
