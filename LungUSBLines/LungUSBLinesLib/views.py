"""Which views show a clip and its results, with which layers, and when to change the layout.

A clip is a stack of 2-D frames in the axial plane (LungUSBLinesLib.sequences), so it is seen
in the Red slice view, axial; its per-frame curves are seen in a plot view. The module changes
the view layout only when it must:

- a clip is shown: only when the layout has no Red slice view (then One-Up Red);
- results are shown: the first time in a scene, and later only when the layout has no Red
  slice view or no plot view (then the results layout: Red above a plot). Otherwise the user's
  layout stays, and the chart goes to whatever plot views it has.

Slicer's ``vtkSlicerPlotsLogic::ShowChartInLayout`` is not used: it replaces every layout it
does not know, the results layout included, with Four-Up + plot, whose Yellow and Green views
cut the clip edge-on. The chart is shown as that method shows it, through the selection node.

Everything here takes Slicer's own vtkMRMLLayoutLogic (``slicer.app.layoutManager().layoutLogic()``
in Slicer, :func:`new_layout_logic` outside it) and application logic, so it runs headless.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import slicer

if TYPE_CHECKING:
    from LungUSBLinesLib.results import AnalysisNodes

#: The slice view that shows clips (axial: a clip's frames lie in the axial plane).
CLIP_VIEW = "Red"
#: A view layout for results: the clip's slice view above its per-frame curve.
RESULTS_LAYOUT_ID = 27410
RESULTS_LAYOUT = """
<layout type="vertical" split="true">
 <item splitSize="650">
  <view class="vtkMRMLSliceNode" singletontag="Red">
   <property name="orientation" action="default">Axial</property>
   <property name="viewlabel" action="default">R</property>
   <property name="viewcolor" action="default">#F34A33</property>
  </view>
 </item>
 <item splitSize="350">
  <view class="vtkMRMLPlotViewNode" singletontag="PlotView1">
   <property name="viewlabel" action="default">P</property>
  </view>
 </item>
</layout>
"""
#: Layer opacities of the results over the clip: the heat map (foreground), the segmentation (label).
HEATMAP_OPACITY = 0.6
SEGMENTATION_OPACITY = 0.5
# On the layout node (saved with the scene): results have been shown in this scene once.
_RESULTS_SHOWN_ATTRIBUTE = "LungUS.ResultsLayoutShown"


def new_layout_logic(scene: Any, app_logic: Any) -> Any:
    """A vtkMRMLLayoutLogic on ``scene``, as Slicer's layout manager makes one (outside Slicer:
    tests, scripts). It creates the layout node and the view nodes each layout needs."""
    layout_logic = slicer.vtkMRMLLayoutLogic()
    layout_logic.SetMRMLApplicationLogic(app_logic)
    layout_logic.SetMRMLScene(scene)
    return layout_logic


def current_views(layout_logic: Any) -> list[Any]:
    """The view nodes the current layout shows (one, when a view is maximized)."""
    views = layout_logic.GetViewNodes()
    return [views.GetItemAsObject(i) for i in range(views.GetNumberOfItems())]


def clip_view(layout_logic: Any) -> Any | None:
    """The Red slice node when the current layout shows it, else None."""
    for view in current_views(layout_logic):
        if view.IsA("vtkMRMLSliceNode") and view.GetLayoutName() == CLIP_VIEW:
            return view
    return None


def shows_plot(layout_logic: Any) -> bool:
    """Whether the current layout has a plot view."""
    return any(view.IsA("vtkMRMLPlotViewNode") for view in current_views(layout_logic))


def _set_arrangement(layout_logic: Any, arrangement: int) -> None:
    layout_node = layout_logic.GetLayoutNode()
    if arrangement == RESULTS_LAYOUT_ID and not layout_node.IsLayoutDescription(RESULTS_LAYOUT_ID):
        layout_node.AddLayoutDescription(RESULTS_LAYOUT_ID, RESULTS_LAYOUT)
    layout_node.SetViewArrangement(arrangement)


def show_clip_view(layout_logic: Any) -> bool:
    """Make sure the Red slice view is shown, axial. Switches to One-Up Red only when the
    current layout has no Red view; returns whether it switched."""
    switched = clip_view(layout_logic) is None
    if switched:
        _set_arrangement(layout_logic, slicer.vtkMRMLLayoutNode.SlicerLayoutOneUpRedSliceView)
    clip_view(layout_logic).SetOrientationToAxial()
    return switched


def show_results_views(layout_logic: Any, app_logic: Any, chart: Any | None) -> bool:
    """Show the Red slice view (axial) and ``chart`` in the plot views.

    Switches to the results layout the first time results are shown in the scene, or when the
    current layout lacks a Red slice view or a plot view; returns whether it switched (the
    caller then fits the slice views).
    """
    layout_node = layout_logic.GetLayoutNode()
    first_time = layout_node.GetAttribute(_RESULTS_SHOWN_ATTRIBUTE) != "1"
    switched = first_time or clip_view(layout_logic) is None or not shows_plot(layout_logic)
    if switched:
        _set_arrangement(layout_logic, RESULTS_LAYOUT_ID)
        layout_node.SetAttribute(_RESULTS_SHOWN_ATTRIBUTE, "1")
    clip_view(layout_logic).SetOrientationToAxial()
    selection = app_logic.GetSelectionNode()
    selection.SetActivePlotChartID(None if chart is None else chart.GetID())
    app_logic.PropagatePlotChartSelection()
    return switched


def show_result_layers(
    scene: Any, nodes: AnalysisNodes, *, segmentation: bool = True, heatmap: bool = True
) -> None:
    """Every slice view shows the clip (background) with its heat map (foreground) and its
    segmentation (label layer) when asked and recorded, as ``slicer.util.setSliceViewerLayers``
    would set them."""
    clip = nodes.browser.GetProxyNode(nodes.clip_sequence)
    heat = nodes.heatmap_proxy if heatmap else None
    masks = nodes.mask_proxy if segmentation else None
    composites = scene.GetNodesByClass("vtkMRMLSliceCompositeNode")
    for i in range(composites.GetNumberOfItems()):
        composite = composites.GetItemAsObject(i)
        composite.SetBackgroundVolumeID(clip.GetID())
        composite.SetForegroundVolumeID(None if heat is None else heat.GetID())
        composite.SetForegroundOpacity(HEATMAP_OPACITY)
        composite.SetLabelVolumeID(None if masks is None else masks.GetID())
        composite.SetLabelOpacity(SEGMENTATION_OPACITY)
