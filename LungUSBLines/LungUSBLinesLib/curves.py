"""Per-frame curves of an analysis as plots, with a time marker that follows the clip.

The curves (p_blines, bline_count, blas per frame; frames.csv columns) live in one table node;
each quantity gets its own chart, since they have different units. The marker is a vertical
line at the frame on show: a small table per frame, kept in a sequence synchronized in the
clip's browser, so the browser itself moves it (no observer, also after a scene is reloaded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import slicer
import vtk


@dataclass(frozen=True)
class CurveSpec:
    key: str  # frames.csv column
    title: str
    y_title: str
    color: tuple[float, float, float]


CURVES: tuple[CurveSpec, ...] = (
    CurveSpec("p_blines", "B-line evidence", "p(B-lines)", (0.2, 0.4, 1.0)),
    CurveSpec("bline_count", "B-line count", "B-lines in the frame", (0.16, 0.86, 0.16)),
    CurveSpec("blas", "B-line artefact score", "BLAS (%)", (0.9, 0.6, 0.0)),
)
CURVE_KEYS = tuple(spec.key for spec in CURVES)
MARKER_X = "x"
MARKER_COLOR = (1.0, 0.2, 0.2)
#: Attribute on a chart node naming the frames.csv column it plots.
CURVE_ATTRIBUTE = "LungUS.Curve"


def curve_keys(records: list[dict[str, Any]]) -> list[str]:
    """The curves that have at least one value in the frame records."""
    return [key for key in CURVE_KEYS if any(r.get(key) is not None for r in records)]


def x_column(fps: float | None) -> tuple[str, str]:
    """(frames.csv column, axis title) of the time axis: seconds when the frame rate is known."""
    return ("time_s", "time (s)") if fps else ("frame", "frame")


def _marker_top(key: str, records: list[dict[str, Any]]) -> float:
    if key == "p_blines":
        return 1.0
    values = [r[key] for r in records if r.get(key) is not None]
    return max(1.0, float(max(values))) if values else 1.0


def marker_sequence(
    scene: Any,
    clip_sequence: Any,
    fps: float | None,
    records: list[dict[str, Any]],
    keys: list[str],
    name: str,
) -> Any:
    """A sequence of two-row tables, one per clip item: x = the item's time (or frame number),
    and per curve y from 0 to the curve's top, so each chart draws a vertical line."""
    n_items = clip_sequence.GetNumberOfDataNodes()
    tops = {key: _marker_top(key, records) for key in keys}
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", name)
    sequence.SetIndexName(clip_sequence.GetIndexName())
    sequence.SetIndexUnit(clip_sequence.GetIndexUnit())
    sequence.SetIndexType(clip_sequence.GetIndexType())
    was_modifying = sequence.StartModify()
    template = slicer.vtkMRMLTableNode()
    for i in range(n_items):
        data = vtk.vtkTable()
        x = vtk.vtkDoubleArray()
        x.SetName(MARKER_X)
        position = round(i / fps, 4) if fps else float(i)
        x.InsertNextValue(position)
        x.InsertNextValue(position)
        data.AddColumn(x)
        for key in keys:
            y = vtk.vtkDoubleArray()
            y.SetName(key)
            y.InsertNextValue(0.0)
            y.InsertNextValue(tops[key])
            data.AddColumn(y)
        template.SetAndObserveTable(data)
        sequence.SetDataNodeAtValue(template, clip_sequence.GetNthIndexValue(i))
    sequence.EndModify(was_modifying)
    return sequence


def _series(
    scene: Any, name: str, table: Any, x: str, y: str, color: tuple[float, float, float], marker_style: int
) -> Any:
    series = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", name)
    series.SetAndObserveTableNodeID(table.GetID())
    series.SetXColumnName(x)
    series.SetYColumnName(y)
    series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
    series.SetMarkerStyle(marker_style)
    series.SetColor(*color)
    return series


def curve_charts(
    scene: Any,
    frames_table: Any,
    marker_table: Any,
    keys: list[str],
    fps: float | None,
    name: str,
) -> dict[str, Any]:
    """One chart per curve key: the curve from ``frames_table`` and the time marker from
    ``marker_table`` (the marker sequence's proxy in the clip's browser)."""
    x, x_title = x_column(fps)
    charts = {}
    for spec in (s for s in CURVES if s.key in keys):
        chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", f"{name} {spec.title}")
        chart.SetAttribute(CURVE_ATTRIBUTE, spec.key)
        chart.SetTitle(f"{spec.title}: {name}")
        chart.SetXAxisTitle(x_title)
        chart.SetYAxisTitle(spec.y_title)
        chart.SetLegendVisibility(False)
        curve = _series(
            scene,
            f"{name} {spec.key}",
            frames_table,
            x,
            spec.key,
            spec.color,
            slicer.vtkMRMLPlotSeriesNode.MarkerStyleCircle,
        )
        marker = _series(
            scene,
            f"{name} {spec.key} time marker",
            marker_table,
            MARKER_X,
            spec.key,
            MARKER_COLOR,
            slicer.vtkMRMLPlotSeriesNode.MarkerStyleNone,
        )
        chart.AddAndObservePlotSeriesNodeID(curve.GetID())
        chart.AddAndObservePlotSeriesNodeID(marker.GetID())
        charts[spec.key] = chart
    return charts


def chart_series(chart: Any) -> list[Any]:
    return [chart.GetNthPlotSeriesNode(i) for i in range(chart.GetNumberOfPlotSeriesNodes())]


def marker_position(marker_table: Any) -> float:
    """Where the time marker stands (the x of its first row)."""
    return float(marker_table.GetTable().GetValue(0, 0).ToDouble())


def curve_values(frames_table: Any, key: str) -> np.ndarray:
    """A curve's values (NaN where empty) from the frames table."""
    column = frames_table.GetTable().GetColumnByName(key)
    if column is None or not column.IsA("vtkDataArray"):
        return np.full(frames_table.GetNumberOfRows(), np.nan)
    return np.array([column.GetValue(i) for i in range(column.GetNumberOfTuples())], dtype=float)
