"""Segmentation classes as a Slicer colour table; labelmaps import with our names."""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.data.labels.schemes import SEG_CLASSES  # noqa: E402
from lungus.errors import LungUSError  # noqa: E402
from LungUSBLinesLib import colors, sequences  # noqa: E402


def test_colour_table_names_every_class(headless):
    table = colors.segmentation_color_table(headless.scene)
    assert [table.GetColorName(c.id) for c in SEG_CLASSES] == [c.name for c in SEG_CLASSES]


def test_colour_table_colours_match_the_schemes(headless):
    table = colors.segmentation_color_table(headless.scene)
    for seg_class in SEG_CLASSES[1:]:
        rgba = [0.0] * 4
        table.GetColor(seg_class.id, rgba)
        assert np.round(np.array(rgba[:3]) * 255).tolist() == list(seg_class.rgb)
        assert rgba[3] == 1.0


def test_background_is_transparent(headless):
    rgba = [1.0] * 4
    colors.segmentation_color_table(headless.scene).GetColor(0, rgba)
    assert rgba[3] == 0.0


def test_colour_table_is_made_once_per_scene(headless):
    first = colors.segmentation_color_table(headless.scene)
    assert colors.segmentation_color_table(headless.scene) is first


def test_labelmap_segments_take_our_class_names(headless, small_clip):
    proxy = sequences.clip_to_sequence(headless.scene, small_clip).proxy
    labels = np.zeros((6, 8), np.uint8)
    labels[0, :] = 1  # pleural line
    labels[2:, 3] = 3  # B-line
    segmentation = colors.labels_to_segmentation(headless.scene, labels, proxy, "frame 0 labels")
    found = segmentation.GetSegmentation()
    names = {found.GetNthSegment(i).GetLabelValue(): found.GetNthSegment(i).GetName() for i in range(2)}
    assert found.GetNumberOfSegments() == 2
    assert names == {1: "pleural line", 3: "B-line"}


def test_labelmap_import_leaves_no_helper_nodes(headless, small_clip):
    proxy = sequences.clip_to_sequence(headless.scene, small_clip).proxy
    colors.segmentation_color_table(headless.scene)
    before = headless.scene.GetNumberOfNodes()
    colors.labels_to_segmentation(headless.scene, np.ones((6, 8), np.uint8), proxy, "s")
    added = [
        headless.scene.GetNthNode(i).GetClassName() for i in range(before, headless.scene.GetNumberOfNodes())
    ]
    assert sorted(added) == ["vtkMRMLSegmentationDisplayNode", "vtkMRMLSegmentationNode"]


def test_unknown_label_ids_are_refused(headless, small_clip):
    proxy = sequences.clip_to_sequence(headless.scene, small_clip).proxy
    with pytest.raises(LungUSError, match=r"label ids \[9\]"):
        colors.labels_to_segmentation(headless.scene, np.full((6, 8), 9, np.uint8), proxy, "s")


def test_label_image_of_the_wrong_size_is_refused(headless, small_clip):
    proxy = sequences.clip_to_sequence(headless.scene, small_clip).proxy
    with pytest.raises(LungUSError, match="does not match the frame"):
        colors.labels_to_segmentation(headless.scene, np.zeros((8, 6), np.uint8), proxy, "s")


