"""Does the review queue help? A review loop measured end to end on simulated data
(`lungus review-study`; the numbers: docs/review.md#does-the-queue-help).

For each seed:

1. **Data.** Simulate a training pool and a test set of other patients (lungus.sim). The pool's
   training labels are the noisy expert's (``expert_noisy``: right on about 65 % of clips in
   bline3, lungus.sim.raters). Its training masks are a hurried rater's: the simulator's truth
   with every B-line and confluent B-line erased from a share (``mask_miss_share``) of the clips
   that show any. The simulator has no noisy mask rater, so that corruption is this study's own.
   The pool is split into ``folds`` folds by patient (stratified by the noisy labels), and into
   ``seg_folds`` for the segmenter.
2. **Classifier.** Train on the noisy labels ("before"). Score every pool clip out of fold: the
   cross-validation of lungus.train.cv, then each fold's model run by the batch engine
   (lungus.infer.run_batch) on the clips it did not see, so the scores come from models that
   never memorised those clips' labels. Rank the pool with lungus.review.queue (its default
   weights; the noisy label is the reference of crowd_model_disagreement). The reviewer, the
   simulator's truth, relabels the first ``review_share`` of the queue, or as many clips drawn at
   random; retrain each (same recipe, same seed) and score all three on the test set against
   truth: AUC with 95 % patient-bootstrap intervals, and ranked against random paired
   (lungus.evaluate.compare_runs).
3. **Segmenter.** The same with masks: trained on the hurried rater's masks, out-of-fold masks
   from fold models (each trained without its fold, then run by the batch engine), ranked by the queue (mask_model_disagreement), the first ``review_share``
   (or a random share) of clips get their truth masks, retrained, Dice of the B-line classes on
   the test set.

The reviewer works through a review folder (lungus.review.store.ReviewFolder), as a person in
Slicer does: a verdict per reviewed clip (reviewer ``simulator``), or its corrected masks. The
folder's manifest is then merged into the pool: an ``expert_reviewed`` column that holds the
review's label where there is one and the noisy expert's elsewhere, and the ``mask`` column pointed
at the folder's corrected masks.

Writes DIR/summary.json, DIR/report.md, DIR/review_loop.png, and per seed DIR/seed<S>/ (data,
runs, out-of-fold results, queues, evaluations).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lungus.data.labels.tasks import DEFAULT_TASK, SEG_TASK
from lungus.errors import LungUSError
from lungus.progress import Progress

REVIEWED_EXPERT = "reviewed"  # the corrected labels' column: expert_reviewed
REVIEWER = "simulator"  # the simulator's truth stands in for the reviewer
ARMS = ("before", "ranked", "random")
CLASSIFIER_METRIC = "auc"
#: Also kept for the classifier: label noise moves the decision threshold and the calibration
#: more than the ranking AUC measures.
CLASSIFIER_METRICS = ("auc", "accuracy", "ece")
SEGMENTER_METRICS = ("dice_b_line", "dice_confluent_b_line")


@dataclass(frozen=True)
class ReviewStudyConfig:
    """The study's sizes (the default: docs/review.md#does-the-queue-help says how long it took).

    ``clips``/``patients``: the training pool per seed; ``test_clips``/``test_patients``: the
    held-out set; ``frames``, ``sim_size``: each simulated clip; ``input_size``, ``window``,
    ``epochs``, ``width``: the classifier (frame_cnn); ``seg_epochs``, ``seg_frames`` (frames drawn
    per clip per epoch), ``seg_width``: the segmenter (unet_small at full input resolution: with a
    stride-2 stem it ran at 32x32, where the B-lines vanished, Dice 0; 16 epochs: at 8 or 12 the
    B-line class had not yet emerged from masks with erased clips, Dice 0 again,
    docs/review.md#does-the-queue-help); ``folds``, ``seg_folds``:
    the out-of-fold scoring of the classifier and of the segmenter (fewer: it trains slower); ``review_share``: the share of the pool reviewed; ``seeds`` seeds from
    ``seed``; ``mask_miss_share``: the share of B-line clips whose B-lines the mask rater missed.
    """

    clips: int = 120
    patients: int = 48
    test_clips: int = 120
    test_patients: int = 48
    frames: int = 16
    sim_size: int = 96
    input_size: int = 64
    window: int = 8
    epochs: int = 16
    width: int = 12
    seg_epochs: int = 16
    seg_frames: int = 4
    seg_width: int = 8
    folds: int = 3
    seg_folds: int = 2
    review_share: float = 0.2
    seeds: int = 3
    seed: int = 0
    expert: str = "noisy"
    task: str = DEFAULT_TASK
    mask_miss_share: float = 0.3
    segmenter: bool = True
    device: str = "auto"

    def __post_init__(self) -> None:
        def fail(problem: str) -> None:
            raise LungUSError(f"review study: {problem}")

        for name in ("clips", "patients", "test_clips", "test_patients", "frames", "epochs", "width",
                     "seg_epochs", "seg_frames", "seg_width", "window", "seeds"):
            if getattr(self, name) < 1:
                fail(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.sim_size < 64 or self.input_size < 32:
            fail(f"sim_size must be at least 64 and input_size at least 32, got {self.sim_size}, {self.input_size}")
        if self.folds < 2 or self.seg_folds < 2:
            fail(f"folds and seg_folds must be at least 2 (out-of-fold scores), got {self.folds}, {self.seg_folds}")
        if self.patients < 2 * self.folds or self.clips < self.patients:
            fail(f"need at least {2 * self.folds} patients for {self.folds} folds and a clip per patient, "
                 f"got {self.clips} clips of {self.patients} patients")
        if self.test_clips < self.test_patients or self.test_patients < 2:
            fail("the test set needs at least 2 patients and a clip per patient")
        if not 0.0 < self.review_share < 1.0:
            fail(f"review_share must be in (0, 1), got {self.review_share}")
        if not 0.0 <= self.mask_miss_share <= 1.0:
            fail(f"mask_miss_share must be in [0, 1], got {self.mask_miss_share}")
        if self.task not in ("bline2", "bline3"):
            fail(f"task must be bline2 or bline3 (the noisy expert labels bline3), got {self.task!r}")

    @classmethod
    def tiny(cls) -> ReviewStudyConfig:
        """Seconds, for tests: checks the files and fields, not the outcome."""
        return cls(clips=16, patients=8, test_clips=8, test_patients=4, frames=8, sim_size=64, input_size=32,
                   window=4, epochs=1, width=4, seg_epochs=1, seg_frames=2, seg_width=4, folds=2, seg_folds=2,
                   seeds=1, device="cpu")


# ---------------------------------------------------------------------------------------- data


@dataclass
class _SeedData:
    """One seed's pool (training manifest, folds, truth) and test set."""

    folder: Path
    pool: Any  # Manifest: the pool with the noisy masks in `mask` and a fold column (pool.csv)
    test_manifest: Path
    truth_masks: list[Path]
    corrupted: np.ndarray  # (N,) bool: the mask rater missed this clip's B-lines
    folds: np.ndarray  # (N,) int: the classifier's folds, stratified by the noisy labels
    seg_folds: np.ndarray  # (N,) int: the segmenter's
    row_of_clip: dict[str, int]  # real path of a clip -> its pool row

    def rows_of(self, entries) -> list[int]:
        return [self.row_of_clip[os.path.realpath(entry.clip)] for entry in entries]


def _simulate(folder: Path, config: ReviewStudyConfig, seed: int) -> _SeedData:
    from lungus.data.manifests.label_sources import labels_of
    from lungus.data.manifests.manifest import Manifest
    from lungus.data.manifests.split import assign_folds
    from lungus.sim.dataset import write_dataset
    from lungus.sim.generator import SimulationConfig

    simulation = SimulationConfig(n_frames=config.frames, height=config.sim_size, width=config.sim_size)
    pool_set = write_dataset(folder / "pool", config.clips, config.patients, seed=seed, config=simulation)
    # Another seed: other patients, with their own traits.
    test_set = write_dataset(folder / "test", config.test_clips, config.test_patients, seed=seed + 100_000,
                             config=simulation)
    pool = Manifest.load(pool_set.manifest)
    truth_masks = [pool.resolve(i, "mask") for i in range(len(pool))]
    noisy = labels_of(pool, f"expert:{config.expert}", config.task).hard
    folds = assign_folds(pool.patients, noisy, config.folds, seed=seed)
    corrupted = _corrupt_masks(pool, folder / "rater_masks", truth_masks, config.mask_miss_share, seed)
    pool.set_column("fold", [int(f) for f in folds])
    pool.save(folder / "pool.csv")
    row_of_clip = {os.path.realpath(path): i for i, path in enumerate(pool.clip_paths())}
    seg_folds = assign_folds(pool.patients, None, config.seg_folds, seed=seed)
    return _SeedData(folder, pool, test_set.manifest, truth_masks, corrupted, np.asarray(folds),
                     np.asarray(seg_folds), row_of_clip)


def _corrupt_masks(pool, out: Path, truth_masks: list[Path], miss_share: float, seed: int) -> np.ndarray:
    """The hurried rater's masks in ``out``: the truth, with every B-line and confluent B-line
    pixel set to background on ``miss_share`` of the clips that show any; the pool's ``mask``
    column is pointed at them. Returns which clips lost their B-lines."""
    from lungus.data.labels.schemes import B_LINE, BACKGROUND, CONFLUENT
    from lungus.io import Clip, read_clip, write_clip

    rng = np.random.default_rng([seed, 7])
    out.mkdir(parents=True, exist_ok=True)
    corrupted = np.zeros(len(truth_masks), dtype=bool)
    for row, truth in enumerate(truth_masks):
        masks = read_clip(truth, fan=False)
        blines = np.isin(masks.frames, (B_LINE, CONFLUENT))
        missed = bool(blines.any()) and bool(rng.random() < miss_share)
        corrupted[row] = missed
        frames = np.where(blines, BACKGROUND, masks.frames).astype(np.uint8) if missed else masks.frames
        target = out / truth.name
        write_clip(Clip(frames, fps=masks.fps, spacing_mm=masks.spacing_mm), target, compression="gzip")
        pool.rows[row]["mask"] = os.path.relpath(target, pool.folder)
    return corrupted


def _subset(pool, rows: list[int], path: Path):
    """A manifest of some of the pool's rows, beside the pool (so its relative paths hold)."""
    from lungus.data.manifests.manifest import Manifest

    subset = Manifest(path, pool.columns, [pool.rows[r] for r in rows])
    subset.save()
    return subset


# ---------------------------------------------------------------------------------------- training and scoring


def _classifier_config(config: ReviewStudyConfig, manifest: Path, out: Path, label_source: str, seed: int,
                       cache: Path, **changes: Any):
    from lungus.train.config import TrainConfig

    return TrainConfig(manifest=str(manifest), out=str(out), task=config.task, model="frame_cnn",
                       model_args={"width": config.width}, label_source=label_source,
                       size=(config.input_size, config.input_size), frames=config.window, epochs=config.epochs,
                       batch_size=8, lr=3e-3, val_fraction=0.0, seed=seed, cache_dir=str(cache),
                       device=config.device, **changes)


def _segmenter_config(config: ReviewStudyConfig, manifest: Path, out: Path, seed: int, cache: Path):
    from lungus.train.config import TrainConfig

    return TrainConfig(manifest=str(manifest), out=str(out), task=SEG_TASK, model="unet_small",
                       model_args={"width": config.seg_width, "input_stride": 1}, label_source="labelmaps",
                       size=(config.input_size, config.input_size), frames=config.seg_frames,
                       epochs=config.seg_epochs, batch_size=8, lr=3e-3, val_fraction=0.0, seed=seed,
                       cache_dir=str(cache), device=config.device)


def _infer(classifier: Path | None, segmenter: Path | None, clips: list[Path], out: Path, device: str) -> Path:
    from lungus.infer.analyzer import Analyzer
    from lungus.infer.batch import BatchRequest, run_batch

    analyzer = Analyzer(classifier, segmenter, device=device)
    run_batch(analyzer, BatchRequest([os.fspath(path) for path in clips], out))
    return out


def _review_choice(entries, data: _SeedData, share: float, seed: int) -> dict[str, list[int]]:
    """The pool rows the reviewer sees: the queue's first ``share``, or as many at random."""
    count = max(1, int(round(share * len(data.pool))))
    ranked = data.rows_of(entries[:count])
    drawn = np.random.default_rng([seed, 11]).choice(len(data.pool), size=count, replace=False)
    return {"ranked": ranked, "random": sorted(int(r) for r in drawn)}


def _headline(metrics: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    found = {}
    for key in keys:
        found[key] = metrics.get(key)
        found[f"{key}_ci"] = metrics.get(f"{key}_ci")
    return found


# ---------------------------------------------------------------------------------------- the two loops


@dataclass
class _Loop:
    """What one seed's study shares between its steps."""

    config: ReviewStudyConfig
    data: _SeedData
    seed: int
    cache: Path
    log: Callable[[str], None]

    @property
    def folder(self) -> Path:
        return self.data.folder

    def fold_rows(self, k: int, folds: np.ndarray | None = None) -> list[int]:
        return [int(r) for r in np.flatnonzero((self.data.folds if folds is None else folds) == k)]

    def evaluate(self, model: Path, name: str) -> dict[str, Any]:
        from lungus.evaluate.model_eval import evaluate_model

        return evaluate_model(model, self.data.test_manifest, self.folder / "eval" / name, labels="truth",
                              device=self.config.device, cache_dir=self.cache, log=self.log).metrics

    def review_labels(self, folder: Path, rows: list[int], truth: list[str | None], queued: dict[int, Any]):
        """The reviewer's verdicts on ``rows``: the true label, beside what the model said."""
        from lungus.review.store import ReviewFolder, Verdict

        reviews = ReviewFolder(folder)
        clips, patients = self.data.pool.clip_paths(), self.data.pool.patients
        for r in rows:
            entry = queued.get(r)
            reviews.record(Verdict(clip=os.fspath(clips[r]), reviewer=REVIEWER, scheme=self.config.task,
                                   label=truth[r], model_label=None if entry is None else entry.model_label,
                                   model_probability=None if entry is None else entry.probability,
                                   patient=patients[r], comment="" if entry is None else f"queue rank {entry.rank}"))
        return reviews

    def review_masks(self, folder: Path, rows: list[int]):
        """The reviewer's corrected masks of ``rows``: the truth, every frame reviewed."""
        from lungus.io import read_clip
        from lungus.review.store import ReviewFolder

        reviews = ReviewFolder(folder)
        clips = self.data.pool.clip_paths()
        for r in rows:
            reviews.save_masks(clips[r], REVIEWER, read_clip(self.data.truth_masks[r], fan=False).frames)
        return reviews

    def reviewed_column(self, reviews, column: str, path: bool = False) -> dict[int, str]:
        """Pool row -> the review manifest's ``column`` (resolved to a file with ``path``), read back
        as `lungus train` would read the review folder's manifest."""
        from lungus.data.manifests.manifest import Manifest

        manifest = Manifest.load(reviews.manifest_path)
        found = {}
        for i in range(len(manifest)):
            value = manifest.resolve(i, column) if path else manifest.rows[i].get(column)
            if value:
                found[self.data.row_of_clip[os.path.realpath(manifest.clip_path(i))]] = os.fspath(value)
        return found

    def classifier(self) -> dict[str, Any]:
        from lungus.data.manifests.label_sources import labels_of
        from lungus.data.manifests.manifest import Manifest
        from lungus.evaluate.compare_runs import compare_runs
        from lungus.review.queue import QueueConfig, review_queue, write_queue_csv
        from lungus.train.cv import cross_validate
        from lungus.train.loop import fit

        config, data, pool_csv = self.config, self.data, self.data.pool.path
        noisy = f"expert:{config.expert}"
        runs = self.folder / "runs"
        self.log(f"seed {self.seed}: classifier on the noisy expert's labels, {config.folds}-fold out-of-fold scores")
        fit(_classifier_config(config, pool_csv, runs / "classifier_before", noisy, self.seed, self.cache), log=self.log)
        cross_validate(_classifier_config(config, pool_csv, runs / "classifier_cv", noisy, self.seed, self.cache,
                                          folds=config.folds), log=self.log)
        clips = data.pool.clip_paths()
        results = [_infer(runs / "classifier_cv" / f"fold{k}" / "model.pt", None, [clips[r] for r in self.fold_rows(k)],
                          self.folder / "results" / f"classifier_fold{k}", config.device) for k in range(config.folds)]
        queue = review_queue(results, manifest=pool_csv, config=QueueConfig(label_source=noisy))
        write_queue_csv(queue, self.folder / "queue_classifier.csv")
        chosen = _review_choice(queue, data, config.review_share, self.seed)

        truth = labels_of(data.pool, "truth", config.task)
        noisy_labels = labels_of(data.pool, noisy, config.task)
        wrong, noisy_names = noisy_labels.hard != truth.hard, noisy_labels.names()
        metrics = {"before": self.evaluate(runs / "classifier_before" / "model.pt", "classifier_before")}
        for arm, rows in chosen.items():
            reviews = self.review_labels(self.folder / "reviews" / f"classifier_{arm}", rows, truth.names(),
                                         {row: entry for row, entry in zip(data.rows_of(queue), queue)})
            reviewed = self.reviewed_column(reviews, f"expert_{REVIEWER}")
            corrected = Manifest(self.folder / f"pool_classifier_{arm}.csv", data.pool.columns,
                                 [dict(row) for row in data.pool.rows])
            corrected.set_column(f"expert_{REVIEWED_EXPERT}", [reviewed.get(r) or noisy_names[r]
                                                               for r in range(len(corrected))])
            corrected.save()
            self.log(f"seed {self.seed}: classifier retrained after a {arm} review of {len(rows)} clips")
            fit(_classifier_config(config, corrected.path, runs / f"classifier_{arm}", f"expert:{REVIEWED_EXPERT}",
                                   self.seed, self.cache), log=self.log)
            metrics[arm] = self.evaluate(runs / f"classifier_{arm}" / "model.pt", f"classifier_{arm}")
        comparison = compare_runs(self.folder / "eval" / "classifier_ranked", self.folder / "eval" / "classifier_random",
                                  manifest=None, out=self.folder / "compare_classifier",
                                  names=("ranked review", "random review"))
        return {
            **{arm: _headline(metrics[arm], CLASSIFIER_METRICS) for arm in ARMS},
            "ranked_minus_random": {key: comparison.get(key) for key in ("auc_diff", "auc_diff_ci", "p_value")},
            "pool_clips": len(data.pool),
            "reviewed_clips": len(chosen["ranked"]),
            "wrong_labels": int(wrong.sum()),
            "wrong_labels_reviewed": {arm: int(wrong[rows].sum()) for arm, rows in chosen.items()},
            "test_clips": metrics["before"].get("n_clips"),
        }

    def segmenter(self) -> dict[str, Any]:
        from lungus.data.manifests.manifest import Manifest
        from lungus.review.queue import review_queue, write_queue_csv
        from lungus.train.loop import fit

        config, data = self.config, self.data
        runs = self.folder / "runs"
        self.log(f"seed {self.seed}: segmenter on the hurried rater's masks ({int(data.corrupted.sum())} of "
                 f"{len(data.pool)} clips lost their B-lines)")
        fit(_segmenter_config(config, data.pool.path, runs / "segmenter_before", self.seed, self.cache), log=self.log)
        clips = data.pool.clip_paths()
        results = []
        for k in range(config.seg_folds):
            training = [r for r in range(len(data.pool)) if data.seg_folds[r] != k]
            subset = _subset(data.pool, training, self.folder / f"pool_segmenter_without_fold{k}.csv")
            fit(_segmenter_config(config, subset.path, runs / f"segmenter_fold{k}", self.seed, self.cache),
                log=self.log)
            results.append(_infer(None, runs / f"segmenter_fold{k}" / "model.pt",
                                  [clips[r] for r in self.fold_rows(k, data.seg_folds)],
                                  self.folder / "results" / f"segmenter_fold{k}", config.device))
        queue = review_queue(results, manifest=data.pool.path)
        write_queue_csv(queue, self.folder / "queue_segmenter.csv")
        chosen = _review_choice(queue, data, config.review_share, self.seed)

        metrics = {"before": self.evaluate(runs / "segmenter_before" / "model.pt", "segmenter_before")}
        for arm, rows in chosen.items():
            reviews = self.review_masks(self.folder / "reviews" / f"segmenter_{arm}", rows)
            corrected = Manifest(self.folder / f"pool_segmenter_{arm}.csv", data.pool.columns,
                                 [dict(row) for row in data.pool.rows])
            for r, mask in self.reviewed_column(reviews, "mask", path=True).items():
                corrected.rows[r]["mask"] = os.path.relpath(mask, corrected.folder)
            corrected.save()
            self.log(f"seed {self.seed}: segmenter retrained after a {arm} review of {len(rows)} clips")
            fit(_segmenter_config(config, corrected.path, runs / f"segmenter_{arm}", self.seed, self.cache),
                log=self.log)
            metrics[arm] = self.evaluate(runs / f"segmenter_{arm}" / "model.pt", f"segmenter_{arm}")
        return {
            **{arm: _headline(metrics[arm], SEGMENTER_METRICS) for arm in ARMS},
            "pool_clips": len(data.pool),
            "reviewed_clips": len(chosen["ranked"]),
            "corrupted_masks": int(data.corrupted.sum()),
            "corrupted_masks_reviewed": {arm: int(data.corrupted[rows].sum()) for arm, rows in chosen.items()},
        }


# ---------------------------------------------------------------------------------------- the study


def _prepare(out: Path, overwrite: bool) -> None:
    if (out / "summary.json").exists():
        if not overwrite:
            raise LungUSError("already holds a review study; pass --overwrite or choose another --out", out)
        shutil.rmtree(out)
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LungUSError("exists and is not an empty folder; choose another --out", out)
    out.mkdir(parents=True, exist_ok=True)


def _logger(path: Path, echo: Callable[[str], None]) -> Callable[[str], None]:
    def log(message: str) -> None:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(message + "\n")
        echo(message)

    return log


def run_review_study(out: str | os.PathLike, config: ReviewStudyConfig | None = None, *,
                     log: Callable[[str], None] = print, progress: Progress | None = None,
                     overwrite: bool = False, command: str | None = None) -> dict[str, Any]:
    """Run the study into ``out`` (module docstring); returns the summary, also written to
    out/summary.json with out/report.md and out/review_loop.png. ``progress(done, total, what)``
    hears of each loop; ``command``: the command line to print in the report."""
    from lungus.atomic import atomic_write_text
    from lungus.evaluate.report import write_json

    config = config or ReviewStudyConfig()
    out = Path(out)
    _prepare(out, overwrite)
    log = _logger(out / "study.log", log)
    started = time.time()
    loops = 2 if config.segmenter else 1
    total = config.seeds * loops
    seeds = []
    for i in range(config.seeds):
        seed = config.seed + i
        folder = out / f"seed{seed}"
        if progress is not None:
            progress(i * loops, total, f"seed {seed}: simulating")
        loop = _Loop(config, _simulate(folder, config, seed), seed, out / ".cache", log)
        result: dict[str, Any] = {"seed": seed, "classifier": loop.classifier()}
        if config.segmenter:
            if progress is not None:
                progress(i * loops + 1, total, f"seed {seed}: segmenter")
            result["segmenter"] = loop.segmenter()
        seeds.append(result)
        log(f"seed {seed} done after {time.time() - started:.0f} s: {_seed_line(result)}")
    summary = {
        "config": dataclasses.asdict(config),
        "command": command,
        "seeds": seeds,
        "mean": _means(seeds),
        "seconds": round(time.time() - started, 1),
    }
    write_json(out / "summary.json", summary)
    _figure(summary, out / "review_loop.png")
    atomic_write_text(out / "report.md", _report(summary))
    if progress is not None:
        progress(total, total, "done")
    return summary


def _seed_line(result: dict[str, Any]) -> str:
    cls = result["classifier"]
    text = "AUC " + " / ".join(f"{arm} {_number(cls[arm][CLASSIFIER_METRIC])}" for arm in ARMS)
    if "segmenter" in result:
        seg = result["segmenter"]
        text += "; B-line Dice " + " / ".join(f"{arm} {_number(seg[arm]['dice_b_line'])}" for arm in ARMS)
    return text


def _means(seeds: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(values: list[Any]) -> float | None:
        kept = [float(v) for v in values if v is not None]
        return float(np.mean(kept)) if kept else None

    means: dict[str, Any] = {"classifier": {arm: mean([s["classifier"][arm][CLASSIFIER_METRIC] for s in seeds])
                                            for arm in ARMS}}
    means["classifier"]["secondary"] = {arm: {key: mean([s["classifier"][arm][key] for s in seeds])
                                              for key in CLASSIFIER_METRICS[1:]} for arm in ARMS}
    means["classifier"]["wrong_labels_reviewed"] = {
        arm: mean([s["classifier"]["wrong_labels_reviewed"][arm] for s in seeds]) for arm in ("ranked", "random")}
    if all("segmenter" in s for s in seeds):
        means["segmenter"] = {arm: {key: mean([s["segmenter"][arm][key] for s in seeds]) for key in SEGMENTER_METRICS}
                              for arm in ARMS}
        means["segmenter"]["corrupted_masks_reviewed"] = {
            arm: mean([s["segmenter"]["corrupted_masks_reviewed"][arm] for s in seeds]) for arm in ("ranked", "random")}
    return means


def _number(value: Any, ci: Any = None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.3f}"
    if ci:
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    return text


def _report(summary: dict[str, Any]) -> str:
    config = summary["config"]
    lines = [
        "# Does the review queue help?",
        "",
        f"{config['seeds']} seeds; per seed a pool of {config['clips']} simulated clips ({config['patients']} patients) "
        f"labelled by the noisy expert, a test set of {config['test_clips']} clips of {config['test_patients']} other "
        f"patients scored against truth; {config['review_share']:.0%} of the pool reviewed (simulator truth), chosen "
        "by the review queue (ranked) or at random. Brackets: 95 % patient-bootstrap intervals.",
        "",
        "## Classifier: test AUC",
        "",
        "| seed | before | ranked review | random review | ranked - random (paired) | wrong labels reviewed: ranked / random (of all wrong) |",
        "|---|---|---|---|---|---|",
    ]
    for s in summary["seeds"]:
        c = s["classifier"]
        diff = c["ranked_minus_random"]
        lines.append(
            f"| {s['seed']} | " + " | ".join(_number(c[arm]["auc"], c[arm]["auc_ci"]) for arm in ARMS)
            + f" | {_signed(diff['auc_diff'], diff['auc_diff_ci'])}, p = {_number(diff['p_value'])}"
            + f" | {c['wrong_labels_reviewed']['ranked']} / {c['wrong_labels_reviewed']['random']} "
              f"(of {c['wrong_labels']}) |")
    mean = summary["mean"]["classifier"]
    lines.append("| mean | " + " | ".join(_number(mean[arm]) for arm in ARMS) + " | | "
                 + f"{_number(mean['wrong_labels_reviewed']['ranked'])} / {_number(mean['wrong_labels_reviewed']['random'])} |")
    secondary = mean["secondary"]
    lines += ["", "Mean test accuracy / ECE: " + "; ".join(
        f"{arm} {_number(secondary[arm]['accuracy'])} / {_number(secondary[arm]['ece'])}" for arm in ARMS) + "."]
    if "segmenter" in summary["mean"]:
        lines += ["", "## Segmenter: test Dice (B-line; confluent B-line)", "",
                  "| seed | before | ranked review | random review | missed masks reviewed: ranked / random (of all missed) |",
                  "|---|---|---|---|---|"]
        for s in summary["seeds"]:
            g = s["segmenter"]
            cells = [f"{_number(g[arm]['dice_b_line'], g[arm]['dice_b_line_ci'])}; "
                     f"{_number(g[arm]['dice_confluent_b_line'])}" for arm in ARMS]
            lines.append(f"| {s['seed']} | " + " | ".join(cells)
                         + f" | {g['corrupted_masks_reviewed']['ranked']} / {g['corrupted_masks_reviewed']['random']} "
                           f"(of {g['corrupted_masks']}) |")
        seg = summary["mean"]["segmenter"]
        lines.append("| mean | " + " | ".join(f"{_number(seg[arm]['dice_b_line'])}; "
                                             f"{_number(seg[arm]['dice_confluent_b_line'])}" for arm in ARMS)
                     + f" | {_number(seg['corrupted_masks_reviewed']['ranked'])} / "
                       f"{_number(seg['corrupted_masks_reviewed']['random'])} |")
    lines += ["", "![Test AUC and Dice per seed](review_loop.png)", "",
              f"Finished in {summary['seconds']:.0f} s."
              + (f" Reproduce: `{summary['command']}`." if summary.get("command") else ""), ""]
    return "\n".join(lines)


def _signed(value: Any, ci: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")


def _figure(summary: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lungus.atomic import atomic_path

    panels = [("classifier", "auc", "test AUC (classifier)")]
    if "segmenter" in summary["mean"]:
        panels.append(("segmenter", "dice_b_line", "test Dice, B-line (segmenter)"))
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.6), squeeze=False)
    colours = {"before": "#888888", "ranked": "#1f77b4", "random": "#ff7f0e"}
    seeds = [s["seed"] for s in summary["seeds"]]
    for axis, (part, key, title) in zip(axes[0], panels):
        for offset, arm in zip((-0.2, 0.0, 0.2), ARMS):
            values = [s[part][arm][key] for s in summary["seeds"]]
            cis = [s[part][arm][f"{key}_ci"] for s in summary["seeds"]]
            x = [i + offset for i in range(len(seeds))]
            y = [np.nan if v is None else v for v in values]
            low = [0 if v is None or c is None else v - c[0] for v, c in zip(values, cis)]
            high = [0 if v is None or c is None else c[1] - v for v, c in zip(values, cis)]
            axis.errorbar(x, y, yerr=[low, high], fmt="o", capsize=3, color=colours[arm],
                          label=f"{arm} review" if arm != "before" else "before review")
        axis.set_xticks(range(len(seeds)), [f"seed {s}" for s in seeds])
        axis.set_title(title)
        axis.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, frameon=False)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=120, format="png")
    plt.close(figure)
    return path
