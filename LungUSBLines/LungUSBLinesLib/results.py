"""Record what inference says about a clip in the scene, beside the clip, playing with it.

:func:`add_analysis_to_scene` turns a lungus.infer ClipAnalysis into nodes (results
are sequences synchronized in the clip's own browser):

- the segmentation: a labelmap volume sequence, one mask per clip frame, shown with the
  segmentation-class colour table;
- the explanation (Grad-CAM, CAM or attention): a scalar volume sequence of 0-255 heat maps
  with the heat-map colour table (weak evidence transparent);
- the per-frame curves: a table (frames.csv columns) and one plot chart per curve, each with a
  time marker that follows the browser (see LungUSBLinesLib.curves);
- the per-clip scores: a one-row table with the clips.csv columns.

The browser node references every result node, so :func:`find_analysis` finds them again,
also in a scene read back from a .mrb bundle.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lungus.errors import LungUSError
from LungUSBLinesLib.colors import heatmap_color_table, segmentation_color_table
from LungUSBLinesLib.curves import CURVE_ATTRIBUTE, chart_series, curve_charts, curve_keys, marker_sequence
from LungUSBLinesLib.sequences import add_synchronized_sequence, frames_like_sequence
from LungUSBLinesLib.tables import records_to_table, table_columns, table_records, write_records_csv

if TYPE_CHECKING:
    from lungus.infer.results import ClipAnalysis

# Node-reference roles on the clip's browser node.
MASKS_ROLE = "LungUS.Masks"
HEATMAP_ROLE = "LungUS.HeatMap"
FRAMES_TABLE_ROLE = "LungUS.FrameCurves"
SCORES_TABLE_ROLE = "LungUS.ClipScores"
MARKER_ROLE = "LungUS.TimeMarker"
CHART_ROLE = "LungUS.Chart"
#: On the scores table: the clip's record as JSON (clips.csv fields, class distribution, top frames).
RECORD_ATTRIBUTE = "LungUS.ClipRecord"
HEATMAP_LEVELS = 255
#: Heat-map values below this fraction of the map's range are not drawn: weak evidence would
#: otherwise tint most of the fan (Slicer draws a scalar overlay's pixel fully or not at all).
HEATMAP_THRESHOLD = 0.25
#: The lowest 0-255 heat-map value drawn.
HEATMAP_THRESHOLD_LEVEL = round(HEATMAP_THRESHOLD * HEATMAP_LEVELS)


@dataclass
class AnalysisNodes:
    """The nodes holding one clip's results (see the module docstring)."""

    browser: Any
    clip_sequence: Any
    scores_table: Any
    frames_table: Any
    marker_sequence: Any
    charts: dict[str, Any] = field(default_factory=dict)  # curve key -> vtkMRMLPlotChartNode
    mask_sequence: Any | None = None
    heatmap_sequence: Any | None = None

    def _proxy(self, sequence: Any | None) -> Any | None:
        return None if sequence is None else self.browser.GetProxyNode(sequence)

    @property
    def mask_proxy(self) -> Any | None:
        """The labelmap volume showing the current frame's mask (None without a segmenter)."""
        return self._proxy(self.mask_sequence)

    @property
    def heatmap_proxy(self) -> Any | None:
        """The scalar volume showing the current frame's heat map (None without an explanation)."""
        return self._proxy(self.heatmap_sequence)

    @property
    def marker_table(self) -> Any | None:
        return self._proxy(self.marker_sequence)

    @property
    def record(self) -> dict[str, Any]:
        """The clip's record (clips.csv fields, ``probabilities``, ``top_frames``)."""
        text = self.scores_table.GetAttribute(RECORD_ATTRIBUTE)
        if text:
            try:
                return json.loads(text)
            except ValueError:
                pass
        records = table_records(self.scores_table)
        return records[0] if records else {}

    @property
    def top_frame(self) -> int | None:
        top = self.record.get("top_frame")
        return None if top is None else int(top)

    def result_nodes(self) -> list[Any]:
        """Every node of the analysis except the clip's own (for removal), charts' series included."""
        nodes = [self.scores_table, self.frames_table, self.marker_sequence]
        nodes += [n for n in (self.mask_sequence, self.heatmap_sequence) if n is not None]
        for chart in self.charts.values():
            nodes += [*chart_series(chart), chart]
        return [n for n in nodes if n is not None]


