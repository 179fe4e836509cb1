"""Per-frame deep features, cached per clip, frame and backbone (docs/frame-fusion.md#features).

A feature folder holds ``<backbone>/<clip>.npz`` (``features`` float32 (T, D), one row per
prepared frame, and ``source_frames``, the original frame each row shows) and
``<backbone>/backbone.json`` (what the backbone is). ``<backbone>`` is a digest of the encoder's
weights and description, ``<clip>`` a digest of the clip file's content and the preprocessing,
so a changed clip, model or preprocessing is computed afresh and an unchanged one never twice.
Entries are written atomically as each clip finishes, so a stopped run resumes where it was.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lungus.atomic import atomic_path, atomic_write_text
from lungus.data.pipeline.clip_preparation import ClipCache, Preprocessing
from lungus.errors import LungUSError, error_detail
from lungus.features.backbones import Backbone
from lungus.models.fusion import frame_features
from lungus.models.normalisation import normalise_frames
from lungus.progress import Progress

#: Frames per encoder call.
FRAME_BATCH = 64
_fingerprints: dict[tuple[str, int, int], str] = {}


def content_fingerprint(path: str | os.PathLike) -> str:
    """SHA-256 of a clip's bytes (a frame folder: of its files' names and bytes, in name order);
    remembered per path, size and modification time within a process."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as error:
        raise LungUSError(f"cannot read clip ({error_detail(error)})", path) from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _fingerprints:
        digest = hashlib.sha256()
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(file.relative_to(path).as_posix().encode() + b"\0" if path.is_dir() else b"")
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        _fingerprints[key] = digest.hexdigest()
    return _fingerprints[key]


@dataclass
class FeatureReport:
    """What a batch did: clips computed, clips found in the cache, and (clip, error) of clips it could not read."""

    computed: int = 0
    cached: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.computed} clips computed, {self.cached} from the cache"
        if self.failed:
            text += f", {len(self.failed)} failed (first: {self.failed[0][0]}: {self.failed[0][1]})"
        return text


class FeatureStore:
    """The feature folder (module docstring)."""

    def __init__(self, folder: str | os.PathLike, preprocessing: Preprocessing, clip_cache: ClipCache,
                 device: torch.device | str = "cpu") -> None:
        self.folder = Path(folder)
        self.preprocessing = preprocessing
        self.clip_cache = clip_cache
        self.device = torch.device(device)

    def entry(self, backbone: Backbone, clip_path: str | os.PathLike) -> Path:
        clip_key = hashlib.sha256((content_fingerprint(clip_path) + self.preprocessing.key()).encode()).hexdigest()
        return self.folder / backbone.digest[:24] / f"{clip_key[:32]}.npz"

    def _describe(self, backbone: Backbone) -> None:
        info = self.folder / backbone.digest[:24] / "backbone.json"
        if not info.is_file():
            info.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(info, json.dumps({"source": backbone.source, "digest": backbone.digest,
                                                **backbone.description}, indent=2))

    def load(self, backbone: Backbone, clip_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray] | None:
        """(features (T, D), source_frames (T,)) from the cache, or None (a damaged entry is dropped)."""
        entry = self.entry(backbone, clip_path)
        if not entry.is_file():
            return None
        try:
            with np.load(entry, allow_pickle=False) as data:
                return data["features"], data["source_frames"]
        except (OSError, ValueError, KeyError):
            entry.unlink(missing_ok=True)
            return None

    @torch.no_grad()
    def compute(self, backbone: Backbone, clip_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
        """Features of every prepared frame of one clip, written to the cache."""
        prepared = self.clip_cache.get(clip_path, self.preprocessing)
        encoder = backbone.encoder.to(self.device).eval()
        chunks = []
        for start in range(0, len(prepared.frames), FRAME_BATCH):
            frames = normalise_frames(prepared.frames[start:start + FRAME_BATCH], backbone.description["normalisation"])
            chunks.append(frame_features(encoder, frames.unsqueeze(1).to(self.device)).cpu())
        features = torch.cat(chunks).numpy().astype(np.float32)
        self._describe(backbone)
        entry = self.entry(backbone, clip_path)
        with atomic_path(entry) as temporary, open(temporary, "wb") as handle:
            np.savez(handle, features=features, source_frames=prepared.source_frames)
        return features, prepared.source_frames

    def get(self, backbone: Backbone, clip_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
        return self.load(backbone, clip_path) or self.compute(backbone, clip_path)

    def fused(self, backbones: Sequence[Backbone], clip_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
        """(T, D1 + D2 + ...) the backbones' features side by side, and the source frames."""
        parts = [self.get(backbone, clip_path) for backbone in backbones]
        return np.concatenate([features for features, _ in parts], axis=1), parts[0][1]

    def extract(self, clip_paths: Sequence[str | os.PathLike], backbones: Sequence[Backbone], *,
                log: Callable[[str], None] = print, progress: Progress | None = None) -> FeatureReport:
        """Every clip's features from every backbone; a clip that cannot be read is reported and skipped."""
        report = FeatureReport()
        for index, clip_path in enumerate(clip_paths):
            try:
                cached = all(self.entry(b, clip_path).is_file() for b in backbones)
                for backbone in backbones:
                    self.get(backbone, clip_path)
                if cached:
                    report.cached += 1
                else:
                    report.computed += 1
            except LungUSError as error:
                report.failed.append((str(clip_path), str(error)))
                log(f"skipping {clip_path}: {error}")
            if progress is not None:
                progress(index + 1, len(clip_paths), "clips")
        return report
