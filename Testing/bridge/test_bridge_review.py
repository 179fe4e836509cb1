"""LungUSBLinesLib.review: the model's masks as a segmentation sequence the Segment Editor edits
frame by frame, on a real MRML scene; edited and marked frames are the reviewed ones."""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.data.labels.annotation_labels import IGNORE_INDEX  # noqa: E402
from lungus.data.labels.schemes import SEG_CLASSES  # noqa: E402
from lungus.errors import LungUSError  # noqa: E402
from LungUSBLinesLib import review  # noqa: E402
from LungUSBLinesLib.colors import class_segment_id, segmentation_class_labels  # noqa: E402
from LungUSBLinesLib.storage import load_scene, save_scene  # noqa: E402

B_LINE = next(c for c in SEG_CLASSES if c.name == "B-line")


def test_every_frame_is_a_segmentation_with_a_segment_per_class(headless, analysed_clip):
    loaded, _, _ = analysed_clip
    started = review.start_mask_review(headless.scene, loaded.nodes)
    assert started.sequence.GetNumberOfDataNodes() == 5
    for frame in (0, 4):
        segmentation = started.sequence.GetNthDataNode(frame).GetSegmentation()
        found = {
            segmentation.GetNthSegmentID(i): (
                segmentation.GetNthSegment(i).GetName(),
                segmentation.GetNthSegment(i).GetLabelValue(),
                tuple(round(255 * c) for c in segmentation.GetNthSegment(i).GetColor()),
            )
            for i in range(segmentation.GetNumberOfSegments())
        }
        assert found == {class_segment_id(c): (c.name, c.id, c.rgb) for c in SEG_CLASSES[1:]}


def test_the_segmentation_starts_as_the_models_masks_and_plays_with_the_clip(headless, analysed_clip):
    loaded, _, masks = analysed_clip
    started = review.start_mask_review(headless.scene, loaded.nodes)
    assert loaded.nodes.browser.IsSynchronizedSequenceNodeID(started.sequence.GetID())
    assert loaded.nodes.browser.GetSaveChanges(started.sequence)
    np.testing.assert_array_equal(started.labels(), masks)
    for frame in (3, 1):
        loaded.nodes.browser.SetSelectedItemNumber(frame)
        np.testing.assert_array_equal(segmentation_class_labels(started.proxy), masks[frame])


def test_an_edit_on_frame_k_is_kept_in_frame_ks_item(headless, analysed_clip):
    loaded, _, masks = analysed_clip
    started = review.start_mask_review(headless.scene, loaded.nodes)
    loaded.nodes.browser.SetSelectedItemNumber(2)
    region = np.zeros(masks.shape[1:], bool)
    region[5:9, 12:14] = True  # a B-line the model missed
    review.paint_frame(headless.scene, started, "B-line", region)
    loaded.nodes.browser.SetSelectedItemNumber(4)  # away: the proxy now shows frame 4
    expected = masks[2].copy()
    expected[region] = B_LINE.id
    np.testing.assert_array_equal(segmentation_class_labels(started.sequence.GetNthDataNode(2)), expected)
    np.testing.assert_array_equal(started.frame_labels(4), masks[4])
    loaded.nodes.browser.SetSelectedItemNumber(2)  # and back: the edit is there
    np.testing.assert_array_equal(segmentation_class_labels(started.proxy), expected)


def test_an_edited_frame_is_reviewed_and_the_others_are_not(headless, analysed_clip):
    loaded, _, masks = analysed_clip
    started = review.start_mask_review(headless.scene, loaded.nodes)
    assert started.reviewed_frames() == []
    loaded.nodes.browser.SetSelectedItemNumber(1)
    review.paint_frame(
        headless.scene, started, "B-line", masks[1] == B_LINE.id, erase=True
    )  # "no B-line here"
    assert started.edited_frames() == [1]
    assert started.reviewed_frames() == [1]


def test_a_frame_accepted_unchanged_is_reviewed_when_marked(headless, analysed_clip):
    loaded, _, _ = analysed_clip
    started = review.start_mask_review(headless.scene, loaded.nodes)
    loaded.nodes.browser.SetSelectedItemNumber(3)
    assert started.mark_reviewed() == 3
    assert started.edited_frames() == []
    assert started.reviewed_frames() == [3]
    started.unmark_reviewed(3)
    assert started.reviewed_frames() == []


def test_corrected_masks_hold_reviewed_frames_and_255_elsewhere(headless, analysed_clip):
    loaded, _, masks = analysed_clip
    started = review.start_mask_review(headless.scene, loaded.nodes)
    loaded.nodes.browser.SetSelectedItemNumber(2)
    region = np.zeros(masks.shape[1:], bool)
    region[6:, 0] = True
    review.paint_frame(headless.scene, started, "B-line", region)
    started.mark_reviewed(0)
    corrected = started.corrected_masks()
    assert corrected.dtype == np.uint8 and corrected.shape == masks.shape
    np.testing.assert_array_equal(corrected[0], masks[0])
    np.testing.assert_array_equal(corrected[2], np.where(region, B_LINE.id, masks[2]))
    assert (corrected[[1, 3, 4]] == IGNORE_INDEX).all()


def test_starting_again_finds_the_review_with_its_edits(headless, analysed_clip):
    loaded, _, masks = analysed_clip
    first = review.start_mask_review(headless.scene, loaded.nodes)
    first.mark_reviewed(4)
    again = review.start_mask_review(headless.scene, loaded.nodes.browser)
    assert again.sequence.GetID() == first.sequence.GetID()
    assert again.reviewed_frames() == [4]


