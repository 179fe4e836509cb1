"""How the program that started a `lungus` job stops it, whatever sits between the two.

A person stops a job with Ctrl+C: the commands catch KeyboardInterrupt, keep what they have
done (training: the checkpoint and metrics.csv of the last finished epoch; infer: clips.csv of
the clips scored) and exit with status 130. A program cannot count on delivering that
interrupt: Slicer starts jobs through PythonSlicer, a launcher that forwards no signal to the
Python it starts, and a process started from a background shell inherits SIGINT as ignored.
So, while :func:`listening` is active:

- SIGINT has Python's own handler again, whatever disposition was inherited;
- when the file named by ``LUNGUS_STOP_FILE`` appears, the main thread is interrupted once,
  exactly as Ctrl+C would; so it is, on POSIX, when the job's parent (the launcher) has gone or
  the process named by ``LUNGUS_OWNER_PID`` (Slicer, which reads the job's output) has ended;
- the job writes its process id to the file named by ``LUNGUS_PID_FILE`` and, on POSIX, leads
  a process group of its own (its DataLoader workers join it), so a starter whose request went
  unanswered can end the job and everything it started.

The starter's side is LungUSBLinesLib.processes.EngineProcess. These variables are removed from
the environment, so processes the job starts do not take them for their own.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path

from lungus.atomic import atomic_write_text

STOP_FILE_VARIABLE = "LUNGUS_STOP_FILE"
PID_FILE_VARIABLE = "LUNGUS_PID_FILE"
OWNER_PID_VARIABLE = "LUNGUS_OWNER_PID"
#: How often the stop file is looked for (seconds): a stop arrives within this.
CHECK_INTERVAL_S = 0.2


@contextlib.contextmanager
def listening(environment: MutableMapping[str, str] | None = None) -> Iterator[None]:
    """Within this block a stop request (Ctrl+C, SIGINT or the stop file) raises
    KeyboardInterrupt in the main thread. Call it from the main thread."""
    environment = os.environ if environment is None else environment
    stop_file = environment.pop(STOP_FILE_VARIABLE, None)
    pid_file = environment.pop(PID_FILE_VARIABLE, None)
    owner = environment.pop(OWNER_PID_VARIABLE, None)
    if threading.current_thread() is threading.main_thread():
        # Python leaves an inherited SIG_IGN in place; a job that ignores Ctrl+C cannot be stopped cleanly.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if pid_file:
        _lead_own_process_group()
        atomic_write_text(pid_file, f"{os.getpid()}\n")
    watcher = None
    if stop_file:
        watcher = StopFileWatcher(Path(stop_file), owner=int(owner) if owner and owner.isdigit() else None).start()
    try:
        yield
    finally:
        if watcher is not None:
            watcher.stop()


def _lead_own_process_group() -> None:
    if os.name == "nt" or os.getpgrp() == os.getpid():
        return
    with contextlib.suppress(OSError):  # a session leader cannot move; it already leads its group
        os.setpgid(0, 0)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def interrupt_main_thread() -> None:
    """Raise KeyboardInterrupt in the main thread as Ctrl+C does, also out of a sleep or a wait."""
    if os.name == "nt":
        _thread.interrupt_main()
    else:
        # A real signal aimed at the main thread ends the system call it is blocked in;
        # _thread.interrupt_main would only be noticed once that call returns.
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


class StopFileWatcher:
    """A daemon thread that interrupts the main thread once, when ``stop_file`` appears or, on
    POSIX, the parent process or the ``owner`` process has ended (the job was orphaned: whoever
    would read its output and stop it is gone)."""

    def __init__(self, stop_file: Path, interval_s: float = CHECK_INTERVAL_S, owner: int | None = None) -> None:
        self.stop_file = stop_file
        self.interval_s = interval_s
        self.owner = owner
        self.fired = False
        self._parent = os.getppid()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="lungus-stop-file", daemon=True)

    def start(self) -> StopFileWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching; after this returns, the watcher interrupts nothing."""
        with self._lock:
            self._stopped.set()

    def requested(self) -> bool:
        if self.stop_file.exists():
            return True
        if os.name == "nt":  # os.kill(pid, 0) would end the owner there; the stop file must do
            return False
        return os.getppid() != self._parent or (self.owner is not None and not _exists(self.owner))

    def _watch(self) -> None:
        while not self._stopped.is_set():
            if self.requested():
                with self._lock:
                    if not self._stopped.is_set():
                        self.fired = True
                        interrupt_main_thread()
                return
            self._stopped.wait(self.interval_s)
