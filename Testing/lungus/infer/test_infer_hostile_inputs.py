"""Batch inputs a careless or hostile folder holds (issue 16): a clip whose name is not UTF-8
is listed, fingerprinted and scored, and the batch goes on."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from lungus.infer import Analyzer
from lungus.infer.batch import BatchRequest, collect_inputs, inputs_digest, run_batch
from lungus.infer.journal import read_journal

NON_UTF8 = b"clip\xff.mp4"

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="file names that are not UTF-8: Linux")


@pytest.fixture
def folder_with_a_non_utf8_name(tmp_path, tiny_clip_paths):
    folder = tmp_path / "clips"
    folder.mkdir()
    good = next(path for path in tiny_clip_paths if path.suffix == ".mp4")
    shutil.copy(good, folder / "good.mp4")
    shutil.copy(good, os.fsencode(folder) + b"/" + NON_UTF8)
    return folder


def test_a_non_utf8_name_is_listed_and_fingerprinted(folder_with_a_non_utf8_name):
    items = collect_inputs([folder_with_a_non_utf8_name])
    assert sorted(os.fsencode(item.path.name) for item in items) == sorted([b"good.mp4", NON_UTF8])
    assert len(inputs_digest(items)) == 16
    assert collect_inputs([os.fsencode(items[0].path)])[0].path == items[0].path  # bytes input


def test_a_batch_scores_a_clip_whose_name_is_not_utf8(tiny_models, folder_with_a_non_utf8_name, tmp_path):
    analyzer = Analyzer(tiny_models["classifier"], None, device="cpu", runtime="torch")
    summary = run_batch(analyzer, BatchRequest([folder_with_a_non_utf8_name], tmp_path / "out"))
    assert summary.scored == 2 and not summary.failed
    names = sorted(record["clip"].rsplit("/", 1)[-1] for record in read_journal(tmp_path / "out"))
    assert names == ["clip\\xff.mp4", "good.mp4"]  # the outputs are UTF-8: the byte is escaped
