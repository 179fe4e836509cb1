"""Draw the extension icon and the three module icons.

    python Resources/scripts/make_icon.py            # writes the PNGs into the repo
    python Resources/scripts/make_icon.py --out DIR  # somewhere else, to look first

The picture is what the extension looks for: a convex-probe ultrasound fan with the
bright pleural line near the top and B-lines, bright vertical rays that run from the
pleural line to the bottom of the image without fading. Module icons add a badge:
a play triangle for inference, a rising learning curve for training.
Drawn at 4x and downsampled, so edges are anti-aliased. Deterministic (fixed seed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO_ROOT = Path(__file__).resolve().parents[2]
SIZE = 128
SCALE = 4  # supersampling factor

# Fan geometry in icon pixels: apex above the top edge, as for a convex probe.
APEX = (64.0, -12.0)  # (x, y)
RADIUS_INNER, RADIUS_OUTER = 28.0, 132.0
HALF_ANGLE_DEG = 29.0
PLEURA_RADIUS = 52.0
B_LINE_ANGLES_DEG = (-15.0, -1.0, 12.0)
B_LINE_WIDTH_DEG = 3.0


def _polar_grid(size: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Radius (icon px) and angle from straight down (deg, negative = left) of each pixel."""
    coords = (np.arange(size * scale) + 0.5) / scale
    x, y = np.meshgrid(coords, coords)
    dx, dy = x - APEX[0], y - APEX[1]
    return np.hypot(dx, dy), np.degrees(np.arctan2(dx, dy))


