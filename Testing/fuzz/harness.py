"""Fuzz harness: mutated clips, manifests, opinions, annotations and model files, each read in
a limited child process, every outcome counted.

Why our own mutator rather than hypothesis or atheris:
- no new dependency (atheris needs a compiled libFuzzer build; hypothesis's shrinking buys little
  when the interesting unit is a whole file written by the engine's own writers);
- structure-aware mutations are a few lines each here (NRRD header fields, DICOM tags through
  pydicom, JSON values, CSV cells, zip entries), applied to real seed files;
- each input is fully determined by (seed, family, index): ``random.Random(f"{seed}:{family}:{i}")``,
  so any finding is reproduced by its number;
- every input runs in a long-lived worker subprocess with RLIMIT_AS and a wall-clock limit: a
  segfault, abort, hang or allocation blow-up is counted against that input, the worker is
  restarted, and the run goes on (in-process fuzzers stop at the first crash).

Outcomes: ``accepted`` (the reader returned), ``refused`` (LungUSError, one line), ``escape`` (any
other exception, or a multi-line LungUSError message), ``crash`` (worker died, e.g. by a
signal), ``hang`` (time limit) and ``memory`` (MemoryError or the address-space limit).

Run: ``python Testing/fuzz/harness.py --inputs 10000 --out fuzz_results.json`` (``make fuzz``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import select
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

OUTCOMES = ("accepted", "refused", "escape", "crash", "hang", "memory")
FAILURES = ("escape", "crash", "hang", "memory")
HEADROOM_BYTES = 3 << 30  # address space a worker may add beyond what it had after its imports


# ---------------------------------------------------------------- byte mutations


def _byte_mutation(data: bytes, rng: random.Random) -> bytes:
    """One generic mutation: flip, truncate, insert, delete, duplicate or overwrite bytes."""
    if not data:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    buf = bytearray(data)
    kind = rng.choice(("flip", "flip", "truncate", "insert", "delete", "duplicate", "interesting"))
    at = rng.randrange(len(buf))
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del buf[at:]
    elif kind == "insert":
        buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif kind == "delete":
        del buf[at : at + rng.randint(1, 256)]
    elif kind == "duplicate":
        chunk = buf[at : at + rng.randint(1, 512)]
        buf[at:at] = chunk
    else:
        value = rng.choice((b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80"))
        buf[at : at + len(value)] = value
    return bytes(buf)


# ---------------------------------------------------------------- structure-aware mutations

_HUGE_TEXT = ("0", "-1", "1e308", "nan", "inf", "99999999999999999999", "abc", "", "1 2 3 4 5", "2147483648")


def _nrrd_mutation(data: bytes, rng: random.Random) -> bytes:
    """Change, drop or add one NRRD header field (sizes, dimension, type, encoding, line skip, data file)."""
    end = data.find(b"\n\n")
    if end < 0:
        return _byte_mutation(data, rng)
    lines = data[:end].decode("latin-1").split("\n")
    body = data[end + 2 :]
    field_name = rng.choice(("sizes", "dimension", "type", "encoding", "line skip", "byte skip", "data file",
                             "endian", "space directions", "kinds", "space origin", "measurement frame"))
    values = {
        "sizes": ("0 0 0", "100000 100000 100000", "-5 4 3", "4 4", "4 4 4 4", "x y z"),
        "dimension": ("0", "1", "2", "4", "17", "-1"),
        "type": ("double", "uint16", "int64", "block", "float", "nonsense"),
        "encoding": ("gzip", "raw", "ascii", "hex", "bzip2", "zrl"),
        "line skip": ("100000000", "-1", "1"),
        "byte skip": ("-1", "100000000", "7"),
        "data file": ("missing.raw", "/dev/zero", "LIST", "%d.raw 0 3 1", "../" * 40 + "etc/passwd"),
        "endian": ("big", "middle"),
    }.get(field_name, _HUGE_TEXT)
    kept = [line for line in lines if not line.startswith(field_name + ":")]
    action = rng.choice(("drop", "set", "set", "duplicate"))
    if action == "drop":
        lines = kept
    else:
        new = f"{field_name}: {rng.choice(values + _HUGE_TEXT[:3])}"
        lines = (kept if action == "set" else lines) + [new]
    return "\n".join(lines).encode("latin-1") + b"\n\n" + body


def _dicom_mutation(data: bytes, rng: random.Random) -> bytes:
    """Set one image-describing DICOM element to an odd value (through pydicom), or drop it."""
    import pydicom
    from pydicom.uid import UID

    from lungus.io.dicom import save_dataset

    with warnings.catch_warnings():  # pydicom's complaints about the damage we make are expected
        warnings.simplefilter("ignore")
        return _set_dicom_element(pydicom, UID, save_dataset, data, rng)


def _set_dicom_element(pydicom, UID, save_dataset, data: bytes, rng: random.Random) -> bytes:  # noqa: N803
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception:
        return _byte_mutation(data, rng)
    tag = rng.choice(("Rows", "Columns", "NumberOfFrames", "BitsAllocated", "BitsStored", "SamplesPerPixel",
                      "TransferSyntaxUID", "PhotometricInterpretation", "PixelRepresentation", "CineRate",
                      "FrameTime", "PlanarConfiguration", "PixelData"))
    target = ds.file_meta if tag == "TransferSyntaxUID" and hasattr(ds, "file_meta") else ds
    choices = {
        "TransferSyntaxUID": ("1.2.3.4.5", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.5",
                              "1.2.840.10008.1.2.2", "1.2.840.10008.1.2"),
        "PhotometricInterpretation": ("PALETTE COLOR", "YBR_FULL", "RGB", "MONOCHROME1", "XYZ", ""),
        "PixelData": (b"", b"\x00" * 7),
        "CineRate": ("0", "-5", "NaN"),
        "FrameTime": ("0", "-1", "1e308"),
    }.get(tag, (0, 1, 3, 7, 65535, 100000, -1))
    try:
        if rng.random() < 0.2 and tag in target:
            delattr(target, tag)
        else:
            value = rng.choice(choices)
            if tag == "TransferSyntaxUID":
                value = UID(value)
            if tag in ("Rows", "Columns", "BitsAllocated", "BitsStored", "SamplesPerPixel", "PixelRepresentation",
                       "PlanarConfiguration") and isinstance(value, int) and not 0 <= value <= 65535:
                value = 65535
            setattr(target, tag, value)
        out = io.BytesIO()
        save_dataset(ds, out)
        return out.getvalue()
    except Exception:
        return _byte_mutation(data, rng)


_ODD_JSON = (None, [], {}, "text", float("nan"), float("inf"), -float("inf"), 1e308, 10**20, -1, 0, True,
             "../" * 30, [1, 2, 3], {"a": None})


def _json_paths(value: object, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += _json_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value[:8]):
            paths += _json_paths(item, prefix + (index,))
    return paths


def _json_mutation(data: bytes, rng: random.Random) -> bytes:
    """Replace one value anywhere in the document (or the whole document) by null/list/string/NaN/huge."""
    try:
        doc = json.loads(data)
    except ValueError:
        return _byte_mutation(data, rng)
    path = rng.choice(_json_paths(doc))
    odd = rng.choice(_ODD_JSON)
    if not path:
        doc = odd
    else:
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if rng.random() < 0.15 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = odd
    return json.dumps(doc).encode()


def _csv_mutation(data: bytes, rng: random.Random) -> bytes:
    """Odd cells (huge numbers, long paths, control characters), missing or extra columns, no header."""
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8", "replace"), newline="")))
    except csv.Error:  # damage from an earlier byte mutation
        return _byte_mutation(data, rng)
    if len(rows) < 2:
        return _byte_mutation(data, rng)
    kind = rng.choice(("cell", "cell", "cell", "drop_column", "extra_column", "no_header", "short_row", "many_rows"))
    if kind == "cell":
        row = rng.randrange(len(rows))
        col = rng.randrange(len(rows[row])) if rows[row] else 0
        odd = rng.choice(("1e20", "100000000000000000000", "-1", "nan", "inf", "", "x" * 5000, "a/" * 2500 + "c.npy",
                          "/etc/passwd", "../../../../outside.npy", "\x00", "line\nbreak", "=cmd|' /C calc'!A0",
                          "\ufeffclip", "3.5"))
        if rows[row]:
            rows[row][col] = odd
        else:
            rows[row] = [odd]
    elif kind == "drop_column":
        col = rng.randrange(len(rows[0]))
        rows = [r[:col] + r[col + 1 :] for r in rows]
    elif kind == "extra_column":
        rows = [r + [rng.choice(("label", "", "x"))] for r in rows]
    elif kind == "no_header":
        rows = rows[1:]
    elif kind == "short_row":
        rows[-1] = rows[-1][:1]
    else:
        rows += rows[1:] * rng.randint(1, 50)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def _zip_mutation(data: bytes, rng: random.Random) -> bytes:
    """Mutate one entry inside a zip (.npz, .pt, TorchScript), or a local header's version/method."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    except Exception:
        return _byte_mutation(data, rng)
    if not entries:
        return _byte_mutation(data, rng)
    if rng.random() < 0.25:  # header fields: version needed to extract, compression method
        buf = bytearray(data)
        starts = [i for i in range(len(buf) - 30) if buf[i : i + 4] == b"PK\x03\x04"]
        if starts:
            at = rng.choice(starts)
            offset = rng.choice((4, 8))
            struct.pack_into("<H", buf, at + offset, rng.choice((0x3F, 99, 14, 0xFFFF)))
        return bytes(buf)
    pick = rng.randrange(len(entries))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as new:
        for index, (info, payload) in enumerate(entries):
            if index == pick:
                if rng.random() < 0.15:
                    continue  # entry dropped
                payload = (_json_mutation if payload[:1] in b"{[" else _byte_mutation)(payload, rng)
            new.writestr(info, payload)
    return out.getvalue()


