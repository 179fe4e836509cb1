import errno
import os
import subprocess
import sys

import pytest

from lungus.atomic import atomic_path, atomic_write_text


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "result.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.csv"]


def test_successful_write_replaces_and_keeps_suffix(tmp_path):
    target = tmp_path / "sub" / "clip.seq.nrrd"
    with atomic_path(target) as temporary:
        assert temporary.name.endswith(".seq.nrrd")
        temporary.write_text("new")
    assert target.read_text() == "new"
    atomic_write_text(target, "newer")
    assert target.read_text() == "newer"


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    target = atomic_write_text(tmp_path / "out.csv", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


# ---- writes the file system refuses ----------------------------------------------------------------

#: Python in a process whose files may not grow past argv[1] bytes (RLIMIT_FSIZE): a write past it
#: fails with EFBIG, as on a full disk, with no mount or root needed. argv[2] is the code to run.
FILE_SIZE_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills the process at the limit
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
from lungus.errors import LungUSError
try:
    exec(sys.argv[2])
except LungUSError as error:
    print(type(error).__name__, error)
"""


def run_with_file_size_limit(limit, code, folder):
    done = subprocess.run(
        [sys.executable, "-c", FILE_SIZE_LIMITED, str(limit), code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    return done.stdout.strip()


posix_only = pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")


@posix_only
def test_a_refused_write_is_one_error_naming_the_target_and_leaves_the_old_file(tmp_path):
    (tmp_path / "result.bin").write_bytes(b"old")
    code = "from lungus.atomic import atomic_write_bytes; atomic_write_bytes('result.bin', bytes(5000))"
    printed = run_with_file_size_limit(1000, code, tmp_path)
    assert printed == (
        "OutputWriteError no space left on the device (file size limit reached) writing result.bin: "
        "free space and try again"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["result.bin"]
    assert (tmp_path / "result.bin").read_bytes() == b"old"


@posix_only
def test_a_refused_append_is_cut_back_so_the_file_ends_in_a_whole_line(tmp_path):
    code = (
        "from lungus.atomic import append_whole\n"
        "for n in range(100):\n"
        "    append_whole('journal.jsonl', (str(n) * 30 + '\\n').encode())\n"
    )
    printed = run_with_file_size_limit(100, code, tmp_path)
    assert printed.startswith("OutputWriteError no space left on the device") and "journal.jsonl" in printed
    assert (
        tmp_path / "journal.jsonl"
    ).read_bytes() == b"0" * 30 + b"\n" + b"1" * 30 + b"\n" + b"2" * 30 + b"\n"


def test_a_torn_last_line_is_cut_and_whole_lines_are_kept(tmp_path):
    from lungus.atomic import cut_torn_tail

    journal = tmp_path / "clips.jsonl"
    journal.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c"')
    cut_torn_tail(journal)
    assert journal.read_bytes() == b'{"a": 1}\n{"b": 2}\n'
    cut_torn_tail(journal)
    assert journal.read_bytes() == b'{"a": 1}\n{"b": 2}\n'
    journal.write_bytes(b"x" * 200_000)  # no newline at all: nothing whole to keep
    cut_torn_tail(journal)
    assert journal.read_bytes() == b""


@pytest.mark.parametrize(
    "number, reason",
    [
        (errno.ENOSPC, "no space left on the device"),
        (errno.EROFS, "read-only file system"),
        (errno.EACCES, "permission denied"),
    ],
)
def test_refusals_name_the_target_whatever_temporary_file_failed(tmp_path, number, reason):
    from lungus.atomic import OutputWriteError, write_failure

    target = tmp_path / "out" / "clips.csv"
    beside = OSError(number, os.strerror(number), str(tmp_path / "out" / ".clips.abc.csv"))
    failure = write_failure(beside, target)
    assert isinstance(failure, OutputWriteError)
    assert str(failure).startswith(f"{reason} writing {target}: ")
    # An input elsewhere that cannot be read is not the output's problem.
    assert (
        write_failure(OSError(number, os.strerror(number), str(tmp_path / "in" / "clip.mp4")), target) is None
    )
