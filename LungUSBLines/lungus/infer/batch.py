"""Batch inference: many clips into DIR/clips.csv, DIR/clips.jsonl and DIR/frames.csv.

- **Inputs**: files, folders (searched recursively; clips recognised by content, see
  lungus.io.find_clips) and manifest CSVs (their ``clip`` column). Each clip gets its place in
  that list (``index``), which orders every output.
- **Journal** (lungus.infer.journal): DIR/clips.jsonl gets one line per finished clip, appended
  whole and synced to the disk, so a run that stops keeps what it did; ``resume`` skips clips
  already scored there (failed ones are tried again). At the end the journal is rewritten in
  input order and the CSVs are (re)written from it, each atomically; every picture is written to
  a temporary name and renamed.
- **Pictures** are named after their clip (``picture_stems``): overlays/<clip stem>.mp4; inputs
  that share a stem get _<index> after it.
- **Full disk**: a write the file system refuses (no space, quota, read-only, no permission)
  stops the run with one lungus.atomic.OutputWriteError naming the file, keeping what is done
  for ``resume``.
- **One run per folder**: DIR/.lungus-infer.lock is held while a run (or a merge) writes into
  DIR; a second one stops at once with a LungUSError.
- **Bad clips** are recorded with their error (the ``error`` column) and the run goes on.
- **Shards**: ``BatchRequest(shard=(i, n))`` takes the inputs whose index is i modulo n (job arrays,
  torchrun ranks); ``merge_outputs`` joins shard folders into exactly what one run writes.
- **Workers**: ``BatchRequest(workers=N)`` decodes and prepares the next clips in N threads while the models
  run on the current one.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lungus.atomic import OutputWriteError, atomic_path, atomic_write_text
from lungus.errors import Cancelled, LungUSError, os_problem
from lungus.folder_lock import exclusive_folder
from lungus.infer.journal import CLIPS_CSV, Journal, latest_records, read_journal, write_tables
from lungus.infer.results import clip_columns
from lungus.io.formats import file_stem
from lungus.progress import Progress

RUN_JSON = "run.json"
#: Held while a run writes into the folder (lungus.folder_lock).
LOCK = ".lungus-infer.lock"
#: Record keys that name picture files (relative to the output folder).
PICTURE_KEYS = ("overlay", "masks", "explain_video", "explain_png")


@dataclass(frozen=True)
class InferenceInput:
    """One clip to analyse: its place in the input list, its name in the outputs, its file."""

    index: int
    clip: str
    path: Path


@dataclass
class BatchSummary:
    out: Path
    total: int  # clips this run (or shard) is responsible for
    scored: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (clip, error)
    skipped: int = 0  # already done (resume)
    cancelled: bool = False
    seconds: float = 0.0
    missing: int = 0  # merge: input clips no merged folder holds

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled and not self.missing

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        done = self.scored + len(self.failed)
        text = f"scored {self.scored} of {self.total} clips"
        if self.skipped:
            text += f" ({self.skipped} already done)"
        if self.failed:
            text += f"; {len(self.failed)} failed (see the error column of {self.out / CLIPS_CSV})"
        if self.missing:
            text += f"; {self.missing} input clips are in none of the merged folders (a shard missing?)"
        if self.cancelled:
            text += "; cancelled before the end"
        processed = done - self.skipped
        if self.seconds > 0 and processed > 0:
            text += f"; {self.seconds:.1f} s ({processed / self.seconds:.2f} clips/s)"
        return text


# ---------------------------------------------------------------------------------------- inputs


def collect_inputs(inputs: Sequence[str | os.PathLike]) -> list[InferenceInput]:
    """The clips named by files, folders (recursive, by content) and manifest CSVs, in order.

    A clip reached twice (same file) is listed once. A missing input is a LungUSError; a
    listed file that is no readable clip is not (it fails, with its reason, when analysed).
    """
    from lungus.data.manifests.manifest import Manifest
    from lungus.io.formats import find_clips

    if not inputs:
        raise LungUSError("no inputs: give clip files, folders or a manifest CSV")
    found: list[tuple[str, Path]] = []
    for given in inputs:
        path = Path(os.fsdecode(given))  # a bytes name (not UTF-8) arrives as str with surrogates
        try:
            exists, is_dir = path.exists(), path.is_dir()
        except OSError as error:  # a name too long, a folder that may not be searched
            raise LungUSError(os_problem(error, "look it up"), path) from error
        if not exists:
            raise LungUSError("no such file or folder", path)
        if is_dir:
            clips = find_clips(path)
            if not clips:
                raise LungUSError("no clips found in this folder (searched recursively, by content)", path)
            found.extend((os.fspath(c), c) for c in clips)
        elif path.suffix.lower() == ".csv":
            manifest = Manifest.load(path)
            manifest.require_columns("clip")
            found.extend((text, manifest.clip_path(i)) for i, text in enumerate(manifest.clips))
        else:
            found.append((os.fsdecode(given), path))
    items: list[InferenceInput] = []
    seen_paths: set[Path] = set()
    seen_names: set[str] = set()
    for name, path in found:
        name = _utf8_name(name)
        resolved = path.resolve()
        if resolved in seen_paths:
            continue
        if name in seen_names:  # the same name for another file (two manifests): use the full path
            name = os.fspath(resolved)
        seen_paths.add(resolved)
        seen_names.add(name)
        items.append(InferenceInput(len(items), name, resolved))
    return items


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    try:
        index, count = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise LungUSError(
            f"--shard must be i/n such as 0/4 (shard i of n, counting from 0), got {text!r}"
        ) from None
    if count < 1 or not 0 <= index < count:
        raise LungUSError(f"--shard {text}: need 0 <= i < n (shards are numbered 0 to n-1)")
    return index, count


def shard_inputs(items: Sequence[InferenceInput], index: int, count: int) -> list[InferenceInput]:
    """Shard ``index`` of ``count``: every count-th clip from the index-th (deterministic)."""
    return [item for item in items if item.index % count == index]


def _utf8_name(name: str) -> str:
    """A clip's name as the UTF-8 outputs can hold it: bytes of a file name that are not
    UTF-8 (lone surrogates in Python) are written as ``\\xff`` escapes; the file is still
    read from its real path."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def inputs_digest(items: Sequence[InferenceInput]) -> str:
    """A fingerprint of the input list, so shards and resumed runs can tell they belong together."""
    text = "\n".join(f"{item.index}\t{item.clip}" for item in items)
    # os.fsencode: a file name that is not UTF-8 keeps its own bytes (str.encode would raise).
    return hashlib.sha256(os.fsencode(text)).hexdigest()[:16]


