"""Before/after images of pixel de-identification (`lungus convert --crop-fan`) for docs/.

How they were made (rerun the same way after changing lungus/io/overlay.py or fan.py)::

    PYTHONPATH=LungUSBLines python Resources/scripts/make_deidentification_images.py docs/images

Simulated clips only, never real ones. Writes, into the folder given:

- ``deid_convex.png``, ``deid_linear.png``, ``deid_phased.png``: the test suite's clips
  (Testing/conftest.py, burned_text_frames) with text in the frame's corners, a scanner
  column ending at the fan's edge (saved as mp4 first, as clips arrive, so the codec blurs
  it into the fan) and lines running into the fan; one row each: before | after | removed
  (red: masked as static text inside the fan; blue: blanked outside it);
- ``deid_simulated_linear.png``: a lungus.sim linear clip as mp4 without a fan JSON, the
  case the issue found keeping its whole text column.

The fan is detected (no fan JSON), exactly as `convert --crop-fan` does it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from lungus.io import Clip, read_clip, write_clip
from lungus.io.deidentify import deidentify

REPOSITORY = Path(__file__).resolve().parents[2]
ROWS = (("corners", False), ("fan_edge", True), ("bbox_overlap", False))  # (placement, through mp4)
SCALE = 1  # full size: speckle compresses poorly, and the text is legible at 240 pixels across


def _as_mp4(frames: np.ndarray, folder: Path, name: str) -> np.ndarray:
    path = write_clip(Clip(frames, fps=25.0), folder / f"{name}.mp4")
    return read_clip(path, fan=False).frames


def _panels(frames: np.ndarray) -> np.ndarray:
    """before | after | removed for the first frame, as one BGR strip."""
    cleaned, report = deidentify(Clip(frames))
    row0, col0, row1, col1 = report.fan["bbox"]
    after = np.zeros_like(frames[0])
    after[row0:row1, col0:col1] = cleaned.frames[0]
    removed = cv2.cvtColor(frames[0], cv2.COLOR_GRAY2BGR)
    changed = frames[0] != after
    inside = np.zeros_like(changed)
    inside[row0:row1, col0:col1] = cleaned.fan.mask
    removed[changed & ~inside] = (255, 80, 0)
    removed[changed & inside] = (0, 0, 255)
    strip = np.hstack([cv2.cvtColor(frames[0], cv2.COLOR_GRAY2BGR), cv2.cvtColor(after, cv2.COLOR_GRAY2BGR), removed])
    strip = cv2.resize(strip, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
    caption = report.summary()
    return _captioned(strip, caption)


def _captioned(image: np.ndarray, text: str) -> np.ndarray:
    band = np.full((22, image.shape[1], 3), 40, np.uint8)
    cv2.putText(band, text, (6, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (230, 230, 230), 1, cv2.LINE_AA)
    return np.vstack([band, image])


def _header(width: int, title: str) -> np.ndarray:
    band = np.full((30, width, 3), 255, np.uint8)
    cv2.putText(band, title, (6, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return band


def probe_image(kind: str, folder: Path) -> np.ndarray:
    sys.path.insert(0, str(REPOSITORY / "Testing"))
    from conftest import burned_text_frames

    strips = []
    for placement, through_mp4 in ROWS:
        frames, _, _ = burned_text_frames(kind, placement, n_frames=24)
        if through_mp4:
            frames = _as_mp4(frames, folder, f"{kind}_{placement}")
        strips.append(_captioned(_panels(frames), f"text: {placement.replace('_', ' ')}" + (" (mp4)" if through_mp4 else "")))
    image = np.vstack(strips)
    return np.vstack([_header(image.shape[1], f"{kind} probe: before | after --crop-fan | removed"), image])


def simulated_linear_image(folder: Path) -> np.ndarray:
    from lungus.sim.generator import SimulationConfig, simulate_clip

    simulated = simulate_clip(SimulationConfig(n_frames=24, height=256, width=256), seed=0, probe="linear")
    frames = _as_mp4(simulated.clip.frames, folder, "simulated_linear")
    image = _panels(frames)
    return np.vstack([_header(image.shape[1], "lungus.sim linear clip, mp4, no fan JSON: before | after | removed"), image])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the PNG files (docs/images)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for kind in ("convex", "linear", "phased"):
            cv2.imwrite(str(args.out / f"deid_{kind}.png"), probe_image(kind, Path(scratch)))
        cv2.imwrite(str(args.out / "deid_simulated_linear.png"), simulated_linear_image(Path(scratch)))
    print(f"wrote 4 images into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
