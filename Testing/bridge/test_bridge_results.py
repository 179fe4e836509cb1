"""LungUSBLinesLib.results: a real Analyzer's results recorded beside the clip, in step with it."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from lungus.errors import Cancelled, LungUSError  # noqa: E402
from lungus.infer.results import FRAME_COLUMNS, clip_columns  # noqa: E402
from lungus.io import read_clip  # noqa: E402
from LungUSBLinesLib import results  # noqa: E402
from LungUSBLinesLib.analysis import AnalyzerCache, analyse_sequence, is_cancellation  # noqa: E402
from LungUSBLinesLib.clips import load_clip  # noqa: E402
from LungUSBLinesLib.colors import HEATMAP_COLOR_TABLE_NAME, SEGMENTATION_COLOR_TABLE_NAME  # noqa: E402
from LungUSBLinesLib.curves import chart_series, curve_values, marker_position  # noqa: E402
from LungUSBLinesLib.scene import new_headless_scene  # noqa: E402
from LungUSBLinesLib.storage import load_scene, save_scene  # noqa: E402
from LungUSBLinesLib.tables import table_columns, table_records  # noqa: E402


@pytest.fixture(scope="module")
def analyzer(tiny_models):
    return AnalyzerCache().get(tiny_models["classifier"], tiny_models["segmenter"], device="cpu")


@pytest.fixture
def loaded(headless, tiny_clip_paths):
    return load_clip(headless.scene, tiny_clip_paths[0])


@pytest.fixture
def analysis(analyzer, loaded):
    return analyse_sequence(analyzer, loaded.nodes.sequence, clip=loaded.clip, explain="gradcam")


@pytest.fixture
def recorded(headless, loaded, analysis):
    return results.add_analysis_to_scene(headless.scene, loaded.nodes, analysis)


def _varying_masks(analysis):
    """The untrained segmenter paints every frame alike; give analysed frame i a band of
    B-line pixels in row i so each frame's mask is its own."""
    seg = analysis.segmentation
    masks = np.zeros_like(seg.masks)
    for i in range(len(masks)):
        masks[i, 2 * i : 2 * i + 2, :] = 3
    return dataclasses.replace(analysis, segmentation=dataclasses.replace(seg, masks=masks))


def test_results_are_sequences_synchronized_in_the_clips_browser(recorded, loaded):
    browser = loaded.nodes.browser
    for sequence in (recorded.mask_sequence, recorded.heatmap_sequence, recorded.marker_sequence):
        assert browser.IsSynchronizedSequenceNodeID(sequence.GetID())
        assert sequence.GetNumberOfDataNodes() == loaded.nodes.sequence.GetNumberOfDataNodes() == 8
    assert recorded.mask_proxy.IsA("vtkMRMLLabelMapVolumeNode")
    assert recorded.heatmap_proxy.IsA("vtkMRMLScalarVolumeNode")
    assert not recorded.heatmap_proxy.IsA("vtkMRMLLabelMapVolumeNode")


def test_mask_proxy_follows_the_browser(headless, loaded, analysis):
    varying = _varying_masks(analysis)
    nodes = results.add_analysis_to_scene(headless.scene, loaded.nodes, varying)
    expected = varying.segmentation.original_masks(varying.n_frames)
    assert len({m.tobytes() for m in expected}) > 1
    for item in (5, 2, 7):
        loaded.nodes.browser.SetSelectedItemNumber(item)
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(nodes.mask_proxy)[0], expected[item])


def test_heat_map_proxy_follows_the_browser(recorded, loaded, analysis):
    expected = results.heatmap_frames(analysis)
    assert expected.max() > 0 and len({m.tobytes() for m in expected}) > 1
    for item in (6, 1):
        loaded.nodes.browser.SetSelectedItemNumber(item)
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(recorded.heatmap_proxy)[0], expected[item])


def test_masks_lie_exactly_over_their_frames(recorded, loaded):
    clip_frame = loaded.nodes.sequence.GetNthDataNode(0)
    mask = recorded.mask_sequence.GetNthDataNode(0)
    assert mask.GetImageData().GetDimensions() == clip_frame.GetImageData().GetDimensions()
    assert [mask.GetSpacing(), mask.GetOrigin()] == [clip_frame.GetSpacing(), clip_frame.GetOrigin()]
    assert [recorded.mask_sequence.GetNthIndexValue(i) for i in range(8)] == [
        loaded.nodes.sequence.GetNthIndexValue(i) for i in range(8)
    ]


