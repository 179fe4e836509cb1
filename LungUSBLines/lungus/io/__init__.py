"""Reading and writing lung-ultrasound clips, and finding their fan.

from lungus.io import read_clip, write_clip, detect_fan, crop_to_fan

clip = read_clip("scan.dcm")          # any format; clip.fan found
masked = crop_to_fan(clip)             # cropped, everything outside the fan zeroed
write_clip(masked, "scan.seq.nrrd")    # a Slicer volume sequence
"""

from lungus.io.clip import Clip, FanGeometry
from lungus.io.fan import (
    FanDetectionConfig,
    crop_to_fan,
    detect_fan,
    fan_sidecar_path,
    read_fan_sidecar,
    rectangle_mask,
    sector_mask,
)
from lungus.io.formats import (
    CLIP_SUFFIXES,
    DEFAULT_MAX_VOXELS,
    IMAGE_SUFFIXES,
    clip_format,
    find_clips,
    looks_like_clip,
    natural_key,
)
from lungus.io.reader import read_clip
from lungus.io.writer import WRITE_FORMATS, write_clip

__all__ = [
    "CLIP_SUFFIXES",
    "DEFAULT_MAX_VOXELS",
    "IMAGE_SUFFIXES",
    "WRITE_FORMATS",
    "Clip",
    "FanDetectionConfig",
    "FanGeometry",
    "clip_format",
    "crop_to_fan",
    "detect_fan",
    "fan_sidecar_path",
    "find_clips",
    "looks_like_clip",
    "natural_key",
    "read_clip",
    "read_fan_sidecar",
    "rectangle_mask",
    "sector_mask",
    "write_clip",
]
