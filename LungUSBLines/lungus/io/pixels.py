"""Pixel conversions shared by the readers: to uint8, colour to grey, and whether colour matters.

Readers decode frame by frame into a FrameAccumulator, so a grey clip never costs more
than one byte per voxel, however its file stores it (RGB video, YBR DICOM).
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from lungus.errors import LungUSError
from lungus.io.formats import check_voxels

#: A pixel is coloured when its channels differ by more than this (0-255). JPEG and
#: video compression leave chroma noise of a few levels on grey ultrasound; colour
#: Doppler and colour overlays differ by far more.
COLOUR_CHROMA = 40
#: Colour is kept when this fraction of the frame is coloured and changes over time
#: (Doppler flow). Static colour (a vendor logo, a colour bar) does not count.
COLOUR_MIN_FRACTION = 0.001
#: For a single frame nothing can change: keep colour when this fraction is coloured.
COLOUR_MIN_FRACTION_STILL = 0.002


def to_uint8(array: np.ndarray) -> tuple[np.ndarray, bool]:
    """``array`` as uint8 and whether its values had to be rescaled.

    uint8 passes through; booleans become 0/255; floats in [0, 1] are scaled by 255;
    any other type already within 0..255 is cast; everything else is stretched from its
    minimum and maximum over the whole array (so frames keep their relative brightness).
    """
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array, False
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255, True
    if array.size == 0:
        return array.astype(np.uint8), False
    if np.issubdtype(array.dtype, np.floating):
        finite = np.isfinite(array)
        if not finite.all():
            array = np.where(finite, array, 0)
        low, high = float(array.min()), float(array.max())
        if low >= 0.0 and high <= 1.0:
            return np.rint(array * 255.0).astype(np.uint8), True
    else:
        low, high = float(array.min()), float(array.max())
    if low >= 0 and high <= 255:
        return np.rint(array).astype(np.uint8) if np.issubdtype(array.dtype, np.floating) else array.astype(
            np.uint8
        ), False
    scale = 255.0 / (high - low) if high > low else 0.0
    out = np.empty(array.shape, dtype=np.uint8)
    # In slices along the first axis so a large clip never needs a float copy of itself.
    for index in range(array.shape[0] if array.ndim > 2 else 1):
        part = array[index] if array.ndim > 2 else array
        target = out[index] if array.ndim > 2 else out
        target[...] = np.rint((part.astype(np.float32) - low) * scale)
    return out, True


def coloured_pixels(rgb: np.ndarray) -> np.ndarray:
    """Boolean map of pixels whose channels differ by more than COLOUR_CHROMA."""
    first, second, third = cv2.split(np.ascontiguousarray(rgb))
    # max - min over the channels, as the largest pairwise difference (cv2 is ~10x faster
    # than a numpy reduction over a length-3 axis).
    chroma = cv2.max(
        cv2.max(cv2.absdiff(first, second), cv2.absdiff(second, third)), cv2.absdiff(first, third)
    )
    return chroma > COLOUR_CHROMA


class FrameAccumulator:
    """Collects decoded frames into a (T, H, W) uint8 grey array, keeping RGB only if it matters.

    ``add`` takes (H, W) grey or (H, W, 3|4) colour frames (RGB order, or BGR with
    ``bgr=True`` as OpenCV decodes them). Colour frames are converted to grey at once;
    an RGB buffer is started only when a frame actually carries colour, and kept at the
    end only when the colour is meaningful (see COLOUR_MIN_FRACTION).
    The voxel budget is enforced as frames arrive, so a stream longer than its header
    claimed still cannot exhaust memory.
    """

    def __init__(
        self, path: str | os.PathLike | None, max_voxels: int, expected_frames: int = 0, bgr: bool = False
    ) -> None:
        self.path = path
        self.max_voxels = max_voxels
        self.expected_frames = max(int(expected_frames or 0), 0)
        self.bgr = bgr
        self.n_frames = 0
        self._grey: np.ndarray | None = None
        self._rgb: np.ndarray | None = None
        self._ever_coloured: np.ndarray | None = None
        self._changing_colour: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int] | None:
        return None if self._grey is None else self._grey.shape[1:]

    def add(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8:
            frame, _ = to_uint8(frame)
        if frame.ndim == 3 and frame.shape[2] == 1:
            frame = frame[:, :, 0]
        if frame.ndim == 3 and frame.shape[2] == 4:
            frame = frame[:, :, :3]
        if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] != 3):
            raise LungUSError(f"frame {self.n_frames} has unsupported shape {frame.shape}", self.path)
        height, width = frame.shape[:2]
        if self._grey is None:
            check_voxels(self.path, max(self.expected_frames, 1), height, width, self.max_voxels)
            self._grey = np.empty((max(self.expected_frames, 1), height, width), dtype=np.uint8)
        elif (height, width) != self._grey.shape[1:]:
            first = self._grey.shape[1:]
            raise LungUSError(
                f"frame {self.n_frames} is {height}x{width} pixels but frame 0 is {first[0]}x{first[1]}",
                self.path,
            )
        index = self.n_frames
        self._reserve(index + 1)
        if frame.ndim == 2:
            self._grey[index] = frame
            if self._rgb is not None:
                self._rgb[index] = frame[:, :, None]
        else:
            code = cv2.COLOR_BGR2GRAY if self.bgr else cv2.COLOR_RGB2GRAY
            self._grey[index] = cv2.cvtColor(np.ascontiguousarray(frame), code)
            self._track_colour(frame, index)
        self.n_frames += 1

    def _reserve(self, n_needed: int) -> None:
        capacity = self._grey.shape[0]
        if n_needed <= capacity:
            return
        height, width = self._grey.shape[1:]
        check_voxels(self.path, n_needed, height, width, self.max_voxels)
        new_capacity = max(n_needed, min(capacity * 2, self.max_voxels // (height * width)))
        grown = np.empty((new_capacity, height, width), dtype=np.uint8)
        grown[:capacity] = self._grey
        self._grey = grown
        if self._rgb is not None:
            grown_rgb = np.empty((new_capacity, height, width, 3), dtype=np.uint8)
            grown_rgb[:capacity] = self._rgb
            self._rgb = grown_rgb

    def _track_colour(self, frame: np.ndarray, index: int) -> None:
        rgb = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGR2RGB) if self.bgr else frame
        coloured = coloured_pixels(rgb)
        if self._ever_coloured is None:
            self._ever_coloured = np.zeros(coloured.shape, dtype=bool)
            self._changing_colour = np.zeros(coloured.shape, dtype=bool)
        if coloured.any():
            self._ever_coloured |= coloured
            if self._rgb is None:
                # The first coloured frame: earlier frames were grey, so grey is their RGB.
                self._rgb = np.empty(self._grey.shape + (3,), dtype=np.uint8)
                self._rgb[:index] = self._grey[:index, :, :, None]
            if index > 0:
                previous = self._rgb[index - 1].astype(np.int16)
                moved = np.abs(rgb.astype(np.int16) - previous).max(axis=-1) > COLOUR_CHROMA
                self._changing_colour |= coloured & moved
        if self._rgb is not None:
            self._rgb[index] = rgb

    def colour_matters(self) -> bool:
        if self._rgb is None or self._ever_coloured is None:
            return False
        if self.n_frames == 1:
            return float(self._ever_coloured.mean()) >= COLOUR_MIN_FRACTION_STILL
        return float(self._changing_colour.mean()) >= COLOUR_MIN_FRACTION

    def finish(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(grey (T, H, W), rgb (T, H, W, 3) or None). Raises if no frame arrived."""
        if self._grey is None or self.n_frames == 0:
            raise LungUSError("the clip holds no frames", self.path)
        grey = self._trim(self._grey)
        rgb = self._trim(self._rgb) if self.colour_matters() else None
        self._grey = self._rgb = None
        return grey, rgb

    def _trim(self, array: np.ndarray) -> np.ndarray:
        if array.shape[0] == self.n_frames:
            return array
        return array[: self.n_frames].copy()