def test_class_labels_read_back_from_one_shared_layer_or_from_several(small_clip):
    """The fast path (the one labelmap the classes share) and Slicer's merge give the same ids."""
    from vtk.util import numpy_support

    ijk_to_ras = sequences.frame_ijk_to_ras(small_clip.spacing_mm)
    labels = np.zeros((6, 8), np.uint8)
    labels[0, :] = 1
    labels[2:, 3] = 3
    shared = slicer.vtkMRMLSegmentationNode()
    colors.set_class_segments(shared, labels, ijk_to_ras)
    assert shared.GetSegmentation().GetNumberOfLayers() == 1
    np.testing.assert_array_equal(colors.segmentation_class_labels(shared), labels)

    layered = slicer.vtkMRMLSegmentationNode()
    colors.set_class_segments(layered, labels, ijk_to_ras, every_class=False)
    rib = np.zeros((6, 8), np.uint8)
    rib[4:, 5:] = 1
    own = slicer.vtkOrientedImageData()  # a layer of its own, as the Segment Editor may make one
    own.SetDimensions(8, 6, 1)
    own.GetPointData().SetScalars(numpy_support.numpy_to_vtk(rib.ravel(), deep=True))
    own.SetImageToWorldMatrix(ijk_to_ras)
    segment = slicer.vtkSegment()
    segment.SetName("rib shadow")
    segment.AddRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName(), own)
    layered.GetSegmentation().AddSegment(segment, "Segment_7")
    assert layered.GetSegmentation().GetNumberOfLayers() == 2
    np.testing.assert_array_equal(colors.segmentation_class_labels(layered), np.where(rib == 1, 5, labels))


def test_class_frames_refuse_an_unknown_id_in_any_frame(small_clip):
    """The whole-clip min/max check lets no frame's stray id through (here the last frame's)."""
    labels = np.zeros((3, 6, 8), np.uint8)
    labels[2, 1, 1] = 9
    with pytest.raises(LungUSError, match=r"label ids \[9\]"):
        list(colors.class_segmentation_frames(labels, sequences.frame_ijk_to_ras(small_clip.spacing_mm)))


def test_class_frames_copied_one_by_one_keep_each_frames_labels(small_clip):
    """The one node is overwritten frame by frame: a deep copy taken at each step keeps that frame."""
    labels = np.zeros((3, 6, 8), np.uint8)
    for frame in range(3):
        labels[frame, 2:, frame + 1] = 3
    copies = []
    for node in colors.class_segmentation_frames(labels, sequences.frame_ijk_to_ras(small_clip.spacing_mm)):
        copy = slicer.vtkMRMLSegmentationNode()
        copy.CopyContent(node, True)
        copies.append(copy)
    for frame, copy in enumerate(copies):
        np.testing.assert_array_equal(colors.segmentation_class_labels(copy), labels[frame])


def test_class_labels_read_back_when_the_shared_layer_stores_other_values(small_clip):
    """A shared layer may store a class under another value (Slicer numbers segments 1, 2, ...):
    the segments' label values map the stored values to class ids."""
    from vtk.util import numpy_support

    ijk_to_ras = sequences.frame_ijk_to_ras(small_clip.spacing_mm)
    stored = np.zeros((6, 8), np.uint8)
    stored[0, :] = 2  # "B-line" stored as 2
    stored[2:, 3] = 1  # "pleural line" stored as 1
    image = slicer.vtkOrientedImageData()
    image.SetDimensions(8, 6, 1)
    image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(stored.ravel(), deep=True))
    image.SetImageToWorldMatrix(ijk_to_ras)
    node = slicer.vtkMRMLSegmentationNode()
    segmentation = node.GetSegmentation()
    labelmap = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    segmentation.SetSourceRepresentationName(labelmap)
    segmentation.SetConversionParameter(
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(),
        slicer.vtkSegmentationConverter.SerializeImageGeometry(image),
    )
    for name, value in (("pleural line", 2), ("B-line", 1)):  # swapped: neither is its class id
        segment = slicer.vtkSegment()
        segment.SetName(name)
        segment.SetLabelValue(value)
        segment.AddRepresentation(labelmap, image)
        segmentation.AddSegment(segment, name.replace(" ", "_"))
    assert segmentation.GetNumberOfLayers() == 1
    expected = np.zeros((6, 8), np.uint8)
    expected[0, :] = 1  # stored 2 is the pleural line's segment
    expected[2:, 3] = 3  # stored 1 is the B-line's
    np.testing.assert_array_equal(colors.segmentation_class_labels(node), expected)
