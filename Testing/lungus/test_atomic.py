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
