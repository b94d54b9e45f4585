"""Procedural K-pop-style album covers: the embedded, offline dataset.

Every cover is drawn from scratch with numpy and Pillow, so the GAN and its metrics can be
exercised without downloads. A cover is a stylised layout built from a few coherent palettes
(pastel, neon, monochrome, dark, vivid): gradient or photo-like noise backgrounds, geometric
shapes, patterns, bokeh, group silhouettes, glyph-like "type" bars for the title and artist,
frames and film grain.

Image ``i`` depends only on ``(seed, i, size)``: its layout comes from
``numpy.random.default_rng([seed, i, 0])`` and its pixel noise from ``[seed, i, 1]``. Layouts are
in unit coordinates and noise grids do not depend on ``size``, so one cover rendered at 64 px and
at 256 px shows the same picture. Shapes are drawn on a 2x canvas and box-filtered down
(anti-aliasing); stripes, rings and halftone dots are analytic coverage maps.

Run::

    python -m albumgan.data_tools.synthetic OUT_DIR [--n 512] [--size 256] [--seed 0]

which writes ``OUT_DIR/synthetic-v{SYNTHETIC_VERSION}-s{seed}-{size}px-n{n}/cover_00000.png ...``
(plus a ``DONE`` marker) and prints that folder. An existing complete folder is reused as is.
"""

from __future__ import annotations

import colorsys
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from albumgan.gan_core.contract import ArgumentParser, UsageError

SYNTHETIC_VERSION: int = 1

DONE_MARKER = "DONE"
MIN_SIZE = 8

_SUPERSAMPLE = 2  # shape masks are drawn at 2x and box-filtered down
_PNG_COMPRESS_LEVEL = 1  # covers are small; fast encoding matters more than a few kB

Colour = np.ndarray  # float32, shape (3,), values in [0, 1]


# --------------------------------------------------------------------------------------------
# Palettes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Palette:
    """Colours for one cover: background gradient stops, accents for shapes, and ink for type."""

    family: str
    background: np.ndarray  # (k, 3) gradient stops, k >= 2
    accents: np.ndarray  # (m, 3)
    ink: Colour


_NEON_HUES = (330.0, 305.0, 275.0, 190.0, 170.0, 95.0, 55.0, 25.0)
_WHITE = np.array([0.97, 0.96, 0.94], np.float32)
_BLACK = np.array([0.06, 0.06, 0.07], np.float32)


def _hsv(hue_deg: float, sat: float, val: float) -> Colour:
    r, g, b = colorsys.hsv_to_rgb((hue_deg % 360.0) / 360.0, min(max(sat, 0.0), 1.0), val)
    return np.array([r, g, b], np.float32)


def _luma(colour: np.ndarray) -> float:
    return float(0.299 * colour[..., 0] + 0.587 * colour[..., 1] + 0.114 * colour[..., 2])


def _make_palette(rng: np.random.Generator, family: str) -> _Palette:
    u = rng.uniform
    h = u(0.0, 360.0)
    if family == "pastel":
        step = u(25.0, 80.0) * rng.choice([-1.0, 1.0])
        stops = [_hsv(h + i * step, u(0.12, 0.35), u(0.9, 1.0)) for i in range(rng.integers(2, 4))]
        accents = [_hsv(h + u(-150.0, 150.0), u(0.3, 0.6), u(0.8, 0.98)) for _ in range(3)]
        ink = _hsv(h + 180.0, u(0.2, 0.5), u(0.2, 0.4)) if u() < 0.8 else _WHITE
    elif family == "neon":
        stops = [
            _hsv(h, u(0.5, 0.9), u(0.03, 0.1)),
            _hsv(h + u(20.0, 60.0), u(0.5, 0.9), u(0.12, 0.3)),
        ]
        hues = rng.choice(_NEON_HUES, size=3, replace=False)
        accents = [_hsv(hh + u(-8.0, 8.0), u(0.75, 1.0), 1.0) for hh in hues]
        ink = _WHITE if u() < 0.6 else accents[0]
    elif family == "monochrome":
        sat = 0.0 if u() < 0.4 else u(0.08, 0.3)
        lo = u(0.04, 0.45)
        hi = min(lo + u(0.3, 0.6), 0.97)
        vals = [lo, hi] if u() < 0.5 else [hi, lo]
        stops = [_hsv(h, sat, v) for v in vals]
        accents = [_hsv(h, sat * 1.3, u(0.1, 0.95)) for _ in range(3)]
        if u() < 0.3:  # the classic single red (or other) spot colour
            accents[0] = _hsv(u(-15.0, 15.0) if u() < 0.6 else u(0.0, 360.0), 0.85, 0.85)
        ink = _WHITE if (lo + hi) / 2 < 0.5 else _BLACK
    elif family == "dark":
        stops = [
            _hsv(h, u(0.2, 0.6), u(0.03, 0.1)),
            _hsv(h + u(-30.0, 30.0), u(0.2, 0.6), u(0.12, 0.3)),
        ]
        accents = [_hsv(h + u(-60.0, 60.0), u(0.2, 0.5), u(0.35, 0.65)) for _ in range(2)]
        accents.append(_hsv(u(0.0, 360.0), u(0.6, 0.9), u(0.8, 1.0)))
        ink = _hsv(h, u(0.0, 0.12), u(0.85, 0.97)) if u() < 0.75 else _hsv(43.0, 0.55, 0.88)
    elif family == "vivid":
        stops = [
            _hsv(h, u(0.55, 0.85), u(0.85, 1.0)),
            _hsv(h + u(30.0, 80.0), u(0.55, 0.9), u(0.8, 1.0)),
        ]
        accents = [
            _hsv(h + 180.0 + u(-30.0, 30.0), u(0.6, 0.9), u(0.85, 1.0)),
            _WHITE.copy(),
            _hsv(h + u(-20.0, 20.0), 0.9, u(0.45, 0.65)),
        ]
        ink = _WHITE if u() < 0.5 else _BLACK
    else:
        raise AssertionError(f"unknown palette family {family!r}")
    order = rng.permutation(len(accents))
    return _Palette(family, np.stack(stops), np.stack(accents)[order], np.asarray(ink, np.float32))


