"""lungus.job_control: a job stops on request whatever started it, and says where it runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from lungus.job_control import PID_FILE_VARIABLE, STOP_FILE_VARIABLE

# SIGINT ignored before listening(): what a job started from a background shell inherits.
IGNORING = """import os, sys, time
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
from lungus.job_control import listening
with listening():
    try:
        print('working', os.environ.get('LUNGUS_STOP_FILE'), os.environ.get('LUNGUS_PID_FILE'), os.getpgrp(),
              flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        print('interrupted', flush=True)
        raise SystemExit(130)
"""


def _start(code, **environment):
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, **environment})


def test_an_inherited_ignore_does_not_stop_the_interrupt():
    job = _start(IGNORING)
    assert job.stdout.readline().startswith("working")
    job.send_signal(signal.SIGINT)
    assert job.wait(timeout=30) == 130 and job.stdout.read() == "interrupted\n"


def test_the_stop_file_interrupts_the_job(tmp_path):
    stop = tmp_path / "stop"
    job = _start(IGNORING, **{STOP_FILE_VARIABLE: str(stop)})
    assert job.stdout.readline().startswith("working")
    started = time.monotonic()
    stop.touch()
    assert job.wait(timeout=30) == 130 and job.stdout.read() == "interrupted\n"
    assert time.monotonic() - started < 5


@pytest.mark.skipif(os.name == "nt", reason="process groups are POSIX")
def test_the_job_writes_its_pid_leads_its_group_and_keeps_the_variables_to_itself(tmp_path):
    pid_file = tmp_path / "pid"
    job = _start(IGNORING, **{STOP_FILE_VARIABLE: str(tmp_path / "stop"), PID_FILE_VARIABLE: str(pid_file)})
    try:
        line = job.stdout.readline().split()
        assert line[1:3] == ["None", "None"]  # processes the job starts do not inherit them
        assert int(pid_file.read_text()) == job.pid == int(line[3])
    finally:
        job.kill()
        job.wait()


def test_lungus_stops_at_once_when_the_stop_file_is_there(tmp_path):
    stop = tmp_path / "stop"
    stop.touch()
    done = subprocess.run(
        [sys.executable, "-m", "lungus", "simulate", "--out", str(tmp_path / "sim"), "--clips", "400",
         "--patients", "100", "--quiet"],
        capture_output=True, text=True, timeout=120, env={**os.environ, STOP_FILE_VARIABLE: str(stop)},
    )
    assert done.returncode == 130 and done.stderr.strip().endswith("lungus simulate: interrupted")