def _png_mutation(data: bytes, rng: random.Random) -> bytes:
    """Rewrite a PNG's IHDR width/height (CRC fixed), e.g. a decompression bomb header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return _byte_mutation(data, rng)
    width, height = rng.choice(((50000, 50000), (1, 1), (0, 0), (2**31 - 1, 1), (30000, 30000), (3, 100000)))
    ihdr = b"IHDR" + struct.pack(">II", width, height) + data[24:29]
    return data[:8] + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + data[33:]


def _mutator_for(name: str) -> Callable[[bytes, random.Random], bytes]:
    lower = name.lower()
    if lower.endswith((".nrrd", ".nhdr")):
        return _nrrd_mutation
    if lower.endswith(".dcm"):
        return _dicom_mutation
    if lower.endswith(".json"):
        return _json_mutation
    if lower.endswith(".csv"):
        return _csv_mutation
    if lower.endswith((".npz", ".pt", ".ts")):
        return _zip_mutation
    if lower.endswith(".png"):
        return _png_mutation
    return _byte_mutation


def mutate_file(path: Path, rng: random.Random) -> str:
    """Apply 1-3 mutations (structure-aware about half the time) to ``path`` in place; say what was done."""
    data = path.read_bytes()
    steps = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        mutation = _mutator_for(path.name) if rng.random() < 0.6 else _byte_mutation
        data = mutation(data, rng)
        steps.append(mutation.__name__.strip("_"))
    path.write_bytes(data)
    return f"{path.name}: {'+'.join(steps)}"


# ---------------------------------------------------------------- seeds, written by the engine's own writers


@dataclass(frozen=True)
class Seed:
    """A seed case: ``root`` is copied whole; ``target`` (relative) is what the reader is given;
    ``mutable`` (relative) are the files a mutation may change."""

    family: str
    root: Path
    target: str
    mutable: tuple[str, ...]


def _seed_clip():
    import numpy as np

    from lungus.io.clip import Clip

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(4, 48, 64), dtype=np.uint8)
    return Clip(frames=frames, fps=20.0, spacing_mm=(0.3, 0.25))


FAN_JSON = {"mask_type": "fan", "angle1": 125.0, "angle2": 55.0, "center_rows_px": -10, "center_cols_px": 32,
            "radius1": 10, "radius2": 60, "image_size_rows": 48, "image_size_cols": 64}


def _clip_seed(folder: Path, family: str, name: str, *, fan_json: bool = False, **options) -> Seed:
    from lungus.io.writer import write_clip

    case = folder / "-".join([family, name.replace(".", "_"), *map(str, options.values())])
    case.mkdir(parents=True)
    write_clip(_seed_clip(), case / name, **options)
    mutable = [p.relative_to(case).as_posix() for p in sorted(case.rglob("*")) if p.is_file()]
    if fan_json:
        stem = name.split(".")[0]
        (case / f"{stem}.json").write_text(json.dumps(FAN_JSON))
        mutable.append(f"{stem}.json")
    return Seed(family, case, name, tuple(mutable))


def _annotation_seed(folder: Path) -> Seed:
    case = folder / "annotation"
    case.mkdir(parents=True)
    point = [[30.0, 20.0, 0.0], [40.0, 25.0, 0.0]]
    record = {"SOPInstanceUID": "1.2.826.0.1.3680043.8.498.1", "GrayscaleConversion": False,
              "labels": ["B-lines/present"], **FAN_JSON,
              "frame_annotations": [{"frame_number": 1, "coordinate_space": "LPS",
                                     "pleura_lines": [{"rater": "tom", "line": {"points": point}}],
                                     "b_lines": [{"rater": "tom", "line": {"points": point}}]}]}
    (case / "scan.tom.json").write_text(json.dumps(record))
    return Seed("annotation", case, "scan.tom.json", ("scan.tom.json",))


def _table_seeds(folder: Path) -> list[Seed]:
    import numpy as np

    case = folder / "manifest"
    (case / "clips").mkdir(parents=True)
    for name in ("a", "b", "c"):
        np.save(case / "clips" / f"{name}.npy", np.full((2, 8, 8), 100, dtype=np.uint8))
    (case / "manifest.csv").write_text("clip,patient,label,n_present,n_raters\nclips/a.npy,p1,1,2,3\n"
                                       "clips/b.npy,p2,0,0,3\nclips/c.npy,p3,1,3,3\n")
    opinions = folder / "opinions"
    opinions.mkdir()
    (opinions / "opinions.csv").write_text("clip,rater,label\nclips/a.npy,r1,none\nclips/a.npy,r2,discrete\n"
                                           "clips/b.npy,r1,confluent\nclips/c.npy,r3,none\n")
    return [Seed("manifest", case, "manifest.csv", ("manifest.csv",)),
            Seed("opinions", opinions, "opinions.csv", ("opinions.csv",))]


def _model_seeds(folder: Path) -> list[Seed]:
    from lungus.infer.recipes import random_model_file
    from lungus.models.model_file import load_model_file
    from lungus.models.torchscript_onnx import export_onnx, export_torchscript

    case = folder / "model"
    case.mkdir(parents=True)
    pt = random_model_file(case / "m.pt", "bline2", "frame_cnn", size=32, frames=4, model_args={"width": 4})
    loaded = load_model_file(pt)
    seeds = [Seed("model", case, "m.pt", ("m.pt",))]
    for suffix, export in ((".ts", export_torchscript), (".onnx", export_onnx)):
        try:
            export(loaded.model, loaded.card, case / f"m{suffix}")
        except Exception as error:  # an exporter this environment lacks (e.g. onnx): fuzz the others
            print(f"fuzz: no {suffix} seed ({error})", file=sys.stderr)
            continue
        seeds.append(Seed("model", case, f"m{suffix}", (f"m{suffix}",)))
    return seeds


def write_seeds(folder: Path) -> dict[str, list[Seed]]:
    """Seeds per family, every file written by the engine's writers (or as the tests write them)."""
    seeds = [
        _clip_seed(folder, "array", "scan.npy", fan_json=True),
        _clip_seed(folder, "array", "scan.npz"),
        _clip_seed(folder, "array", "scan.npz", compression="gzip"),
        _clip_seed(folder, "nrrd", "scan.seq.nrrd"),
        _clip_seed(folder, "nrrd", "scan.nrrd"),
        _clip_seed(folder, "nrrd", "scan.seq.nrrd", compression="gzip"),
        _clip_seed(folder, "video", "scan.mp4"),
        _clip_seed(folder, "video", "scan.avi"),
        _clip_seed(folder, "video", "scan.gif"),
        _clip_seed(folder, "dicom", "scan.dcm"),
        _clip_seed(folder, "dicom", "scan.dcm", compression="jpeg"),
        _clip_seed(folder, "frames", "scan", fan_json=True),
        _annotation_seed(folder),
        *_table_seeds(folder),
        *_model_seeds(folder),
    ]
    families: dict[str, list[Seed]] = {}
    for seed in seeds:
        families.setdefault(seed.family, []).append(seed)
    return families


