"""The segmentation classes as a Slicer colour table, and class-id images as segmentations.

A labelmap imported into a segmentation through Slicer's default table would name label 1
"jake". Every mask the project shows in Slicer goes through :func:`segmentation_color_table`
or :func:`set_class_segments`, so the ids, names and colours are those of
``lungus.data.labels.schemes.SEG_CLASSES`` (docs/architecture.md#segmentation-classes).

A class's segment has a fixed ID (:func:`class_segment_id`) and its class id as label value,
and all classes share one labelmap layer (a pixel has one class), so a segmentation reads back
as the class-id image it came from (:func:`segmentation_class_labels`), whatever the Segment
Editor did to it in between.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from lungus.data.labels.schemes import SEG_CLASSES, SegClass
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


def class_segment_id(seg_class: SegClass) -> str:
    """The segment ID of a class in every segmentation the project makes ("B-line" -> "B-line",
    "pleural line" -> "pleural_line"): the same in every frame, so the Segment Editor keeps the
    selected segment when the frame changes."""
    return seg_class.name.replace(" ", "_")


_DRAWN_CLASSES = tuple(c for c in SEG_CLASSES if c.rgb is not None)
_CLASS_IDS = frozenset(c.id for c in SEG_CLASSES)


def _class_of_segment(segment_id: str, name: str) -> SegClass | None:
    for seg_class in _DRAWN_CLASSES:
        if segment_id == class_segment_id(seg_class) or name == seg_class.name:
            return seg_class
    return None


def _checked_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 3 and labels.shape[0] == 1:
        labels = labels[0]
    if labels.ndim != 2:
        raise LungUSError(f"a class-id image is (H, W), got shape {labels.shape}")
    unknown = sorted(set(_present_ids(labels)) - {c.id for c in SEG_CLASSES})
    if unknown:
        raise LungUSError(
            f"label ids {unknown} are not segmentation classes (0-{max(c.id for c in SEG_CLASSES)})"
        )
    return labels


def _present_ids(labels: np.ndarray) -> list[int]:
    """The values present in an integer image (bincount: many times faster than np.unique on a frame)."""
    if labels.size == 0:
        return []
    if labels.min() < 0:
        return sorted(np.unique(labels).tolist())
    return np.flatnonzero(np.bincount(labels.ravel().astype(np.int64))).tolist()


def _oriented_image(values: np.ndarray, ijk_to_ras: vtk.vtkMatrix4x4) -> Any:
    """A one-slice vtkOrientedImageData of uint8 ``values`` (H, W), row = J, placed by ``ijk_to_ras``."""
    height, width = values.shape
    image = slicer.vtkOrientedImageData()
    image.SetDimensions(width, height, 1)
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(values.astype(np.uint8).ravel(), deep=True))
    image.SetImageToWorldMatrix(ijk_to_ras)
    return image


def set_class_segments(
    segmentation_node: Any, labels: np.ndarray, ijk_to_ras: vtk.vtkMatrix4x4, *, every_class: bool = True
) -> None:
    """Fill an empty segmentation node with the class-id image ``labels`` (H, W) placed by
    ``ijk_to_ras`` (the frame's IJK-to-RAS): one segment per class, named and coloured as
    SEG_CLASSES, with its class id as label value, all in one shared labelmap. With
    ``every_class`` each drawn class gets a segment even where it has no pixel (so the Segment
    Editor can paint it); otherwise only the classes present do. The node may be outside a scene
    (a sequence's item)."""
    labels = _checked_labels(labels)
    segmentation = segmentation_node.GetSegmentation()
    if segmentation.GetNumberOfSegments():
        raise LungUSError(f"segmentation {segmentation_node.GetName()!r} already has segments")
    binary_labelmap = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    segmentation.SetSourceRepresentationName(binary_labelmap)
    shared = _oriented_image(labels, ijk_to_ras)
    # The frame's geometry is the segmentation's: the Segment Editor paints on its grid.
    segmentation.SetConversionParameter(
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(),
        slicer.vtkSegmentationConverter.SerializeImageGeometry(shared),
    )
    present = set(_present_ids(labels))
    for seg_class in _DRAWN_CLASSES:
        if not every_class and seg_class.id not in present:
            continue
        segment = slicer.vtkSegment()
        segment.SetName(seg_class.name)
        segment.SetColor(*(channel / 255.0 for channel in seg_class.rgb))
        segment.SetLabelValue(seg_class.id)
        segment.AddRepresentation(binary_labelmap, shared)  # one object for all: a shared layer
        segmentation.AddSegment(segment, class_segment_id(seg_class))


def class_segmentation_frames(labels: np.ndarray, ijk_to_ras: vtk.vtkMatrix4x4) -> Iterator[Any]:
    """For each class-id image of ``labels`` (T, H, W), a segmentation node outside the scene as
    :func:`set_class_segments` makes it (every class). The same node each time, its shared
    labelmap overwritten with the next frame, so copy it before taking the next
    (vtkMRMLSequenceNode.SetDataNodeAtValue always deep-copies): Slicer takes ~15 ms to delete a
    600x800 segmentation node, the larger part of making one node per frame."""
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise LungUSError(f"class-id frames are (T, H, W), got shape {labels.shape}")
    if labels.shape[0] == 0:
        return
    # min and max cover the whole clip in one cheap pass when every id between them is a class
    # (a bincount of a 300-frame 600x800 clip would allocate 1 GB); else find the frame to name.
    if not set(range(int(labels.min()), int(labels.max()) + 1)) <= _CLASS_IDS:
        for frame in labels:
            _checked_labels(frame)
    node = slicer.vtkMRMLSegmentationNode()
    set_class_segments(node, labels[0], ijk_to_ras)
    # Every segment holds this one image (set_class_segments shares it), so writing it re-labels all.
    segmentation = node.GetSegmentation()
    shared = segmentation.GetNthSegment(0).GetRepresentation(
        slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    )
    voxels = numpy_support.vtk_to_numpy(shared.GetPointData().GetScalars()).reshape(labels.shape[1:])
    for frame in labels:
        voxels[:] = frame
        shared.Modified()
        yield node


def segmentation_class_labels(segmentation_node: Any) -> np.ndarray:
    """uint8 (H, W) class ids of a segmentation made by :func:`set_class_segments`, on its
    reference grid (the frame's), however it was edited since. A segment counts as a class by its
    ID or its name; any other segment is an error that names it (its pixels have no class)."""
    segmentation = segmentation_node.GetSegmentation()
    geometry = slicer.vtkOrientedImageData()
    parameter = segmentation.GetConversionParameter(
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName()
    )
    if not parameter or not slicer.vtkSegmentationConverter.DeserializeImageGeometry(
        parameter, geometry, False
    ):
        raise LungUSError(f"segmentation {segmentation_node.GetName()!r} has no reference geometry")
    width, height, depth = geometry.GetDimensions()
    if depth != 1:
        raise LungUSError(f"segmentation {segmentation_node.GetName()!r} is not one frame ({depth} slices)")
    segment_ids, label_values = vtk.vtkStringArray(), vtk.vtkIntArray()
    for i in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(i)
        seg_class = _class_of_segment(segment_id, segmentation.GetNthSegment(i).GetName())
        if seg_class is None:
            names = ", ".join(c.name for c in _DRAWN_CLASSES)
            raise LungUSError(
                f"segment {segmentation.GetNthSegment(i).GetName()!r} of {segmentation_node.GetName()!r} "
                f"is not a segmentation class; name it one of: {names}"
            )
        segment_ids.InsertNextValue(segment_id)
        label_values.InsertNextValue(seg_class.id)
    if segment_ids.GetNumberOfValues() == 0:
        return np.zeros((height, width), dtype=np.uint8)
    shared = _shared_layer_labels(segmentation_node, geometry, segment_ids, label_values)
    if shared is not None:
        return shared
    merged = slicer.vtkOrientedImageData()
    if not segmentation_node.GenerateMergedLabelmapForAllSegments(
        merged, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY, geometry, segment_ids, label_values
    ):
        raise LungUSError(f"Slicer could not merge the segments of {segmentation_node.GetName()!r}")
    if merged.GetDimensions() != (width, height, 1):
        raise LungUSError(
            f"segmentation {segmentation_node.GetName()!r} merged to {merged.GetDimensions()}, "
            f"not its {width}x{height} frame"
        )
    voxels = numpy_support.vtk_to_numpy(merged.GetPointData().GetScalars())
    return voxels.reshape(height, width).astype(np.uint8)


def _same_geometry(image: Any, geometry: Any) -> bool:
    if image.GetExtent() != geometry.GetExtent():
        return False
    a, b = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(a)
    geometry.GetImageToWorldMatrix(b)
    return all(abs(a.GetElement(i, j) - b.GetElement(i, j)) < 1e-9 for i in range(4) for j in range(4))


def _shared_layer_labels(
    segmentation_node: Any, geometry: Any, segment_ids: Any, label_values: Any
) -> np.ndarray | None:
    """The class ids straight from the one labelmap all the segments share, when it lies on the
    reference grid (as set_class_segments makes it and the Segment Editor keeps it): no merge,
    ~30 times faster on a 600x800 frame. None when the segmentation is laid out otherwise."""
    segmentation = segmentation_node.GetSegmentation()
    if segmentation.GetNumberOfLayers() != 1:
        return None
    image = segmentation_node.GetBinaryLabelmapInternalRepresentation(segment_ids.GetValue(0))
    if image is None or image.GetPointData().GetScalars() is None or not _same_geometry(image, geometry):
        return None
    stored = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    if stored.size != int(np.prod(image.GetDimensions())):
        return None
    lowest, highest = int(stored.min()), int(stored.max())
    if lowest < 0 or highest > 255:
        return None
    lookup = np.zeros(256, dtype=np.uint8)  # a stored value no segment owns is background
    for i in range(segment_ids.GetNumberOfValues()):
        stored_value = segmentation.GetSegment(segment_ids.GetValue(i)).GetLabelValue()
        if not 0 < stored_value < 256:
            return None
        lookup[stored_value] = label_values.GetValue(i)
    width, height, _ = image.GetDimensions()
    if np.array_equal(lookup[: highest + 1], np.arange(highest + 1)):
        # Each stored value is its class id (as set_class_segments stores them): a copy, not a
        # lookup per pixel (~50 times faster on a 600x800 frame).
        return stored.reshape(height, width).astype(np.uint8)
    return lookup[stored.reshape(height, width)]


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
    labels = _checked_labels(labels)
    ijk_to_ras = vtk.vtkMatrix4x4()
    reference_volume.GetIJKToRASMatrix(ijk_to_ras)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume)
    segmentation.GetSegmentation().RemoveAllSegments()
    set_class_segments(segmentation, labels, ijk_to_ras, every_class=False)
    segmentation.CreateDefaultDisplayNodes()
    return segmentation