def clip_browser(clip_nodes: Any) -> Any:
    """The sequence browser of a clip's ClipNodes (or the browser itself), checked to play a clip."""
    browser = getattr(clip_nodes, "browser", clip_nodes)
    if browser is None or not browser.IsA("vtkMRMLSequenceBrowserNode"):
        raise LungUSError("this needs a clip's sequence browser; select a loaded clip")
    if browser.GetMasterSequenceNode() is None:
        raise LungUSError(f"sequence browser {browser.GetName()!r} plays no sequence")
    return browser


def _result_name(analysis: ClipAnalysis, clip_sequence: Any) -> str:
    return clip_sequence.GetName() or Path(str(analysis.clip)).stem or "clip"


def heatmap_frames(analysis: ClipAnalysis) -> np.ndarray:
    """uint8 (T, H, W) explanation maps (0-255) over the original frames; frames the classifier
    skipped show the map of the nearest analysed frame."""
    from lungus.infer.results import nearest

    explanation = analysis.explanation
    if explanation is None:
        raise LungUSError("the analysis holds no explanation (analyse with explain='gradcam')")
    which = nearest(explanation.source_frames, analysis.n_frames)
    maps = {int(p): explanation.original_map(int(p)) for p in np.unique(which)}
    heat = np.stack([maps[int(p)] for p in which])
    return np.round(np.clip(heat, 0.0, 1.0) * HEATMAP_LEVELS).astype(np.uint8)


def _record_json(analysis: ClipAnalysis) -> dict[str, Any]:
    record = analysis.to_json()
    for bulky in ("frames", "fan"):
        record.pop(bulky, None)
    return record


def _show_masks(proxy: Any, scene: Any) -> None:
    proxy.CreateDefaultDisplayNodes()
    proxy.GetDisplayNode().SetAndObserveColorNodeID(segmentation_color_table(scene).GetID())


def _show_heatmap(proxy: Any, scene: Any) -> None:
    proxy.CreateDefaultDisplayNodes()
    display = proxy.GetDisplayNode()
    display.SetAndObserveColorNodeID(heatmap_color_table(scene).GetID())
    # The full 0-255 range on the colour ramp, so a colour means the same evidence in every
    # frame and clip (and as in `lungus infer` overlays); no auto window/level per frame.
    display.SetAutoWindowLevel(False)
    display.SetWindowLevelMinMax(0, HEATMAP_LEVELS)
    # The fade: the colour table's alpha does not reach the view, the threshold does. Nothing is
    # drawn below it (cold regions, outside the fan); everything above it is.
    display.SetAutoThreshold(False)
    display.SetThreshold(HEATMAP_THRESHOLD_LEVEL, HEATMAP_LEVELS)
    display.SetApplyThreshold(True)
    display.SetInterpolate(True)


def add_analysis_to_scene(
    scene: Any,
    clip_nodes: Any,
    analysis: ClipAnalysis,
    *,
    replace: bool = True,
) -> AnalysisNodes:
    """Record ``analysis`` in ``scene`` beside the clip it analysed.

    ``clip_nodes``: the clip's ClipNodes (as load_clip / clip_to_sequence return) or its
    sequence browser node. The analysis must cover the clip frame for frame (as many frames
    as the browser's sequence has items). With ``replace`` the clip's previous results are
    removed first.
    """
    browser = clip_browser(clip_nodes)
    clip_sequence = browser.GetMasterSequenceNode()
    n_items = clip_sequence.GetNumberOfDataNodes()
    if analysis.n_frames != n_items:
        raise LungUSError(
            f"the analysis covers {analysis.n_frames} frames but clip {clip_sequence.GetName()!r} "
            f"has {n_items}; analyse the clip that is in the scene"
        )
    if replace:
        previous = find_analysis(scene, browser)
        if previous is not None:
            remove_analysis(scene, previous)
    from lungus.infer.results import FRAME_COLUMNS, clip_columns

    name = _result_name(analysis, clip_sequence)
    record = _record_json(analysis)
    scores = records_to_table(scene, clip_columns(analysis.class_names), [record], f"{name} clip scores")
    scores.SetAttribute(RECORD_ATTRIBUTE, json.dumps(record, ensure_ascii=False))
    frame_records = analysis.frame_records()
    frames_table = records_to_table(scene, FRAME_COLUMNS, frame_records, f"{name} frame curves")

    mask_sequence = heatmap_sequence = None
    if analysis.segmentation is not None:
        masks = analysis.segmentation.original_masks(n_items)
        mask_sequence = frames_like_sequence(
            scene, masks, f"{name} B-line segmentation", clip_sequence, node_class="vtkMRMLLabelMapVolumeNode"
        )
        _show_masks(add_synchronized_sequence(browser, mask_sequence), scene)
    if analysis.explanation is not None:
        heatmap_sequence = frames_like_sequence(
            scene, heatmap_frames(analysis), f"{name} {analysis.explanation.method}", clip_sequence
        )
        _show_heatmap(add_synchronized_sequence(browser, heatmap_sequence), scene)

    keys = curve_keys(frame_records)
    marker = marker_sequence(scene, clip_sequence, analysis.fps, frame_records, keys, f"{name} time marker")
    marker_table = add_synchronized_sequence(browser, marker)
    marker_table.SetHideFromEditors(True)  # an implementation detail of the charts
    charts = curve_charts(scene, frames_table, marker_table, keys, analysis.fps, name)

    nodes = AnalysisNodes(
        browser=browser,
        clip_sequence=clip_sequence,
        scores_table=scores,
        frames_table=frames_table,
        marker_sequence=marker,
        charts=charts,
        mask_sequence=mask_sequence,
        heatmap_sequence=heatmap_sequence,
    )
    _reference(browser, nodes)
    return nodes