def _smooth_step(edge0: float, edge1: float, value: np.ndarray) -> np.ndarray:
    t = np.clip((value - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _speckle(shape: tuple[int, int], rng: np.random.Generator, grain: int) -> np.ndarray:
    """Rayleigh-like speckle, smoothed to blobs about ``grain`` pixels across."""
    coarse = rng.rayleigh(1.0, size=(shape[0] // grain + 2, shape[1] // grain + 2))
    image = Image.fromarray((coarse / coarse.max() * 255).astype(np.uint8))
    image = image.resize((shape[1] + 2 * grain, shape[0] + 2 * grain), Image.BICUBIC)
    offset = grain // 2
    return np.asarray(image, np.float64)[offset : offset + shape[0], offset : offset + shape[1]] / 255.0


def draw_fan(size: int = SIZE, scale: int = SCALE, seed: int = 7) -> Image.Image:
    """The base icon, RGBA, ``size`` x ``size``."""
    rng = np.random.default_rng(seed)
    radius, angle = _polar_grid(size, scale)
    soft = 0.6  # edge softness in icon pixels
    fan = (
        _smooth_step(RADIUS_INNER - soft, RADIUS_INNER + soft, radius)
        * (1 - _smooth_step(RADIUS_OUTER - soft, RADIUS_OUTER + soft, radius))
        * (1 - _smooth_step(HALF_ANGLE_DEG - 0.5, HALF_ANGLE_DEG + 0.5, np.abs(angle)))
    )

    # Tissue: bright speckle with fascia bands above the pleura; dark air artefact below it.
    speckle = _speckle(radius.shape, rng, grain=2 * scale)
    depth = (radius - RADIUS_INNER) / (RADIUS_OUTER - RADIUS_INNER)
    fascia = sum(0.18 * np.exp(-(((radius - r) / 1.3) ** 2)) for r in (36.0, 43.0))
    soft_tissue = (0.30 + 0.35 * speckle) * speckle + fascia
    air = 0.2 * speckle * (1 - 0.5 * depth)
    tissue = np.where(radius < PLEURA_RADIUS - 1.5, soft_tissue, air)

    # Pleural line: a bright, slightly irregular arc; one faint A-line repeats it deeper.
    wobble = 0.7 * np.sin(np.radians(angle) * 9.0)
    lines = 1.0 * np.exp(-(((radius - PLEURA_RADIUS - wobble) / 1.7) ** 2))
    a_line_radius = RADIUS_INNER + 2 * (PLEURA_RADIUS - RADIUS_INNER)
    lines += 0.16 * np.exp(-(((radius - a_line_radius) / 1.5) ** 2))

    # B-lines: laser-like rays from the pleura down to the bottom edge, not fading.
    below = _smooth_step(PLEURA_RADIUS - 1, PLEURA_RADIUS + 2, radius)
    b_lines = np.zeros_like(radius)
    for centre in B_LINE_ANGLES_DEG:
        core = np.exp(-(((angle - centre) / (B_LINE_WIDTH_DEG / 2)) ** 2))
        glow = np.exp(-(((angle - centre) / (B_LINE_WIDTH_DEG * 2.2)) ** 2))
        b_lines = np.maximum(b_lines, 0.9 * core + 0.35 * glow)
    b_lines *= below * (0.8 + 0.3 * speckle)

    brightness = np.clip(tissue + lines + b_lines, 0, 1)
    # B-lines wipe out the A-lines they cross, as in a real image.
    brightness = np.where(b_lines > 0.5, np.maximum(brightness, b_lines), brightness)

    # Grey ultrasound with a faint cool tint; the background is transparent.
    base = np.array([0.04, 0.07, 0.10])
    rgb = base + brightness[..., None] * (np.array([0.98, 1.0, 1.0]) - base)
    # A thin light rim makes the fan read against dark and light backgrounds alike.
    rim_inner = fan - (
        _smooth_step(RADIUS_INNER + 1.2 - soft, RADIUS_INNER + 1.2 + soft, radius)
        * (1 - _smooth_step(RADIUS_OUTER - 1.2 - soft, RADIUS_OUTER - 1.2 + soft, radius))
        * (1 - _smooth_step(HALF_ANGLE_DEG - 1.3, HALF_ANGLE_DEG - 0.3, np.abs(angle)))
    )
    rim = np.clip(rim_inner, 0, 1)[..., None]
    rgb = rgb * (1 - rim) + np.array([0.55, 0.68, 0.78]) * rim
    rgba = np.dstack([rgb, fan])
    big = Image.fromarray((np.clip(rgba, 0, 1) * 255).round().astype(np.uint8), "RGBA")
    return big.resize((size, size), Image.LANCZOS)


def _badge(icon: Image.Image, kind: str) -> Image.Image:
    """Add a round badge at the bottom right: ``play`` (inference) or ``curve`` (training)."""
    scale = SCALE
    size = icon.size[0]
    layer = Image.new("RGBA", (size * scale, size * scale), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    cx, cy, r = 102 * scale, 102 * scale, 23 * scale
    fill = {"play": (232, 120, 30, 255), "curve": (46, 140, 220, 255)}[kind]
    draw.ellipse(
        (cx - r - 3 * scale, cy - r - 3 * scale, cx + r + 3 * scale, cy + r + 3 * scale),
        fill=(255, 255, 255, 255),
    )
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    white = (255, 255, 255, 255)
    if kind == "play":
        h = 0.55 * r
        draw.polygon([(cx - 0.45 * h, cy - h), (cx - 0.45 * h, cy + h), (cx + 0.95 * h, cy)], fill=white)
    else:
        # A learning curve on its axes: accuracy climbing fast, then levelling off.
        left, right, bottom, top = cx - 0.55 * r, cx + 0.6 * r, cy + 0.5 * r, cy - 0.6 * r
        axis = int(2.5 * scale)
        draw.line([(left, top), (left, bottom), (right, bottom)], fill=white, width=axis, joint="curve")
        xs = np.linspace(0, 1, 40)
        ys = 1 - np.exp(-4.0 * xs)
        inset = 0.18 * r
        points = [
            (left + inset + x * (right - left - inset), bottom - inset - y * (bottom - top - 1.3 * inset))
            for x, y in zip(xs, ys)
        ]
        draw.line(points, fill=white, width=int(4 * scale), joint="curve")
    badge = layer.resize((size, size), Image.LANCZOS)
    return Image.alpha_composite(icon, badge)


def write_icons(out_dir: Path | None = None) -> list[Path]:
    """Write the extension icon and the module icons; returns their paths."""
    fan = draw_fan()
    targets = {
        "LungUSBLines.png": fan,
        "LungUSBLines/Resources/Icons/LungUSBLines.png": fan,
        "LungUSInference/Resources/Icons/LungUSInference.png": _badge(fan, "play"),
        "LungUSTrain/Resources/Icons/LungUSTrain.png": _badge(fan, "curve"),
    }
    written = []
    for relative, image in targets.items():
        path = (out_dir / Path(relative).name) if out_dir else REPO_ROOT / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, optimize=True)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="write here instead of into the repository")
    for path in write_icons(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
