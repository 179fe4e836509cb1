"""Turn a clip into model input: fan crop, aspect-preserving resize with padding, frame rate.

Training, evaluation and inference all call :func:`prepare_clip` with the preprocessing a
model card records, so a model always sees clips made the same way. :class:`ClipCache`
keeps prepared clips as uint8 .npz files so epochs after the first decode no video.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lungus.atomic import atomic_path
from lungus.data.pipeline.layouts import LAYOUTS
from lungus.io.clip import Clip, FanGeometry
from lungus.io.fan import crop_to_fan

CACHE_VERSION = 2



@dataclass(frozen=True)
class Preprocessing:
    """How clips become model input. ``target_fps`` None keeps every frame.

    ``layout="polar"`` unwraps sector fans onto a (depth, angle) grid of ``size`` about the
    probe apex, so radial B-lines become columns (lungus.data.pipeline.transforms.unwrap_fan); a
    clip whose fan is not a detected sector uses ``fallback_sector`` (relative geometry,
    see transforms.relative_sector) if given, else the cartesian letterbox.
    """

    size: tuple[int, int]
    target_fps: float | None = None
    fan_crop: bool = True
    layout: str = "cartesian"
    fallback_sector: tuple[float, float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")

    @classmethod
    def from_card(cls, preprocessing: dict[str, Any]) -> Preprocessing:
        fallback = preprocessing.get("fallback_sector")
        return cls(tuple(preprocessing["size"]), preprocessing.get("target_fps"),
                   bool(preprocessing.get("fan_crop", True)), preprocessing.get("layout", "cartesian"),
                   None if fallback is None else tuple(fallback))

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Placement:
    """Where the model's input lies in the original frame: crop box, then scale, then padding.

    Inference uses it to draw predictions back onto the original frames.
    """

    crop: tuple[int, int, int, int]  # row0, col0, row1, col1 in the original frame
    scale: float  # output pixels per original pixel
    pad: tuple[int, int]  # (top, left) padding in output pixels
    original_size: tuple[int, int]
    # Polar input: (apex_row, apex_col, left_deg, right_deg, inner, outer) of the unwrapped sector
    # in original pixels; crop, scale and pad are then unused.
    sector: tuple[float, float, float, float, float, float] | None = None

    def sector_fan(self) -> FanGeometry:
        from lungus.io.fan import sector_mask

        apex_row, apex_col, left, right, inner, outer = self.sector
        mask = sector_mask(self.original_size, (apex_row, apex_col), (left, right), (inner, outer))
        return FanGeometry(mask, "sector", apex=(apex_row, apex_col), angles_deg=(left, right), radii=(inner, outer))

    def to_original(self, image: np.ndarray, interpolation: int = cv2.INTER_NEAREST) -> np.ndarray:
        """An (H, W) output-space image placed back into an original-size frame (zeros elsewhere)."""
        if self.sector is not None:
            from lungus.data.pipeline.transforms import rewrap_fan

            mode = "nearest" if interpolation == cv2.INTER_NEAREST else "linear"
            return rewrap_fan(image, self.sector_fan(), mode)
        row0, col0, row1, col1 = self.crop
        height, width = row1 - row0, col1 - col0
        top, left = self.pad
        inner = image[top : top + round(height * self.scale), left : left + round(width * self.scale)]
        restored = np.zeros(self.original_size, dtype=image.dtype)
        restored[row0:row1, col0:col1] = cv2.resize(inner, (width, height), interpolation=interpolation)
        return restored


@dataclass
class PreparedClip:
    frames: np.ndarray  # uint8 (T, H, W) at the preprocessing size
    fan: FanGeometry  # in output coordinates
    placement: Placement
    source_frames: np.ndarray  # (T,) index of the original frame each output frame shows
    fps: float | None  # of the output frames
    masks: np.ndarray | None = None  # uint8 class ids (T, H, W), prepared like the frames


def frame_indices(n_frames: int, fps: float | None, target_fps: float | None) -> np.ndarray:
    """Original frames to keep to play at ``target_fps`` (all of them if either rate is unknown
    or the clip is slower than the target: frames are never invented)."""
    if target_fps is None or fps is None or fps <= target_fps:
        return np.arange(n_frames)
    count = max(1, int(np.floor(n_frames * target_fps / fps)))
    return np.minimum(np.round(np.arange(count) * fps / target_fps).astype(int), n_frames - 1)


def _letterbox(stack: np.ndarray, size: tuple[int, int], interpolation: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize (T, h, w) to fit inside ``size`` keeping the aspect ratio, centred, zero-padded."""
    out_h, out_w = size
    _, h, w = stack.shape
    scale = min(out_h / h, out_w / w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
    out = np.zeros((stack.shape[0], out_h, out_w), dtype=stack.dtype)
    for t in range(stack.shape[0]):
        out[t, top : top + new_h, left : left + new_w] = cv2.resize(stack[t], (new_w, new_h), interpolation=interpolation)
    return out, scale, (top, left)


def prepare_clip(clip: Clip, preprocessing: Preprocessing, masks: np.ndarray | None = None) -> PreparedClip:
    """Model-ready frames (and masks, prepared identically) for one clip."""
    if masks is not None and masks.shape != clip.frames.shape:
        raise ValueError(f"masks {masks.shape} do not match the frames {clip.frames.shape}")
    keep = frame_indices(clip.n_frames, clip.fps, preprocessing.target_fps)
    fps = preprocessing.target_fps if len(keep) < clip.n_frames else clip.fps
    if preprocessing.layout == "polar":
        polar = _prepare_polar(clip, preprocessing, masks, keep, fps)
        if polar is not None:
            return polar
    crop = (0, 0, clip.height, clip.width)
    working, fan = clip, clip.fan
    if preprocessing.fan_crop:
        working = crop_to_fan(Clip(clip.frames[keep], fps=clip.fps, fan=clip.fan))
        crop, fan = tuple(working.meta["fan_bbox"]), working.fan
        frames = working.frames
    else:
        frames = clip.frames[keep]
    if fan is None:
        fan = FanGeometry(np.ones(frames.shape[1:], bool), "full", source="assumed")
    out, scale, pad = _letterbox(frames, preprocessing.size, cv2.INTER_AREA)
    mask_out = None
    if masks is not None:
        row0, col0, row1, col1 = crop
        cropped = masks[keep][:, row0:row1, col0:col1]
        if preprocessing.fan_crop:
            cropped = np.where(fan.mask, cropped, 0).astype(np.uint8)
        mask_out, _, _ = _letterbox(cropped, preprocessing.size, cv2.INTER_NEAREST)
    fan_mask, _, _ = _letterbox(fan.mask[None].astype(np.uint8), preprocessing.size, cv2.INTER_NEAREST)
    top, left = pad
    apex = None if fan.apex is None else (fan.apex[0] * scale + top, fan.apex[1] * scale + left)
    radii = None if fan.radii is None else (fan.radii[0] * scale, fan.radii[1] * scale)
    out_fan = FanGeometry(fan_mask[0].astype(bool), fan.kind, apex=apex, angles_deg=fan.angles_deg, radii=radii,
                          source=fan.source)
    placement = Placement(crop, scale, pad, (clip.height, clip.width))
    return PreparedClip(out, out_fan, placement, keep, fps, mask_out)


def _prepare_polar(clip: Clip, preprocessing: Preprocessing, masks: np.ndarray | None, keep: np.ndarray,
                   fps: float | None) -> PreparedClip | None:
    """The fan unwrapped onto a (depth, angle) grid, or None when there is no sector to unwrap."""
    from lungus.data.pipeline.transforms import is_unwrappable, relative_sector, unwrap_fan

    fan = clip.fan
    if not is_unwrappable(fan) and preprocessing.fallback_sector is not None:
        fan = relative_sector((clip.height, clip.width), preprocessing.fallback_sector)
    if not is_unwrappable(fan):
        return None
    frames = unwrap_fan(clip.frames[keep], fan, preprocessing.size)
    grid_masks = None if masks is None else unwrap_fan(masks[keep], fan, preprocessing.size, "nearest")
    grid_fan = unwrap_fan(fan.mask.astype(np.uint8), fan, preprocessing.size, "nearest") > 0
    sector = (*fan.apex, *fan.angles_deg, *fan.radii)
    placement = Placement((0, 0, clip.height, clip.width), 1.0, (0, 0), (clip.height, clip.width),
                          tuple(float(v) for v in sector))
    return PreparedClip(frames, FanGeometry(grid_fan, "full", source=fan.source), placement, keep, fps, grid_masks)


class ClipCache:
    """Prepared clips on disk, keyed by the source file (path, size, mtime) and the preprocessing.

    Writing is atomic, so concurrent DataLoader workers or ranks at worst prepare a clip twice.
    """

    def __init__(self, folder: str | os.PathLike | None) -> None:
        self.folder = None if folder is None else Path(folder)

    def _key(self, path: Path, preprocessing: Preprocessing, mask_path: Path | None) -> str:
        parts = [str(CACHE_VERSION), preprocessing.key()]
        for p in (path, mask_path):
            if p is not None:
                stat = p.stat()
                parts += [str(p.resolve()), str(stat.st_size), str(stat.st_mtime_ns)]
        return hashlib.sha1("|".join(parts).encode()).hexdigest()

    def get(self, path: str | os.PathLike, preprocessing: Preprocessing, mask_path: str | os.PathLike | None = None,
            read_masks=None) -> PreparedClip:
        """The prepared clip, from the cache or by reading ``path`` (and ``mask_path`` with ``read_masks``)."""
        from lungus.io.reader import read_clip

        path = Path(path)
        mask_path = None if mask_path is None else Path(mask_path)
        entry = None
        if self.folder is not None:
            entry = self.folder / f"{self._key(path, preprocessing, mask_path)}.npz"
            if entry.is_file():
                try:
                    return _load_entry(entry)
                except (OSError, ValueError, KeyError):
                    entry.unlink(missing_ok=True)  # a damaged entry is rebuilt, not trusted
        masks = None if mask_path is None else read_masks(mask_path)
        prepared = prepare_clip(read_clip(path), preprocessing, masks)
        if entry is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(entry) as temporary:
                _save_entry(temporary, prepared)
        return prepared


def _save_entry(path: Path, prepared: PreparedClip) -> None:
    fan, placement = prepared.fan, prepared.placement
    meta = {
        "fps": prepared.fps,
        "fan": {"kind": fan.kind, "apex": fan.apex, "angles_deg": fan.angles_deg, "radii": fan.radii,
                "source": fan.source},
        "placement": {"crop": placement.crop, "scale": placement.scale, "pad": placement.pad,
                      "original_size": placement.original_size, "sector": placement.sector},
    }
    arrays = {"frames": prepared.frames, "fan_mask": fan.mask, "source_frames": prepared.source_frames,
              "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    if prepared.masks is not None:
        arrays["masks"] = prepared.masks
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _load_entry(path: Path) -> PreparedClip:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(data["meta"].tobytes().decode())
        fan_meta, place = meta["fan"], meta["placement"]
        tup = lambda v: None if v is None else tuple(v)  # noqa: E731
        fan = FanGeometry(data["fan_mask"], fan_meta["kind"], apex=tup(fan_meta["apex"]),
                          angles_deg=tup(fan_meta["angles_deg"]), radii=tup(fan_meta["radii"]), source=fan_meta["source"])
        placement = Placement(tuple(place["crop"]), place["scale"], tuple(place["pad"]), tuple(place["original_size"]),
                              tup(place.get("sector")))
        masks = data["masks"] if "masks" in data.files else None
        return PreparedClip(data["frames"], fan, placement, data["source_frames"], meta["fps"], masks)
