"""A simulated set is the same, file for file, for the same seed: refactoring the simulator
must keep every random draw in its order and every pixel, count and label as it was.

The expected digest was recorded from the simulator before its long functions were split
into named steps (issue 17). Images are hashed decoded (pixels, shape, dtype), so the digest
does not depend on the compressor's version; text files are hashed as written. Renders use
OpenCV and numpy floating point: another build of either may change the digest, in which
case record it again from a known-good commit (``python -m pytest ... -s`` prints it).
"""

from __future__ import annotations

import hashlib

import numpy as np

from lungus.io import read_clip
from lungus.sim.dataset import write_dataset
from lungus.sim.generator import SimulationConfig

# Mixed probes (convex and linear), burnt-in annotations, every designed state among the clips.
CONFIG = SimulationConfig(n_frames=6, height=96, width=96, probe="mixed", annotations=True)
N_CLIPS, N_PATIENTS, SEED = 10, 4, 0
EXPECTED = "7252d4fffc00e7e193adff12ddcc7f4fddff75b667f48ab0d21b92d495756e0c"


def _array_digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    header = f"{array.dtype.str}{array.shape}".encode()
    return hashlib.sha256(header + array.tobytes()).hexdigest()


def _file_digest(path) -> str:
    if path.name.endswith((".seq.nrrd", ".png")):
        if path.suffix == ".png":
            import cv2

            return _array_digest(cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
        return _array_digest(read_clip(path, fan=False).frames)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def set_digest(folder) -> tuple[str, dict[str, str]]:
    files = {
        str(path.relative_to(folder)): _file_digest(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    whole = hashlib.sha256("".join(f"{name}:{digest}\n" for name, digest in files.items()).encode())
    return whole.hexdigest(), files


def _covers_every_path(folder) -> bool:
    """Every designed state, both probe kinds and a consolidation: the digest guards them all."""
    import csv

    with open(folder / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return (
        {row["sim_state"] for row in rows} == {"0", "1", "2", "3"}
        and {row["probe"] for row in rows} == {"convex", "linear"}
        and any(float(row["sim_consolidation_mm"]) > 0 for row in rows)
    )


def test_a_simulated_set_is_the_same_file_for_file_as_before(tmp_path):
    write_dataset(
        tmp_path, N_CLIPS, N_PATIENTS, seed=SEED, config=CONFIG, clip_format="seq.nrrd", preview=True
    )
    digest, files = set_digest(tmp_path)
    print(digest, *(f"{digest} {name}" for name, digest in files.items()), sep="\n")
    assert len(files) == 2 * N_CLIPS + N_CLIPS + 5  # clips, masks, fan JSONs; 4 CSVs and the preview
    assert _covers_every_path(tmp_path)
    assert digest == EXPECTED
