"""A time limit on each model call, for models whose forward may never return.

A TorchScript or ONNX file carries its own program: a loop on a tensor condition can run
forever, and neither Python signals nor anything else can stop a torch op from inside the
process. So each call runs in a daemon worker thread while the caller waits up to the limit;
past it the caller gets a LungUSError naming the model file (a batch records it for the clip
and goes on). The limits, said plainly:

- a torch call that overruns keeps running (and keeps a CPU core busy) until the process ends:
  it cannot be killed in-thread (an ONNX Runtime one is stopped: ``on_timeout`` sets its
  RunOptions.terminate). So after one timeout the model is treated as hung and every later call
  fails at once instead of piling up more stuck threads;
- a process with a stuck call must leave with ``os._exit`` (``exit_process``): C++ static
  destructors run by a normal exit abort while a torch op still runs in another thread.
  ``lungus`` (the CLI) does this; an application that embeds the engine (Slicer's module)
  keeps the stuck thread until it quits. Running models in a child process would make them
  killable, at the price of a second copy of every model and of each batch crossing a pipe.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

from lungus.errors import LungUSError

#: Default seconds one model call (a batch of windows or frames) may take: two orders of magnitude
#: above the slowest model here on a laptop CPU (an R(2+1)D-18 batch takes seconds).
DEFAULT_MODEL_CALL_TIMEOUT_S = 600.0
WORKER_NAME = "lungus-model-call"

Result = TypeVar("Result")


@dataclass
class ModelCallLimit:
    """Runs one model's calls, each under ``seconds`` (None: no limit, in the caller's thread)."""

    path: Path
    seconds: float | None = DEFAULT_MODEL_CALL_TIMEOUT_S
    on_timeout: Callable[[], None] | None = None  # asks the runtime to stop the call, where it can
    hung: bool = False

    def __post_init__(self) -> None:
        if self.seconds is not None and not self.seconds > 0:
            raise LungUSError(f"the model call time limit must be more than 0 seconds, got {self.seconds}")

    def __call__(self, call: Callable[[], Result]) -> Result:
        """``call()``'s result or exception, or a LungUSError if it takes longer than the limit.
        ``call`` runs in another thread: it must set its own grad mode (torch.no_grad is per thread)."""
        if self.hung:
            raise LungUSError(
                f"an earlier call of this model did not return within {self.seconds:g} s and is still running; "
                "the model is not used again in this run",
                self.path,
            )
        if self.seconds is None:
            return call()
        outcome: dict[str, object] = {}

        def run() -> None:
            try:
                outcome["result"] = call()
            except BaseException as error:  # handed to the waiting caller
                outcome["error"] = error

        worker = threading.Thread(target=run, name=WORKER_NAME, daemon=True)
        worker.start()
        worker.join(self.seconds)
        if worker.is_alive():
            self.hung = True
            if self.on_timeout is not None:
                self.on_timeout()
            raise LungUSError(
                f"the model did not return within {self.seconds:g} s (the model call time limit); "
                "its forward may never end",
                self.path,
            )
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome["result"]  # type: ignore[return-value]


def model_calls_running() -> bool:
    """Whether a model call that outlived its time limit is still running in this process."""
    return any(thread.name == WORKER_NAME and thread.is_alive() for thread in threading.enumerate())


def exit_process(code: int) -> NoReturn:
    """``sys.exit(code)``, or ``os._exit(code)`` after flushing output while a stuck model call
    runs (a normal exit would abort in torch's C++ teardown, status 134 instead of ``code``)."""
    if model_calls_running():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)
