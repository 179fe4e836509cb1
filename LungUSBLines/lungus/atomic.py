"""Atomic file output: write beside the target, then rename, so nothing is ever half-written.

A write the file system refuses (full disk, quota, file-size limit, read-only, no permission)
becomes one :class:`OutputWriteError` naming the file, never a traceback; the temporary file
is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lungus.errors import LungUSError

#: errno -> (what went wrong, what to do). A file-size limit (EFBIG) is a full disk to the writer.
_WRITE_FAILURES = {
    errno.ENOSPC: ("no space left on the device", "free space"),
    errno.EFBIG: ("no space left on the device (file size limit reached)", "free space"),
    errno.EROFS: ("read-only file system", "choose a writable folder"),
    errno.EACCES: ("permission denied", "make the folder writable or choose another"),
    errno.EPERM: ("permission denied", "make the folder writable or choose another"),
}
if hasattr(errno, "EDQUOT"):  # not on Windows
    _WRITE_FAILURES[errno.EDQUOT] = ("disk quota exceeded", "free space")
#: Bytes appended (and cut off again) to learn whether a folder still takes data.
_PROBE_BYTES = 64 * 1024


class OutputWriteError(LungUSError):
    """An output the file system would not take. Unlike a bad input it stops a batch: every
    following write would fail the same way."""

    def __init__(self, reason: str, target: str | os.PathLike, remedy: str, next_step: str = "try again"):
        self.reason, self.target, self.remedy = reason, os.fspath(target), remedy
        super().__init__(f"{reason} writing {self.target}: {remedy} and {next_step}")

    def advising(self, next_step: str) -> OutputWriteError:
        """The same failure, ending with ``next_step`` (e.g. "run again with --resume")."""
        return OutputWriteError(self.reason, self.target, self.remedy, next_step)


def write_failure(
    error: OSError, target: str | os.PathLike, *own: str | os.PathLike
) -> OutputWriteError | None:
    """``error`` as an OutputWriteError about ``target`` when it is the file system refusing a
    write there: its errno is one of _WRITE_FAILURES and it names no file, ``target``, one of
    ``own``, a file beside ``target`` (a temporary one) or a folder above it. None otherwise
    (e.g. an unreadable input opened while writing)."""
    known = _WRITE_FAILURES.get(error.errno)
    if known is None:
        return None
    if error.filename is not None and not isinstance(error.filename, int):
        named = Path(os.fsdecode(error.filename))
        place = Path(target)
        if (
            named not in {Path(path) for path in own} | {place} | set(place.parents)
            and named.parent != place.parent
        ):
            return None
    return OutputWriteError(known[0], target, known[1])


@contextlib.contextmanager
def output_errors(target: str | os.PathLike, *own: str | os.PathLike) -> Iterator[None]:
    """Turn the file system refusing a write to ``target`` (or to ``own`` files) into an OutputWriteError."""
    try:
        yield
    except OSError as error:
        failure = write_failure(error, target, *own)
        if failure is None:
            raise
        raise failure from error


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``path``.

    The temporary name keeps the target's suffix (writers such as cv2 and pynrrd choose
    the format from it). On an exception the temporary file is removed and the target
    is left as it was. The file is synced to the disk before the rename, so a late "disk
    full" (reported only when data reaches the disk) is caught and a crash cannot leave
    an empty file under the target's name.
    """
    target = Path(path)
    if suffix is None:
        suffix = "".join(target.suffixes) or ".tmp"
    temporary: Path | None = None
    with output_errors(target):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=suffix, dir=target.parent)
            os.close(handle)
            temporary = Path(name)
            with output_errors(target, temporary):
                yield temporary
                if temporary.is_file():
                    _sync(temporary)
                    # mkstemp makes owner-only files; results should get the usual permissions.
                    os.chmod(temporary, 0o666 & ~_current_umask())
                os.replace(temporary, target)
        finally:
            if temporary is not None and temporary.exists():
                temporary.unlink()


def _sync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def append_whole(path: str | os.PathLike, data: bytes) -> None:
    """Append ``data`` to ``path`` (created if missing) all or nothing: synced to the disk,
    and on a failed or interrupted write the file is cut back to its old length, so a
    line-per-record journal never ends in half a line."""
    target = Path(path)
    with output_errors(target):
        with open(target, "ab", buffering=0) as handle:
            start = handle.seek(0, os.SEEK_END)
            try:
                view = memoryview(data)
                while view:
                    view = view[handle.write(view) :]
                os.fsync(handle.fileno())
            except BaseException:
                os.ftruncate(handle.fileno(), start)
                raise


def cut_torn_tail(path: str | os.PathLike) -> None:
    """Remove a last line without its newline (a run killed mid-append, by older versions)."""
    target = Path(path)
    if not target.is_file():
        return
    with output_errors(target), open(target, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        position = size
        while position > 0:  # back to the last newline, a block at a time
            step = min(position, 1 << 16)
            handle.seek(position - step)
            newline = handle.read(step).rfind(b"\n")
            if newline >= 0:
                handle.truncate(position - step + newline + 1)
                return
            position -= step
        handle.truncate(0)


def require_room(temporary: str | os.PathLike, target: str | os.PathLike) -> None:
    """For writers that drop write errors silently (OpenCV's video writer): append a little to
    ``temporary`` and cut it off again; OutputWriteError about ``target`` if the folder takes no more."""
    with output_errors(target, temporary), open(temporary, "ab", buffering=0) as handle:
        start = handle.seek(0, os.SEEK_END)
        try:
            handle.write(bytes(_PROBE_BYTES))
            os.fsync(handle.fileno())
        finally:
            os.ftruncate(handle.fileno(), start)
