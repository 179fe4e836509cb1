"""The Train panel's default folders: a second export or run never lands on the first one."""

from __future__ import annotations

import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.data.manifests.manifest import Manifest  # noqa: E402
from LungUSBLinesLib import sequences  # noqa: E402
from LungUSBLinesLib.panel import new_output_folder  # noqa: E402
from LungUSTrainLib import training_set  # noqa: E402
from LungUSTrainLib.training_set import LabeledSequence  # noqa: E402


def test_two_exports_under_the_same_base_folder_both_succeed(headless, small_frames, tmp_path):
    sequence = sequences.frames_to_sequence(headless.scene, small_frames, "patient 7 zone 1", fps=25.0)
    entries = [LabeledSequence(sequence, patient="P7", label="present")]
    manifests = []
    for _ in range(2):  # the panel exports twice without the user choosing a new folder
        folder = new_output_folder(tmp_path, "bline2")
        manifests.append(training_set.export_training_set(entries, folder, "bline2").manifest)
    assert manifests[0] != manifests[1]
    assert all(Manifest.load(m).column("bline2") == ["present"] for m in manifests)
