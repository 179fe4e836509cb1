"""Pictures of inference results: segmentation overlays with the per-frame score, explanation
heat maps, and the mask sequence Slicer loads beside the clip.

- ``overlay_frames``: each original frame with the predicted classes in the colours of
  docs/architecture.md#segmentation-classes (lungus.data.labels.mask_colours.colour_mask), the
  frame's B-line evidence, count and BLAS written in a band above it (not on the mask colours),
  and a strip below showing the clip's B-line evidence curve and counts with a cursor at the
  frame, and a legend under the strip;
- ``explanation_frames``: each analysed frame with the classifier's map (Grad-CAM, LIME, CAM
  or attention) as a heat map inside the fan;
- ``explained_frame``: one frame with its map under a header band (`lungus explain`'s PNGs);
- ``explanation_sheet``: one PNG for a report: the top frame, its heat map and (with a
  segmenter) its segmentation, side by side.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from lungus.infer.results import ClipAnalysis, Explanation
from lungus.io.clip import Clip

#: Overlays narrower than this are enlarged (by a whole factor) so their text stays legible.
MIN_DISPLAY_WIDTH = 320
#: Wider clips are reduced to this width in the pictures.
MAX_DISPLAY_WIDTH = 800
HEAT_ALPHA = 0.5
TEXT = (240, 240, 240)
CURVE = (255, 255, 255)
COUNT_BARS = (40, 220, 40)  # the B-line class colour
CURSOR = (255, 80, 80)
BAND = 24  # grey level of the bands around the frame: header, curve strip, legend


def _display_size(height: int, width: int) -> tuple[int, int]:
    """(height, width) of the pictures: small clips enlarged by a whole factor so text stays
    legible, large ones reduced so a long clip's overlay video stays a modest size in memory."""
    if width > MAX_DISPLAY_WIDTH:
        scale = MAX_DISPLAY_WIDTH / width
        return max(1, round(height * scale)), MAX_DISPLAY_WIDTH
    factor = max(1, int(np.ceil(MIN_DISPLAY_WIDTH / max(width, 1))))
    return height * factor, width * factor


def _to_display(rgb: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_NEAREST) -> np.ndarray:
    if rgb.shape[:2] == size:
        return rgb
    if size[1] < rgb.shape[1]:
        interpolation = cv2.INTER_AREA
    return cv2.resize(rgb, (size[1], size[0]), interpolation=interpolation)


def _font_scale(width: int) -> float:
    return max(0.35, 0.45 * width / 400)