def test_without_a_segmenter_the_review_starts_from_background(headless, analysed_clip):
    loaded, nodes, masks = analysed_clip
    from LungUSBLinesLib.results import remove_analysis

    remove_analysis(headless.scene, nodes)
    started = review.start_mask_review(headless.scene, loaded.nodes)
    assert not started.labels().any()
    review.paint_frame(headless.scene, started, "B-line", masks[0] == B_LINE.id)
    assert started.reviewed_frames() == [0]


def test_a_segment_that_is_no_class_is_named_in_the_error(headless, analysed_clip):
    loaded, _, _ = analysed_clip
    started = review.start_mask_review(headless.scene, loaded.nodes)
    started.proxy.GetSegmentation().AddEmptySegment("Segment_1", "my notes")
    with pytest.raises(LungUSError, match="'my notes'.*not a segmentation class"):
        started.frame_labels()


def test_the_review_survives_a_scene_bundle(headless, analysed_clip, tmp_path):
    loaded, _, masks = analysed_clip
    started = review.start_mask_review(headless.scene, loaded.nodes)
    loaded.nodes.browser.SetSelectedItemNumber(3)
    region = np.zeros(masks.shape[1:], bool)
    region[8:, 15] = True
    review.paint_frame(headless.scene, started, "B-line", region)
    started.mark_reviewed(1)
    bundle = save_scene(headless.scene, tmp_path / "review.mrb")
    headless.scene.Clear(False)
    load_scene(headless.scene, bundle)
    browsers = headless.scene.GetNodesByClass("vtkMRMLSequenceBrowserNode")
    found = review.find_mask_review(headless.scene, browsers.GetItemAsObject(0))
    assert found is not None
    assert found.reviewed_frames() == [1, 3]
    np.testing.assert_array_equal(found.frame_labels(3), np.where(region, B_LINE.id, masks[3]))


def test_removing_the_review_leaves_the_clip_and_its_analysis(headless, analysed_clip):
    loaded, nodes, _ = analysed_clip
    started = review.start_mask_review(headless.scene, loaded.nodes)
    proxy_id, sequence_id = started.proxy.GetID(), started.sequence.GetID()
    review.remove_mask_review(headless.scene, started)
    assert headless.scene.GetNodeByID(proxy_id) is None and headless.scene.GetNodeByID(sequence_id) is None
    assert review.find_mask_review(headless.scene, loaded.nodes.browser) is None
    assert loaded.nodes.browser.IsSynchronizedSequenceNodeID(nodes.mask_sequence.GetID())


def test_the_segment_editor_is_pointed_at_the_review(headless, analysed_clip):
    loaded, _, _ = analysed_clip
    started = review.start_mask_review(headless.scene, loaded.nodes)
    editor = review.segment_editor_node(headless.scene, started)
    assert editor.GetSingletonTag() == review.SEGMENT_EDITOR_SINGLETON_TAG
    assert editor.GetSegmentationNode().GetID() == started.proxy.GetID()
    assert editor.GetSourceVolumeNode().GetID() == loaded.nodes.proxy.GetID()
    assert editor.GetSelectedSegmentID() == class_segment_id(B_LINE)
    assert review.segment_editor_node(headless.scene, started) is editor  # one parameter node per scene


def test_the_review_takes_the_place_of_the_models_masks_in_the_views(headless, analysed_clip):
    from LungUSBLinesLib import views
    from LungUSBLinesLib.slice_view import SliceView

    loaded, nodes, _ = analysed_clip
    layout_logic = views.new_layout_logic(headless.scene, headless.app_logic)
    try:
        views.show_results_views(layout_logic, headless.app_logic, None)
        with SliceView(headless.scene, "Red", width=64, height=48) as view:
            views.show_result_layers(headless.scene, nodes)
            assert view.composite_node.GetLabelVolumeID() == nodes.mask_proxy.GetID()
            started = review.start_mask_review(headless.scene, loaded.nodes)
            review.show_review(headless.scene, started)
            assert view.composite_node.GetLabelVolumeID() is None
            assert started.proxy.GetDisplayNode().GetVisibility()
            review.show_review(headless.scene, started, visible=False)
            assert not started.proxy.GetDisplayNode().GetVisibility()
    finally:
        layout_logic.SetMRMLScene(None)


def test_the_description_counts_edited_and_marked_frames(headless, analysed_clip):
    loaded, _, masks = analysed_clip
    started = review.start_mask_review(headless.scene, loaded.nodes)
    loaded.nodes.browser.SetSelectedItemNumber(2)
    review.paint_frame(headless.scene, started, "B-line", masks[2] == B_LINE.id, erase=True)
    started.mark_reviewed(4)
    assert (
        started.describe() == "Reviewed frames: 2 of 5 (1 edited, 1 marked as they were); this frame: edited"
    )


def test_painting_a_class_takes_the_pixel_from_the_class_it_had(headless, analysed_clip):
    loaded, _, masks = analysed_clip
    started = review.start_mask_review(headless.scene, loaded.nodes)
    pleura = masks[0] == 1
    nodes_before = headless.scene.GetNumberOfNodes()
    review.paint_frame(headless.scene, started, "B-line", pleura)
    assert (started.frame_labels(0)[pleura] == B_LINE.id).all()  # one class per pixel
    assert headless.scene.GetNumberOfNodes() == nodes_before  # its editor parameters are gone


@pytest.mark.parametrize(
    ("segment", "region", "message"),
    [
        ("background", np.ones((12, 16), bool), "'background' is not a segmentation class"),
        ("B-line", np.ones((16, 12), bool), "a 12x16 region for frames of 16x12 pixels"),
    ],
)
def test_painting_refuses_what_it_cannot_paint(headless, analysed_clip, segment, region, message):
    loaded, _, _ = analysed_clip
    started = review.start_mask_review(headless.scene, loaded.nodes)
    with pytest.raises(LungUSError, match=message):
        review.paint_frame(headless.scene, started, segment, region)
