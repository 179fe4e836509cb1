"""The --confine-paths option of the commands that read manifests (train, evaluate, infer,
validate): refuse manifest paths that lead outside the manifest's folder (docs/manifest-paths.md)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable


def add_confine_paths_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--confine-paths",
        dest="confine_paths",
        action="store_true",
        help="refuse a manifest whose clip or mask paths lead outside its folder (../, absolute paths, "
        "symbolic links): for manifests from others",
    )


def check_confined(args: argparse.Namespace, manifests: Iterable[str | os.PathLike | None]) -> None:
    """With --confine-paths, a one-line LungUSError naming the first manifest line whose path
    leads outside the manifest's folder; nothing without it."""
    if not getattr(args, "confine_paths", False):
        return
    from lungus.data.manifests.manifest import Manifest

    for manifest in manifests:
        if manifest is not None:
            Manifest.load(manifest, confine_paths=True)
