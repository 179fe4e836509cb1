"""Long jobs (batch inference, training) as a `python -m lungus ...` subprocess, read without blocking.

Slicer's GUI must not freeze while a job runs, so the job is a separate process (as
SlicerTotalSegmentator and MONAIAuto3DSeg do). A thread reads its merged stdout/stderr into a
queue; the panel calls :meth:`EngineProcess.poll` from a timer to get the new lines and the
progress parsed from them. Nothing here needs Qt, so it is tested headless with real
subprocesses.

Inside Slicer the process is started through ``slicer.util.launchConsoleProcess`` (pass it as
``launch``), which gives the child Slicer's startup environment; the child's Python is
``PythonSlicer`` (see :func:`default_python`).

Stopping does not rest on signals reaching the job: PythonSlicer is a launcher that starts the
real Python as its own child and forwards no signal to it, and a process started from a
background shell inherits SIGINT as ignored. Each job is given a stop file and a PID file
through its environment (which the launcher passes on; lungus.job_control is the engine's
side): cancelling creates the stop file and the job stops as on Ctrl+C, keeping what it has
done; a job that has not ended after a grace period is ended with its whole process tree. The
job also stops itself when the program that started it has died (a crash runs no cleanup()).

On Windows the stop file works the same (the job is interrupted once a blocking call returns);
the process tree is ended with ``taskkill /F /T``; there is no check that Slicer is still alive
(``os.kill(pid, 0)`` would end it there). This path is not exercised by the tests, which run on
Linux.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lungus.job_control import OWNER_PID_VARIABLE, PID_FILE_VARIABLE, STOP_FILE_VARIABLE

#: launch(arguments, environment updates, working folder) -> a Popen whose ``stdout`` is a text
#: stream carrying stdout and stderr (what slicer.util.launchConsoleProcess returns).
Launcher = Callable[[list, dict, str | None], Any]
#: Last lines of output kept (the log view shows them; a long training prints thousands).
KEPT_LINES = 5000
#: Names of the files in a job's control folder.
STOP_FILE, PID_FILE = "stop", "pid"


@dataclass(frozen=True)
class JobProgress:
    """What a job's output says about how far it is: ``fraction`` in [0, 1], ``message`` for people."""

    fraction: float
    message: str


def engine_root() -> Path:
    """The folder holding the `lungus` package (the LungUSBLines module folder in Slicer)."""
    import lungus

    return Path(lungus.__file__).resolve().parent.parent


def default_python() -> str:
    """The Python that runs engine jobs: Slicer's ``PythonSlicer`` launcher when there is one
    (inside Slicer; it sets up Slicer's library paths), else the running interpreter."""
    return shutil.which("PythonSlicer") or sys.executable


def engine_environment() -> dict[str, str]:
    """Environment updates for an engine subprocess: `lungus` importable (Slicer puts the module
    folder on sys.path, a child process does not get that), unbuffered UTF-8 output so lines
    arrive as they are printed."""
    paths = [str(engine_root())]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    return {
        "PYTHONPATH": os.pathsep.join(paths),
        "PYTHONUNBUFFERED": "1",
        "PYTHONIOENCODING": "utf-8",
    }


def engine_command(python: str | None, command: str, arguments: Sequence[str]) -> list[str]:
    """``[python, "-m", "lungus", command, *arguments]``."""
    return [python or default_python(), "-m", "lungus", command, *[str(a) for a in arguments]]


def popen_launcher(arguments: list[str], environment: dict[str, str], cwd: str | None) -> subprocess.Popen:
    """Start a process as slicer.util.launchConsoleProcess does, outside Slicer."""
    return subprocess.Popen(
        arguments,
        env={**os.environ, **environment},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
        errors="replace",
    )