def test_overlays_use_the_project_colour_tables(recorded):
    masks = recorded.mask_proxy.GetDisplayNode().GetColorNode()
    heat = recorded.heatmap_proxy.GetDisplayNode().GetColorNode()
    assert masks.GetName() == SEGMENTATION_COLOR_TABLE_NAME
    assert [masks.GetColorName(i) for i in range(1, 6)] == [
        "pleural line",
        "A-line",
        "B-line",
        "confluent B-line",
        "rib shadow",
    ]
    assert heat.GetName() == HEATMAP_COLOR_TABLE_NAME
    rgba = [0.0] * 4
    heat.GetColor(0, rgba)
    assert rgba[2] > 0.4 and rgba[0] == 0.0  # the weakest: blue (hidden by the threshold)
    heat.GetColor(255, rgba)
    assert rgba[0] > 0.4 and rgba[2] < 0.1 and rgba[3] == 1.0  # the strongest: opaque red
    display = recorded.heatmap_proxy.GetDisplayNode()
    assert display.GetApplyThreshold() and display.GetLowerThreshold() == results.HEATMAP_THRESHOLD_LEVEL


def test_scores_table_has_the_clips_csv_columns_and_the_clips_record(recorded, analysis):
    assert table_columns(recorded.scores_table) == clip_columns(["absent", "present"])
    [row] = table_records(recorded.scores_table)
    record = analysis.clip_record()
    assert row["pred"] == record["pred"] == recorded.record["pred"]
    assert row["p_present"] == pytest.approx(record["p_present"])
    assert row["n_frames"] == 8 and row["top_frame"] == analysis.top_frame == recorded.top_frame
    assert row["classifier"].startswith("tiny-cls") and row["segmenter"].startswith("tiny-seg")


def test_frame_curves_table_has_the_frames_csv_rows(recorded, analysis):
    assert table_columns(recorded.frames_table) == list(FRAME_COLUMNS)
    np.testing.assert_allclose(
        curve_values(recorded.frames_table, "p_blines"),
        [r["p_blines"] for r in analysis.frame_records()],
    )


def test_one_chart_per_curve_with_the_curve_and_a_time_marker(recorded, loaded):
    assert set(recorded.charts) == {"p_blines", "bline_count"}  # no pleural line found: no BLAS values
    for key, chart in recorded.charts.items():
        curve, marker = chart_series(chart)
        assert curve.GetTableNodeID() == recorded.frames_table.GetID() and curve.GetYColumnName() == key
        assert marker.GetTableNodeID() == recorded.marker_table.GetID()
        assert chart.GetXAxisTitle() == "time (s)"
    loaded.nodes.browser.SetSelectedItemNumber(5)
    assert marker_position(recorded.marker_table) == pytest.approx(5 / 25.0)


def test_jump_to_the_top_frame_selects_it(recorded, loaded):
    assert results.jump_to_frame(loaded.nodes.browser, recorded.top_frame) == recorded.top_frame
    assert loaded.nodes.browser.GetSelectedItemNumber() == recorded.top_frame
    with pytest.raises(LungUSError, match="outside the clip"):
        results.jump_to_frame(loaded.nodes.browser, 8)


def test_analysing_again_replaces_the_previous_results(headless, recorded, loaded, analysis):
    counts = {
        c: headless.scene.GetNumberOfNodesByClass(c) for c in ("vtkMRMLSequenceNode", "vtkMRMLTableNode")
    }
    again = results.add_analysis_to_scene(headless.scene, loaded.nodes, analysis)
    assert {c: headless.scene.GetNumberOfNodesByClass(c) for c in counts} == counts
    assert loaded.nodes.browser.GetNumberOfSynchronizedSequenceNodes() == 3
    assert results.find_analysis(headless.scene, loaded.nodes.browser).scores_table.GetID() == (
        again.scores_table.GetID()
    )


def test_removing_results_leaves_only_the_clip(headless, recorded, loaded):
    results.remove_analysis(headless.scene, recorded)
    assert results.find_analysis(headless.scene, loaded.nodes.browser) is None
    assert loaded.nodes.browser.GetNumberOfSynchronizedSequenceNodes() == 0
    for node_class in (
        "vtkMRMLTableNode",
        "vtkMRMLPlotChartNode",
        "vtkMRMLPlotSeriesNode",
        "vtkMRMLLabelMapVolumeNode",
    ):
        assert headless.scene.GetNumberOfNodesByClass(node_class) == 0
    assert headless.scene.GetNumberOfNodesByClass("vtkMRMLSequenceNode") == 1