FAMILIES = ("array", "nrrd", "video", "dicom", "frames", "annotation", "manifest", "opinions", "model")


# ---------------------------------------------------------------- the worker (child process)


def _read(family: str, path: Path) -> None:
    """Call the entry point a family is fuzzing; return normally only if it accepted the input."""
    if family == "manifest":
        from lungus.data.manifests.manifest import Manifest

        Manifest.load(path)
    elif family == "opinions":
        from lungus.data.labels.opinions import Opinions

        Opinions.load(path)
    elif family == "annotation":
        from lungus.data.labels.annotations import read_annotation

        read_annotation(path)
    elif family == "model":
        from lungus.models.model_files import load_for_inference, read_card

        read_card(path)
        load_for_inference(path)
    else:
        from lungus.io.reader import read_clip

        read_clip(path)


_ALLOCATION_FAILED = "can't allocate memory"  # torch's DefaultCPUAllocator under RLIMIT_AS


def _classify(error: BaseException) -> tuple[str, str]:
    from lungus.errors import LungUSError

    if isinstance(error, MemoryError) or _ALLOCATION_FAILED in str(error).lower():
        return "memory", f"{type(error).__name__}: {str(error)[:300]}"  # torch and OpenCV say it in RuntimeError
    if isinstance(error, LungUSError):
        message = str(error)
        if "\n" in message.strip():
            return "escape", f"multi-line LungUSError: {message!r}"
        return "refused", message
    return "escape", "".join(traceback.format_exception(error))[-4000:]


