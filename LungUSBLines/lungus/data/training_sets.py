"""torch Datasets over a manifest, for the training loop (lungus.train).

Training sets draw their randomness from ``(seed, epoch, index)`` (see ``set_epoch``),
so a resumed run replays an uninterrupted one exactly, with any number of DataLoader
workers. Evaluation sets hand out whole prepared clips.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lungus.data.manifest import Manifest
from lungus.data.preprocess import ClipCache, PreparedClip, Preprocessing
from lungus.errors import LungUSError

# (frames uint8 (T, H, W), masks uint8 (T, H, W) or None, fan mask (H, W), rng) -> (frames, masks)
Augment = Callable[[np.ndarray, "np.ndarray | None", np.ndarray, np.random.Generator], tuple[np.ndarray, Any]]


def sample_window(n_frames: int, window: int, rng: np.random.Generator) -> np.ndarray:
    """Frame indices of one random training window; a clip shorter than the window has its
    frames repeated evenly (never blank padding, which would read as "no B-lines")."""
    if n_frames >= window:
        start = int(rng.integers(0, n_frames - window + 1))
        return np.arange(start, start + window)
    return np.floor(np.linspace(0, n_frames, window, endpoint=False)).astype(int)


class ManifestClips:
    """Prepared clips of some manifest rows, read once through a ClipCache and kept in memory."""

    def __init__(self, manifest: Manifest, rows: Sequence[int], preprocessing: Preprocessing,
                 cache: ClipCache, mask_column: str | None = None, read_masks: Callable | None = None) -> None:
        self.manifest = manifest
        self.rows = list(rows)
        self.preprocessing = preprocessing
        self.cache = cache
        self.mask_column = mask_column
        self.read_masks = read_masks
        clips, patients = manifest.clips, manifest.patients
        self.names = [clips[r] for r in self.rows]
        self.patients = [patients[r] for r in self.rows]
        self._prepared: dict[int, PreparedClip] = {}
        self.failed: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self.rows)

    def prepare_all(self, log: Callable[[str], None] = print, desc: str = "prepare clips") -> list[tuple[str, str]]:
        """Read every clip now (into the cache) and drop the unreadable ones.

        Returns (clip, error) for each dropped clip: one bad file is reported, not fatal.
        """
        from tqdm.auto import tqdm

        failed, keep = [], []
        for i in tqdm(range(len(self.rows)), desc=desc, unit="clip", leave=False, disable=None if len(self.rows) >= 20 else True):
            try:
                self.get(i)
                keep.append(i)
            except LungUSError as error:
                failed.append((self.names[i], str(error)))
                log(f"skipping {self.names[i]}: {error}")
        if failed:
            self.rows = [self.rows[i] for i in keep]
            self.names = [self.names[i] for i in keep]
            self.patients = [self.patients[i] for i in keep]
            self._prepared = {new: self._prepared[old] for new, old in enumerate(keep)}
        self.failed += failed
        return failed

    def get(self, i: int) -> PreparedClip:
        if i not in self._prepared:
            row = self.rows[i]
            mask_path = None
            if self.mask_column is not None:
                mask_path = self.manifest.resolve(row, self.mask_column)
                if mask_path is None:
                    raise LungUSError(f"line {self.manifest.lines[row]}: column {self.mask_column}: no mask file",
                                      self.manifest.path)
            self._prepared[i] = self.cache.get(self.manifest.clip_path(row), self.preprocessing, mask_path,
                                               self.read_masks)
        return self._prepared[i]

    def clip_frames(self, i: int) -> np.ndarray:
        return self.get(i).frames

    def clip_masks(self, i: int) -> np.ndarray:
        return self.get(i).masks

    def clip_fan(self, i: int):
        return self.get(i).fan


class _EpochSeeded:
    seed: int = 0
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])


class ClipWindowSet(_EpochSeeded, Dataset):
    """Training windows: one random ``window``-frame window per clip per epoch."""

    def __init__(self, clips: ManifestClips, targets: np.ndarray, window: int, seed: int,
                 augment: Augment | None = None) -> None:
        self.clips, self.targets, self.window, self.seed, self.augment = clips, targets, window, seed, augment

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = self.rng(index)
        prepared = self.clips.get(index)
        frames = prepared.frames[sample_window(prepared.frames.shape[0], self.window, rng)]
        if self.augment is not None:
            frames, _ = self.augment(frames, None, prepared.fan.mask, rng)
        return {"frames": torch.from_numpy(np.ascontiguousarray(frames)),
                "target": torch.from_numpy(self.targets[index].astype(np.float32))}


class ClipEvalSet:
    """Whole clips with their targets, for sliding-window evaluation."""

    def __init__(self, clips: ManifestClips, targets: np.ndarray) -> None:
        self.clips, self.targets = clips, targets
        self.names, self.patients = clips.names, clips.patients

    def __len__(self) -> int:
        return len(self.clips)

    def clip_frames(self, i: int) -> np.ndarray:
        return self.clips.clip_frames(i)


class FrameMaskSet(_EpochSeeded, Dataset):
    """Training frames with their class masks: every frame of every clip, augmented per epoch."""

    def __init__(self, clips: ManifestClips, seed: int, augment: Augment | None = None,
                 frames_per_clip: int | None = None) -> None:
        self.clips, self.seed, self.augment = clips, seed, augment
        lengths = [clips.get(i).frames.shape[0] for i in range(len(clips))]
        self.index = [(c, t) for c, n in enumerate(lengths)
                      for t in (range(n) if frames_per_clip is None
                                else np.linspace(0, n - 1, min(n, frames_per_clip)).round().astype(int))]
        self.n_frames = len(self.index)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = self.rng(index)
        clip, t = self.index[index]
        prepared = self.clips.get(clip)
        image, mask = prepared.frames[t : t + 1], prepared.masks[t : t + 1]
        if self.augment is not None:
            image, mask = self.augment(image, mask, prepared.fan.mask, rng)
        return {"image": torch.from_numpy(np.ascontiguousarray(image[0])),
                "mask": torch.from_numpy(np.ascontiguousarray(mask[0]).astype(np.int64))}


def _cache_for(config) -> ClipCache:
    from pathlib import Path

    folder = config.cache_dir or str(Path(config.out).resolve().parent / ".lungus-cache")
    return ClipCache(folder)


def _augmenter(config) -> Augment | None:
    if not config.augment:
        return None
    from lungus.data.augment import augment_clip

    return augment_clip


def readable_clips(manifest: Manifest, rows: Sequence[int], preprocessing: Preprocessing, cache: ClipCache,
                   log: Callable[[str], None], what: str, **mask_source: Any) -> ManifestClips:
    """The rows' clips, prepared; unreadable clips are reported and left out."""
    clips = ManifestClips(manifest, rows, preprocessing, cache, **mask_source)
    failed = clips.prepare_all(log, desc=f"prepare {what} clips")
    if failed and not len(clips):
        raise LungUSError(f"none of the {len(failed)} {what} clips could be read (first: {failed[0][1]})",
                          manifest.path)
    return clips


