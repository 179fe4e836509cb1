"""What the user sees: the Red slice view after an analysis, composited by Slicer's own
vtkMRMLSliceLogic (LungUSBLinesLib.slice_view), checked pixel by pixel.

The clip has large blocks that move from frame to frame, so a flip, a transposition or a
stale frame shows. The analysis is a real one (untrained tiny models, Grad-CAM); its masks are
set to a band per frame and its maps to a left-to-right ramp (steeper each frame), so each
frame's results are its own and the heat map has weak and strong parts whatever the untrained
model saw. Pixels are compared where the
3x3 neighbourhood of a frame pixel is uniform, so the views' interpolation does not matter.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed")

from scipy import ndimage  # noqa: E402

from lungus.data.labels.schemes import SEG_CLASSES  # noqa: E402
from lungus.io import Clip, read_clip, write_clip  # noqa: E402
from LungUSBLinesLib import results, views  # noqa: E402
from LungUSBLinesLib.analysis import AnalyzerCache  # noqa: E402
from LungUSBLinesLib.clips import load_clip  # noqa: E402
from LungUSBLinesLib.slice_view import SliceView  # noqa: E402

N_FRAMES, HEIGHT, WIDTH = 6, 48, 72
SPACING_MM = (0.4, 0.3)
ZOOM = 4  # view pixels per frame pixel (about)
B_LINE = next(c for c in SEG_CLASSES if c.name == "B-line")


def _block_frames():
    """Grey 40 with a bright block in the top-left that moves right by 6 pixels a frame, and a
    mid-grey block in the bottom-right."""
    frames = np.full((N_FRAMES, HEIGHT, WIDTH), 40, dtype=np.uint8)
    for t in range(N_FRAMES):
        frames[t, 4:18, 4 + 6 * t : 22 + 6 * t] = 220
    frames[:, 30:44, 50:68] = 130
    return frames


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("slice_view") / "blocks.seq.nrrd"
    return write_clip(Clip(_block_frames(), fps=10.0, spacing_mm=SPACING_MM), path)


@pytest.fixture(scope="module")
def analysis(clip_path, tiny_models):
    """A real analysis of the clip, with known masks and maps (see the module docstring)."""
    analyzer = AnalyzerCache().get(tiny_models["classifier"], tiny_models["segmenter"], device="cpu")
    analysis = analyzer.analyse(read_clip(clip_path), explain="gradcam")
    seg = analysis.segmentation
    masks = np.zeros_like(seg.masks)
    for i in range(len(masks)):
        masks[i, 3 * i : 3 * i + 8, :] = B_LINE.id  # a band per analysed frame, lower each frame
    explanation = analysis.explanation
    n_maps, _, map_width = explanation.maps.shape
    ramp = np.linspace(0.0, 1.0, map_width, dtype=np.float32)  # weak on the left, strong on the right
    maps = np.broadcast_to(ramp, explanation.maps.shape) ** (1 + np.arange(n_maps)[:, None, None])
    return dataclasses.replace(
        analysis,
        segmentation=dataclasses.replace(seg, masks=masks),
        explanation=dataclasses.replace(explanation, maps=np.ascontiguousarray(maps)),
    )


@pytest.fixture
def shown(headless, clip_path, analysis):
    """The clip and its results in the scene, and the Red view as the module sets it."""
    loaded = load_clip(headless.scene, clip_path)
    nodes = results.add_analysis_to_scene(headless.scene, loaded.nodes, analysis)
    layout_logic = views.new_layout_logic(headless.scene, headless.app_logic)
    views.show_results_views(layout_logic, headless.app_logic, next(iter(nodes.charts.values())))
    view = SliceView(headless.scene, "Red", width=WIDTH * ZOOM, height=HEIGHT * ZOOM)
    views.show_result_layers(headless.scene, nodes)
    view.fit()
    yield dataclasses.make_dataclass("Shown", ["clip", "analysis", "nodes", "view"])(
        loaded.clip, analysis, nodes, view
    )
    view.close()
    layout_logic.SetMRMLScene(None)


def _uniform(image, value):
    """Frame pixels whose 3x3 neighbourhood is all ``value`` (boolean image)."""
    return ndimage.binary_erosion(image == value, np.ones((3, 3)), border_value=0)


def _at(shown, rgb, where):
    """The view's RGB at the centres of the frame pixels ``where`` (boolean (H, W))."""
    rows, cols = np.nonzero(where)
    view_rows, view_cols = shown.view.view_pixels(
        shown.nodes.browser.GetProxyNode(shown.nodes.clip_sequence), rows, cols
    )
    return rgb[view_rows, view_cols].astype(int)


def _grey_shown(shown, grey):
    display = shown.nodes.browser.GetProxyNode(shown.nodes.clip_sequence).GetDisplayNode()
    low, high = display.GetWindowLevelMin(), display.GetWindowLevelMax()
    return np.clip(np.rint((grey - low) / (high - low) * 255), 0, 255)


def _select(shown, item, *, segmentation=True, heatmap=True):
    shown.nodes.browser.SetSelectedItemNumber(item)
    views.show_result_layers(
        shown.nodes.browser.GetScene(), shown.nodes, segmentation=segmentation, heatmap=heatmap
    )
    return shown.view.rgb()