def _contrasting(colour: Colour, against: Colour, min_delta: float = 0.3) -> Colour:
    """`colour` if it stands out from `against` in luminance, else black or white."""
    if abs(_luma(colour) - _luma(against)) >= min_delta:
        return colour
    return _BLACK if _luma(against) > 0.5 else _WHITE


# --------------------------------------------------------------------------------------------
# Pixel-level helpers: coordinates, colour ramps, noise, blending
# --------------------------------------------------------------------------------------------


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1]: x with shape (1, size), y with shape (size, 1)."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return c[None, :], c[:, None]


def _ramp(t: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Map t in [0, 1] (H, W) through evenly spaced colour stops (k, 3) to an (H, W, 3) image."""
    pos = np.linspace(0.0, 1.0, len(stops))
    out = np.empty(t.shape + (3,), np.float32)
    for c in range(3):
        out[..., c] = np.interp(t, pos, stops[:, c])
    return out


def _fractal_noise(rng: np.random.Generator, size: int, base: int, octaves: int) -> np.ndarray:
    """Multi-octave value noise in [0, 1]; grid shapes do not depend on `size`."""
    total = np.zeros((size, size), np.float32)
    amp = 1.0
    for octave in range(octaves):
        cells = base * 2**octave + 1
        grid = rng.random((cells, cells), dtype=np.float32)
        smooth = Image.fromarray(grid).resize((size, size), Image.Resampling.BICUBIC)
        total += np.float32(amp) * np.asarray(smooth, np.float32)
        amp *= 0.5
    lo, hi = float(total.min()), float(total.max())
    return (total - lo) / max(hi - lo, 1e-6)


def _paint(img: np.ndarray, cover: np.ndarray, colour: Colour, opacity: float = 1.0) -> None:
    """Alpha-composite a flat colour over `img` in place, weighted by coverage in [0, 1]."""
    alpha = cover[..., None] * np.float32(opacity)
    img += alpha * (np.asarray(colour, np.float32) - img)


def _screen(img: np.ndarray, cover: np.ndarray, colour: Colour, opacity: float = 1.0) -> None:
    """Screen-blend (light adds, never darkens) a colour over `img` in place."""
    light = cover[..., None] * (np.float32(opacity) * np.asarray(colour, np.float32))
    img += light * (1.0 - img)


def _aa(distance_px: np.ndarray) -> np.ndarray:
    """Coverage from a signed distance in pixels (positive inside), one-pixel soft edge."""
    return np.clip(distance_px + 0.5, 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# Vector shapes on a supersampled mask (unit coordinates)
# --------------------------------------------------------------------------------------------


class _Mask:
    """A greyscale coverage mask drawn at 2x with Pillow; shapes are given in unit coordinates."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.big = size * _SUPERSAMPLE
        self.image = Image.new("L", (self.big, self.big), 0)
        self.draw = ImageDraw.Draw(self.image)

    def _box(self, x0: float, y0: float, x1: float, y1: float) -> list[float]:
        b = self.big
        return [x0 * b, y0 * b, max(x1, x0) * b, max(y1, y0) * b]

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: int = 255) -> None:
        self.draw.rectangle(self._box(x0, y0, x1, y1), fill=fill)

    def ellipse(
        self, cx: float, cy: float, rx: float, ry: float, fill: int = 255, width: float = 0.0
    ) -> None:
        box = self._box(cx - rx, cy - ry, cx + rx, cy + ry)
        if width > 0.0:
            self.draw.ellipse(box, outline=fill, width=max(1, round(width * self.big)))
        else:
            self.draw.ellipse(box, fill=fill)

    def polygon(self, points: np.ndarray, fill: int = 255) -> None:
        self.draw.polygon([(float(x), float(y)) for x, y in points * self.big], fill=fill)

    def coverage(self, blur: float = 0.0) -> np.ndarray:
        """Box-filter down to the target size, optionally Gaussian-blur (radius in unit coords)."""
        small = self.image.reduce(_SUPERSAMPLE)
        if blur * self.size >= 0.3:
            small = small.filter(ImageFilter.GaussianBlur(blur * self.size))
        return np.asarray(small, np.float32) * np.float32(1.0 / 255.0)