# ---------------------------------------------------------------------------------------- records


def error_record(
    item: InferenceInput,
    message: str,
    class_names: list[str] | None,
    task: str | None,
    models: dict[str, str],
) -> dict[str, Any]:
    """The record of a clip that could not be analysed: empty results, its error."""
    record: dict[str, Any] = {column: None for column in clip_columns(class_names)}
    record.update({"clip": item.clip, "task": task, "error": message, **models})
    record.update({"index": item.index, "path": _utf8_name(os.fspath(item.path)), "frames": []})
    return record


def _error_message(error: BaseException, item: InferenceInput) -> str:
    """One line; the clip's own path is left out (the clip column names it)."""
    if isinstance(error, LungUSError):
        same_file = error.path is not None and Path(error.path).resolve() == item.path
        return error.problem if same_file else str(error)
    return f"internal error ({type(error).__name__}: {' '.join(str(error).split())[:300]})"


# ---------------------------------------------------------------------------------------- running


def _load_ahead(
    load: Callable[[InferenceInput], Any], items: Sequence[InferenceInput], workers: int
) -> Iterator[tuple[InferenceInput, Future]]:
    """(item, future of load(item)) in order; with workers, up to workers + 1 clips load ahead."""
    if workers <= 0:
        for item in items:
            future: Future = Future()
            try:
                future.set_result(load(item))
            except BaseException as error:  # handed to the caller with the item
                if isinstance(error, KeyboardInterrupt):
                    raise
                future.set_exception(error)
            yield item, future
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lungus-read")
    try:
        pending: collections.deque = collections.deque()
        upcoming = iter(items)
        for item in upcoming:
            pending.append((item, pool.submit(load, item)))
            if len(pending) > workers:
                break
        while pending:
            item, future = pending.popleft()
            following = next(upcoming, None)
            if following is not None:
                pending.append((following, pool.submit(load, following)))
            yield item, future
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def picture_stems(items: Sequence[InferenceInput]) -> dict[int, str]:
    """The file-name stem of each clip's pictures (overlays/<stem>.mp4, masks/<stem>.seq.nrrd,
    explain/<stem>.<method>.png), by input index: the clip's file name without its suffix, with
    characters other than letters, digits, ``-``, ``_`` and ``.`` written as ``_``. Inputs that
    share a stem (compared without case, as macOS and Windows compare file names) each get
    ``_<index>``, their place in the input list counting from 0. Named from the whole input list,
    so shards, merges and resumed runs name every clip as one run does."""
    plain = {item.index: file_stem(item.clip) for item in items}
    uses = collections.Counter(stem.lower() for stem in plain.values())
    taken = {stem.lower() for stem in plain.values() if uses[stem.lower()] == 1}
    stems: dict[int, str] = {}
    for index, stem in plain.items():
        if uses[stem.lower()] > 1:
            stem = f"{stem}_{index}"
            while stem.lower() in taken:  # another input is literally named <stem>_<index>
                stem += "_"
            taken.add(stem.lower())
        stems[index] = stem
    return stems