def _reference(browser: Any, nodes: AnalysisNodes) -> None:
    for role, node in (
        (SCORES_TABLE_ROLE, nodes.scores_table),
        (FRAMES_TABLE_ROLE, nodes.frames_table),
        (MARKER_ROLE, nodes.marker_sequence),
        (MASKS_ROLE, nodes.mask_sequence),
        (HEATMAP_ROLE, nodes.heatmap_sequence),
    ):
        browser.SetNodeReferenceID(role, None if node is None else node.GetID())
    browser.RemoveNodeReferenceIDs(CHART_ROLE)
    for chart in nodes.charts.values():
        browser.AddNodeReferenceID(CHART_ROLE, chart.GetID())


def find_analysis(scene: Any, browser: Any) -> AnalysisNodes | None:
    """The results recorded for the clip of ``browser``, or None if it has none."""
    if browser is None:
        return None
    scores = browser.GetNodeReference(SCORES_TABLE_ROLE)
    frames_table = browser.GetNodeReference(FRAMES_TABLE_ROLE)
    marker = browser.GetNodeReference(MARKER_ROLE)
    if scores is None or frames_table is None or marker is None:
        return None
    charts = {}
    for i in range(browser.GetNumberOfNodeReferences(CHART_ROLE)):
        chart = browser.GetNthNodeReference(CHART_ROLE, i)
        if chart is not None:
            charts[chart.GetAttribute(CURVE_ATTRIBUTE) or f"chart{i}"] = chart
    return AnalysisNodes(
        browser=browser,
        clip_sequence=browser.GetMasterSequenceNode(),
        scores_table=scores,
        frames_table=frames_table,
        marker_sequence=marker,
        charts=charts,
        mask_sequence=browser.GetNodeReference(MASKS_ROLE),
        heatmap_sequence=browser.GetNodeReference(HEATMAP_ROLE),
    )


def _remove_with_helpers(scene: Any, node: Any) -> None:
    helpers = []
    if node.IsA("vtkMRMLDisplayableNode"):
        helpers += [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())]
    if node.IsA("vtkMRMLStorableNode"):
        helpers.append(node.GetStorageNode())
    scene.RemoveNode(node)
    for helper in helpers:
        if helper is not None and scene.IsNodePresent(helper):
            scene.RemoveNode(helper)


def remove_analysis(scene: Any, nodes: AnalysisNodes) -> None:
    """Take a clip's results out of the scene (its sequences leave the browser, their proxies go)."""
    browser = nodes.browser
    for sequence in (nodes.mask_sequence, nodes.heatmap_sequence, nodes.marker_sequence):
        if sequence is None:
            continue
        proxy = browser.GetProxyNode(sequence)
        browser.RemoveSynchronizedSequenceNode(sequence.GetID())
        if proxy is not None and scene.IsNodePresent(proxy):
            _remove_with_helpers(scene, proxy)
    for node in nodes.result_nodes():
        if scene.IsNodePresent(node):
            _remove_with_helpers(scene, node)
    for role in (SCORES_TABLE_ROLE, FRAMES_TABLE_ROLE, MARKER_ROLE, MASKS_ROLE, HEATMAP_ROLE, CHART_ROLE):
        browser.RemoveNodeReferenceIDs(role)


