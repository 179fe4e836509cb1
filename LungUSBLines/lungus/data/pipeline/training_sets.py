"""torch Datasets over a manifest, for the training loop (lungus.train).

Training sets draw their randomness from ``(seed, epoch, index)`` (see ``set_epoch``),
so a resumed run replays an uninterrupted one exactly, with any number of DataLoader
workers. Evaluation sets hand out whole prepared clips.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lungus.data.manifests.manifest import Manifest
from lungus.data.pipeline.augment import AugmentConfig, augment_clip
from lungus.data.pipeline.clip_preparation import ClipCache, PreparedClip, Preprocessing
from lungus.errors import LungUSError

# (frames uint8 (T, H, W), masks uint8 (T, H, W) or None, fan mask (H, W), rng) -> (frames, masks)
Augment = Callable[[np.ndarray, "np.ndarray | None", np.ndarray, np.random.Generator], tuple[np.ndarray, Any]]


@dataclass(frozen=True)
class TrainingInput:
    """How the training sets are made, in typed pieces (lungus.train.setup builds it from a TrainConfig).

    ``frames``: frames per training window (segmenter: frames drawn per clip per epoch);
    ``seed``: of the windows, frames and augmentation drawn each epoch; ``augment``: the ranges of the
    random changes (lungus.data.pipeline.augment), None for none.
    """

    preprocessing: Preprocessing
    cache: ClipCache
    frames: int
    seed: int
    augment: AugmentConfig | None


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
                 cache: ClipCache, mask_column: str | None = None, read_masks: Callable | None = None,
                 mask_file: Callable[[int], Any] | None = None, weak_labels: np.ndarray | None = None) -> None:
        """Masks come from the ``mask_column`` path of each row, or from ``mask_file(row)`` (a path
        it makes, e.g. annotations drawn into a file); ``read_masks(path)`` reads them. With
        ``weak_labels`` (per manifest row 1 B-lines, 0 none, -1 unlabelled), a row without a mask
        file gets weak masks from its clip label (lungus.data.labels.weak_masks)."""
        self.manifest = manifest
        self.rows = list(rows)
        self.preprocessing = preprocessing
        self.cache = cache
        self.mask_column = mask_column
        self.read_masks = read_masks
        self.mask_file = mask_file
        self.weak_labels = weak_labels
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
            weak = None if self.weak_labels is None else int(self.weak_labels[row])
            mask_path = None
            if self.mask_column is not None:
                mask_path = self._mask_path(row)
                if mask_path is None and (weak is None or weak < 0):
                    raise LungUSError(f"line {self.manifest.lines[row]}: column {self.mask_column}: no mask file"
                                      + ("" if weak is None else " and no clip label"), self.manifest.path)
            elif self.mask_file is not None:
                mask_path = self.mask_file(row)
            prepared = self.cache.get(self.manifest.clip_path(row), self.preprocessing, mask_path, self.read_masks)
            if mask_path is None and weak is not None and weak >= 0:
                from lungus.data.labels.weak_masks import weak_label_masks

                masks = weak_label_masks(prepared.fan.mask, prepared.frames.shape[0], blines_present=weak == 1)
                prepared = dataclasses.replace(prepared, masks=masks)
            self._prepared[i] = prepared
        return self._prepared[i]

    def _mask_path(self, row: int) -> Path | None:
        return None if self.mask_column is None else self.manifest.resolve(row, self.mask_column)

    def weak_label(self, i: int) -> int | None:
        """Clip ``i``'s B-line label (1/0) when its masks are weak ones; None when it has a mask file
        or no clip label."""
        if self.weak_labels is None or self.mask_file is not None or self._mask_path(self.rows[i]) is not None:
            return None
        label = int(self.weak_labels[self.rows[i]])
        return label if label >= 0 else None

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


def neighbour_window(window: np.ndarray, n_frames: int, gap: int, rng: np.random.Generator) -> np.ndarray:
    """Frame indices of a window up to ``gap`` frames before or after ``window`` (a sample_window),
    inside the clip; a clip shorter than the window has only the one stretched window."""
    if n_frames <= len(window):
        return window
    start = int(np.clip(window[0] + rng.integers(-gap, gap + 1), 0, n_frames - len(window)))
    return np.arange(start, start + len(window))


class ViewPairSet(_EpochSeeded, Dataset):
    """Two views of each clip per epoch, for contrastive pretraining (lungus.train.pretrain).

    A random ``window``-frame window and a temporal neighbour of it (starting up to ``gap``
    frames away; 0: the same window), each augmented with its own draw. Items:
    ``{"first", "second": uint8 (T, H, W), "group": int64}``, the group numbering the clip's
    patient (clips of one patient are not each other's negatives). No labels are read.
    """

    def __init__(self, clips: ManifestClips, window: int, gap: int, seed: int, augment: Augment | None) -> None:
        self.clips, self.window, self.gap, self.seed, self.augment = clips, window, gap, seed, augment
        numbers: dict[str, int] = {}
        self.groups = np.array([numbers.setdefault(p, len(numbers)) for p in clips.patients], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = self.rng(index)
        prepared = self.clips.get(index)
        n_frames = prepared.frames.shape[0]
        first = sample_window(n_frames, self.window, rng)
        views = [prepared.frames[first], prepared.frames[neighbour_window(first, n_frames, self.gap, rng)]]
        if self.augment is not None:
            views = [self.augment(frames, None, prepared.fan.mask, rng)[0] for frames in views]
        return {"first": torch.from_numpy(np.ascontiguousarray(views[0])),
                "second": torch.from_numpy(np.ascontiguousarray(views[1])),
                "group": torch.tensor(self.groups[index])}


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
    """Training frames with their class masks, augmented per epoch.

    Only labelled frames train (a frame whose mask is all ``IGNORE_INDEX`` was annotated by
    nobody). ``frames_per_clip`` None: every labelled frame of every clip, each epoch.
    Otherwise each epoch draws that many frames per clip, one from each of as many equal
    stretches of its labelled frames (stratified, so every part of a clip is seen;
    neighbouring frames are near-duplicates, so a few frames per clip per epoch teach about
    as much as all of them, for a fraction of the time).
    """

    def __init__(self, clips: ManifestClips, seed: int, augment: Augment | None = None,
                 frames_per_clip: int | None = None) -> None:
        from lungus.data.labels.annotation_labels import labelled_frames

        if frames_per_clip is not None and frames_per_clip < 1:
            raise ValueError(f"frames_per_clip must be >= 1 or None, got {frames_per_clip}")
        self.clips, self.seed, self.augment, self.frames_per_clip = clips, seed, augment, frames_per_clip
        labelled = [np.flatnonzero(labelled_frames(clips.get(i).masks, clips.get(i).fan.mask)) for i in range(len(clips))]
        self.clip_frames = [(i, frames) for i, frames in enumerate(labelled) if frames.size]
        self.n_frames = int(sum(frames.size for _, frames in self.clip_frames))
        if not self.clip_frames:
            raise LungUSError("no training clip has a labelled frame", clips.manifest.path)
        if frames_per_clip is None:
            self.index = [(i, int(t)) for i, frames in self.clip_frames for t in frames]

    def __len__(self) -> int:
        if self.frames_per_clip is None:
            return self.n_frames
        return len(self.clip_frames) * self.frames_per_clip

    def frame_at(self, index: int, rng: np.random.Generator) -> tuple[int, int]:
        """(clip, frame) of training item ``index`` this epoch."""
        if self.frames_per_clip is None:
            return self.index[index]
        position, stratum = divmod(index, self.frames_per_clip)
        clip, frames = self.clip_frames[position]
        pick = min(frames.size - 1, int((stratum + rng.random()) * frames.size / self.frames_per_clip))
        return clip, int(frames[pick])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = self.rng(index)
        clip, t = self.frame_at(index, rng)
        prepared = self.clips.get(clip)
        image, mask = prepared.frames[t : t + 1], prepared.masks[t : t + 1]
        if self.augment is not None:
            image, mask = self.augment(image, mask, prepared.fan.mask, rng)
        return {"image": torch.from_numpy(np.ascontiguousarray(image[0])),
                "mask": torch.from_numpy(np.ascontiguousarray(mask[0]).astype(np.int64))}


def augmenter(ranges: AugmentConfig | None) -> Augment | None:
    """The per-clip augmentation with these ranges; None: none."""
    return None if ranges is None else functools.partial(augment_clip, config=ranges)


def readable_clips(manifest: Manifest, rows: Sequence[int], preprocessing: Preprocessing, cache: ClipCache,
                   log: Callable[[str], None], what: str, **mask_source: Any) -> ManifestClips:
    """The rows' clips, prepared; unreadable clips are reported and left out."""
    clips = ManifestClips(manifest, rows, preprocessing, cache, **mask_source)
    failed = clips.prepare_all(log, desc=f"prepare {what} clips")
    if failed and not len(clips):
        raise LungUSError(f"none of the {len(failed)} {what} clips could be read (first: {failed[0][1]})",
                          manifest.path)
    return clips


def classification_sets(manifest: Manifest, targets: np.ndarray, train_rows, val_rows, test_rows,
                        inputs: TrainingInput, log: Callable[[str], None] = print):
    """(training ClipWindowSet, validation and held-out ClipEvalSets or None)."""

    def make(rows, what):
        clips = readable_clips(manifest, rows, inputs.preprocessing, inputs.cache, log, what)
        return clips, targets[clips.rows]

    train = ClipWindowSet(*make(train_rows, "training"), inputs.frames, inputs.seed, augmenter(inputs.augment))
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


def annotation_spacing(manifest: Manifest, row: int) -> tuple[float, float] | None:
    """The row's annotation_spacing_mm (lungus.data.labels.annotation_geometry); None: blank or absent."""
    from lungus.data.labels.annotation_geometry import ANNOTATION_SPACING, parse_annotation_spacing

    text = manifest.rows[row].get(ANNOTATION_SPACING, "").strip()
    if not text:
        return None
    where = f"line {manifest.lines[row]}: column {ANNOTATION_SPACING}"
    return parse_annotation_spacing(text, where, manifest.path)


def annotation_masks_folder(manifest: Manifest, cache: ClipCache) -> Path:
    """Where a run's annotation masks are drawn once per clip: in the clip cache."""
    return (cache.folder or Path(manifest.path).resolve().parent / ".lungus-cache") / "annotation-masks"


def segmentation_mask_source(manifest: Manifest, label_source: str, cache: ClipCache) -> dict[str, Any]:
    """ManifestClips keyword arguments that give each clip its class masks from ``label_source``:

    - ``truth`` or ``labelmaps``: the manifest's ``mask`` column (simulator truth, label images:
      png, nrrd, .seq.nrrd, .seg.nrrd; lungus.data.labels.label_images);
    - ``annotations``, ``annotations-staple``, ``annotations:RATER``: AnnotateUltrasound files
      beside each clip (lungus.data.labels.annotation_labels), their points read with the clip's
      pixel spacing or the manifest's annotation_spacing_mm (lungus.data.labels.annotation_geometry);
    - ``weak:SOURCE``: the mask column where a row has a mask file, else weak masks from the
      row's B-line label in SOURCE (lungus.data.labels.weak_masks).
    """
    from lungus.data.labels.annotation_labels import (
        annotation_mask_file,
        parse_annotation_source,
        read_annotation_mask_file,
    )
    from lungus.data.labels.label_images import read_label_masks
    from lungus.data.labels.weak_masks import parse_weak_source

    weak = parse_weak_source(label_source)
    if weak is not None:
        from lungus.data.manifests.evidence_labels import clip_labels

        dense = {"mask_column": "mask", "read_masks": read_label_masks} if "mask" in manifest.columns else {}
        return {**dense, "weak_labels": clip_labels(manifest, weak).blines}
    annotation = parse_annotation_source(label_source)
    if annotation is not None:
        rater, method = annotation
        folder = annotation_masks_folder(manifest, cache)
        return {"mask_file": lambda row: annotation_mask_file(manifest.clip_path(row), folder, rater=rater,
                                                              method=method,
                                                              spacing_mm=annotation_spacing(manifest, row)),
                "read_masks": read_annotation_mask_file}
    if label_source not in ("truth", "labelmaps"):
        raise LungUSError(f"segmentation labels are truth or labelmaps (the manifest's mask column), "
                          f"annotations, annotations-staple, annotations:RATER (AnnotateUltrasound files beside "
                          f"the clips) or weak:SOURCE (clip labels); {label_source!r} is none of these",
                          manifest.path)
    if "mask" not in manifest.columns:
        raise LungUSError("segmentation training needs a mask column with per-frame class masks, or "
                          "--label-source annotations", manifest.path)
    return {"mask_column": "mask", "read_masks": read_label_masks}


def segmentation_label_classes(label_source: str) -> tuple[int, ...] | None:
    """The classes ``label_source``'s masks can show; None: every class."""
    from lungus.data.labels.annotation_labels import ANNOTATION_CLASSES, parse_annotation_source

    return ANNOTATION_CLASSES if parse_annotation_source(label_source) is not None else None


def segmentation_rows(manifest: Manifest, label_source: str, rows: Sequence[int]) -> list[int]:
    """The ``rows`` a segmenter can learn from or be scored on: all of them, except under
    ``weak:SOURCE`` the rows with neither a mask file nor a B-line label."""
    from lungus.data.labels.weak_masks import parse_weak_source
    from lungus.data.manifests.evidence_labels import clip_labels

    weak = parse_weak_source(label_source)
    if weak is None:
        return list(rows)
    blines = clip_labels(manifest, weak).blines
    has_mask = ("mask" in manifest.columns and
                [bool(manifest.rows[r].get("mask", "").strip()) for r in range(len(manifest))])
    return [r for r in rows if blines[r] >= 0 or (has_mask and has_mask[r])]


def segmentation_sets(manifest: Manifest, label_source: str, train_rows, val_rows, test_rows,
                      inputs: TrainingInput, log: Callable[[str], None] = print):
    """(training FrameMaskSet, validation and held-out sets or None); ``inputs.frames`` is the
    number of frames drawn per clip per epoch. The validation and held-out sets are MaskEvalSets
    scored on their masks, or under ``weak:SOURCE`` EvidenceEvalSets of the clips with a B-line
    label, scored by the clip-level evidence of the predicted masks against it."""
    from lungus.data.labels.weak_masks import parse_weak_source

    mask_source = segmentation_mask_source(manifest, label_source, inputs.cache)

    def make(rows, what, **source):
        return readable_clips(manifest, rows, inputs.preprocessing, inputs.cache, log, what, **source)

    train = FrameMaskSet(make(train_rows, "training", **mask_source), inputs.seed, augmenter(inputs.augment),
                         frames_per_clip=inputs.frames)
    weak = parse_weak_source(label_source)
    if weak is None:
        def scored(rows, what):
            return MaskEvalSet(make(rows, what, **mask_source)) if rows else None
    else:
        from lungus.data.manifests.evidence_labels import clip_labels

        labels = clip_labels(manifest, weak)

        def scored(rows, what):
            labelled = [r for r in rows if labels.blines[r] >= 0]
            return EvidenceEvalSet(make(labelled, what), labels) if labelled else None
    return train, scored(val_rows, "validation"), scored(test_rows, "held-out")


class EvidenceEvalSet(MaskEvalSet):
    """Whole clips with their B-line labels (and severity), no masks: a segmenter is scored on
    them by the clip-level evidence of its predicted masks (lungus.evaluate.clip_evidence)."""

    def __init__(self, clips: ManifestClips, labels: Any) -> None:
        """``labels``: lungus.data.manifests.evidence_labels.ClipLabels of the whole manifest."""
        super().__init__(clips)
        self.labels = labels

    def clip_label(self, i: int) -> tuple[int, int]:
        """(B-lines 1/0/-1, severity 0-3 or -1) of clip ``i``."""
        row = self.clips.rows[i]
        severity = -1 if self.labels.severity is None else int(self.labels.severity[row])
        return int(self.labels.blines[row]), severity
