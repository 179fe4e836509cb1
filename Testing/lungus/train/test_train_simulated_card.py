"""The card knows when a model learned from simulated clips (training_data simulated_clips)."""

from __future__ import annotations

import shutil

from lungus.data.manifests.manifest import Manifest
from lungus.train.setup import SIMULATOR_COLUMN, simulated_clips


def test_clips_from_lungus_simulate_are_counted(tiny_collection):
    manifest = Manifest.load(tiny_collection)
    assert simulated_clips(manifest, list(range(len(manifest)))) == len(manifest)
    assert simulated_clips(manifest, [0, 3, 5]) == 3


def test_a_collection_without_simulator_facts_has_none(tiny_collection, tmp_path):
    shutil.copytree(tiny_collection.parent, tmp_path / "real")
    manifest = Manifest.load(tmp_path / "real" / tiny_collection.name)
    manifest.columns.remove(SIMULATOR_COLUMN)
    for row in manifest.rows:
        del row[SIMULATOR_COLUMN]
    assert simulated_clips(manifest, list(range(len(manifest)))) == 0
