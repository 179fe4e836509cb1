"""The inference engine: load models once, then analyse clips one after another.

>>> from lungus.infer import Analyzer
>>> analyzer = Analyzer("run/model.pt", segmenter="seg/model.pt")
>>> result = analyzer.analyse("scan.mp4")        # a path, a Clip, or frames (T, H, W) uint8
>>> result.pred, result.probabilities, result.p_blines, result.bline_count

Every clip is prepared exactly as the model card says (lungus.data.pipeline.clip_preparation.prepare_clip:
fan crop, letterbox, frame rate). Classifiers score sliding windows and aggregate them as in
evaluation (lungus.predict.windows: clip_windows, aggregate_windows); per-frame B-line evidence
comes from the model's own frame logits (``explain()``), mapped back to the original frames.
Segmenter masks give B-line counts, positions and the B-line artefact score
(lungus.data.labels.blines.analyse_masks) in the model's input space, as evaluation measures them.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from lungus.data.pipeline.clip_preparation import PreparedClip, Preprocessing, prepare_clip
from lungus.errors import LungUSError
from lungus.explanations import EXPLAIN_METHODS
from lungus.infer.results import ClipAnalysis, Explanation, SegmentationOutput
from lungus.infer.runners import (
    SEG_BATCH,
    ClassifierRunner,
    SegmenterRunner,
    check_cancel,
    never_cancelled,
)
from lungus.io.clip import Clip
from lungus.model_calls import DEFAULT_MODEL_CALL_TIMEOUT_S
from lungus.models.lime import LimeSettings
from lungus.predict.windows import aggregate_windows, clip_windows, window_starts
from lungus.progress import Progress

CancelFlag = threading.Event | Callable[[], bool] | None
ClipSource = str | os.PathLike | Clip | np.ndarray


def as_cancel(cancel: CancelFlag) -> Callable[[], bool]:
    """A callable for a threading.Event, a callable, or None (never cancelled)."""
    if cancel is None:
        return never_cancelled
    if isinstance(cancel, threading.Event):
        return cancel.is_set
    if callable(cancel):
        return cancel
    raise TypeError("cancel must be a threading.Event, a callable returning bool, or None")


@dataclass
class LoadedClip:
    """A clip read and prepared for each model (decoding is the part worth doing in a worker)."""

    name: str
    clip: Clip
    prepared: dict[Preprocessing, PreparedClip]


class Analyzer:
    """Loads a classifier and/or a segmenter once; ``analyse`` runs them on one clip.

    ``classifier`` / ``segmenter``: a model file (.pt), or a TorchScript / ONNX file that
    ``lungus export`` wrote (the card inside says how to feed it). ``device``: auto, cpu,
    cuda, cuda:N or mps. ``runtime``: how a segmenter model file runs (see SegmenterRunner:
    auto uses ONNX Runtime on the CPU). ``threads``: CPU threads for torch and ONNX Runtime
    (None: their defaults). ``log``: where notes go (e.g. print). ``model_call_timeout_s``: the
    most seconds one model call may take (None: no limit; see lungus.model_calls).
    """

    def __init__(
        self,
        classifier: str | os.PathLike | None = None,
        segmenter: str | os.PathLike | None = None,
        *,
        device: str = "auto",
        runtime: str = "auto",
        threads: int | None = None,
        log: Callable[[str], None] | None = None,
        model_call_timeout_s: float | None = DEFAULT_MODEL_CALL_TIMEOUT_S,
    ) -> None:
        from lungus.device import resolve_device

        if classifier is None and segmenter is None:
            raise LungUSError("give a classifier (--model) or a segmenter (--segmenter), or both")
        if threads is not None:
            if threads < 1:
                raise LungUSError(f"threads must be at least 1, got {threads}")
            torch.set_num_threads(threads)
        self.device = resolve_device(device)
        limit = model_call_timeout_s
        self.classifier = None if classifier is None else ClassifierRunner(classifier, self.device, threads, limit)
        self.segmenter = (
            None if segmenter is None else SegmenterRunner(segmenter, self.device, threads, runtime, log, limit)
        )

    # ------------------------------------------------------------------ identity
    @property
    def class_names(self) -> list[str] | None:
        return None if self.classifier is None else self.classifier.class_names

    def simulated_training_warning(self) -> str | None:
        """One line for stderr and the run's outputs when a model was trained on simulated clips:
        on real clips such a model finds B-lines where there are none (None otherwise)."""
        named = [f"{kind} {runner.source.name}"
                 for kind, runner in (("classifier", self.classifier), ("segmenter", self.segmenter))
                 if runner is not None and runner.card.trained_on_simulated_clips]
        if not named:
            return None
        return (f"warning: {' and '.join(named)} {'was' if len(named) == 1 else 'were'} trained on simulated "
                "clips; on real clips expect B-lines where there are none: try lungus with it, do not read real "
                "scans with it")

    def record_warnings(self, analysis: ClipAnalysis) -> str | None:
        """Record the simulated-training warning (if any) in the analysis, as ``lungus analyse`` and
        Slicer's in-process analysis both show it with the clip's record; returns it."""
        warning = self.simulated_training_warning()
        if warning is not None:
            analysis.extra["warnings"] = [warning]
        return warning

    def models(self) -> dict[str, dict | None]:
        """Which model files this analyzer runs (ids, paths, kinds, sha256)."""
        return {
            "classifier": None if self.classifier is None else self.classifier.source.to_dict(),
            "segmenter": None if self.segmenter is None else self.segmenter.source.to_dict(),
        }

    def _preprocessings(self) -> list[Preprocessing]:
        found = []
        for runner in (self.classifier, self.segmenter):
            if runner is not None:
                pre = Preprocessing.from_card(runner.card.preprocessing)
                if pre not in found:
                    found.append(pre)
        return found

    # ------------------------------------------------------------------ reading
    def load(self, source: ClipSource, *, fps: float | None = None, name: str | None = None) -> LoadedClip:
        """Read (a path), wrap (frames) and prepare a clip for every model. Thread-safe."""
        from lungus.io.fan import detect_fan
        from lungus.io.reader import read_clip

        if isinstance(source, Clip):
            clip = (
                source
                if source.fan is not None
                else dataclasses.replace(source, fan=detect_fan(source.frames))
            )
        elif isinstance(source, np.ndarray):
            try:
                clip = Clip(source, fps=fps)
            except ValueError as error:
                raise LungUSError(f"frames: {error}") from None
            clip.fan = detect_fan(clip.frames)
        else:
            clip = read_clip(source)
        if fps is not None and clip.fps != float(fps):
            clip = dataclasses.replace(clip, fps=float(fps))
        if name is None:
            name = (
                str(source)
                if isinstance(source, (str, os.PathLike))
                else (str(clip.source) if clip.source is not None else "clip")
            )
        prepared = {pre: prepare_clip(clip, pre) for pre in self._preprocessings()}
        return LoadedClip(name=name, clip=clip, prepared=prepared)

    # ------------------------------------------------------------------ analysis
    def analyse(
        self,
        source: ClipSource | LoadedClip,
        *,
        fps: float | None = None,
        name: str | None = None,
        explain: str | None = None,
        lime: LimeSettings | None = None,
        progress: Progress | None = None,
        cancel: CancelFlag = None,
    ) -> ClipAnalysis:
        """Per-clip and per-frame results for one clip (a path, a Clip, uint8 frames (T, H, W)
        with ``fps``, or what ``load`` returned).

        ``explain``: also compute where the classifier saw B-lines (gradcam, lime, cam or
        attention); ``lime``: LIME's settings (default LimeSettings(): seeded, reproducible).
        ``progress(done, total, what)`` is called after each step; ``cancel`` (a
        threading.Event or a callable) stops the work with ``Cancelled`` between steps.
        """
        if explain is not None:
            self._checked_classifier(explain)
        is_cancelled = as_cancel(cancel)
        check_cancel(is_cancelled)
        loaded = source if isinstance(source, LoadedClip) else self.load(source, fps=fps, name=name)
        clip = loaded.clip
        plan = self._plan(loaded, explain)
        total, done = sum(plan.values()) + 1, [1]

        def step(what: str) -> Callable[[], None]:
            def advance() -> None:
                done[0] += 1
                if progress is not None:
                    progress(min(done[0], total), total, what)

            return advance

        if progress is not None:
            progress(1, total, "read")
        frames = set()
        result = ClipAnalysis(
            clip=loaded.name,
            n_frames=clip.n_frames,
            fps=clip.fps,
            frames=np.zeros(0, int),
            fan=None if clip.fan is None else clip.fan.to_dict(),
        )
        classified = segmented = None
        if self.classifier is not None:
            classified = self._classify(loaded, result, explain, is_cancelled, step, lime)
            frames.update(classified[0].tolist())
        if self.segmenter is not None:
            segmented = self._segment(loaded, result, is_cancelled, step("segment"))
            frames.update(segmented.tolist())
        result.frames = np.array(sorted(frames), dtype=np.int64)
        self._place_frame_values(result, classified, segmented)
        if progress is not None:
            progress(total, total, "done")
        return result

    def _plan(self, loaded: LoadedClip, explain: str | None) -> dict[str, int]:
        plan = {}
        if self.classifier is not None:
            n = loaded.prepared[Preprocessing.from_card(self.classifier.card.preprocessing)].frames.shape[0]
            windows = self._window_count(n)
            batches = -(-windows // self.classifier.task.eval_batch)
            plan["classify"] = batches
            if explain:
                plan["explain"] = batches
        if self.segmenter is not None:
            n = loaded.prepared[Preprocessing.from_card(self.segmenter.card.preprocessing)].frames.shape[0]
            plan["segment"] = -(-n // SEG_BATCH)
        return plan

    def _window_count(self, n_frames: int) -> int:
        task = self.classifier.task
        return len(window_starts(n_frames, task.window, task.stride))

    def _classify(
        self, loaded: LoadedClip, result: ClipAnalysis, explain: str | None, cancel: Callable[[], bool], step,
        lime: LimeSettings | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Classify; returns (original frame of each prepared frame, its B-line evidence)."""
        runner = self.classifier
        task = runner.task
        prepared = loaded.prepared[Preprocessing.from_card(runner.card.preprocessing)]
        n = prepared.frames.shape[0]
        windows = clip_windows(prepared.frames, task.window, task.stride)
        # The same windowing applied to frame numbers: which prepared frame each window slot shows.
        slots = clip_windows(np.arange(n).reshape(n, 1, 1), task.window, task.stride)[:, :, 0, 0]
        window_p, frame_p = runner.window_probabilities(windows, cancel, step("classify"))
        probabilities = task.calibrate(aggregate_windows(torch.from_numpy(window_p), task.aggregation).numpy())
        # B-line evidence per slot: P(not the first class), from the frame's own logits when the
        # model gives them, else its window's probability.
        slot_evidence = 1.0 - (
            frame_p[..., 0] if frame_p is not None else np.repeat(window_p[:, :1], slots.shape[1], axis=1)
        )
        evidence = _mean_per_frame(slots, slot_evidence, n)
        result.task, result.class_names = runner.card.task, runner.class_names
        result.probabilities = probabilities.astype(np.float64)
        result.predicted_class = task.decide(probabilities)  # at the card's threshold, if it has one
        if task.operating_point is not None:  # clips.jsonl and the Slicer panel say where the cut was
            result.extra["threshold"] = round(task.operating_point.threshold, 6)
        result.classifier = runner.source.id
        result.extra["frame_evidence"] = "frame_logits" if frame_p is not None else "windows"
        if explain is not None:
            target = explained_class(probabilities, result.predicted_class)
            maps = runner.explanation_maps(windows, explain, target, cancel, step("explain"),
                                           fan_mask=prepared.fan.mask, lime=lime)
            result.explanation = Explanation(
                method=explain,
                target_class=runner.class_names[target],
                maps=_mean_per_frame(slots, maps, n).astype(np.float32),
                source_frames=prepared.source_frames,
                placement=prepared.placement,
                fan_mask=prepared.fan.mask,
            )
        return prepared.source_frames, evidence

    def explain_frames(
        self,
        loaded: LoadedClip,
        frames: list[int],
        method: str,
        target_class: int,
        lime: LimeSettings | None = None,
    ) -> Explanation:
        """The classifier's ``method`` map (gradcam or lime; EXPLAIN_METHODS) of each of the original
        ``frames``, each from the window that holds that frame nearest its middle (LIME: the
        superpixels of that frame). The maps are in frame order; ``source_frames`` says which
        analysed frame each map belongs to (the nearest one when the card resamples the clip)."""
        from lungus.infer.results import nearest

        runner = self._checked_classifier(method)
        task = runner.task
        prepared = loaded.prepared[Preprocessing.from_card(runner.card.preprocessing)]
        n = prepared.frames.shape[0]
        # Every window the clip has at stride 1, as prepared-frame numbers (short clips stretched).
        slots = clip_windows(np.arange(n).reshape(n, 1, 1), task.window, 1)[:, :, 0, 0]
        positions = nearest(prepared.source_frames, loaded.clip.n_frames)[np.asarray(frames, int)]
        maps = []
        for position in positions:
            holding = np.flatnonzero((slots == position).any(axis=1))
            middle = (task.window - 1) / 2
            offsets = [abs(int(np.flatnonzero(slots[w] == position)[0]) - middle) for w in holding]
            chosen = int(holding[int(np.argmin(offsets))])
            slot = int(np.flatnonzero(slots[chosen] == position)[0])
            window = prepared.frames[slots[chosen]][None]
            window_maps = runner.explanation_maps(window, method, target_class, fan_mask=prepared.fan.mask,
                                                  frame=slot, lime=lime)
            maps.append(window_maps[0, slot])
        return Explanation(
            method=method,
            target_class=runner.class_names[target_class],
            maps=np.stack(maps).astype(np.float32),
            source_frames=prepared.source_frames[positions],
            placement=prepared.placement,
            fan_mask=prepared.fan.mask,
        )

    def _checked_classifier(self, explain: str) -> ClassifierRunner:
        if explain not in EXPLAIN_METHODS:
            raise LungUSError(f"explain must be one of {', '.join(EXPLAIN_METHODS)}, got {explain!r}")
        if self.classifier is None:
            raise LungUSError("explanations need a classifier (--model)")
        return self.classifier

    def _segment(
        self, loaded: LoadedClip, result: ClipAnalysis, cancel: Callable[[], bool], step: Callable[[], None]
    ) -> np.ndarray:
        from lungus.data.labels.blines import analyse_masks

        runner = self.segmenter
        prepared = loaded.prepared[Preprocessing.from_card(runner.card.preprocessing)]
        masks = runner.predict(prepared.frames, prepared.fan.mask, cancel, step)
        analysis = analyse_masks(masks, prepared.fan)
        result.segmentation = SegmentationOutput(
            masks, prepared.source_frames, prepared.placement, prepared.fan.mask, analysis
        )
        result.segmenter = runner.source.id
        return prepared.source_frames

    def _place_frame_values(self, result: ClipAnalysis, classified, segmented) -> None:
        """Spread per-analysed-frame values onto the union of analysed original frames."""
        index = {int(f): i for i, f in enumerate(result.frames)}
        if classified is not None:
            source_frames, evidence = classified
            result.p_blines = np.full(len(result.frames), np.nan)
            result.p_blines[[index[int(f)] for f in source_frames]] = evidence
        if segmented is not None:
            seg = result.segmentation
            analysis = seg.analysis
            rows = [index[int(f)] for f in seg.source_frames]
            result.bline_count = np.full(len(result.frames), -1, dtype=np.int64)
            result.bline_count[rows] = analysis.bline_count
            result.blas = [None] * len(result.frames)
            result.positions = [()] * len(result.frames)
            for row, blas, positions in zip(rows, analysis.blas, analysis.positions):
                result.blas[row] = blas
                result.positions[row] = _original_positions(positions, analysis.position_unit, seg.placement)
            result.position_unit = analysis.position_unit