def _regular_polygon(cx: float, cy: float, r: float, n: int, rot: float) -> np.ndarray:
    a = rot + np.arange(n) * (2.0 * np.pi / n)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], axis=1)


def _blob_points(rng: np.random.Generator, cx: float, cy: float, r: float) -> np.ndarray:
    """An organic closed outline: a circle whose radius wobbles with a few low harmonics."""
    a = np.linspace(0.0, 2.0 * np.pi, 96, endpoint=False)
    radius = np.ones_like(a)
    for k in (2, 3, 4, 5):
        radius += rng.uniform(0.0, 0.22 / k**0.5) * np.sin(k * a + rng.uniform(0.0, 2.0 * np.pi))
    return np.stack([cx + r * radius * np.cos(a), cy + r * radius * np.sin(a)], axis=1)


def _sparkle_points(cx: float, cy: float, r: float, rot: float) -> np.ndarray:
    a = rot + np.arange(8) * (np.pi / 4.0)
    radius = np.where(np.arange(8) % 2 == 0, r, r * 0.22)
    return np.stack([cx + radius * np.cos(a), cy + radius * np.sin(a)], axis=1)


def _silhouette(mask: _Mask, cx: float, head_r: float, top: float, long_hair: bool) -> None:
    """Head, neck and shoulders of one person, cut off by the bottom edge."""
    r = head_r
    head_cy = top + 1.05 * r
    if long_hair:
        mask.ellipse(cx, head_cy + 0.55 * r, 1.08 * r, 1.65 * r)
    mask.ellipse(cx, head_cy, 0.85 * r, 1.05 * r)
    shoulders = head_cy + 1.9 * r
    mask.rect(cx - 0.33 * r, head_cy, cx + 0.33 * r, shoulders + 0.5 * r)
    mask.ellipse(cx, shoulders + 1.4 * r, 2.1 * r, 1.4 * r)
    mask.rect(cx - 2.1 * r, shoulders + 1.4 * r, cx + 2.1 * r, 1.2)


# --------------------------------------------------------------------------------------------
# Analytic patterns (coverage maps)
# --------------------------------------------------------------------------------------------


def _stripes(size: int, angle: float, period: float, duty: float, phase: float) -> np.ndarray:
    x, y = _grid(size)
    u = ((x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle)) / period + phase
    tri = np.abs(u - np.floor(u) - 0.5)  # 0 at a stripe's centre line, 0.5 halfway between
    return _aa((duty / 2.0 - tri) * (period * size))


def _rings(size: int, cx: float, cy: float, period: float, duty: float) -> np.ndarray:
    x, y = _grid(size)
    u = np.sqrt((x - cx) ** 2 + (y - cy) ** 2) / period
    tri = np.abs(u - np.floor(u) - 0.5)
    return _aa((duty / 2.0 - tri) * (period * size))


def _disc(size: int, cx: float, cy: float, r: float) -> np.ndarray:
    x, y = _grid(size)
    return _aa((r - np.sqrt((x - cx) ** 2 + (y - cy) ** 2)) * size)


def _halftone(size: int, cells: int, angle: float, fill: np.ndarray) -> np.ndarray:
    """Dots on a rotated grid whose radius follows `fill` (H, W) in [0, 1]."""
    x, y = _grid(size)
    ca, sa = np.cos(angle), np.sin(angle)
    u = ((x - 0.5) * ca + (y - 0.5) * sa) * cells
    v = (-(x - 0.5) * sa + (y - 0.5) * ca) * cells
    du = u - np.floor(u) - 0.5
    dv = v - np.floor(v) - 0.5
    dist = np.sqrt(du * du + dv * dv) / cells  # unit coordinates
    radius = fill * (0.62 / cells)
    return _aa((radius - dist) * size)


def _linear_t(size: int, angle: float) -> np.ndarray:
    x, y = _grid(size)
    t = (x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle)
    return (t - t.min()) / max(float(t.max() - t.min()), 1e-6)


