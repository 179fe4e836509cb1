"""Contact sheet of simulated clips: a frame and the same frame with its coloured mask."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from lungus.atomic import atomic_path
from lungus.data.labels.mask_colours import colour_mask, coloured_classes

_CAPTION = 14


def _fit(image: np.ndarray, tile: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = tile / max(h, w)
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)
    canvas = np.zeros((tile, tile, 3), dtype=np.uint8)
    y, x = (tile - size[1]) // 2, (tile - size[0]) // 2
    canvas[y : y + size[1], x : x + size[0]] = resized
    return canvas


def _text(canvas: np.ndarray, text: str, origin: tuple[int, int], colour=(230, 230, 230)) -> None:
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.36, colour, 1, cv2.LINE_AA)


def contact_sheet(
    items: Sequence[tuple[np.ndarray, np.ndarray, str]],
    columns: int = 3,
    tile: int = 192,
) -> np.ndarray:
    """RGB sheet; ``items`` are (frame (H, W) uint8, mask (H, W) uint8, caption).

    Each item takes two tiles side by side (frame, frame + mask) under its caption; a
    legend of the mask colours runs along the bottom.
    """
    if not items:
        raise ValueError("a contact sheet needs at least one frame")
    columns = max(1, min(columns, len(items)))
    rows = -(-len(items) // columns)
    cell_w, cell_h = 2 * tile, tile + _CAPTION
    legend_h = 20
    sheet = np.zeros((rows * cell_h + legend_h, columns * cell_w, 3), dtype=np.uint8)
    for i, (frame, mask, caption) in enumerate(items):
        r, c = divmod(i, columns)
        y, x = r * cell_h, c * cell_w
        _text(sheet, caption, (x + 4, y + _CAPTION - 4))
        sheet[y + _CAPTION : y + cell_h, x : x + tile] = _fit(np.repeat(frame[..., None], 3, axis=2), tile)
        sheet[y + _CAPTION : y + cell_h, x + tile : x + cell_w] = _fit(colour_mask(frame, mask), tile)
        sheet[y : y + cell_h, x + cell_w - 1] = 40  # separator
    x = 6
    y = rows * cell_h + 4
    for seg_class in coloured_classes():
        cv2.rectangle(sheet, (x, y), (x + 11, y + 11), seg_class.rgb, -1)
        _text(sheet, seg_class.name, (x + 15, y + 10))
        x += 24 + 7 * len(seg_class.name)
    return sheet


def write_png(image_rgb: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an RGB image as PNG, atomically."""
    path = Path(path)
    with atomic_path(path) as temporary:
        if not cv2.imwrite(
            str(temporary), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9]
        ):
            raise OSError(f"could not write {path}")
    return path