def _run_info(
    analyzer,
    items: Sequence[InferenceInput],
    shard: tuple[int, int] | None,
    overlays: bool,
    explain: str | None,
) -> dict[str, Any]:
    from lungus import __version__

    info = {
        "lungus": __version__,
        "inputs": len(items),
        "inputs_digest": inputs_digest(items),
        "shard": None if shard is None else list(shard),
        "models": analyzer.models(),
        "class_names": analyzer.class_names,
        "task": None if analyzer.classifier is None else analyzer.classifier.card.task,
        "overlays": overlays,
        "explain": explain,
    }
    warning = analyzer.simulated_training_warning()
    if warning is not None:  # the record of what the run was says what its models were trained on
        info["warnings"] = [warning]
    return info


def _model_ids(info: dict[str, Any]) -> dict[str, str]:
    return {kind: (entry or {}).get("id", "") for kind, entry in info["models"].items()}


def read_run_info(folder: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(folder) / RUN_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise LungUSError("damaged run.json; run again without --resume", path) from None


@contextlib.contextmanager
def _output_folder(out: Path, next_step: str) -> Iterator[None]:
    """Hold ``out``'s lock (one writer per folder); a refused write ends saying ``next_step``."""
    try:
        with exclusive_folder(out, "lungus infer", LOCK):
            yield
    except OutputWriteError as error:
        raise error.advising(next_step) from error


@dataclass(frozen=True)
class BatchRequest:
    """What a batch run analyses and where it writes (the options of `lungus infer`).

    ``inputs``: clip files, folders and manifest CSVs, or the InferenceInput list
    collect_inputs made of them; ``out``: the output folder; ``workers``: threads decoding the
    next clips; ``overlays``: overlay videos and mask sequences; ``explain``: an explanation
    method (lungus.infer.overlays.write_overlays); ``resume``: keep the clips already scored in
    ``out``; ``shard``: (i, n), only the inputs whose index is i modulo n.
    """

    inputs: Sequence[str | os.PathLike] | Sequence[InferenceInput]
    out: Path
    workers: int = 0
    overlays: bool = False
    explain: str | None = None
    resume: bool = False
    shard: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if self.workers < 0:
            raise LungUSError(f"workers must be 0 or more, got {self.workers}")


def run_batch(
    analyzer,
    request: BatchRequest,
    *,
    progress: Progress | None = None,
    cancel=None,
    progress_bar: bool = False,
    log: Callable[[str], None] | None = None,
) -> BatchSummary:
    """Analyse every input clip of ``request`` with ``analyzer``; write DIR/clips.csv, clips.jsonl,
    frames.csv (and with ``overlays`` / ``explain`` the pictures of lungus.infer.overlays.write_overlays).

    ``progress(done, total, clip)`` after each clip; ``cancel`` (threading.Event or callable)
    stops between clips (and inside one), keeping what is done; ``progress_bar``: a tqdm bar;
    ``log``: told when a resumed run skips clips. Returns a BatchSummary.
    """
    from lungus.infer.analyzer import as_cancel

    started = time.perf_counter()
    out = request.out
    items = _input_list(request.inputs)
    selected = shard_inputs(items, *request.shard) if request.shard is not None else list(items)
    info = _run_info(analyzer, items, request.shard, request.overlays, request.explain)
    with _output_folder(out, "run again with --resume"):
        records = _previous_records(out, info) if request.resume else []
        atomic_write_text(out / RUN_JSON, json.dumps(info, indent=2) + "\n")
        todo, summary = _still_to_do(selected, records, out)
        if log is not None and summary.skipped:
            log(f"resuming: {summary.skipped} of {len(selected)} clips already done")
        clips = _ClipRun(analyzer, request, info, picture_stems(items), Journal(out, resume=request.resume),
                         records, summary, as_cancel(cancel))
        try:
            clips.analyse_all(todo, progress, progress_bar)
        finally:
            clips.finish(started)
        return summary


def _input_list(inputs: Sequence[str | os.PathLike] | Sequence[InferenceInput]) -> list[InferenceInput]:
    if inputs and isinstance(inputs[0], InferenceInput):
        return list(inputs)
    return collect_inputs(inputs)


def _previous_records(out: Path, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The journal of the run ``out`` holds, if that run had the same models, inputs and shard."""
    previous = read_run_info(out)
    if previous is not None:
        if _model_ids(previous) != _model_ids(info):
            raise LungUSError(
                f"--resume: this folder holds results of other models ({_model_ids(previous)}); "
                "use another --out, or run without --resume to start again",
                out,
            )
        if previous.get("inputs_digest") != info["inputs_digest"] or previous.get("shard") != info["shard"]:
            raise LungUSError(
                "--resume: this folder holds results for another input list or shard; "
                "give the same inputs and --shard, or run without --resume",
                out,
            )
    return read_journal(out)


def _still_to_do(
    selected: Sequence[InferenceInput], records: Sequence[dict[str, Any]], out: Path
) -> tuple[list[InferenceInput], BatchSummary]:
    """The clips without a record free of errors, and the summary counting the others as done."""
    done = {record["clip"] for record in records if not record.get("error")}
    todo = [item for item in selected if item.clip not in done]
    skipped = len(selected) - len(todo)
    return todo, BatchSummary(out=out, total=len(selected), scored=skipped, skipped=skipped)


@dataclass
class _ClipRun:
    """The clips of one run analysed in order, each record journalled as it comes."""

    analyzer: Any
    request: BatchRequest
    info: dict[str, Any]
    stems: dict[int, str]  # picture_stems of the whole input list
    journal: Journal
    records: list[dict[str, Any]]
    summary: BatchSummary
    is_cancelled: Callable[[], bool]
    refused: bool = False  # a write was refused (full disk): the tables cannot be written either

    def analyse_all(self, todo: Sequence[InferenceInput], progress, progress_bar: bool) -> None:
        bar = None
        if progress_bar:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="clip", desc="infer", dynamic_ncols=True)
        try:
            loads = _load_ahead(lambda item: self.analyzer.load(item.path, name=item.clip), todo,
                                self.request.workers)
            for count, (item, future) in enumerate(loads, start=1):
                if self.is_cancelled():
                    self.summary.cancelled = True
                    break
                record = self._record(item, future)
                if record is None:
                    break
                self.journal.append(record)
                self.records.append(record)
                if bar is not None:
                    bar.update(1)
                if progress is not None:
                    progress(count, len(todo), item.clip)
        except OutputWriteError:
            self.refused = True
            raise
        finally:
            if bar is not None:
                bar.close()

    def _record(self, item: InferenceInput, future: Future) -> dict[str, Any] | None:
        """The clip's record (an error record for a bad clip); None when cancelled inside it."""
        try:
            loaded = future.result()
            analysis = self.analyzer.analyse(loaded, explain=self.request.explain, cancel=self.is_cancelled)
            record = {"index": item.index, **analysis.to_json(), "path": _utf8_name(os.fspath(item.path))}
            record.update(self._pictures(item, loaded.clip, analysis))
        except Cancelled:
            self.summary.cancelled = True
            return None
        except OutputWriteError:  # not the clip's fault: every following clip would fail too
            raise
        except Exception as error:  # a bad clip is recorded; the batch goes on
            record = error_record(item, _error_message(error, item), self.analyzer.class_names,
                                  self.info["task"], _model_ids(self.info))
            self.summary.failed.append((item.clip, record["error"]))
            return record
        self.summary.scored += 1
        return record

    def _pictures(self, item: InferenceInput, clip, analysis) -> dict[str, str]:
        from lungus.infer.overlays import write_overlays

        request = self.request
        if not (request.overlays or request.explain):
            return {}
        return write_overlays(clip, analysis, request.out, self.stems[item.index], overlays=request.overlays,
                              explain=request.explain is not None)

    def finish(self, started: float) -> None:
        """Rewrite the journal in input order and the tables from it; time the run."""
        try:
            write_tables(self.request.out, self.records, self.analyzer.class_names)
        except OutputWriteError:
            if not self.refused:  # else the folder is still full: the first refused write is the one to report
                raise
        finally:
            self.summary.seconds = time.perf_counter() - started


# ---------------------------------------------------------------------------------------- merging


def merge_outputs(
    folders: Sequence[str | os.PathLike], out: str | os.PathLike, *, move: bool = False
) -> BatchSummary:
    """Join the outputs of shards (or of several runs over the same inputs and models) into
    ``out``: the same clips.csv, frames.csv and clips.jsonl one run over all inputs writes.
    Pictures are copied (moved with ``move``) along."""
    out = Path(out)
    if not folders:
        raise LungUSError("--merge needs at least one folder")
    with _output_folder(out, "run the merge again"):
        return _merge_into(folders, out, move)


def _merge_into(folders: Sequence[str | os.PathLike], out: Path, move: bool) -> BatchSummary:
    infos, records = [], []
    for folder in folders:
        folder = Path(folder)
        info = read_run_info(folder)
        if info is None:
            raise LungUSError("not a lungus infer output folder (no run.json)", folder)
        if infos:
            if _model_ids(info) != _model_ids(infos[0]) or info.get("class_names") != infos[0].get(
                "class_names"
            ):
                raise LungUSError(
                    f"results of other models than {folders[0]}; merge only runs of the same models", folder
                )
            if info.get("inputs_digest") != infos[0].get("inputs_digest"):
                raise LungUSError(
                    f"results for another input list than {folders[0]}; shards to merge must come "
                    "from the same inputs",
                    folder,
                )
        infos.append(info)
        for record in read_journal(folder):
            for key in PICTURE_KEYS:
                if record.get(key):
                    _bring(folder / record[key], out / record[key], move)
            records.append(record)
    out.mkdir(parents=True, exist_ok=True)
    merged = latest_records(records)
    write_tables(out, merged, infos[0].get("class_names"))
    info = {**infos[0], "shard": None, "merged_from": [os.fspath(f) for f in folders]}
    atomic_write_text(out / RUN_JSON, json.dumps(info, indent=2) + "\n")
    failed = [(r["clip"], r["error"]) for r in merged if r.get("error")]
    total = int(info.get("inputs") or len(merged))
    return BatchSummary(
        out=out,
        total=total,
        scored=len(merged) - len(failed),
        failed=failed,
        missing=max(0, total - len(merged)),
    )


def _bring(source: Path, target: Path, move: bool) -> None:
    if not source.is_file() or (target.exists() and source.resolve() == target.resolve()):
        return
    if move:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
    else:
        with atomic_path(target) as temporary:
            shutil.copy2(source, temporary)
