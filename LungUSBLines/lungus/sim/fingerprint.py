"""Which simulator made a collection: the lungus version and a hash of the simulator's source.

The version alone does not change with every edit of the renderer, so a number measured on
simulated clips (`lungus realism`, docs/real-clips.md#realism) also names the SHA-256 of every
``lungus/sim`` source file (its path inside the package and its bytes, in path order): a change
to any of them gives another fingerprint. Code the simulator calls elsewhere (the clip writers
of lungus.io, the label rules of lungus.data) is not hashed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from lungus import __version__

SIM_SOURCE = Path(__file__).resolve().parent


def simulator_fingerprint(source: str | os.PathLike | None = None) -> dict[str, Any]:
    """``{"lungus_version", "source_sha256", "source_files"}`` of the simulator's ``*.py`` files
    under ``source`` (default: this package's lungus/sim)."""
    folder = Path(source) if source is not None else SIM_SOURCE
    digest = hashlib.sha256()
    files = sorted(path for path in folder.rglob("*.py") if "__pycache__" not in path.parts)
    for path in files:
        name = path.relative_to(folder).as_posix().encode()
        content = path.read_bytes()
        # Lengths first, so no two different trees hash the same stream of bytes.
        digest.update(len(name).to_bytes(8, "little") + name + len(content).to_bytes(8, "little") + content)
    return {"lungus_version": __version__, "source_sha256": digest.hexdigest(), "source_files": len(files)}
