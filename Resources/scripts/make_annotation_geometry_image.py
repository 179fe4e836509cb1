"""The picture of docs/formats.md#annotation-geometry: SlicerUltrasound's own test annotation read back.

How it was made (rerun the same way after changing lungus/data/labels/annotations.py)::

    PYTHONPATH=LungUSBLines python Resources/scripts/make_annotation_geometry_image.py docs/images

Writes ``annotation_geometry.png``: SlicerUltrasound's ``3038953328_70622118.tom.json``
(Testing/data/slicer_ultrasound, MIT) over a blank 649x850 frame with its fan in grey. Left: read
at 0.261 mm per pixel, the spacing the lines imply (the DICOM's ultrasound region, as Slicer loads
it): the pleura (blue) and B-line (green) classes where the rater clicked (red circles). Right: the same
points read at one millimetre per pixel, the spacing ignored: they land outside the fan, where lungus
refuses the frame instead of training on an empty mask.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from lungus.data.labels.annotations import annotation_masks, read_annotation
from lungus.data.labels.mask_colours import colour_mask
from lungus.io.fan import read_fan_sidecar
from lungus.io.geometry import ijk_to_lps_matrix

REPOSITORY = Path(__file__).resolve().parents[2]
DATA = REPOSITORY / "Testing" / "data" / "slicer_ultrasound"
NAME = "3038953328_70622118"
SHAPE = (649, 850)
SPACING_MM = 0.261
SCALE = 0.7
RED = (230, 40, 40)


def _points_mm(annotation) -> list[np.ndarray]:
    frame = annotation.frames[0]
    return [line.points_lps[:, :2] for line in (*frame.pleura, *frame.blines)]


def _panel(background: np.ndarray, points_px: list[np.ndarray], caption: str) -> np.ndarray:
    panel = cv2.resize(background, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_AREA)
    for points in points_px:
        for col, row in np.rint(points * SCALE).astype(int):
            cv2.circle(panel, (int(col), int(row)), 4, RED, 1, lineType=cv2.LINE_AA)
    strip = np.full((34, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, caption, (8, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([strip, panel])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for annotation_geometry.png (docs/images)")
    args = parser.parse_args()
    annotation = read_annotation(DATA / f"{NAME}.tom.json")
    fan = read_fan_sidecar(DATA / f"{NAME}.json", SHAPE)
    frame = np.where(fan.mask, 70, 0).astype(np.uint8)
    spacing = ijk_to_lps_matrix((SPACING_MM, SPACING_MM))
    masks = annotation_masks(annotation, SHAPE, fan, n_frames=1, ijk_to_lps=spacing)
    points = _points_mm(annotation)
    left = _panel(colour_mask(frame, masks.masks[0], alpha=0.9), [p / SPACING_MM for p in points],
                  f"read at {SPACING_MM} mm per pixel (the DICOM's region)")
    right = _panel(colour_mask(frame, np.zeros(SHAPE, np.uint8)), points,
                   "read at 1 mm per pixel: outside the fan, refused")
    gap = np.full((left.shape[0], 12, 3), 255, np.uint8)
    image = np.hstack([left, gap, right])
    legend = np.full((30, image.shape[1], 3), 255, np.uint8)
    cv2.putText(legend, "blue: pleural line class, green: B-line class, red circles: the points the rater "
                "clicked (3038953328_70622118.tom.json, SlicerUltrasound)", (8, 20), cv2.FONT_HERSHEY_SIMPLEX,
                0.5, (0, 0, 0), 1, cv2.LINE_AA)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "annotation_geometry.png"
    cv2.imwrite(str(target), cv2.cvtColor(np.vstack([image, legend]), cv2.COLOR_RGB2BGR))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