def _radial_t(size: int, cx: float, cy: float, reach: float) -> np.ndarray:
    x, y = _grid(size)
    return np.clip(np.sqrt((x - cx) ** 2 + (y - cy) ** 2) / reach, 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# Backgrounds
# --------------------------------------------------------------------------------------------


def _gradient_background(rng: np.random.Generator, size: int, pal: _Palette) -> np.ndarray:
    if rng.random() < 0.55:
        t = _linear_t(size, rng.uniform(0.0, 2.0 * np.pi))
    else:
        t = _radial_t(size, rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.6, 1.1))
    return _ramp(t ** np.float32(rng.uniform(0.6, 1.6)), pal.background)


def _photo_background(
    rng: np.random.Generator, noise_rng: np.random.Generator, size: int, pal: _Palette
) -> np.ndarray:
    """Smoothed multi-octave noise lit by a soft radial light: reads as an out-of-focus photo."""
    noise = _fractal_noise(noise_rng, size, base=int(rng.integers(2, 4)), octaves=5)
    light = 1.0 - _radial_t(size, rng.uniform(0.25, 0.75), rng.uniform(0.1, 0.6), 0.9)
    t = np.float32(0.55) * noise + np.float32(0.45) * light
    stops = np.concatenate([pal.background, pal.accents[:1] * 0.6 + pal.background[-1:] * 0.4])
    if _luma(pal.background[0]) > _luma(pal.background[-1]):
        stops = stops[::-1].copy()  # keep the lit centre brighter than the edges
    return _ramp(np.clip(t, 0.0, 1.0), stops)


def _split_background(rng: np.random.Generator, size: int, pal: _Palette) -> np.ndarray:
    img = _gradient_background(rng, size, pal)
    angle = rng.choice([0.0, 0.5 * np.pi, 0.25 * np.pi, 0.75 * np.pi, rng.uniform(0.0, np.pi)])
    x, y = _grid(size)
    offset = rng.uniform(-0.2, 0.2)
    side = (x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle) - offset
    _paint(img, _aa(side * size), pal.accents[0])
    if rng.random() < 0.35:  # a third band
        _paint(img, _aa((side - rng.uniform(0.15, 0.35)) * size), pal.accents[1])
    return img


# --------------------------------------------------------------------------------------------
# Elements
# --------------------------------------------------------------------------------------------


def _geometric_shapes(rng: np.random.Generator, img: np.ndarray, pal: _Palette) -> None:
    size = img.shape[0]
    kinds = ("circle", "ring", "triangle", "blob", "striped_disc", "half_disc", "square")
    for i in range(int(rng.integers(1, 4))):
        kind = rng.choice(kinds)
        cx, cy = rng.uniform(0.28, 0.72), rng.uniform(0.28, 0.68)
        r = rng.uniform(0.14, 0.33) * (0.8 if i else 1.0)
        colour = pal.accents[i % len(pal.accents)]
        opacity = rng.uniform(0.8, 1.0)
        if kind == "striped_disc":
            stripes = _stripes(size, rng.uniform(0, np.pi), rng.uniform(0.03, 0.07), 0.5, 0.0)
            _paint(img, stripes * _disc(size, cx, cy, r), colour, opacity)
            continue
        mask = _Mask(size)
        if kind == "circle":
            mask.ellipse(cx, cy, r, r)
        elif kind == "ring":
            mask.ellipse(cx, cy, r, r, width=rng.uniform(0.01, 0.05))
        elif kind == "triangle":
            mask.polygon(_regular_polygon(cx, cy, r, 3, rng.uniform(0.0, 2.0 * np.pi)))
        elif kind == "blob":
            mask.polygon(_blob_points(rng, cx, cy, r))
        elif kind == "square":
            mask.polygon(_regular_polygon(cx, cy, r, 4, rng.uniform(0.0, np.pi)))
        else:  # half_disc: a setting sun on a horizon
            mask.ellipse(cx, cy, r, r)
            mask.rect(0.0, cy, 1.0, 1.0, fill=0)
        _paint(img, mask.coverage(), colour, opacity)


