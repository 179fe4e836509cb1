"""LungUSInferenceLib.batch.load_batch_results: one table node per results file, refreshed on reload."""

from __future__ import annotations

import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from LungUSBLinesLib.tables import table_records  # noqa: E402
from LungUSInferenceLib import batch  # noqa: E402


def write_clips_csv(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["clip,pred,p_present,error"] + [",".join(row) for row in rows]
    (folder / "clips.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def table_nodes(scene):
    return scene.GetNumberOfNodesByClass("vtkMRMLTableNode")


def test_loading_the_same_results_again_refreshes_its_table(headless, tmp_path):
    out = tmp_path / "run"
    write_clips_csv(out, [("a.mp4", "present", "0.9", "")])
    first = batch.load_batch_results(headless.scene, out)
    write_clips_csv(out, [("a.mp4", "present", "0.9", ""), ("b.mp4", "", "", "unreadable")])
    again = batch.load_batch_results(headless.scene, out / "clips.csv")  # the file, not the folder
    assert again.table.GetID() == first.table.GetID()
    assert table_nodes(headless.scene) == 1
    assert [r["clip"] for r in table_records(again.table)] == ["a.mp4", "b.mp4"]
    assert again.failed == [("b.mp4", "unreadable")]


def test_results_of_another_folder_get_their_own_table(headless, tmp_path):
    for name in ("run1", "run2"):
        write_clips_csv(tmp_path / name, [("a.mp4", "absent", "0.1", "")])
    tables = {batch.load_batch_results(headless.scene, tmp_path / n).table.GetID() for n in ("run1", "run2")}
    assert len(tables) == 2 and table_nodes(headless.scene) == 2


def test_a_removed_table_is_made_again(headless, tmp_path):
    write_clips_csv(tmp_path / "run", [("a.mp4", "absent", "0.1", "")])
    headless.scene.RemoveNode(batch.load_batch_results(headless.scene, tmp_path / "run").table)
    again = batch.load_batch_results(headless.scene, tmp_path / "run")
    assert table_nodes(headless.scene) == 1 and again.n_clips == 1
