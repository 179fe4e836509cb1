"""A working MRML scene without the Slicer application (slicer-core, headless).

Inside Slicer the bridge uses ``slicer.mrmlScene``, which the application has
already wired. Outside it (tests, scripts, batch jobs) :func:`new_headless_scene`
wires the same pieces the application would: without the Sequences logic a
sequence browser cannot even be created, without the colour logic labelmaps
have no colour table, and without the remote-IO logic a ``.mrb`` cannot be read.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import slicer

# Module logics a headless scene needs, by the name Slicer registers them under.
_MODULE_LOGIC_CLASSES = {
    "Sequences": "vtkSlicerSequencesLogic",
    "Segmentations": "vtkSlicerSegmentationsModuleLogic",
    "Volumes": "vtkSlicerVolumesLogic",
    "Tables": "vtkSlicerTablesLogic",
    "SubjectHierarchy": "vtkSlicerSubjectHierarchyModuleLogic",
}


@dataclass
class HeadlessScene:
    """A vtkMRMLScene plus the logics that must stay alive for it to behave like Slicer's.

    Pass ``.scene`` to the bridge functions. The logics only observe the scene (it holds
    no reference to them), so this object must outlive every use of the scene.
    Use it as a context manager, or call :meth:`close`, to clear the scene and remove
    the temporary folder it made.
    """

    scene: Any
    app_logic: Any
    module_logics: dict[str, Any]
    remote_io_logic: Any
    data_io_manager_logic: Any
    work_dir: Path
    _temp_dir: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    def module_logic(self, name: str) -> Any:
        """The registered logic, e.g. ``module_logic("Sequences")``."""
        return self.module_logics[name]

    def close(self) -> None:
        self.scene.Clear(True)
        if self._temp_dir is not None:
            self._temp_dir.cleanup()
            self._temp_dir = None

    def __enter__(self) -> HeadlessScene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def new_headless_scene(work_dir: str | Path | None = None) -> HeadlessScene:
    """Build a scene wired as Slicer wires ``slicer.mrmlScene``.

    ``work_dir`` holds the remote-IO cache (where a ``.mrb`` is unpacked when read);
    a temporary folder is made, and removed by :meth:`HeadlessScene.close`, when it is None.
    """
    temp_dir = None
    if work_dir is None:
        temp_dir = tempfile.TemporaryDirectory(prefix="lungus-scene-")
        work_dir = temp_dir.name
    work_dir = Path(work_dir).resolve()
    cache_dir = work_dir / "cache"
    # The colour logic looks for optional colour files under <home>/<share>/ColorFiles and
    # logs an error for every scene when the folder is missing; an empty one means "none".
    (work_dir / "share" / "ColorFiles").mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)

    scene = slicer.vtkMRMLScene()
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetHomeDirectory(str(work_dir))
    app_logic.SetShareDirectory("share")
    app_logic.SetMRMLScene(scene)

    # The colour logic needs the application logic before it sees the scene.
    color_logic = slicer.vtkSlicerColorLogic()
    color_logic.SetMRMLApplicationLogic(app_logic)
    color_logic.SetMRMLScene(scene)
    app_logic.SetColorLogic(color_logic)
    color_logic.AddDefaultColorNodes()

    module_logics: dict[str, Any] = {"Colors": color_logic}
    for name, class_name in _MODULE_LOGIC_CLASSES.items():
        logic = getattr(slicer, class_name)()
        logic.SetMRMLApplicationLogic(app_logic)
        logic.SetMRMLScene(scene)
        app_logic.SetModuleLogic(name, logic)
        module_logics[name] = logic

    # Reading a .mrb goes through the data-IO manager's cache folder.
    remote_io_logic = slicer.vtkMRMLRemoteIOLogic()
    remote_io_logic.SetMRMLScene(scene)
    data_io_manager_logic = slicer.vtkDataIOManagerLogic()
    data_io_manager_logic.SetMRMLApplicationLogic(app_logic)
    data_io_manager_logic.SetAndObserveDataIOManager(remote_io_logic.GetDataIOManager())
    remote_io_logic.AddDataIOToScene()
    remote_io_logic.GetCacheManager().SetRemoteCacheDirectory(str(cache_dir))

    return HeadlessScene(
        scene=scene,
        app_logic=app_logic,
        module_logics=module_logics,
        remote_io_logic=remote_io_logic,
        data_io_manager_logic=data_io_manager_logic,
        work_dir=work_dir,
        _temp_dir=temp_dir,
    )
