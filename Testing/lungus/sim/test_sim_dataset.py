"""write_dataset: the files of a simulated collection, and that they read back."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from lungus.data.labels.blines import masks_truth
from lungus.data.manifests.manifest import Manifest
from lungus.data.manifests.validation import validate_manifest
from lungus.errors import LungUSError
from lungus.io import read_clip
from lungus.sim.dataset import read_masks, write_dataset
from lungus.sim.generator import SimulationConfig

CONFIG = SimulationConfig(n_frames=4, height=64, width=64)
N_CLIPS, N_PATIENTS = 6, 2


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("simset")
    summary = write_dataset(
        folder, N_CLIPS, N_PATIENTS, seed=3, config=CONFIG, clip_format="seq.nrrd", preview=True
    )
    return summary


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_manifest_has_the_contract_columns(dataset):
    header = list(_rows(dataset.manifest)[0])
    for column in (
        "clip", "patient", "zone", "mask", "truth_bline2", "truth_bline3", "truth_lus4",
        "crowd_none", "crowd_discrete", "crowd_confluent", "expert_a", "expert_noisy",
    ):  # fmt: skip
        assert column in header


def test_manifest_validates_without_errors(dataset):
    manifest = Manifest.load(dataset.manifest)
    errors = [issue for issue in validate_manifest(manifest) if issue.severity == "error"]
    assert errors == []
    assert len(manifest.rows) == N_CLIPS


def test_paths_are_relative_and_point_at_files(dataset):
    for row in _rows(dataset.manifest):
        for column in ("clip", "mask"):
            assert not row[column].startswith("/")
            assert (dataset.folder / row[column]).is_file()


def test_masks_read_back_and_match_the_clip_and_frame_counts(dataset):
    frames = _rows(dataset.folder / "frames.csv")
    for row in _rows(dataset.manifest):
        clip = read_clip(dataset.folder / row["clip"])
        masks = read_masks(dataset.folder / row["mask"])
        assert masks.shape == clip.frames.shape and masks.dtype == np.uint8
        assert set(np.unique(masks)) <= {0, 1, 2, 3, 4, 5}
        counts = [int(f["bline_count"]) for f in frames if f["clip"] == row["clip"]]
        assert counts == [t.bline_count for t in masks_truth(masks, clip.fan)]


def test_crowd_counts_match_the_opinions_file(dataset):
    opinions = _rows(dataset.folder / "opinions.csv")
    for row in _rows(dataset.manifest):
        mine = [o["label"] for o in opinions if o["clip"] == row["clip"]]
        assert len(mine) == sum(int(row[f"crowd_{c}"]) for c in ("none", "discrete", "confluent"))
        for label in ("none", "discrete", "confluent"):
            assert mine.count(label) == int(row[f"crowd_{label}"])


def test_patients_file_lists_each_patient(dataset):
    patients = _rows(dataset.folder / "patients.csv")
    assert sorted(p["patient"] for p in patients) == ["P001", "P002"]
    assert {r["patient"] for r in _rows(dataset.manifest)} == {"P001", "P002"}


def test_preview_is_a_png_contact_sheet(dataset):
    import cv2

    image = cv2.imread(str(dataset.folder / "preview.png"))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 300


def test_same_seed_writes_the_same_set(dataset, tmp_path):
    again = write_dataset(tmp_path, N_CLIPS, N_PATIENTS, seed=3, config=CONFIG, clip_format="seq.nrrd")
    assert again.manifest.read_text() == dataset.manifest.read_text()
    assert (tmp_path / "frames.csv").read_text() == (dataset.folder / "frames.csv").read_text()
    first = _rows(dataset.manifest)[0]
    assert np.array_equal(read_masks(tmp_path / first["mask"]), read_masks(dataset.folder / first["mask"]))


def test_an_existing_set_is_not_overwritten_by_accident(dataset):
    with pytest.raises(LungUSError, match="--overwrite"):
        write_dataset(dataset.folder, 2, 1, seed=0, config=CONFIG)


@pytest.mark.parametrize("clip_format", ["mp4", "dicom"])
def test_lossy_and_dicom_formats_read_back_with_their_fan(tmp_path, clip_format):
    summary = write_dataset(tmp_path, 2, 1, seed=1, config=CONFIG, clip_format=clip_format)
    for row in _rows(summary.manifest):
        clip = read_clip(tmp_path / row["clip"])
        assert clip.frames.shape == (CONFIG.n_frames, CONFIG.height, CONFIG.width)
        assert clip.fan is not None and clip.fan.source == "slicer-ultrasound-json"
        assert clip.fps == pytest.approx(25.0)


def test_overwrite_removes_the_files_of_the_previous_set(tmp_path):
    write_dataset(tmp_path, 4, 2, seed=0, config=CONFIG, clip_format="seq.nrrd")
    old = {p.name for p in (tmp_path / "clips").iterdir()} | {p.name for p in (tmp_path / "masks").iterdir()}
    summary = write_dataset(tmp_path, 2, 1, seed=1, config=CONFIG, clip_format="mp4", overwrite=True)
    rows = _rows(summary.manifest)
    expected = {r["clip"].split("/")[1] for r in rows} | {r["mask"].split("/")[1] for r in rows}
    expected |= {r["clip"].split("/")[1].split(".")[0] + ".json" for r in rows}
    now = {p.name for p in (tmp_path / "clips").iterdir()} | {p.name for p in (tmp_path / "masks").iterdir()}
    assert now == expected and old - now