def _mean_per_frame(slots: np.ndarray, values: np.ndarray, n_frames: int) -> np.ndarray:
    """Average of per-slot ``values`` (W, T, ...) over every slot showing each of ``n_frames``."""
    flat_slots = slots.reshape(-1)
    flat = values.reshape(flat_slots.size, -1).astype(np.float64)
    sums = np.zeros((n_frames, flat.shape[1]))
    np.add.at(sums, flat_slots, flat)
    counts = np.bincount(flat_slots, minlength=n_frames).astype(np.float64)
    mean = sums / np.maximum(counts, 1)[:, None]
    return mean.reshape((n_frames, *values.shape[2:]))


def explained_class(probabilities: np.ndarray, predicted: int | None = None) -> int:
    """The class an explanation shows: the predicted one (``predicted``, as the card's threshold
    decided it; None: the likeliest), or the likeliest B-line class when the prediction is the
    first class (no B-lines): the map then shows what evidence there was."""
    predicted = int(np.argmax(probabilities)) if predicted is None else int(predicted)
    return predicted if predicted > 0 else 1 + int(np.argmax(probabilities[1:]))


def _original_positions(positions: tuple[float, ...], unit: str, placement) -> tuple[float, ...]:
    """Lateral positions from model space to the original frame: angles about the apex do not
    change under crop, scale and padding; image columns do."""
    if unit != "px":
        return tuple(positions)
    col0 = placement.crop[1]
    return tuple(col0 + (p - placement.pad[1]) / placement.scale for p in positions)


def analyse(
    source: ClipSource,
    classifier: str | os.PathLike | None = None,
    segmenter: str | os.PathLike | None = None,
    **options,
) -> ClipAnalysis:
    """One-off convenience: load the models and analyse one clip (use an Analyzer for many)."""
    analyzer = Analyzer(classifier, segmenter, device=options.pop("device", "auto"))
    return analyzer.analyse(source, **options)
