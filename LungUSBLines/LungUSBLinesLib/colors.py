"""The segmentation classes as a Slicer colour table, and labelmaps as segmentations.

A labelmap imported into a segmentation takes its segment names and colours from
its colour table; Slicer's default table would name label 1 "jake". Every mask the
project shows in Slicer goes through :func:`segmentation_color_table`, so the ids,
names and colours are those of ``lungus.data.labels.schemes.SEG_CLASSES`` (docs/architecture.md#segmentation-classes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import slicer

from lungus.data.labels.schemes import SEG_CLASSES
from lungus.errors import LungUSError

SEGMENTATION_COLOR_TABLE_NAME = "LungUS segmentation classes"
HEATMAP_COLOR_TABLE_NAME = "LungUS heat map"
# Mark our tables so a user's node that happens to share the name is never reused.
_COLOR_TABLE_ATTRIBUTE = "LungUS.SegmentationClasses"
_HEATMAP_ATTRIBUTE = "LungUS.HeatMap"
# Heat-map entries, one per 0-255 map value.
_HEATMAP_COLORS = 256


def _marked_table(scene: Any, attribute: str) -> Any | None:
    nodes = scene.GetNodesByClass("vtkMRMLColorTableNode")
    for i in range(nodes.GetNumberOfItems()):
        node = nodes.GetItemAsObject(i)
        if node.GetAttribute(attribute) == "1":
            return node
    return None


def segmentation_color_table(scene: Any) -> Any:
    """The scene's colour table of the segmentation classes, created on first use.

    Background (id 0) is fully transparent; the other ids carry the class names and colours.
    """
    table = _marked_table(scene, _COLOR_TABLE_ATTRIBUTE)
    if table is not None:
        return table
    table = scene.AddNewNodeByClass("vtkMRMLColorTableNode", SEGMENTATION_COLOR_TABLE_NAME)
    table.SetAttribute(_COLOR_TABLE_ATTRIBUTE, "1")
    table.SetTypeToUser()
    table.SetNumberOfColors(max(c.id for c in SEG_CLASSES) + 1)
    for seg_class in SEG_CLASSES:
        if seg_class.rgb is None:
            table.SetColor(seg_class.id, seg_class.name, 0.0, 0.0, 0.0, 0.0)
        else:
            red, green, blue = (channel / 255.0 for channel in seg_class.rgb)
            table.SetColor(seg_class.id, seg_class.name, red, green, blue, 1.0)
    return table


def heatmap_rgb(values: np.ndarray) -> np.ndarray:
    """(N, 3) RGB in [0, 1] for map values in [0, 1]: the JET ramp (blue, cyan, yellow, red) of
    Grad-CAM figures and of ``lungus infer`` overlays."""
    x = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    red = np.clip(1.5 - np.abs(4 * x - 3), 0, 1)
    green = np.clip(1.5 - np.abs(4 * x - 2), 0, 1)
    blue = np.clip(1.5 - np.abs(4 * x - 1), 0, 1)
    return np.stack([red, green, blue], axis=1)


def heatmap_color_table(scene: Any) -> Any:
    """The scene's colour table for explanation heat maps (uint8 0-255 maps), made on first use.

    Opaque: Slicer draws a scalar volume's pixels fully or not at all (its threshold decides),
    whatever alpha the table holds, so weak evidence is hidden by the display node's threshold
    (LungUSBLinesLib.results), not here."""
    table = _marked_table(scene, _HEATMAP_ATTRIBUTE)
    if table is not None:
        return table
    table = scene.AddNewNodeByClass("vtkMRMLColorTableNode", HEATMAP_COLOR_TABLE_NAME)
    table.SetAttribute(_HEATMAP_ATTRIBUTE, "1")
    table.SetTypeToUser()
    table.SetNumberOfColors(_HEATMAP_COLORS)
    for i, (red, green, blue) in enumerate(heatmap_rgb(np.linspace(0, 1, _HEATMAP_COLORS))):
        table.SetColor(i, "", red, green, blue, 1.0)
    return table


def labels_to_segmentation(scene: Any, labels: np.ndarray, reference_volume: Any, name: str) -> Any:
    """A segmentation node from a class-id image laid over ``reference_volume``.

    ``labels`` is (H, W) or (1, H, W) with ids of SEG_CLASSES, the size of the reference
    frame. Each id present becomes a segment named and coloured as its class.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels[None]
    reference_shape = slicer.util.arrayFromVolume(reference_volume).shape
    if labels.shape != reference_shape:
        raise LungUSError(f"label image {labels.shape} does not match the frame {reference_shape}")
    known_ids = {c.id for c in SEG_CLASSES}
    unknown = sorted(set(np.unique(labels).tolist()) - known_ids)
    if unknown:
        raise LungUSError(f"label ids {unknown} are not segmentation classes (0-{max(known_ids)})")

    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", f"{name} labels")
    try:
        labelmap.CopyOrientation(reference_volume)
        slicer.util.updateVolumeFromArray(labelmap, labels.astype(np.uint8))
        labelmap.CreateDefaultDisplayNodes()
        labelmap.GetDisplayNode().SetAndObserveColorNodeID(segmentation_color_table(scene).GetID())
        segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume)
        if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(
            labelmap, segmentation
        ):
            scene.RemoveNode(segmentation)
            raise LungUSError(f"Slicer could not import the label image as segmentation {name!r}")
    finally:
        display = labelmap.GetDisplayNode()
        scene.RemoveNode(labelmap)
        if display is not None:
            scene.RemoveNode(display)  # removing a volume leaves its display node behind
    return segmentation