def jump_to_frame(browser: Any, frame: int | None) -> int:
    """Show clip frame ``frame`` (its item in the browser); returns the item shown."""
    n_items = browser.GetNumberOfItems()
    if frame is None:
        raise LungUSError("this analysis names no top frame")
    if not 0 <= int(frame) < n_items:
        raise LungUSError(f"frame {frame} is outside the clip (frames 0-{n_items - 1})")
    browser.SetSelectedItemNumber(int(frame))
    return int(frame)


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def describe_analysis(record: dict[str, Any]) -> str:
    """Readable lines for a clip's record (what the review panel shows)."""
    lines = []
    if record.get("pred") is not None:
        probabilities = record.get("probabilities") or {
            key[2:]: value for key, value in record.items() if key.startswith("p_") and key != "p_blines"
        }
        shares = ", ".join(f"{name} {_number(p, 2)}" for name, p in probabilities.items())
        # The model card's decision threshold, where it has one (docs/evaluation.md#operating-points).
        cut = f", B-lines at P >= {_number(record['threshold'], 2)}" if record.get("threshold") is not None else ""
        lines.append(f"Prediction ({record.get('task')}{cut}): {record['pred']}  [{shares}]")
    if record.get("bline_count_max") is not None:
        lines.append(
            f"B-lines per frame: max {record['bline_count_max']}, mean {_number(record.get('bline_count_mean'))}; "
            f"frames with B-lines: {record.get('frames_with_blines')} of {record.get('n_frames')}"
        )
        if record.get("blas_max") is not None:
            lines.append(
                f"B-line artefact score: max {_number(record['blas_max'])}%, "
                f"mean {_number(record.get('blas_mean'))}%"
            )
        else:
            lines.append("B-line artefact score: - (no pleural line found)")
    top = record.get("top_frame")
    if top is not None:
        text = f"Top frame: {top}"
        if record.get("fps"):
            text += f" (t = {int(top) / float(record['fps']):.2f} s)"
        lines.append(text)
    top_frames = record.get("top_frames") or []
    if top_frames:
        lines.append(
            "Most B-line evidence: "
            + ", ".join(f"frame {t['frame']} ({t['p_blines']:.2f})" for t in top_frames)
        )
    models = [f"{kind} {record[kind]}" for kind in ("classifier", "segmenter") if record.get(kind)]
    if models:
        lines.append("Models: " + "; ".join(models))
    if record.get("error"):
        lines.append(f"Error: {record['error']}")
    return "\n".join(lines)


def _file_stem(name: str) -> str:
    return re.sub(r"[^\w\-]+", "_", name).strip("_") or "clip"


def save_analysis(
    nodes: AnalysisNodes, folder: str | os.PathLike, stem: str | None = None
) -> dict[str, Path]:
    """Write a clip's results into ``folder``: ``<stem>.clip.csv`` (clips.csv columns),
    ``<stem>.frames.csv`` (frames.csv columns), and the mask and heat-map sequences as
    ``.seq.nrrd`` files Slicer and lungus read. Returns {kind: path}."""
    from LungUSBLinesLib.storage import save_sequence

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise LungUSError("the folder does not exist", folder)
    stem = _file_stem(stem or nodes.clip_sequence.GetName())
    written = {
        "clip_scores": write_records_csv(
            folder / f"{stem}.clip.csv", table_columns(nodes.scores_table), table_records(nodes.scores_table)
        ),
        "frame_curves": write_records_csv(
            folder / f"{stem}.frames.csv",
            table_columns(nodes.frames_table),
            table_records(nodes.frames_table),
        ),
    }
    if nodes.mask_sequence is not None:
        written["masks"] = save_sequence(nodes.mask_sequence, folder / f"{stem}.masks.seq.nrrd")
    if nodes.heatmap_sequence is not None:
        written["heatmap"] = save_sequence(nodes.heatmap_sequence, folder / f"{stem}.heatmap.seq.nrrd")
    return written