def classification_sets(manifest: Manifest, targets: np.ndarray, train_rows, val_rows, test_rows, config,
                        log: Callable[[str], None] = print):
    preprocessing = Preprocessing(config.size, config.target_fps, config.fan_crop)
    cache = _cache_for(config)

    def make(rows, what):
        clips = readable_clips(manifest, rows, preprocessing, cache, log, what)
        return clips, targets[clips.rows]

    train = ClipWindowSet(*make(train_rows, "training"), config.frames, config.seed, _augmenter(config))
    val = ClipEvalSet(*make(val_rows, "validation")) if val_rows else None
    test = ClipEvalSet(*make(test_rows, "held-out")) if test_rows else None
    return train, val, test


class MaskEvalSet:
    def __init__(self, clips: ManifestClips) -> None:
        self.clips = clips
        self.names, self.patients = clips.names, clips.patients

    def __len__(self) -> int:
        return len(self.clips)

    def clip_frames(self, i: int) -> np.ndarray:
        return self.clips.clip_frames(i)

    def clip_masks(self, i: int) -> np.ndarray:
        return self.clips.clip_masks(i)

    def clip_fan(self, i: int):
        return self.clips.clip_fan(i)


def segmentation_sets(manifest: Manifest, label_source: str, train_rows, val_rows, test_rows, config,
                      log: Callable[[str], None] = print):
    from lungus.data.label_images import read_label_masks

    if label_source not in ("truth", "labelmaps"):
        raise LungUSError(f"segmentation labels come from the manifest's mask column (truth or labelmaps); "
                          f"{label_source!r} is not supported here", manifest.path)
    if "mask" not in manifest.columns:
        raise LungUSError("segmentation training needs a mask column with per-frame class masks", manifest.path)
    preprocessing = Preprocessing(config.size, config.target_fps, config.fan_crop)
    cache = _cache_for(config)

    def make(rows, what):
        return readable_clips(manifest, rows, preprocessing, cache, log, what, mask_column="mask",
                              read_masks=read_label_masks)

    train = FrameMaskSet(make(train_rows, "training"), config.seed, _augmenter(config))
    val = MaskEvalSet(make(val_rows, "validation")) if val_rows else None
    test = MaskEvalSet(make(test_rows, "held-out")) if test_rows else None
    return train, val, test
