"""`lungus validate MANIFEST`: report every problem in a manifest, with line and column."""

from __future__ import annotations

import argparse

from lungus.commands.manifest_paths import add_confine_paths_argument

DESCRIPTION = """\
Check a manifest CSV (docs/architecture.md#manifest): required columns, clip files (relative
to the manifest's folder), duplicated clips, label values, crowd counts, folds
(a patient in two folds is leakage), and empty classes. Each problem is printed
as FILE:LINE: SEVERITY: column COLUMN: MESSAGE (the header is line 1).
An empty class is a warning (training runs, but that class cannot be learned or
scored); --strict makes warnings fail too. If opinions.csv sits beside the
manifest (or --opinions is given; --no-opinions skips it) it is checked against
the manifest as well.
Exit status: 0 valid, 2 invalid or unreadable."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a manifest: files, labels, duplicates, fold leakage, empty classes",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("manifest", metavar="MANIFEST", help="manifest CSV")
    parser.add_argument("--opinions", metavar="FILE", help="long-format opinions CSV (clip,rater,label)")
    parser.add_argument("--no-opinions", action="store_true", help="ignore opinions.csv beside the manifest")
    parser.add_argument(
        "--max-issues",
        type=int,
        default=50,
        metavar="N",
        help="print at most N issues as text (default 50; --json lists all)",
    )
    parser.add_argument("--no-files", action="store_true", help="do not check that clip files exist")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    parser.add_argument("--json", action="store_true", help="print the issues as JSON")
    add_confine_paths_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from lungus.data.manifests.label_sources import load_opinions
    from lungus.data.manifests.manifest import Manifest
    from lungus.data.manifests.validation import validate_manifest

    manifest = Manifest.load(args.manifest, confine_paths=args.confine_paths)
    opinions = None if args.no_opinions else load_opinions(manifest, args.opinions)
    issues = validate_manifest(manifest, check_files=not args.no_files, opinions=opinions)
    errors = sum(issue.severity == "error" for issue in issues)
    warnings = len(issues) - errors
    valid = errors == 0 and not (args.strict and warnings)
    patients = len({row.get("patient", "") for row in manifest.rows})
    if args.json:
        record = {
            "manifest": str(manifest.path),
            "opinions": None if opinions is None else str(opinions.path),
            "valid": valid,
            "n_clips": len(manifest),
            "n_patients": patients,
            "errors": errors,
            "warnings": warnings,
            "issues": [issue.as_dict() for issue in issues],
        }
        print(json.dumps(record, indent=2))
    else:
        for issue in issues[: max(args.max_issues, 0)]:
            print(issue.format(manifest.path))
        if len(issues) > args.max_issues:
            print(f"... and {len(issues) - args.max_issues} more issues (--max-issues N, or --json for all)")
        verdict = "valid" if valid else "INVALID"
        checked = f" + {opinions.path.name} ({len(opinions)} opinions)" if opinions is not None else ""
        print(
            f"{manifest.path}{checked}: {verdict}: {len(manifest)} clips, {patients} patients, "
            f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
        )
    return 0 if valid else 2