def _pattern(rng: np.random.Generator, img: np.ndarray, pal: _Palette) -> bool:
    """A full-bleed pattern, maybe with a centred panel; returns whether a panel was drawn."""
    size = img.shape[0]
    kind = rng.choice(["stripes", "halftone", "rings", "checker"])
    colour = pal.accents[0]
    if kind == "stripes":
        angle = rng.choice([0.0, 0.5 * np.pi, 0.25 * np.pi, 0.75 * np.pi])
        cover = _stripes(size, angle, rng.uniform(0.04, 0.16), rng.uniform(0.25, 0.6), 0.0)
    elif kind == "halftone":
        fill = _linear_t(size, rng.uniform(0.0, 2.0 * np.pi)) ** np.float32(rng.uniform(0.5, 1.5))
        cover = _halftone(size, int(rng.integers(10, 24)), rng.choice([0.0, 0.25 * np.pi]), fill)
    elif kind == "rings":
        cx, cy = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8)
        cover = _rings(size, cx, cy, rng.uniform(0.04, 0.12), rng.uniform(0.3, 0.6))
    else:
        period = rng.uniform(0.08, 0.2)
        a = _stripes(size, 0.0, period, 0.5, 0.0)
        b = _stripes(size, 0.5 * np.pi, period, 0.5, 0.0)
        cover = np.abs(a - b)
    _paint(img, cover, colour, rng.uniform(0.55, 1.0))
    panel = rng.random()
    if panel < 0.4:  # a solid disc to carry the title
        mask = _Mask(size)
        r = rng.uniform(0.2, 0.32)
        mask.ellipse(0.5, 0.5, r, r)
        _paint(img, mask.coverage(), pal.background[0])
    elif panel < 0.7:
        mask = _Mask(size)
        w, h = rng.uniform(0.25, 0.4), rng.uniform(0.12, 0.3)
        mask.rect(0.5 - w, 0.5 - h, 0.5 + w, 0.5 + h)
        _paint(img, mask.coverage(), pal.background[-1])
    return panel < 0.7


def _silhouette_group(rng: np.random.Generator, img: np.ndarray, pal: _Palette) -> None:
    size = img.shape[0]
    members = int(rng.choice([1, 1, 2, 3, 4, 5, 7]))
    head_r = rng.uniform(0.09, 0.13) if members == 1 else rng.uniform(0.045, 0.075)
    xs = np.linspace(0.14, 0.86, members) if members > 1 else np.array([0.5])
    xs = xs + rng.uniform(-0.03, 0.03, size=members)
    mask = _Mask(size)
    for x in xs:
        top = rng.uniform(0.2, 0.35) if members == 1 else rng.uniform(0.38, 0.55)
        _silhouette(mask, float(x), head_r * rng.uniform(0.9, 1.1), top, rng.random() < 0.4)
    # Figures are always darker than what is behind them: backlit, not spot-lit.
    darkest = min(pal.background, key=_luma)
    colour = (_BLACK + darkest) * np.float32(0.5 if _luma(img.mean(axis=(0, 1))) > 0.45 else 0.4)
    if rng.random() < 0.5:  # back light: a soft halo behind the figures
        _screen(img, mask.coverage(blur=0.03), pal.accents[0], 0.7)
    _paint(img, mask.coverage(blur=0.004), colour, rng.uniform(0.85, 1.0))


def _landscape(
    rng: np.random.Generator, noise_rng: np.random.Generator, img: np.ndarray, pal: _Palette
) -> None:
    """A sun and one or two ridges of hills, each ridge a 1-D noise profile."""
    size = img.shape[0]
    x, y = _grid(size)
    if rng.random() < 0.7:
        r = rng.uniform(0.08, 0.18)
        _paint(img, _disc(size, rng.uniform(0.3, 0.7), rng.uniform(0.25, 0.5), r), pal.accents[0])
    for layer in range(int(rng.integers(1, 3))):
        knots = noise_rng.random(9) * rng.uniform(0.08, 0.2)
        height = rng.uniform(0.55, 0.72) + 0.1 * layer
        profile = height - np.interp(x[0], np.linspace(0.0, 1.0, 9), knots).astype(np.float32)
        ink = pal.background[0] * np.float32(0.5 - 0.2 * layer)
        _paint(img, _aa((y - profile[None, :]) * size), ink)


def _bokeh(rng: np.random.Generator, img: np.ndarray, pal: _Palette) -> None:
    size = img.shape[0]
    mask = _Mask(size)
    for _ in range(int(rng.integers(8, 36))):
        r = rng.uniform(0.01, 0.06)
        cx, cy = rng.uniform(0.0, 1.0), rng.uniform(0.0, 0.8)
        mask.ellipse(cx, cy, r, r, fill=int(rng.integers(60, 220)))
    colour = pal.accents[int(rng.integers(len(pal.accents)))] * 0.5 + _WHITE * 0.5
    _screen(img, mask.coverage(blur=rng.uniform(0.002, 0.008)), colour, rng.uniform(0.5, 0.9))


def _soft_blobs(rng: np.random.Generator, img: np.ndarray, pal: _Palette) -> None:
    size = img.shape[0]
    for i in range(int(rng.integers(2, 5))):
        mask = _Mask(size)
        r = rng.uniform(0.15, 0.35)
        mask.polygon(_blob_points(rng, rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), r))
        cover = mask.coverage(blur=rng.uniform(0.03, 0.08))
        _paint(img, cover, pal.accents[i % len(pal.accents)], rng.uniform(0.45, 0.8))