def test_results_survive_a_scene_bundle_round_trip(headless, recorded, tmp_path):
    path = save_scene(headless.scene, tmp_path / "review.mrb")
    with new_headless_scene(tmp_path / "reload") as reloaded:
        load_scene(reloaded.scene, path)
        browser = reloaded.scene.GetFirstNodeByClass("vtkMRMLSequenceBrowserNode")
        found = results.find_analysis(reloaded.scene, browser)
        assert found is not None and set(found.charts) == set(recorded.charts)
        assert found.mask_sequence.GetNumberOfDataNodes() == 8
        assert found.record == recorded.record
        browser.SetSelectedItemNumber(3)
        original = recorded.mask_sequence.GetNthDataNode(3)
        np.testing.assert_array_equal(
            slicer.util.arrayFromVolume(found.mask_proxy), slicer.util.arrayFromVolume(original)
        )
        assert marker_position(found.marker_table) == pytest.approx(3 / 25.0)
        assert found.mask_proxy.GetDisplayNode().GetColorNode().GetName() == SEGMENTATION_COLOR_TABLE_NAME


def test_saved_results_read_back_with_lungus(recorded, analysis, tmp_path):
    written = results.save_analysis(recorded, tmp_path)
    masks = read_clip(written["masks"], fan=False)
    np.testing.assert_array_equal(masks.frames, analysis.segmentation.original_masks(8))
    heat = read_clip(written["heatmap"], fan=False)
    np.testing.assert_array_equal(heat.frames, results.heatmap_frames(analysis))
    header = written["clip_scores"].read_text().splitlines()[0]
    assert header.split(",") == clip_columns(["absent", "present"])
    assert len(written["frame_curves"].read_text().splitlines()) == 1 + len(analysis.frames)


def test_an_analysis_of_another_clip_is_refused(headless, loaded, analyzer, small_frames):
    other = analyzer.analyse(np.repeat(np.repeat(small_frames, 8, 1), 8, 2)[:3], fps=10.0)
    with pytest.raises(LungUSError, match="covers 3 frames"):
        results.add_analysis_to_scene(headless.scene, loaded.nodes, other)


def test_progress_reaches_the_end(analyzer, loaded):
    seen = []
    analyse_sequence(analyzer, loaded.nodes.sequence, progress=lambda done, total, what: seen.append((done / total, what)))
    assert seen[-1] == (1.0, "done") and [f for f, _ in seen] == sorted(f for f, _ in seen)


def test_a_cancelled_analysis_raises_the_engines_one_cancellation_type(analyzer, loaded):
    # The panel and scripts tell "stopped on request" from a failure by this type (isCancellation).
    with pytest.raises(Cancelled) as stopped:
        analyse_sequence(analyzer, loaded.nodes.sequence, cancel=lambda: True)
    assert is_cancellation(stopped.value)


def test_only_the_engines_cancellation_type_counts_as_one():
    class Cancelled(Exception):  # the same name is not the same type
        pass

    assert not is_cancellation(Cancelled()) and not is_cancellation(LungUSError("failed"))


def test_a_sequence_slicer_loaded_is_analysed_from_its_frames(headless, analyzer, tiny_clip_paths):
    from LungUSBLinesLib.sequences import clip_to_sequence

    clip = read_clip(tiny_clip_paths[1])
    nodes = clip_to_sequence(headless.scene, dataclasses.replace(clip, source=None), "from Slicer")
    result = analyse_sequence(analyzer, nodes.sequence)
    assert result.clip == "from Slicer" and result.n_frames == 8 and result.pred in ("absent", "present")


def test_record_describes_the_clip(recorded):
    text = results.describe_analysis(recorded.record)
    assert text.splitlines()[0].startswith(f"Prediction (bline2): {recorded.record['pred']}")
    assert f"Top frame: {recorded.top_frame}" in text and "Models: classifier tiny-cls" in text
    assert json.loads(recorded.scores_table.GetAttribute(results.RECORD_ATTRIBUTE))["n_frames"] == 8


def test_a_segmenter_alone_gives_masks_and_counts_but_no_classes(headless, loaded, tiny_models):
    analyzer = AnalyzerCache().get(None, tiny_models["segmenter"], device="cpu")
    analysis = analyse_sequence(analyzer, loaded.nodes.sequence, clip=loaded.clip, explain="gradcam")
    nodes = results.add_analysis_to_scene(headless.scene, loaded.nodes, analysis)
    assert nodes.heatmap_sequence is None and nodes.mask_sequence.GetNumberOfDataNodes() == 8
    assert set(nodes.charts) == {"bline_count"}
    assert table_columns(nodes.scores_table) == clip_columns(None)
    assert nodes.record["pred"] is None and results.describe_analysis(nodes.record).startswith(
        "B-lines per frame"
    )