def worker_main() -> None:
    """Read one request per line on stdin, answer one JSON line on the saved stdout."""
    import resource

    import lungus.data.labels.annotations  # noqa: F401  (imports before the address-space limit)
    import lungus.data.manifests.manifest  # noqa: F401
    import lungus.io.reader  # noqa: F401
    import lungus.models.torchscript_onnx  # noqa: F401

    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the replies
    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[0]) * resource.getpagesize()
    limit = current + int(os.environ.get("FUZZ_HEADROOM_BYTES", HEADROOM_BYTES))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    replies.write(json.dumps({"ready": True}) + "\n")
    replies.flush()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            _read(request["family"], Path(request["path"]))
            outcome, detail = "accepted", ""
        except BaseException as error:  # noqa: BLE001  (classifying every escape is the point)
            outcome, detail = _classify(error)
        replies.write(json.dumps({"outcome": outcome, "detail": detail}) + "\n")
        replies.flush()


# ---------------------------------------------------------------- the parent: pool, limits, counts


class Worker:
    """One long-lived child; restarted after a crash, a hang or a memory blow-up."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self.process: subprocess.Popen | None = None

    def _start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "OPENCV_LOG_LEVEL": "SILENT"}
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=env, text=True, bufsize=1)
        if json.loads(self._reply(120.0) or "{}").get("ready") is not True:
            raise RuntimeError("fuzz worker did not start")

    def _reply(self, timeout_s: float) -> str | None:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        return self.process.stdout.readline() if ready else None

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def run(self, family: str, path: Path) -> tuple[str, str]:
        if self.process is None or self.process.poll() is not None:
            self._start()
        try:
            self.process.stdin.write(json.dumps({"family": family, "path": str(path)}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass
        line = self._reply(self.timeout_s)
        if line is None and self.process.poll() is None:
            self.stop()
            return "hang", f"no answer in {self.timeout_s:g} s"
        if not line:
            code = self.process.wait()
            self.process = None
            return "crash", f"worker exited with {code}"
        reply = json.loads(line)
        if reply["outcome"] == "memory":
            self.stop()  # a fresh heap for the next input
        return reply["outcome"], reply["detail"]


@dataclass
class FamilyCounts:
    tried: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    findings: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"tried": self.tried, **{name: self.counts[name] for name in OUTCOMES},
                "escapes": self.counts["escape"], "findings": self.findings}


# Name parts a careless or hostile folder holds: bytes that are not UTF-8 (kept by Python as lone
# surrogates, written back as the same bytes), a newline, a right-to-left override, a space.
HOSTILE_NAME_PARTS = ("\udcff", "\udce9t\udcc3", "\n", "\u202e", " ")
FILESYSTEM_MUTATION_RATE = 0.15


def _filesystem_mutation(case: Path, seed: Seed, rng: random.Random) -> tuple[str, str]:
    """Rename the target to a hostile name, or put a FIFO where one of the case's files was.

    Returns the (possibly new) target, relative to ``case``, and what was done. Permission-denied
    files are not fuzzed here: the harness runs as root in CI, where mode 000 still reads; the unit
    tests cover them as an ordinary user.
    """
    if rng.random() < 0.5:
        target = case / seed.target
        stem, dot, suffix = target.name.partition(".")
        renamed = target.with_name(stem + rng.choice(HOSTILE_NAME_PARTS) + dot + suffix)
        target.rename(renamed)
        return renamed.relative_to(case).as_posix(), f"renamed to {renamed.name!r}"
    victim = case / rng.choice(seed.mutable)
    victim.unlink()
    os.mkfifo(victim)
    return seed.target, f"{victim.name}: replaced by a FIFO"


def _copy_keeping_fifos(source: str, destination: str) -> None:
    """copytree's copy function for kept findings: a FIFO is remade, not opened (which would block)."""
    if stat.S_ISFIFO(os.lstat(source).st_mode):
        os.mkfifo(destination)
    else:
        shutil.copy2(source, destination)


