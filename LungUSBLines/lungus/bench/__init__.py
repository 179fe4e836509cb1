"""Named benchmarks: `lungus bench <name> [--json]`.

A benchmark is a module ``lungus.bench.<name>`` (found automatically; names starting
with ``_`` are not benchmarks) that defines:

- ``HELP``: one line for `lungus bench --list`;
- ``add_arguments(parser)``: its own options (the framework adds --json, --threads, --out);
- ``run(args) -> dict``: does the measuring and returns at least ``{"results": [row, ...]}``
  (rows are flat dicts, one per variant measured) plus any top-level summary keys.
- optionally ``USES_TORCH = True``: the framework then pins torch's threads as well.

Keep a benchmark module's top level light (argparse, stdlib): it is imported to list
the benchmarks. The framework pins thread pools (numpy/BLAS through threadpoolctl,
OpenCV, torch when used) to ``--threads`` for the run, adds a description of the
machine, and prints a table or the JSON record.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import os
import pkgutil
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any


def available() -> dict[str, ModuleType]:
    """Benchmark name -> module, for every benchmark module in this package."""
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "run") and hasattr(module, "add_arguments"):
            found[info.name] = module
    return dict(sorted(found.items()))


def positive_int(text: str) -> int:
    """argparse type for counts and sizes: an integer of at least 1."""
    import argparse

    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def cpu_model() -> str:
    """The CPU model name (from /proc/cpuinfo, else the platform)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """A JSON-able description of the machine and the libraries that matter for speed."""
    import numpy

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            kib = int(handle.readline().split()[1])
        info["memory_gib"] = round(kib / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        info["opencv"] = cv2.__version__
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


@contextlib.contextmanager
def pinned_threads(threads: int, torch: bool = False) -> Iterator[None]:
    """Limit numpy/BLAS/OpenMP, OpenCV (and torch) to ``threads`` threads inside the block."""
    import cv2
    from threadpoolctl import threadpool_limits

    previous_cv2 = cv2.getNumThreads()
    previous_torch = None
    torch_module = None
    if torch:
        import torch as torch_module

        previous_torch = torch_module.get_num_threads()
        torch_module.set_num_threads(threads)
    cv2.setNumThreads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        cv2.setNumThreads(previous_cv2)
        if torch_module is not None and previous_torch is not None:
            torch_module.set_num_threads(previous_torch)


@dataclass(frozen=True)
class Timing:
    """Seconds of repeated runs of one piece of work: wall clock, and CPU time of this
    process (with pools pinned to one thread, CPU time is what the work costs one core
    even when other jobs share the machine)."""

    seconds: tuple[float, ...]
    cpu_seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_seconds)


def measure(work: Callable[[], object], repeat: int = 3, warmup: int = 1) -> Timing:
    """Time ``work()`` ``repeat`` times after ``warmup`` untimed calls."""
    for _ in range(warmup):
        work()
    seconds, cpu_seconds = [], []
    for _ in range(max(1, repeat)):
        start, cpu_start = time.perf_counter(), time.process_time()
        work()
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    return Timing(tuple(seconds), tuple(cpu_seconds))


def run_benchmark(name: str, args: Any, command: str) -> dict[str, Any]:
    """Run one benchmark with its parsed ``args`` (which must carry ``threads``)."""
    benchmarks = available()
    if name not in benchmarks:
        raise KeyError(name)
    module = benchmarks[name]
    with pinned_threads(args.threads, torch=getattr(module, "USES_TORCH", False)):
        result = module.run(args)
    if "results" not in result:
        raise RuntimeError(f"benchmark {name!r} returned no 'results'")
    from lungus import __version__

    return {
        "benchmark": name,
        "command": command,
        "threads": args.threads,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "lungus": __version__,
        "machine": machine_info(),
        **result,
    }


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return str(value)


def format_table(record: dict[str, Any]) -> str:
    """The record as text: the machine, a table of the result rows, then the summary keys."""
    machine = record["machine"]
    lines = [
        f"{record['benchmark']}: {machine['cpu']} ({machine['usable_cpus']} usable CPUs), "
        f"{record['threads']} thread(s), lungus {record['lungus']}"
    ]
    rows = record["results"]
    if rows:
        columns: list[str] = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        lines.append("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
        lines.extend("  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells)
    skip = {"benchmark", "command", "threads", "date", "lungus", "machine", "results"}
    for key, value in record.items():
        if key not in skip:
            lines.append(f"{key}: {_cell(value)}")
    return "\n".join(lines)