def _put_text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float, colour=TEXT) -> None:
    """Light text with a dark outline. The outline is the same thin text drawn one pixel around:
    a thicker stroke would advance further per glyph and drift right of the text ("34%%")."""
    x, y = origin
    for dx, dy in ((-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)):
        cv2.putText(image, text, (x + dx, y + dy), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def text_band_height(width: int) -> int:
    """Rows of the band above an overlay frame (its header) and of the legend below its strip."""
    return int(round(24 * _font_scale(width) / 0.45))


def _text_band(width: int, text: str) -> np.ndarray:
    band = np.full((text_band_height(width), width, 3), BAND, dtype=np.uint8)
    font = _font_scale(width)
    _put_text(band, text, (6, int(band.shape[0] * 0.72)), font)
    return band


def _strip_legend(analysis: ClipAnalysis, width: int) -> np.ndarray:
    """The curve strip's key: a swatch and a name for each thing the strip draws."""
    band = np.full((text_band_height(width), width, 3), BAND, dtype=np.uint8)
    font = 0.85 * _font_scale(width)
    middle, x = band.shape[0] // 2, 6
    swatch = max(8, int(14 * font / 0.45))
    entries = []
    if analysis.p_blines is not None:
        entries.append(("line", CURVE, "p(B-lines)"))
    if analysis.bline_count is not None:
        entries.append(("bar", COUNT_BARS, "B-line count"))
    entries.append(("cursor", CURSOR, "this frame"))
    for kind, colour, name in entries:
        if kind == "line":
            cv2.line(band, (x, middle), (x + swatch, middle), colour, 1, cv2.LINE_AA)
        elif kind == "bar":
            cv2.rectangle(band, (x + swatch // 4, middle - swatch // 3), (x + 3 * swatch // 4, middle + swatch // 3),
                          colour, -1)
        else:
            cv2.line(band, (x + swatch // 2, middle - swatch // 2), (x + swatch // 2, middle + swatch // 2), colour, 1)
        x += swatch + 4
        _put_text(band, name, (x, middle + int(5 * font / 0.45)), font)
        (text_width, _), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        x += text_width + 14
    return band


def _frame_label(analysis: ClipAnalysis, row: int | None) -> str:
    if row is None:
        return ""
    parts = []
    if analysis.p_blines is not None and not np.isnan(analysis.p_blines[row]):
        parts.append(f"p(B) {analysis.p_blines[row]:.2f}")
    if analysis.bline_count is not None and analysis.bline_count[row] >= 0:
        parts.append(f"B-lines {int(analysis.bline_count[row])}")
        blas = analysis.blas[row]
        if blas is not None:
            parts.append(f"BLAS {blas:.0f}%")
    return "  ".join(parts)


def _curve_strip(analysis: ClipAnalysis, width: int, height: int) -> np.ndarray:
    """(height, width, 3): B-line evidence over the clip (white line) and counts (green bars)."""
    strip = np.full((height, width, 3), BAND, dtype=np.uint8)
    n = max(analysis.n_frames, 1)
    x = (analysis.frames + 0.5) * width / n
    if analysis.bline_count is not None:
        top = max(int(analysis.bline_count.max()), 1)
        for xi, count in zip(x, analysis.bline_count):
            if count > 0:
                bar = int(round((height - 4) * count / top))
                x0 = int(xi - width / n / 2)
                cv2.rectangle(
                    strip,
                    (x0, height - 2 - bar),
                    (max(x0, int(xi + width / n / 2) - 1), height - 2),
                    COUNT_BARS,
                    -1,
                )
    if analysis.p_blines is not None:
        valid = ~np.isnan(analysis.p_blines)
        y = (height - 3) - analysis.p_blines[valid] * (height - 6)
        points = np.stack([x[valid], y], axis=1).round().astype(np.int32)
        if len(points) > 1:
            cv2.polylines(strip, [points], False, CURVE, 1, cv2.LINE_AA)
        elif len(points) == 1:
            cv2.circle(strip, tuple(points[0]), 1, CURVE, -1)
    return strip


def overlay_frames(clip: Clip, analysis: ClipAnalysis) -> np.ndarray:
    """uint8 RGB (T, header + H' + strip + legend, W', 3): the segmentation overlay video of a
    clip (enlarged when small); the frame's rows start at ``text_band_height(W')``."""
    from lungus.data.labels.mask_colours import colour_mask

    masks = None
    if analysis.segmentation is not None:
        masks = analysis.segmentation.original_masks(clip.n_frames)
    height, width = _display_size(clip.height, clip.width)
    strip_height = max(24, height // 6)
    top = text_band_height(width)
    rows = {int(f): i for i, f in enumerate(analysis.frames)}
    strip = _curve_strip(analysis, width, strip_height)
    legend = _strip_legend(analysis, width)
    out = np.zeros((clip.n_frames, top + height + strip_height + legend.shape[0], width, 3), dtype=np.uint8)
    out[:, top + height + strip_height:] = legend
    for t in range(clip.n_frames):
        frame = (
            colour_mask(clip.frames[t], masks[t])
            if masks is not None
            else np.repeat(clip.frames[t][..., None], 3, axis=2)
        )
        out[t, :top] = _text_band(width, _frame_label(analysis, rows.get(t)))
        out[t, top:top + height] = _to_display(frame, (height, width))
        below = strip.copy()
        cursor = int((t + 0.5) * width / clip.n_frames)
        cv2.line(below, (cursor, 0), (cursor, strip_height - 1), CURSOR, 1)
        out[t, top + height:top + height + strip_height] = below
    return out


def heat_overlay(frame: np.ndarray, heat: np.ndarray, inside: np.ndarray | None = None) -> np.ndarray:
    """RGB: the grey frame with ``heat`` in [0, 1] as a JET heat map (only where ``inside``)."""
    rgb = np.repeat(frame[..., None], 3, axis=2).astype(np.float32)
    colours = cv2.applyColorMap(np.clip(heat * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    weight = HEAT_ALPHA * np.clip(heat, 0, 1)[..., None] ** 0.5
    if inside is not None:
        weight = weight * inside[..., None]
    return np.clip((1 - weight) * rgb + weight * colours, 0, 255).astype(np.uint8)


def _original_fan(clip: Clip) -> np.ndarray | None:
    return None if clip.fan is None else clip.fan.mask


def explanation_frames(clip: Clip, analysis: ClipAnalysis) -> np.ndarray:
    """uint8 RGB (T, H', W', 3): every frame with the explanation map of its nearest analysed frame."""
    from lungus.infer.results import nearest

    explanation = analysis.explanation
    if explanation is None:
        raise ValueError("the analysis holds no explanation; analyse with explain='gradcam'")
    size = _display_size(clip.height, clip.width)
    font = _font_scale(size[1])
    maps = [explanation.original_map(i) for i in range(len(explanation.maps))]
    which = nearest(explanation.source_frames, clip.n_frames)
    out = []
    for t in range(clip.n_frames):
        frame = _to_display(heat_overlay(clip.frames[t], maps[which[t]], _original_fan(clip)), size)
        _put_text(frame, explanation_label(analysis, explanation, t), (6, int(18 * font / 0.45)), font)
        out.append(frame)
    return np.stack(out)


def explanation_label(analysis: ClipAnalysis, explanation: Explanation, frame: int) -> str:
    """``method: class  p(B) P``: the map's method and class, and the frame's B-line evidence."""
    label = f"{explanation.method}: {explanation.target_class}"
    rows = np.flatnonzero(analysis.frames == frame)
    if analysis.p_blines is not None and len(rows) and not np.isnan(analysis.p_blines[rows[0]]):
        label += f"  p(B) {analysis.p_blines[rows[0]]:.2f}"
    return label


def explained_frame(clip: Clip, analysis: ClipAnalysis, explanation: Explanation, position: int) -> np.ndarray:
    """uint8 RGB (header + H', W', 3): the original frame of map ``position`` of ``explanation``
    with that map as a heat map inside the fan, below a header band as the overlay videos have:
    ``frame N  method: class  p(B) P`` (P: the classifier's B-line evidence for that frame)."""
    frame = int(explanation.source_frames[position])
    size = _display_size(clip.height, clip.width)
    heat = _to_display(heat_overlay(clip.frames[frame], explanation.original_map(position), _original_fan(clip)),
                       size, cv2.INTER_LINEAR)
    header = _text_band(size[1], f"frame {frame}  {explanation_label(analysis, explanation, frame)}")
    return np.concatenate([header, heat], axis=0)


def explanation_sheet(clip: Clip, analysis: ClipAnalysis, frame: int | None = None) -> np.ndarray:
    """uint8 RGB: ``frame`` (default: the top frame) as seen, with its heat map, and with the
    segmentation when there is one, side by side with captions."""
    from lungus.data.labels.mask_colours import colour_mask
    from lungus.infer.results import nearest

    explanation = analysis.explanation
    if explanation is None:
        raise ValueError("the analysis holds no explanation; analyse with explain='gradcam'")
    t = analysis.top_frame if frame is None else int(frame)
    t = 0 if t is None else t
    position = int(nearest(explanation.source_frames, clip.n_frames)[t])
    size = _display_size(clip.height, clip.width)
    panels = [
        (f"frame {t}", np.repeat(clip.frames[t][..., None], 3, axis=2)),
        (
            f"{explanation.method} ({explanation.target_class})",
            heat_overlay(clip.frames[t], explanation.original_map(position), _original_fan(clip)),
        ),
    ]
    if analysis.segmentation is not None:
        masks = analysis.segmentation
        seg_position = int(nearest(masks.source_frames, clip.n_frames)[t])
        panels.append(
            (
                "segmentation",
                colour_mask(clip.frames[t], masks.placement.to_original(masks.masks[seg_position])),
            )
        )
    font = _font_scale(size[1])
    caption = int(30 * font / 0.45)
    tiles = []
    for title, image in panels:
        tile = np.zeros((size[0] + caption, size[1], 3), dtype=np.uint8)
        tile[caption:] = _to_display(image, size, cv2.INTER_LINEAR)
        _put_text(tile, title, (6, int(caption * 0.7)), font)
        tiles.append(tile)
    gap = np.zeros((tiles[0].shape[0], 4, 3), dtype=np.uint8)
    sheet = tiles[0]
    for tile in tiles[1:]:
        sheet = np.concatenate([sheet, gap, tile], axis=1)
    return sheet


def _rgb_clip(rgb: np.ndarray, fps: float | None) -> Clip:
    grey = rgb.mean(axis=3).astype(np.uint8)
    return Clip(grey, fps=fps, rgb=rgb)


def save_png(rgb: np.ndarray, path: str | os.PathLike) -> Path:
    from lungus.atomic import atomic_write_bytes

    # Encoded in memory and written by Python: cv2.imwrite would hide why a write failed (a full disk).
    encoded, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not encoded:
        raise ValueError(f"OpenCV could not encode a {rgb.shape} image as PNG")
    return atomic_write_bytes(path, data.tobytes())


def write_overlays(
    clip: Clip,
    analysis: ClipAnalysis,
    folder: str | os.PathLike,
    stem: str,
    *,
    overlays: bool = True,
    explain: bool = False,
    video_suffix: str = ".mp4",
) -> dict[str, str]:
    """Write a clip's pictures into ``folder`` (paths returned relative to it):

    - ``overlay``: ``overlays/<stem>.mp4``, the segmentation overlay with the score strip;
    - ``masks``: ``masks/<stem>.seq.nrrd``, the predicted class ids per original frame (with a
      segmenter), a Slicer volume sequence with the clip's spacing;
    - ``explain_video`` / ``explain_png``: ``explain/<stem>.<method>.mp4`` and the top frame's sheet.
    """
    from lungus.io.writer import write_clip

    folder = Path(folder)
    written: dict[str, str] = {}
    if overlays:
        relative = Path("overlays") / f"{stem}{video_suffix}"
        write_clip(_rgb_clip(overlay_frames(clip, analysis), clip.fps), folder / relative)
        written["overlay"] = relative.as_posix()
        if analysis.segmentation is not None:
            relative = Path("masks") / f"{stem}.seq.nrrd"
            masks = analysis.segmentation.original_masks(clip.n_frames)
            # gzip: one byte per pixel is 30 MB per 100 frames of 640x480, mostly background, which
            # shrinks to a few hundred kB (Slicer reads gzip NRRD as it reads raw; see --overlays).
            write_clip(Clip(masks, fps=clip.fps, spacing_mm=clip.spacing_mm), folder / relative,
                       compression="gzip")
            written["masks"] = relative.as_posix()
    if explain and analysis.explanation is not None:
        method = analysis.explanation.method
        relative = Path("explain") / f"{stem}.{method}{video_suffix}"
        write_clip(_rgb_clip(explanation_frames(clip, analysis), clip.fps), folder / relative)
        written["explain_video"] = relative.as_posix()
        relative = Path("explain") / f"{stem}.{method}.png"
        save_png(explanation_sheet(clip, analysis), folder / relative)
        written["explain_png"] = relative.as_posix()
    return written