def _sparkles(rng: np.random.Generator, img: np.ndarray, pal: _Palette) -> None:
    mask = _Mask(img.shape[0])
    for _ in range(int(rng.integers(2, 8))):
        r = rng.uniform(0.015, 0.05)
        mask.polygon(_sparkle_points(rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.95), r, 0.0))
    _screen(img, mask.coverage(), _WHITE, rng.uniform(0.7, 1.0))


def _frame(rng: np.random.Generator, img: np.ndarray, pal: _Palette) -> None:
    mask = _Mask(img.shape[0])
    if rng.random() < 0.5:  # thin inset rule
        inset, width = rng.uniform(0.025, 0.06), rng.uniform(0.004, 0.012)
        colour = _contrasting(pal.ink, img.mean(axis=(0, 1)))
    else:  # paper margin, polaroid-like: the bottom margin is a little wider
        inset, width = 0.0, rng.uniform(0.03, 0.06)
        colour = _WHITE if rng.random() < 0.7 else _BLACK
    mask.rect(inset, inset, 1.0 - inset, 1.0 - inset)
    bottom = width * (1.6 if inset == 0.0 else 1.0)
    mask.rect(inset + width, inset + width, 1.0 - inset - width, 1.0 - inset - bottom, fill=0)
    _paint(img, mask.coverage(), colour)


# --------------------------------------------------------------------------------------------
# Type: glyph-like bars for a title and an artist line
# --------------------------------------------------------------------------------------------

# Each glyph is a solid block with counters (holes) cut out, in a unit box (x0, y0, x1, y1).
_GLYPH_CUTS: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "block": (),
    "e": ((0.4, 0.2, 1.0, 0.4), (0.4, 0.6, 1.0, 0.8)),
    "h": ((0.36, 0.0, 0.64, 0.38), (0.36, 0.62, 0.64, 1.0)),
    "o": ((0.33, 0.22, 0.67, 0.78),),
    "u": ((0.36, 0.0, 0.64, 0.74),),
    "n": ((0.36, 0.26, 0.64, 1.0),),
    "l": ((0.4, 0.0, 1.0, 0.74),),
    "i": (),
}
_GLYPHS = tuple(_GLYPH_CUTS)
_TYPE_PLACEMENTS = (
    "center",
    "top-left",
    "bottom-left",
    "bottom-right",
    "top",
    "bottom",
    "top-right",
)
_BIG_TYPE_PLACEMENTS = ("center", "top-left", "bottom-left", "top")


def _type_line(rng: np.random.Generator, words: int) -> list[tuple[str, float, float]]:
    """Glyphs as (kind, x, width) in units of the line height, starting at x = 0."""
    aspect = rng.uniform(0.55, 0.8)
    glyphs, x = [], 0.0
    for w in range(words):
        if w:
            x += 0.45
        for _ in range(int(rng.integers(2, 8))):
            kind = str(rng.choice(_GLYPHS))
            width = aspect * (0.35 if kind == "i" else 1.0)
            glyphs.append((kind, x, width))
            x += width + 0.14
    return glyphs


def _line_width(glyphs: list[tuple[str, float, float]]) -> float:
    _, x, width = glyphs[-1]
    return x + width


def _draw_line(
    mask: _Mask, glyphs: list[tuple[str, float, float]], x0: float, y0: float, h: float
) -> None:
    for kind, gx, gw in glyphs:
        left, w = x0 + gx * h, gw * h
        mask.rect(left, y0, left + w, y0 + h)
        for cx0, cy0, cx1, cy1 in _GLYPH_CUTS[kind]:
            mask.rect(left + cx0 * w, y0 + cy0 * h, left + cx1 * w, y0 + cy1 * h, fill=0)


