"""lungus.infer.results: one clip's analysis written to a file and read back equal."""

from __future__ import annotations

import dataclasses
import math
import zipfile

import numpy as np
import pytest

from lungus.errors import LungUSError
from lungus.infer import Analyzer
from lungus.infer.results import read_analysis_file, write_analysis_file


@pytest.fixture(scope="module")
def analyzer(tiny_models):
    return Analyzer(tiny_models["classifier"], tiny_models["segmenter"], device="cpu")


@pytest.fixture(scope="module")
def full_analysis(analyzer, tiny_clip_paths):
    return analyzer.analyse(tiny_clip_paths[0], explain="gradcam")


def assert_same(written, read, where="analysis"):
    """Equal field by field: arrays in dtype, shape and values (NaN where NaN), tuples stay tuples."""
    if dataclasses.is_dataclass(written):
        assert type(read) is type(written), where
        for field in dataclasses.fields(written):
            assert_same(getattr(written, field.name), getattr(read, field.name), f"{where}.{field.name}")
    elif isinstance(written, np.ndarray):
        assert isinstance(read, np.ndarray), where
        assert (read.dtype, read.shape) == (written.dtype, written.shape), where
        np.testing.assert_array_equal(read, written, err_msg=where)
    elif isinstance(written, (list, tuple)):
        assert type(read) is type(written) and len(read) == len(written), where
        for i, (a, b) in enumerate(zip(written, read)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(written, dict):
        assert isinstance(read, dict) and set(read) == set(written), where
        for key in written:
            assert_same(written[key], read[key], f"{where}[{key!r}]")
    elif isinstance(written, float) and math.isnan(written):
        assert math.isnan(read), where
    else:
        assert read == written, where


def test_a_full_analysis_reads_back_equal(full_analysis, tmp_path):
    assert full_analysis.segmentation is not None and full_analysis.explanation is not None
    path = write_analysis_file(full_analysis, tmp_path / "clip.analysis.npz")
    read = read_analysis_file(path)
    assert_same(full_analysis, read)
    assert read.to_json() == full_analysis.to_json()
    np.testing.assert_array_equal(
        read.segmentation.original_masks(read.n_frames),
        full_analysis.segmentation.original_masks(read.n_frames),
    )
    np.testing.assert_array_equal(read.explanation.original_map(0), full_analysis.explanation.original_map(0))


def test_an_analysis_without_segmenter_or_explanation_reads_back_equal(
    tiny_models, tiny_clip_paths, tmp_path
):
    analysis = Analyzer(tiny_models["classifier"], device="cpu").analyse(tiny_clip_paths[1])
    assert analysis.segmentation is None and analysis.explanation is None and analysis.bline_count is None
    assert_same(analysis, read_analysis_file(write_analysis_file(analysis, tmp_path / "a.npz")))


def test_the_file_holds_no_pickles(full_analysis, tmp_path):
    path = write_analysis_file(full_analysis, tmp_path / "clip.npz")
    with np.load(path, allow_pickle=False) as stored:
        assert all(stored[name].dtype != object for name in stored.files)


def test_writing_over_a_file_replaces_it_whole(full_analysis, tmp_path):
    path = tmp_path / "clip.npz"
    path.write_bytes(b"old")
    write_analysis_file(full_analysis, path)
    assert zipfile.is_zipfile(path) and [p.name for p in tmp_path.iterdir()] == ["clip.npz"]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such analysis file"),
        (b"", "not an analysis file"),
        (b"not a zip archive at all", "not an analysis file"),
        ("array", "a single array"),
        ("other npz", "missing or malformed"),
    ],
)
def test_anything_else_is_refused_with_the_file_named(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    if content == "array":
        with open(path, "wb") as stream:
            np.save(stream, np.zeros(3))
    elif content == "other npz":
        with open(path, "wb") as stream:
            np.savez(stream, frames=np.zeros(3))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(LungUSError, match=message) as caught:
        read_analysis_file(path)
    assert str(path) in str(caught.value)
