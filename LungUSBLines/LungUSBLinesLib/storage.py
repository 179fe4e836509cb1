"""Sequences to and from .seq.nrrd, scenes to and from .mrb, written atomically.

Files are written under a temporary name in the destination folder and moved into
place, so a crash never leaves a half-written file under the real name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import slicer

from lungus.atomic import atomic_path
from lungus.errors import LungUSError

SEQUENCE_SUFFIX = ".seq.nrrd"
SCENE_BUNDLE_SUFFIX = ".mrb"


@contextmanager
def _atomic_bundle_path(path: Path) -> Iterator[Path]:
    """Like lungus.atomic.atomic_path, but the temporary file keeps ``path``'s exact name,
    in a hidden folder beside it.

    Slicer names the folder and the scene inside a .mrb after the file's stem, cut at the
    first dot: a temporary ".name.x1y2.mrb" would make an unnamed scene and fail to save.
    """
    staging = Path(tempfile.mkdtemp(prefix=".lungus-tmp-", dir=path.parent))
    try:
        temporary = staging / path.name
        yield temporary
        os.replace(temporary, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _require_suffix(path: str | os.PathLike, suffix: str) -> Path:
    path = Path(path).expanduser().resolve()
    if not path.name.lower().endswith(suffix):
        raise LungUSError(f"the file name must end with {suffix}", path)
    if not path.parent.is_dir():
        raise LungUSError("the folder does not exist", path.parent)
    return path


def save_sequence(sequence: Any, path: str | os.PathLike, *, compress: bool = False) -> Path:
    """Write a volume sequence to ``path`` (.seq.nrrd) through its storage node.

    Uncompressed by default: gzip makes writing several times slower. The sequence keeps
    the storage node, pointing at ``path``, so a later scene save refers to this file.
    """
    path = _require_suffix(path, SEQUENCE_SUFFIX)
    storage = sequence.GetStorageNode()
    if storage is None:
        if not sequence.AddDefaultStorageNode():
            raise LungUSError(f"Slicer has no storage node for sequence {sequence.GetName()!r}", path)
        storage = sequence.GetStorageNode()
    storage.SetUseCompression(bool(compress))
    try:
        with atomic_path(path) as temporary:
            storage.SetFileName(str(temporary))
            if not storage.WriteData(sequence):
                raise LungUSError(f"Slicer could not write sequence {sequence.GetName()!r}", path)
    finally:
        storage.SetFileName(str(path))
    return path


def read_sequence(scene: Any, path: str | os.PathLike, name: str | None = None) -> Any:
    """Read a .seq.nrrd volume sequence into a new sequence node of ``scene``."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise LungUSError("no such file", path)
    storage = slicer.vtkMRMLVolumeSequenceStorageNode()
    scene.AddNode(storage)
    storage.SetFileName(str(path))
    if name is None:
        name = (
            path.name[: -len(SEQUENCE_SUFFIX)] if path.name.lower().endswith(SEQUENCE_SUFFIX) else path.stem
        )
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", name)
    sequence.SetAndObserveStorageNodeID(storage.GetID())
    if not storage.ReadData(sequence) or sequence.GetNumberOfDataNodes() == 0:
        scene.RemoveNode(sequence)
        scene.RemoveNode(storage)
        raise LungUSError("not a volume sequence Slicer can read (.seq.nrrd)", path)
    return sequence


def save_scene(scene: Any, path: str | os.PathLike) -> Path:
    """Save the whole scene, data included, as one Slicer bundle (.mrb)."""
    path = _require_suffix(path, SCENE_BUNDLE_SUFFIX)
    working_dir = os.getcwd()
    try:
        with _atomic_bundle_path(path) as temporary:
            if not scene.WriteToMRB(str(temporary)):
                raise LungUSError("Slicer could not write the scene bundle", path)
    finally:
        os.chdir(working_dir)  # Slicer's zip step changes folder
    return path


def load_scene(scene: Any, path: str | os.PathLike, *, clear: bool = True) -> None:
    """Read a .mrb bundle into ``scene`` (cleared first unless ``clear`` is False)."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise LungUSError("no such file", path)
    # Slicer's unzip leaves the process in a deleted folder when it fails, so only
    # hand it files that are bundles, and put the working folder back regardless.
    if not _is_scene_bundle(path):
        raise LungUSError("not a Slicer scene bundle (.mrb: a zip holding a .mrml scene)", path)
    working_dir = os.getcwd()
    messages = slicer.vtkMRMLMessageCollection()
    try:
        read_ok = scene.ReadFromMRB(str(path), clear, messages)
    finally:
        os.chdir(working_dir)
    if not read_ok:
        detail = " ".join(messages.GetAllMessagesAsString().split()) or "Slicer could not read the bundle"
        raise LungUSError(detail, path)


def _is_scene_bundle(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as bundle:
            return any(name.lower().endswith(".mrml") for name in bundle.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