def test_the_clip_is_upright_not_flipped_or_transposed(shown):
    proxy = shown.nodes.browser.GetProxyNode(shown.nodes.clip_sequence)
    corners_rows, corners_cols = shown.view.view_pixels(
        proxy, np.array([0, 0, HEIGHT - 1]), np.array([0, WIDTH - 1, 0])
    )
    assert corners_rows[0] == corners_rows[1] < corners_rows[2]  # frame row 0 at the top
    assert corners_cols[0] == corners_cols[2] < corners_cols[1]  # frame column 0 at the left
    width_mm, height_mm = WIDTH * SPACING_MM[1], HEIGHT * SPACING_MM[0]
    aspect = (corners_cols[1] - corners_cols[0]) / (corners_rows[2] - corners_rows[0])
    assert aspect == pytest.approx(width_mm / height_mm, rel=0.05)
    rgb = _select(shown, 2, segmentation=False, heatmap=False)
    frame = shown.clip.frames[2]
    for grey in (40, 130, 220):
        where = _uniform(frame, grey)
        seen = _at(shown, rgb, where)
        np.testing.assert_allclose(seen, np.broadcast_to(_grey_shown(shown, grey), seen.shape), atol=2)


def test_b_line_pixels_take_the_class_colour_where_the_mask_says(shown):
    masks = shown.analysis.segmentation.original_masks(N_FRAMES)
    for item in (1, 4):  # both follow the browser
        plain = _select(shown, item, segmentation=False, heatmap=False)
        drawn = _select(shown, item, heatmap=False)
        b_line, clear = _uniform(masks[item], B_LINE.id), _uniform(masks[item], 0)
        assert b_line.any() and clear.any()
        alpha = views.SEGMENTATION_OPACITY
        expected = (1 - alpha) * _at(shown, plain, b_line) + alpha * np.array(B_LINE.rgb)
        np.testing.assert_allclose(_at(shown, drawn, b_line), expected, atol=3)
        np.testing.assert_array_equal(_at(shown, drawn, clear), _at(shown, plain, clear))


def test_the_masks_and_the_clip_step_with_the_browser(shown):
    masks = shown.analysis.segmentation.original_masks(N_FRAMES)
    assert not np.array_equal(masks[1], masks[4])
    first, later = _select(shown, 1, heatmap=False), _select(shown, 4, heatmap=False)
    moved = _uniform(masks[1], B_LINE.id) & _uniform(masks[4], 0)
    assert moved.any()
    tint = lambda rgb: _at(shown, rgb, moved)[:, 1] - _at(shown, rgb, moved)[:, 0]  # noqa: E731 - green over red
    assert (tint(first) > 60).all() and (np.abs(tint(later)) < 3).all()
    block_then = _uniform(shown.clip.frames[1], 220) & _uniform(shown.clip.frames[4], 40)
    assert (_at(shown, _select(shown, 1, segmentation=False, heatmap=False), block_then) > 200).all()
    assert (_at(shown, _select(shown, 4, segmentation=False, heatmap=False), block_then) < 60).all()


def test_the_heat_map_shows_above_its_threshold_only(shown):
    heat = results.heatmap_frames(shown.analysis)
    level = results.HEATMAP_THRESHOLD_LEVEL
    for item in (0, 5):
        plain = _select(shown, item, segmentation=False, heatmap=False)
        drawn = _select(shown, item, segmentation=False)
        strong = ndimage.binary_erosion(heat[item] >= level + 8, np.ones((3, 3)))
        weak = ndimage.binary_erosion((heat[item] > 0) & (heat[item] < level - 8), np.ones((3, 3)))
        assert strong.any() and weak.any()
        np.testing.assert_array_equal(_at(shown, drawn, weak), _at(shown, plain, weak))
        assert (np.abs(_at(shown, drawn, strong) - _at(shown, plain, strong)).max(axis=1) > 20).all()


def test_a_colour_tables_alpha_does_not_fade_a_scalar_overlay(headless):
    # Why the heat map is faded by its display node's threshold: Slicer draws a scalar overlay's
    # pixel at the layer's opacity whatever alpha the colour table gives its value.
    from LungUSBLinesLib.sequences import create_browser, frames_to_sequence

    layout_logic = views.new_layout_logic(headless.scene, headless.app_logic)
    clip = create_browser(
        headless.scene, frames_to_sequence(headless.scene, np.full((1, 8, 8), 90, np.uint8), "c")
    )
    overlay = create_browser(
        headless.scene, frames_to_sequence(headless.scene, np.full((1, 8, 8), 200, np.uint8), "o")
    )
    table = headless.scene.AddNewNodeByClass("vtkMRMLColorTableNode")
    table.SetTypeToUser()
    table.SetNumberOfColors(256)
    display = overlay[1].GetDisplayNode()
    display.SetAndObserveColorNodeID(table.GetID())
    display.SetWindowLevelMinMax(0, 255)
    seen = []
    with SliceView(headless.scene, "Red", width=16, height=16) as view:
        view.composite_node.SetBackgroundVolumeID(clip[1].GetID())
        view.composite_node.SetForegroundVolumeID(overlay[1].GetID())
        view.composite_node.SetForegroundOpacity(1.0)
        view.fit()
        for alpha in (0.1, 1.0):
            for i in range(256):
                table.SetColor(i, "", 1.0, 0.0, 0.0, alpha)
            seen.append(view.rgb()[8, 8].tolist())
    layout_logic.SetMRMLScene(None)
    assert seen == [[255, 0, 0], [255, 0, 0]]