def _type_block(
    rng: np.random.Generator,
    img: np.ndarray,
    pal: _Palette,
    big: bool = False,
    placement: str | None = None,
) -> None:
    """A title (one to three lines) and an artist line, anchored centred or in a corner."""
    size = img.shape[0]
    if placement is None:
        placement = str(rng.choice(_BIG_TYPE_PLACEMENTS if big else _TYPE_PLACEMENTS))
    corner = placement not in ("center", "top", "bottom")
    max_w = rng.uniform(0.3, 0.55) if corner else rng.uniform(0.5, 0.85)
    title_h = rng.uniform(0.1, 0.17) if big else rng.uniform(0.035, 0.08)
    n_title = int(rng.integers(2, 4)) if big else int(rng.choice([1, 1, 1, 2]))
    title = [_type_line(rng, int(rng.integers(1, 3))) for _ in range(n_title)]
    artist = _type_line(rng, int(rng.integers(1, 3)))
    artist_first = rng.random() < 0.3
    lines = [(g, min(title_h, max_w / _line_width(g)), True) for g in title]
    artist_h = min(title_h * rng.uniform(0.28, 0.45), max_w / _line_width(artist))
    lines.insert(0 if artist_first else len(lines), (artist, artist_h, False))
    gap = title_h * 0.3
    block_h = sum(h for _, h, _ in lines) + gap * (len(lines) - 1)
    block_w = max(_line_width(g) * h for g, h, _ in lines)
    margin = rng.uniform(0.06, 0.1)
    if placement.startswith("top"):
        y = margin
    elif placement.startswith("bottom"):
        y = 1.0 - margin - block_h
    else:
        y = rng.uniform(0.42, 0.58) - block_h / 2.0
    align = placement.split("-")[1] if corner else "center"

    # Pick ink by the luminance actually under the block, so the type stays legible.
    def px(v: float) -> int:
        return int(np.clip(v * size, 0, size - 1))

    x_lo = {"left": margin, "right": 1.0 - margin - block_w, "center": 0.5 - block_w / 2.0}[align]
    under = img[px(y) : px(y + block_h) + 1, px(x_lo) : px(x_lo + block_w) + 1].mean(axis=(0, 1))
    if rng.random() < 0.2:  # a label plate behind the type
        pad = title_h * 0.35
        plate = _Mask(size)
        plate.rect(x_lo - pad, y - pad, x_lo + block_w + pad, y + block_h + pad)
        under = pal.accents[int(rng.integers(len(pal.accents)))]
        _paint(img, plate.coverage(), under)
    ink = _contrasting(pal.ink, under)
    title_ink = ink
    if rng.random() < 0.35:
        accent = pal.accents[int(rng.integers(len(pal.accents)))]
        if abs(_luma(accent) - _luma(under)) >= 0.25:
            title_ink = accent

    title_mask, artist_mask = _Mask(size), _Mask(size)
    for glyphs, h, is_title in lines:
        width = _line_width(glyphs) * h
        x = {"left": margin, "right": 1.0 - margin - width, "center": 0.5 - width / 2.0}[align]
        _draw_line(title_mask if is_title else artist_mask, glyphs, x, y, h)
        y += h + gap
    _paint(img, title_mask.coverage(), title_ink)
    _paint(img, artist_mask.coverage(), ink)


# --------------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------------

_FAMILIES = ("pastel", "neon", "monochrome", "dark", "vivid")

# layout -> palette family weights, in _FAMILIES order
_LAYOUTS: dict[str, tuple[float, ...]] = {
    "geometric": (0.25, 0.2, 0.2, 0.15, 0.2),
    "photo": (0.1, 0.2, 0.3, 0.3, 0.1),
    "pattern": (0.25, 0.2, 0.15, 0.1, 0.3),
    "dreamy": (0.55, 0.15, 0.0, 0.15, 0.15),
    "bold": (0.1, 0.1, 0.3, 0.2, 0.3),
    "split": (0.2, 0.15, 0.2, 0.2, 0.25),
}
_LAYOUT_WEIGHTS = (0.22, 0.22, 0.16, 0.14, 0.13, 0.13)


def _compose(rng: np.random.Generator, noise_rng: np.random.Generator, size: int) -> np.ndarray:
    names = tuple(_LAYOUTS)
    layout = names[rng.choice(len(names), p=np.asarray(_LAYOUT_WEIGHTS))]
    family = _FAMILIES[rng.choice(len(_FAMILIES), p=np.asarray(_LAYOUTS[layout]))]
    pal = _make_palette(rng, family)
    big_type, placement = False, None
    type_p, grain, vignette = 0.9, 0.35, 0.2  # probabilities
    if layout == "geometric":
        img = _gradient_background(rng, size, pal)
        _geometric_shapes(rng, img, pal)
    elif layout == "photo":
        img = _photo_background(rng, noise_rng, size, pal)
        subject = rng.random()
        if subject < 0.55:
            _silhouette_group(rng, img, pal)
        elif subject < 0.8:
            _landscape(rng, noise_rng, img, pal)
        if subject >= 0.8 or rng.random() < 0.5:  # a bare texture always gets lights
            _bokeh(rng, img, pal)
        grain, vignette = 0.85, 0.6
    elif layout == "pattern":
        img = _gradient_background(rng, size, pal)
        if _pattern(rng, img, pal):
            placement = "center"
    elif layout == "dreamy":
        img = _gradient_background(rng, size, pal)
        _soft_blobs(rng, img, pal)
        if rng.random() < 0.6:
            _bokeh(rng, img, pal)
        if rng.random() < 0.5:
            _sparkles(rng, img, pal)
    elif layout == "bold":
        img = _gradient_background(rng, size, pal)
        if rng.random() < 0.4:
            _paint(img, np.ones((size, size), np.float32), pal.background[0], 0.7)  # near flat
        big_type, type_p = True, 1.0  # bold covers are all about the type
        if rng.random() < 0.5:
            _geometric_shapes(rng, img, pal)
    else:
        img = _split_background(rng, size, pal)
        if rng.random() < 0.7:
            _geometric_shapes(rng, img, pal)

    if rng.random() < type_p:
        _type_block(rng, img, pal, big=big_type, placement=placement)
    if rng.random() < 0.25:
        _frame(rng, img, pal)
    if rng.random() < vignette:
        x, y = _grid(size)
        r2 = (x - 0.5) ** 2 + (y - 0.5) ** 2
        img *= (1.0 - np.float32(rng.uniform(0.4, 0.9)) * r2)[..., None]
    if rng.random() < grain:
        sigma = np.float32(rng.uniform(0.01, 0.04))
        img += (sigma * noise_rng.standard_normal((size, size), dtype=np.float32))[..., None]
    return img


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _check_args(n: int = 1, size: int = MIN_SIZE, seed: int = 0, index: int = 0) -> None:
    if n < 1:
        raise UsageError(f"n must be >= 1, got {n=}")
    if size < MIN_SIZE:
        raise UsageError(f"size must be >= {MIN_SIZE}, got {size=}")
    if seed < 0:
        raise UsageError(f"seed must be >= 0, got {seed=}")
    if index < 0:
        raise UsageError(f"index must be >= 0, got {index=}")


