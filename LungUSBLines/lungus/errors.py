"""The one exception type the engine raises for bad input."""

from __future__ import annotations

import os


class LungUSError(Exception):
    """A problem with user input: names the file (when there is one) and the cause.

    The CLI prints ``str(error)`` as a single line and exits with status 2, so the
    message must stand on its own and say what to do where that is not obvious.
    """

    def __init__(self, problem: str, path: str | os.PathLike | None = None) -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(self.problem if self.path is None else f"{self.path}: {self.problem}")
