"""The engine's own exceptions: LungUSError for bad input, Cancelled for work stopped on request."""

from __future__ import annotations

import os
import sys


class LungUSError(Exception):
    """A problem with user input: names the file (when there is one) and the cause.

    The CLI prints ``str(error)`` as a single line and exits with status 2, so the
    message must stand on its own and say what to do where that is not obvious.
    """

    def __init__(self, problem: str, path: str | os.PathLike | None = None) -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(
            self.problem if self.path is None else f"{printable_path(self.path)}: {self.problem}"
        )


class Cancelled(Exception):
    """Work stopped because its cancel flag was set (an analysis, a batch), not because it failed.

    Not a LungUSError: nothing is wrong with the input, and a caller that asked to stop
    recognises this by its type (``except Cancelled``), in the engine and in Slicer alike.
    """


def printable_path(path: str | bytes | os.PathLike) -> str:
    """``path`` as one printable line: as it is when it can be, else quoted with escapes.

    A file name may hold a newline (which would split the one-line message) or bytes that
    are not UTF-8 (kept by Python as lone surrogates, which a UTF-8 terminal cannot print);
    ``repr`` escapes both, so the message stays one line and prints anywhere.
    """
    text = os.fsdecode(path)
    return text if text.isprintable() else repr(text)


def warn(problem: str, path: str | os.PathLike | None = None) -> None:
    """One ``warning: FILE: PROBLEM`` line on stderr, for input that is read but not whole."""
    text = " ".join(str(problem).split())
    print(f"warning: {text}" if path is None else f"warning: {printable_path(path)}: {text}", file=sys.stderr)


def error_detail(error: BaseException, limit: int = 200) -> str:
    """A library's exception text for the end of a LungUSError: one line, at most ``limit`` characters."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def os_problem(error: OSError, what: str = "read it") -> str:
    """``cannot read it (Permission denied)``: an OSError as the problem part of a LungUSError."""
    return f"cannot {what} ({error.strerror or type(error).__name__})"