def make_case(seed: Seed, index: int, base_seed: int, into: Path) -> tuple[Path, str]:
    """Copy the seed case into ``into`` and mutate it; deterministic in (base_seed, family, index)."""
    rng = random.Random(f"{base_seed}:{seed.family}:{index}")
    shutil.copytree(seed.root, into)
    what = mutate_file(into / rng.choice(seed.mutable), rng)
    target = seed.target
    if rng.random() < FILESYSTEM_MUTATION_RATE:
        target, renamed = _filesystem_mutation(into, seed, rng)
        what = f"{what}; {renamed}"
    return into / target, what


def fuzz(inputs_per_family: int, *, seed: int = 0, workers: int = 2, timeout_s: float = 10.0,
         families: tuple[str, ...] = FAMILIES, keep: Path | None = None, keep_per_family: int = 5) -> dict:
    """Run ``inputs_per_family`` mutated inputs per family; return the counts (and keep failing inputs)."""
    results: dict[str, FamilyCounts] = {}
    lock = threading.Lock()
    with tempfile.TemporaryDirectory(prefix="lungus-fuzz-") as scratch:
        scratch_path = Path(scratch)
        all_seeds = write_seeds(scratch_path / "seeds")
        jobs = [(family, index) for index in range(inputs_per_family) for family in families]
        next_job = iter(jobs)
        finished, began = [0], time.monotonic()
        progress_every = max(1, len(jobs) // 100) if len(jobs) >= 1000 else 0  # a line per 1 % on long runs

        thread_errors: list[BaseException] = []

        def drain(worker: Worker, slot: int) -> None:
            try:
                drain_jobs(worker, slot)
            except BaseException as error:  # a harness bug must fail the run, not thin it silently
                thread_errors.append(error)

        def drain_jobs(worker: Worker, slot: int) -> None:
            while True:
                with lock:
                    job = next(next_job, None)
                if job is None:
                    return
                family, index = job
                seeds = all_seeds[family]
                case = scratch_path / f"case-{slot}"
                shutil.rmtree(case, ignore_errors=True)
                target, what = make_case(seeds[index % len(seeds)], index, seed, case)
                started = time.monotonic()
                outcome, detail = worker.run(family, target)
                with lock:
                    counts = results.setdefault(family, FamilyCounts())
                    counts.tried += 1
                    finished[0] += 1
                    if progress_every and finished[0] % progress_every == 0:
                        print(f"fuzz: {finished[0]}/{len(jobs)} inputs, {time.monotonic() - began:.0f} s",
                              file=sys.stderr, flush=True)
                    counts.counts[outcome] += 1
                    if outcome in FAILURES and len(counts.findings) < keep_per_family:
                        finding = {"index": index, "outcome": outcome, "mutation": what,
                                   "seconds": round(time.monotonic() - started, 2), "detail": detail}
                        if keep is not None:
                            saved = keep / family / f"{index:06d}-{outcome}"
                            shutil.rmtree(saved, ignore_errors=True)
                            shutil.copytree(case, saved, copy_function=_copy_keeping_fifos)
                            finding["saved"] = str(saved)
                        counts.findings.append(finding)
                shutil.rmtree(case, ignore_errors=True)

        pool = [Worker(timeout_s) for _ in range(workers)]
        threads = [threading.Thread(target=drain, args=(worker, slot)) for slot, worker in enumerate(pool)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for worker in pool:
            worker.stop()
        if thread_errors:
            raise RuntimeError(f"fuzz harness failed: {thread_errors[0]!r}") from thread_errors[0]
    return {family: results[family].as_json() for family in families if family in results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--inputs", type=int, default=10_000, help="inputs per reader family")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per input")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--out", type=Path, default=Path("fuzz_results.json"))
    parser.add_argument("--keep", type=Path, default=Path("fuzz_findings"), help="folder for failing inputs")
    args = parser.parse_args(argv)
    if args.worker:
        worker_main()
        return 0
    started = time.monotonic()
    families = tuple(name for name in args.families.split(",") if name)
    counts = fuzz(args.inputs, seed=args.seed, workers=args.workers, timeout_s=args.timeout,
                  families=families, keep=args.keep)
    report = {"command": f"make fuzz FUZZ_INPUTS={args.inputs}", "seed": args.seed, "inputs_per_family": args.inputs,
              "seconds": round(time.monotonic() - started, 1), "families": counts}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for family, row in counts.items():
        print(f"{family:11s} " + " ".join(f"{name}={row[name]}" for name in ("tried", *OUTCOMES)))
    return 1 if any(row[name] for row in counts.values() for name in FAILURES) else 0


if __name__ == "__main__":
    sys.exit(main())
