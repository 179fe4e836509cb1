"""LungUSBLinesLib.views: the layout changes only when the clip or its curves would not be seen,
checked with Slicer's own layout logic, which makes the view nodes each layout shows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from LungUSBLinesLib import views  # noqa: E402

Layout = slicer.vtkMRMLLayoutNode
MODULE_FILE = Path(__file__).resolve().parents[2] / "LungUSBLines" / "LungUSBLines.py"


@pytest.fixture
def layout_logic(headless):
    logic = views.new_layout_logic(headless.scene, headless.app_logic)
    logic.GetLayoutNode().SetViewArrangement(Layout.SlicerLayoutConventionalView)  # Slicer's default
    yield logic
    logic.SetMRMLScene(None)  # before the scene is cleared: the logic observes it


@pytest.fixture
def charts(headless):
    return [headless.scene.AddNewNodeByClass("vtkMRMLPlotChartNode", name) for name in ("p(B)", "count")]


def _arrangement(layout_logic):
    return layout_logic.GetLayoutNode().GetViewArrangement()


def _plot_charts(layout_logic):
    return [v.GetPlotChartNodeID() for v in views.current_views(layout_logic) if v.IsA("vtkMRMLPlotViewNode")]


def _view_names(layout_logic):
    return [(v.GetClassName(), v.GetLayoutName()) for v in views.current_views(layout_logic)]


def test_results_shown_first_get_the_red_view_above_the_chart(headless, layout_logic, charts):
    assert views.show_results_views(layout_logic, headless.app_logic, charts[0])
    assert _arrangement(layout_logic) == views.RESULTS_LAYOUT_ID
    assert _view_names(layout_logic) == [("vtkMRMLSliceNode", "Red"), ("vtkMRMLPlotViewNode", "PlotView1")]
    assert views.clip_view(layout_logic).GetOrientation() == "Axial"
    assert _plot_charts(layout_logic) == [charts[0].GetID()]


def test_a_layout_the_user_chose_with_red_and_a_plot_is_kept(headless, layout_logic, charts):
    views.show_results_views(layout_logic, headless.app_logic, charts[0])
    layout_logic.GetLayoutNode().SetViewArrangement(Layout.SlicerLayoutConventionalPlotView)
    assert not views.show_results_views(layout_logic, headless.app_logic, charts[1])
    assert _arrangement(layout_logic) == Layout.SlicerLayoutConventionalPlotView
    assert _plot_charts(layout_logic) == [charts[1].GetID()]


@pytest.mark.parametrize(
    "users_layout",
    [Layout.SlicerLayoutConventionalView, Layout.SlicerLayoutOneUpPlotView],
    ids=["no plot view", "no Red view"],
)
def test_a_layout_without_red_or_a_plot_gets_the_results_layout_again(
    headless, layout_logic, charts, users_layout
):
    views.show_results_views(layout_logic, headless.app_logic, charts[0])
    layout_logic.GetLayoutNode().SetViewArrangement(users_layout)
    assert views.show_results_views(layout_logic, headless.app_logic, charts[0])
    assert _arrangement(layout_logic) == views.RESULTS_LAYOUT_ID


def test_a_maximized_yellow_view_is_not_taken_for_the_clip_view(headless, layout_logic, charts):
    views.show_results_views(layout_logic, headless.app_logic, charts[0])
    layout_logic.GetLayoutNode().SetViewArrangement(Layout.SlicerLayoutFourUpPlotView)
    layout_logic.MaximizeView(headless.scene.GetNodeByID("vtkMRMLSliceNodeYellow"))
    assert views.clip_view(layout_logic) is None
    assert views.show_results_views(layout_logic, headless.app_logic, charts[0])
    assert views.clip_view(layout_logic) is not None and views.shows_plot(layout_logic)


def test_showing_a_clip_keeps_a_layout_with_a_red_view_and_turns_red_axial(layout_logic):
    red = views.clip_view(layout_logic)
    red.SetOrientationToSagittal()
    assert not views.show_clip_view(layout_logic)
    assert _arrangement(layout_logic) == Layout.SlicerLayoutConventionalView
    assert red.GetOrientation() == "Axial"


def test_showing_a_clip_in_a_layout_without_red_switches_to_one_up_red(layout_logic):
    layout_logic.GetLayoutNode().SetViewArrangement(Layout.SlicerLayoutOneUp3DView)
    assert views.show_clip_view(layout_logic)
    assert _arrangement(layout_logic) == Layout.SlicerLayoutOneUpRedSliceView
    assert views.clip_view(layout_logic).GetOrientation() == "Axial"


def test_slicers_show_chart_in_layout_would_replace_the_results_layout(headless, layout_logic, charts):
    # Why views.py does not call it: Four-Up + plot, with Yellow and Green cutting the clip edge-on.
    views.show_results_views(layout_logic, headless.app_logic, charts[0])
    plots_logic = slicer.vtkSlicerPlotsLogic()
    plots_logic.SetMRMLApplicationLogic(headless.app_logic)
    plots_logic.SetMRMLScene(headless.scene)
    plots_logic.ShowChartInLayout(charts[1])
    assert _arrangement(layout_logic) == Layout.SlicerLayoutFourUpPlotView


def _calls(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            names.add(getattr(node.func, "attr", None) or getattr(node.func, "id", None))
    return names


def test_the_module_changes_layouts_only_through_views():
    calls = _calls(MODULE_FILE)
    assert not calls & {"ShowChartInLayout", "setLayout", "SetViewArrangement"}
    assert {"show_clip_view", "show_results_views"} <= calls
