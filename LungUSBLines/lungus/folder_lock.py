"""One writer per output folder: an exclusive lock on a file inside it.

The lock is the operating system's (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on
Windows), so it ends with the process that holds it: a crashed run leaves no stale lock,
only the small lock file (which holds the last holder's process id, for the message).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from lungus.atomic import output_errors
from lungus.errors import LungUSError

#: Windows locks a byte range, which then cannot be read: lock one far past the process id.
_WINDOWS_LOCK_OFFSET = 1 << 20


def _try_lock(descriptor: int) -> bool:
    if os.name == "nt":
        import msvcrt

        os.lseek(descriptor, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(descriptor: int) -> str:
    os.lseek(descriptor, 0, os.SEEK_SET)
    text = os.read(descriptor, 32).decode("ascii", "replace").strip()
    return text if text.isdigit() else "unknown"


@contextlib.contextmanager
def exclusive_folder(folder: str | os.PathLike, program: str, name: str) -> Iterator[Path]:
    """Hold ``folder``/``name`` locked while the block runs; if another process holds it, a
    LungUSError at once ("DIR is in use by another PROGRAM (pid N); ...")."""
    folder = Path(folder)
    path = folder / name
    with output_errors(path):
        folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
    try:
        if not _try_lock(descriptor):
            raise LungUSError(
                f"{folder} is in use by another {program} (pid {_holder(descriptor)}); "
                "wait for it or choose another --out"
            )
        with output_errors(path):
            os.ftruncate(descriptor, 0)
            os.lseek(descriptor, 0, os.SEEK_SET)
            os.write(descriptor, f"{os.getpid()}\n".encode("ascii"))
        yield path
    finally:
        os.close(descriptor)  # closing releases the lock