class EngineProcess:
    """One job: start it, poll its output (non-blocking), cancel it, read how it ended.

    ``parse_progress(line)`` turns an output line into a JobProgress (or None). Text streams
    opened in universal-newline mode also split progress-bar updates at carriage returns, so
    each tqdm refresh arrives as a line too.
    """

    def __init__(
        self,
        arguments: Sequence[str],
        *,
        parse_progress: Callable[[str], JobProgress | None] | None = None,
        environment: dict[str, str] | None = None,
        cwd: str | os.PathLike | None = None,
        launch: Launcher | None = None,
    ) -> None:
        self.arguments = [str(a) for a in arguments]
        self.parse_progress = parse_progress
        self.environment = engine_environment() if environment is None else dict(environment)
        self.cwd = None if cwd is None else os.fspath(cwd)
        self.launch = launch or popen_launcher
        self.lines: collections.deque[str] = collections.deque(maxlen=KEPT_LINES)
        self.progress: JobProgress | None = None
        self.cancelled = False
        self._process: Any = None
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader: threading.Thread | None = None
        self._output_done = False
        self._stream_closed = threading.Event()  # no process writes to the output any more
        # The folder of the stop file and the PID file the job is told about (lungus.job_control).
        self._control: Path | None = None
        self._engine_pid: int | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> EngineProcess:
        if self._process is not None:
            raise RuntimeError("this job was already started")
        self._control = Path(tempfile.mkdtemp(prefix="lungus-job-"))
        environment = {
            **self.environment,
            STOP_FILE_VARIABLE: str(self._control / STOP_FILE),
            PID_FILE_VARIABLE: str(self._control / PID_FILE),
            OWNER_PID_VARIABLE: str(os.getpid()),  # should Slicer crash, the job stops itself
        }
        try:
            self._process = self.launch(self.arguments, environment, self.cwd)
        except BaseException:
            shutil.rmtree(self._control, ignore_errors=True)
            raise
        self._reader = threading.Thread(target=self._read, name="lungus-job-output", daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        stream = self._process.stdout
        try:
            while True:
                try:
                    line = stream.readline()
                except UnicodeDecodeError:
                    # A console in another code page (Slicer's launcher decodes with the locale):
                    # drop the line, keep reading, or the child would block on a full pipe.
                    continue
                if not line:
                    break
                self._queue.put(line.rstrip("\r\n"))
        except (ValueError, OSError):
            pass  # the stream closed under us (the process was killed)
        finally:
            # Every process writing to the stream has ended: the control files are spent.
            self.engine_pid()
            shutil.rmtree(self._control, ignore_errors=True)
            self._stream_closed.set()
            self._queue.put(None)

    @property
    def started(self) -> bool:
        return self._process is not None

    @property
    def running(self) -> bool:
        """True until the process has ended and all its output has been polled."""
        if self._process is None:
            return False
        return self._process.poll() is None or not self._output_done

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    @property
    def succeeded(self) -> bool:
        return not self.running and self.returncode == 0 and not self.cancelled

    # ------------------------------------------------------------------ output
    def poll(self) -> list[str]:
        """The output lines that arrived since the last call (never blocks); updates ``progress``."""
        new = []
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self._output_done = True
                continue
            if not line.strip():
                continue
            new.append(line)
            self.lines.append(line)
            if self.parse_progress is not None:
                progress = self.parse_progress(line)
                if progress is not None:
                    self.progress = progress
        return new

    def last_line(self) -> str:
        return self.lines[-1] if self.lines else ""

    def error_message(self) -> str:
        """One line saying why the job failed: cancelled, its last `lungus ...: error:` line, else
        its last line."""
        if self.cancelled:
            return "cancelled"
        for line in reversed(self.lines):
            if ": error: " in line:
                return line.strip()
        return self.last_line().strip() or f"the process ended with status {self.returncode}"

    def wait(self, timeout: float | None = None, on_lines: Callable[[list[str]], None] | None = None) -> int:
        """Block until the job ends (polling its output); returns its exit status.

        Raises TimeoutError after ``timeout`` seconds (the job keeps running; cancel it).
        """
        if self._process is None:
            raise RuntimeError("start the job first")
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running:
            lines = self.poll()
            if lines and on_lines is not None:
                on_lines(lines)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{' '.join(self.arguments[:4])} still running after {timeout} s")
            time.sleep(0.05)
        lines = self.poll()
        if lines and on_lines is not None:
            on_lines(lines)
        return self._process.returncode

    # ------------------------------------------------------------------ stopping
    def engine_pid(self) -> int | None:
        """The process id of the `lungus` job itself (behind a launcher such as PythonSlicer,
        not the process this object started), once the job has written it."""
        if self._engine_pid is None and self._control is not None:
            try:
                self._engine_pid = int((self._control / PID_FILE).read_text(encoding="utf-8").strip())
            except (OSError, ValueError):
                return None
        return self._engine_pid

    def _alive(self) -> bool:
        """Whether the started process, or the job behind it, still runs."""
        if self._process is None:
            return False
        if self._process.poll() is None:
            return True
        # PythonSlicer waits for its child, but a launcher that was killed leaves the job running;
        # once nothing writes to the output the job has ended (its number may be someone else's).
        pid = self.engine_pid()
        return pid is not None and not self._stream_closed.is_set() and process_alive(pid)

    def cancel(self, grace_s: float = 10.0, *, wait: bool = True) -> None:
        """Stop the job and everything it started.

        First the stop file: the job stops as on Ctrl+C (`lungus` writes what it has done and
        exits with 130). If it has not ended after ``grace_s`` seconds, its process tree is
        terminated (the launcher, the job and its process group), and after another ``grace_s``
        killed. With ``wait`` this returns when everything has ended; without, at once, while a
        thread sees it through (poll ``running`` to learn when the job has ended).
        """
        if not self._alive():
            return
        self.cancelled = True
        try:
            (self._control / STOP_FILE).touch()
        except OSError:
            pass  # the job has ended and its control folder is gone
        if wait:
            self._see_stop_through(grace_s)
        else:
            threading.Thread(target=self._see_stop_through, args=(grace_s,), name="lungus-job-cancel",
                             daemon=True).start()

    def _see_stop_through(self, grace_s: float) -> None:
        for signal_number in (signal.SIGTERM, getattr(signal, "SIGKILL", signal.SIGTERM)):
            if self._ended_within(grace_s):
                return
            signal_tree(self._process, self.engine_pid(), signal_number)
        self._ended_within(grace_s)

    def _ended_within(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while self._alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children, theirs, ...), from /proc or `ps` (POSIX);
    [] where neither is at hand."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for child, parent in _parent_ids():
        children[parent].append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def _parent_ids() -> list[tuple[int, int]]:
    """(pid, parent pid) of every process."""
    proc = Path("/proc")
    if (proc / "self" / "stat").is_file():
        pairs = []
        for entry in proc.iterdir():
            if entry.name.isdigit():
                try:
                    # "pid (name) state ppid ...": the name may hold spaces and parentheses.
                    pairs.append((int(entry.name), int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])))
                except (OSError, IndexError, ValueError):
                    continue
        return pairs
    try:
        listing = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True).stdout
    except OSError:
        return []
    return [(int(a), int(b)) for a, b in (line.split() for line in listing.splitlines() if line.strip())]


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and has not ended (a zombie waiting to be reaped has)."""
    if os.name == "nt":
        return False  # os.kill(pid, 0) would end it; the launcher's end stands for the job's there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # /proc/PID/stat: "pid (name) STATE ..."; the name may hold spaces and parentheses.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS)
    return state not in ("Z", "X")


def signal_tree(process: Any, engine_pid: int | None, signal_number: int) -> None:
    """Send ``signal_number`` to the job's process group (the job and its workers), to every
    descendant of the started process, and to the started process itself (the launcher, or the
    job when there is none). On Windows, ``taskkill /F /T`` ends each with all it started."""
    if os.name == "nt":
        for pid in (engine_pid, process.pid):
            if pid is not None:
                subprocess.run(["taskkill", "/F", "/T", "/PID", str(pid)], capture_output=True)
        return
    # Found before any is signalled: a launcher that ends first leaves its children to init.
    for pid in descendants(process.pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal_number)
    if engine_pid is not None:
        try:
            if os.getpgid(engine_pid) == engine_pid:  # it leads its group: its workers go with it
                os.killpg(engine_pid, signal_number)
            else:
                os.kill(engine_pid, signal_number)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        process.send_signal(signal_number)
    except OSError:
        pass  # already gone
