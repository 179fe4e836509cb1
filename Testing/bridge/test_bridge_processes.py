"""LungUSBLinesLib.processes: engine jobs as subprocesses, read without blocking, cancellable.

Real child processes of the running Python (the same Python inside Slicer is PythonSlicer).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from LungUSBLinesLib.processes import (
    EngineProcess,
    JobProgress,
    default_python,
    engine_command,
    engine_environment,
    engine_root,
    popen_launcher,
    process_alive,
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
        job.cancel(grace_s=1)  # a child that knows no stop file: terminated after the grace period


SILENT_LAUNCHER = Path(__file__).with_name("silent_launcher.py")
# A job that stops as `lungus` does: on a stop request it says so and exits with 130. 'working' is
# printed inside the try, so a stop requested once it is seen always lands there.
STOPPABLE = """import sys, time
from lungus.job_control import listening
with listening():
    try:
        print('working', flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        print('interrupted', flush=True)
        raise SystemExit(130)
"""
# A job that answers no request (a hung engine): it ignores SIGINT and SIGTERM and has a worker.
STUCK = """import contextlib, signal, subprocess, sys, time
from lungus.job_control import listening
with listening() if sys.argv[1] == 'engine' else contextlib.nullcontext():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    worker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', *sys.argv[2:]])
    print('working', worker.pid, flush=True)
    while True:
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            pass
"""


def silent_launch(arguments, environment, cwd):
    """Start ``arguments`` behind a launcher that forwards no signal (as PythonSlicer does), with
    SIGINT and SIGTERM ignored from the start (as a background shell leaves SIGINT)."""
    return popen_launcher([sys.executable, str(SILENT_LAUNCHER), *arguments], environment, cwd)


def started_and_working(job):
    deadline = time.monotonic() + 60
    while not any(line.startswith("working") for line in job.lines) and time.monotonic() < deadline:
        job.poll()
        time.sleep(0.05)
    assert job.running, list(job.lines)
    return job


def processes_mentioning(text):
    """Ids of the processes whose command line holds ``text`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and process_alive(int(entry.name)):
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("launch", [popen_launcher, silent_launch], ids=["direct", "behind-a-silent-launcher"])
def test_cancel_interrupts_the_job_and_says_so(launch):
    # However the suite was started: behind the silent launcher the job inherits SIGINT ignored
    # and gets no signal at all; the stop file reaches it.
    job = started_and_working(EngineProcess([sys.executable, "-c", STOPPABLE], launch=launch).start())
    started = time.monotonic()
    job.cancel(grace_s=20)
    job.wait(timeout=10)
    assert time.monotonic() - started < 20  # it stopped when asked, not when terminated
    assert job.cancelled and not job.succeeded and job.returncode == 130
    assert job.error_message() == "cancelled"
    assert "interrupted" in job.lines  # it could write what it had done


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads the process table in /proc")
@pytest.mark.parametrize("kind", ["engine", "other"])  # other: a program that writes no PID file
def test_cancel_ends_a_job_that_answers_nothing_with_all_it_started(tmp_path, kind):
    marker = str(tmp_path / "stuck-job")
    job = EngineProcess([sys.executable, "-c", STUCK, kind, marker], launch=silent_launch).start()
    worker = int(next(line for line in started_and_working(job).lines if line.startswith("working")).split()[1])
    assert len(processes_mentioning(marker)) == 3 and worker in processes_mentioning(marker)
    assert (job.engine_pid() is not None) == (kind == "engine")
    started = time.monotonic()
    job.cancel(grace_s=1)
    assert time.monotonic() - started < 10
    assert not job.running or job.wait(timeout=10) is not None
    assert job.cancelled and processes_mentioning(marker) == []


@pytest.mark.skipif(os.name == "nt", reason="a launcher killed on Windows takes no SIGKILL")
def test_a_job_whose_launcher_is_killed_stops_itself(tmp_path):
    job = started_and_working(EngineProcess([sys.executable, "-c", STOPPABLE], launch=silent_launch).start())
    engine = job.engine_pid()
    os.kill(job._process.pid, signal.SIGKILL)  # e.g. Slicer's session ended it; the job is orphaned
    job.wait(timeout=20)
    assert "interrupted" in job.lines and not process_alive(engine)


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads the process table in /proc")
def test_cancel_stops_lungus_train_behind_a_silent_launcher_and_keeps_its_epochs(tiny_collection, tmp_path):
    from LungUSTrainLib.training import TrainRequest, start_training

    run = tmp_path / "run"
    request = TrainRequest(manifest=str(tiny_collection), out=str(run), epochs=500, size=32, frames=4,
                           batch_size=4, threads=1, device="cpu", model_args={"width": 4})
    job = start_training(request, python=sys.executable, launch=silent_launch)
    deadline = time.monotonic() + 240
    while not (run / "metrics.csv").is_file() and time.monotonic() < deadline:
        job.poll()
        time.sleep(0.1)
    assert job.running, list(job.lines)
    started = time.monotonic()
    job.cancel(grace_s=60)
    job.wait(timeout=10)
    assert time.monotonic() - started < 60  # it stopped when asked, not when terminated
    assert job.returncode == 130 and job.error_message() == "cancelled"
    assert "lungus train: interrupted" in job.lines
    assert (run / "checkpoint.pt").is_file() and len((run / "metrics.csv").read_text().splitlines()) >= 2
    assert processes_mentioning(str(run)) == []


# Slicer in miniature: it starts a job behind the silent launcher, says where, and waits.
HOST = """import sys, time
sys.path.insert(0, sys.argv[1])
from LungUSBLinesLib.processes import EngineProcess, popen_launcher
def launch(arguments, environment, cwd):
    return popen_launcher([sys.executable, sys.argv[2], *arguments], environment, cwd)
job = EngineProcess([sys.executable, '-c', sys.argv[3]], launch=launch).start()
while job.engine_pid() is None:
    time.sleep(0.05)
print(job.engine_pid(), job._process.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(os.name == "nt", reason="a process killed on Windows takes no SIGKILL")
def test_a_job_stops_itself_when_the_program_that_started_it_dies():
    host = subprocess.Popen([sys.executable, "-c", HOST, str(engine_root()), str(SILENT_LAUNCHER), STOPPABLE],
                            stdout=subprocess.PIPE, text=True)
    engine, launcher = map(int, host.stdout.readline().split())
    host.kill()  # Slicer crashed: no cleanup() ran, nobody cancelled
    host.wait()
    deadline = time.monotonic() + 20
    while (process_alive(engine) or process_alive(launcher)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process_alive(engine) and not process_alive(launcher)


def test_cancel_without_waiting_returns_at_once_and_the_job_still_ends():
    job = started_and_working(EngineProcess([sys.executable, "-c", STOPPABLE], launch=silent_launch).start())
    started = time.monotonic()
    job.cancel(grace_s=20, wait=False)
    assert time.monotonic() - started < 1.0
    assert job.wait(timeout=20) == 130 and job.cancelled and "interrupted" in job.lines


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
