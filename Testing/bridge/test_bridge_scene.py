"""new_headless_scene wires the logics Slicer's own scene has."""

from __future__ import annotations

import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")


def test_headless_scene_registers_the_module_logics(headless):
    for name in ("Sequences", "Segmentations", "Volumes", "Tables", "SubjectHierarchy"):
        assert headless.app_logic.GetModuleLogic(name) is headless.module_logic(name)


def test_headless_scene_has_default_colour_tables(headless):
    assert headless.scene.GetFirstNodeByName("Labels") is not None
    assert headless.scene.GetFirstNodeByName("Grey") is not None


def test_headless_scene_can_create_a_sequence_browser(headless):
    browser = headless.scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode")
    assert browser is not None and browser.IsA("vtkMRMLSequenceBrowserNode")


def test_closing_a_temporary_headless_scene_removes_its_folder():
    from LungUSBLinesLib.scene import new_headless_scene

    headless = new_headless_scene()
    work_dir = headless.work_dir
    assert work_dir.is_dir()
    headless.close()
    assert not work_dir.exists()
