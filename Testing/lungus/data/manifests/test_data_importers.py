"""COVID-BLUES importer: a fake dataset folder (real CSV + tiny real videos) -> a valid manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lungus.data.manifests.importers import import_covid_blues, main
from lungus.data.manifests.label_sources import labels_of
from lungus.data.manifests.manifest import Manifest
from lungus.data.manifests.validation import validate_manifest
from lungus.errors import LungUSError

REAL_FOLDER = Path(__file__).resolve().parents[4].parent / "shared" / "data" / "covid-blues-dev"
HEADER = "video_file,Severity Score,A-lines,B-lines,comments\n"


@pytest.fixture
def fake_blues(tmp_path, write_test_video):
    """fake_blues(rows, videos=None) -> dataset folder; videos default to every row's name."""

    def make(rows: list[str], videos: list[str] | None = None) -> Path:
        folder = tmp_path / "covid-blues"
        (folder / "lus_videos").mkdir(parents=True)
        (folder / "severity.csv").write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
        frames = np.full((3, 16, 16), 90, np.uint8)
        for name in videos if videos is not None else [r.split(",")[0] for r in rows]:
            write_test_video(folder / "lus_videos" / f"{name}.mp4", frames)
        return folder

    return make


ROWS = [
    'patient_2_R1,0.0,no, yes ,"intact pleura, 2 B-lines"',
    "patient_2_L2_2,2.0,yes,no ,",
    "patient_13_R3,3.0,no,yes,white lung",
]


def test_manifest_rows_hold_patient_zone_and_labels(fake_blues, tmp_path):
    result = import_covid_blues(fake_blues(ROWS), tmp_path / "manifests" / "blues.csv")
    manifest = Manifest.load(result.manifest)
    assert (result.n_clips, result.n_patients) == (3, 2)
    assert manifest.patients == ["patient_2", "patient_2", "patient_13"]
    assert manifest.column("zone") == ["R1", "L2", "R3"]
    assert manifest.column("bline2") == ["present", "absent", "present"]  # stray spaces tolerated
    assert manifest.column("lus4") == ["0", "2", "3"]
    assert "comments" not in manifest.columns


def test_clip_paths_are_relative_to_the_manifest_folder(fake_blues, tmp_path):
    folder = fake_blues(ROWS)
    result = import_covid_blues(folder, tmp_path / "elsewhere" / "deep" / "blues.csv")
    manifest = Manifest.load(result.manifest)
    assert all(clip.startswith("../../covid-blues/lus_videos/") for clip in manifest.clips)
    assert manifest.clip_path(0) == (folder / "lus_videos" / "patient_2_R1.mp4").resolve()


def test_the_manifest_validates_and_gives_labels(fake_blues, tmp_path):
    manifest = Manifest.load(import_covid_blues(fake_blues(ROWS), tmp_path / "blues.csv").manifest)
    assert [issue for issue in validate_manifest(manifest) if issue.severity == "error"] == []
    assert labels_of(manifest, "bline2", "bline2").hard.tolist() == [1, 0, 1]
    assert labels_of(manifest, "lus4", "lus4").hard.tolist() == [0, 2, 3]


def test_rows_without_a_video_are_left_out_and_listed(fake_blues, tmp_path):
    folder = fake_blues(ROWS, videos=["patient_2_R1", "patient_13_R3"])
    result = import_covid_blues(folder, tmp_path / "blues.csv")
    assert result.n_clips == 2
    assert result.missing == ["patient_2_L2_2"]


def test_a_bad_label_names_the_line(fake_blues, tmp_path):
    folder = fake_blues(["patient_2_R1,0.0,no,yes,", "patient_2_R2,0.0,no,maybe,"])
    with pytest.raises(LungUSError, match=r"severity\.csv: line 3: .*maybe"):
        import_covid_blues(folder, tmp_path / "blues.csv")


def test_a_folder_without_videos_is_refused(tmp_path):
    (tmp_path / "not-blues").mkdir()
    with pytest.raises(LungUSError, match="lus_videos"):
        import_covid_blues(tmp_path / "not-blues", tmp_path / "blues.csv")


def test_command_line_writes_the_manifest(fake_blues, tmp_path, capsys):
    out = tmp_path / "cli" / "blues.csv"
    assert main(["covid-blues", str(fake_blues(ROWS)), str(out)]) == 0
    assert out.is_file() and "3 clips, 2 patients" in capsys.readouterr().out


def test_command_line_error_is_one_line_and_status_2(tmp_path, capsys):
    assert main(["covid-blues", str(tmp_path / "absent"), str(tmp_path / "m.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_FOLDER.is_dir(), reason="covid-blues-dev is not beside the checkout")
def test_real_development_set(tmp_path):
    result = import_covid_blues(REAL_FOLDER, tmp_path / "covid_blues.csv")
    manifest = Manifest.load(result.manifest)
    bline2 = labels_of(manifest, "bline2", "bline2").hard
    lus4 = labels_of(manifest, "lus4", "lus4").hard
    assert (result.n_clips, result.n_patients, result.missing) == (177, 31, [])
    assert (int((bline2 == 1).sum()), int((bline2 == 0).sum())) == (119, 58)
    assert np.bincount(lus4).tolist() == [53, 47, 47, 30]
