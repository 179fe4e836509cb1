"""LungUSBLinesLib.processes: engine jobs as subprocesses, read without blocking, cancellable.

Real child processes of the running Python (the same Python inside Slicer is PythonSlicer).
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from LungUSBLinesLib.processes import (
    EngineProcess,
    JobProgress,
    default_python,
    engine_command,
    engine_environment,
    engine_root,
)

COUNTING = "import sys\nfor i in range(1, 4):\n    print(f'step {i}/3', flush=True)\nprint('oops', file=sys.stderr)\n"


def _step(line):
    if line.startswith("step "):
        done, total = line[5:].split("/")
        return JobProgress(int(done) / int(total), line)
    return None


def test_output_lines_and_progress_arrive_through_poll():
    job = EngineProcess([sys.executable, "-c", COUNTING], parse_progress=_step).start()
    seen = []
    assert job.wait(timeout=60, on_lines=seen.extend) == 0
    assert seen == ["step 1/3", "step 2/3", "step 3/3", "oops"]  # stderr comes merged
    assert job.progress == JobProgress(1.0, "step 3/3") and job.succeeded and not job.running


def test_poll_never_blocks_while_the_job_is_silent():
    job = EngineProcess([sys.executable, "-c", "import time; time.sleep(30)"]).start()
    try:
        started = time.monotonic()
        assert job.poll() == [] and job.running
        assert time.monotonic() - started < 1.0
    finally:
        job.cancel(grace_s=5)


def test_cancel_interrupts_the_job_and_says_so():
    # 'working' is printed inside the try, so an interrupt sent once it is seen always lands there
    # (printed before it, a loaded machine could deliver the interrupt before the try began).
    code = "import time\ntry:\n    print('working', flush=True)\n    time.sleep(30)\nexcept KeyboardInterrupt:\n    print('interrupted', flush=True)\n    raise SystemExit(130)\n"
    job = EngineProcess([sys.executable, "-c", code]).start()
    deadline = time.monotonic() + 30
    while not job.lines and time.monotonic() < deadline:
        job.poll()
        time.sleep(0.05)
    job.cancel(grace_s=10)
    job.wait(timeout=10)
    assert job.cancelled and not job.succeeded and job.returncode != 0
    assert job.error_message() == "cancelled"
    if os.name != "nt":  # an interrupt first, so the job can write what it has done
        assert "interrupted" in job.lines and job.returncode == 130


def test_error_message_is_the_lungus_error_line():
    code = "import sys\nprint('loading')\nprint('lungus infer: error: /x.pt: no such file', file=sys.stderr)\nprint('bye')\nsys.exit(2)\n"
    job = EngineProcess([sys.executable, "-c", code]).start()
    assert job.wait(timeout=60) == 2
    assert job.error_message() == "lungus infer: error: /x.pt: no such file"


def test_the_child_imports_the_engine_this_extension_carries():
    job = EngineProcess(
        [sys.executable, "-c", "import lungus, pathlib; print(pathlib.Path(lungus.__file__).parent.parent)"],
        cwd=os.path.dirname(sys.executable),
    ).start()
    assert job.wait(timeout=60) == 0
    assert job.lines[-1] == str(engine_root())


def test_environment_makes_output_unbuffered_and_finds_the_engine():
    environment = engine_environment()
    assert environment["PYTHONUNBUFFERED"] == "1"
    assert environment["PYTHONPATH"].split(os.pathsep)[0] == str(engine_root())
    assert (engine_root() / "lungus" / "__init__.py").is_file()


def test_engine_command_runs_the_lungus_module():
    assert engine_command("/opt/python", "infer", ["a.mp4", 3]) == [
        "/opt/python",
        "-m",
        "lungus",
        "infer",
        "a.mp4",
        "3",
    ]
    assert engine_command(None, "train", [])[:3] == [default_python(), "-m", "lungus"]


def test_a_job_starts_once():
    job = EngineProcess([sys.executable, "-c", "pass"]).start()
    job.wait(timeout=60)
    with pytest.raises(RuntimeError, match="already started"):
        job.start()