def generate_cover(index: int, size: int = 256, seed: int = 0) -> Image.Image:
    """Draw one synthetic album cover.

    Args:
        index: Which cover of the set (>= 0). Each index gives a different layout.
        size: Side length in pixels (>= 8); the cover is drawn at this size, not upscaled.
        seed: Selects the whole set (>= 0); the same (seed, index, size) gives identical pixels.

    Returns:
        An RGB ``PIL.Image.Image`` of ``size`` x ``size`` pixels.

    Raises:
        ValueError: If an argument is out of range.
    """
    _check_args(size=size, seed=seed, index=index)
    rng = np.random.default_rng([seed, index, 0])
    noise_rng = np.random.default_rng([seed, index, 1])
    img = _compose(rng, noise_rng, size)
    pixels = np.clip(img * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def dataset_dirname(n: int, size: int, seed: int) -> str:
    """Name of the folder that `ensure_synthetic` creates for these arguments."""
    return f"synthetic-v{SYNTHETIC_VERSION}-s{seed}-{size}px-n{n}"


def ensure_synthetic(
    cache_dir: str | os.PathLike[str], n: int = 512, size: int = 256, seed: int = 0
) -> Path:
    """Create (once) and return a folder of synthetic covers.

    The folder ``cache_dir/synthetic-v{SYNTHETIC_VERSION}-s{seed}-{size}px-n{n}/`` holds
    ``cover_00000.png`` ... ``cover_{n-1:05d}.png`` and a ``DONE`` marker. It is built in a private
    temporary sibling folder, the marker is written last, and the folder is renamed into place, so
    readers never see a partial set. If several processes race, one rename wins and the others
    discard their copies. A run killed midway leaves only a hidden ``.synthetic-...tmp*`` folder,
    which later calls ignore (delete it at leisure).

    Args:
        cache_dir: Parent folder; created if missing.
        n: Number of covers (>= 1).
        size: Side length in pixels (>= 8).
        seed: Dataset seed (>= 0).

    Returns:
        The complete dataset folder.

    Raises:
        UsageError: If an argument is out of range, or the target folder exists but has no
            ``DONE`` marker (not made here).
    """
    _check_args(n=n, size=size, seed=seed)
    cache = Path(cache_dir)
    final = cache / dataset_dirname(n, size, seed)
    if (final / DONE_MARKER).is_file():
        return final
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp", dir=cache))
    try:
        for i in range(n):
            cover = generate_cover(i, size=size, seed=seed)
            cover.save(tmp / f"cover_{i:05d}.png", compress_level=_PNG_COMPRESS_LEVEL)
        info = {"version": SYNTHETIC_VERSION, "n": n, "size": size, "seed": seed}
        (tmp / DONE_MARKER).write_text(json.dumps(info) + "\n")
        try:
            os.rename(tmp, final)
        except OSError:
            # Another process finished first (rename onto a non-empty folder fails).
            if (final / DONE_MARKER).is_file():
                shutil.rmtree(tmp, ignore_errors=True)
                return final
            raise UsageError(
                f"{final} exists but has no {DONE_MARKER} marker; remove it and retry"
            ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: write a synthetic dataset folder and print its path."""
    parser = ArgumentParser(
        prog="python -m albumgan.data_tools.synthetic", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("out_dir", help="parent folder for the dataset folder")
    parser.add_argument("--n", type=int, default=512, help="number of covers (default 512)")
    parser.add_argument("--size", type=int, default=256, help="side in pixels (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    args = parser.parse_args(argv)
    try:
        path = ensure_synthetic(args.out_dir, n=args.n, size=args.size, seed=args.seed)
    except UsageError as err:
        parser.error(str(err))  # one line on stderr, exit code 2
    print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
