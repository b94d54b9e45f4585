"""Pictures for reports: a readable subset of the sample grids, a progress GIF, the best samples
and their nearest real neighbours.

All inputs are files of the run directory (and the dataset it names); all outputs are PNG/GIF
files in the report's ``assets/`` folder, referenced relatively by the HTML and the Markdown.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from albumgan.data_tools.datasets import load_dataset
from albumgan.data_tools.registry import DatasetError
from albumgan.gan_core.fileio import atomic_write, default_cache_dir
from albumgan.gan_core.metrics.extractors import get_extractor
from albumgan.gan_core.metrics.score import cached_features
from albumgan.reports.rundata import RunData

TIMELINE_GRIDS = 8  # grids shown side by side: first, last and evenly spaced between
GIF_FRAMES = 40
GIF_FRAME_MS = 200
NEIGHBOURS = 3  # real images shown beside each generated sample
NEIGHBOUR_ROWS = 8
BASELINE_POOL = 2000
MIN_TILE_PX = 64  # neighbour strips are upscaled (nearest) to at least this, to stay readable


def pick_evenly(items: list, count: int) -> list:
    """``count`` items spread evenly over ``items``, always including the first and the last."""
    if len(items) <= count:
        return list(items)
    index = np.unique(np.round(np.linspace(0, len(items) - 1, count)).astype(int))
    return [items[i] for i in index]


def copy_asset(src: Path, assets: Path, name: str) -> str:
    """Copy ``src`` into ``assets`` and return its path relative to the report folder."""
    assets.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, assets / name)
    return f"{assets.name}/{name}"


def progress_gif(run: RunData, path: Path) -> bool:
    """Every sample grid (up to GIF_FRAMES, evenly picked) as one looping GIF, like the seed's;
    the last frame is held longer. False when the run has fewer than two grids."""
    grids = pick_evenly(run.grids, GIF_FRAMES)
    if len(grids) < 2:
        return False
    frames = []
    for _, grid in grids:
        with Image.open(grid) as image:  # closed at once: up to GIF_FRAMES files
            frames.append(image.convert("RGB"))
    size = frames[-1].size
    frames = [f if f.size == size else f.resize(size) for f in frames]
    durations = [GIF_FRAME_MS] * (len(frames) - 1) + [GIF_FRAME_MS * 10]
    with atomic_write(path, durable=False) as handle:  # a browser may be showing the old one
        frames[0].save(
            handle, "GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0
        )
    return True


def best_samples_source(run: RunData) -> tuple[Path | None, str]:
    """The picture of the best samples and what it is: best_samples.png (the best evaluation's
    images), else the newest grid."""
    if best := run.file("best_samples.png"):
        step = run.best.get("step") if run.best else "?"
        metric = run.best.get("best_metric", "kid") if run.best else "kid"
        return best, f"best checkpoint (step {step}, best {metric})"
    if run.grids:
        step, path = run.grids[-1]
        return path, f"latest sample grid (step {step}; no evaluation ran)"
    return None, "no samples yet"


def cut_tiles(path: Path, resolution: int) -> np.ndarray:
    """A grid PNG of ``resolution``-px tiles -> (N, R, R, 3) uint8; all-black (empty) cells
    dropped."""
    grid = np.asarray(Image.open(path).convert("RGB"))
    rows, cols = grid.shape[0] // resolution, grid.shape[1] // resolution
    tiles = (
        grid[: rows * resolution, : cols * resolution]
        .reshape(rows, resolution, cols, resolution, 3)
        .swapaxes(1, 2)
        .reshape(rows * cols, resolution, resolution, 3)
    )
    return tiles[tiles.reshape(len(tiles), -1).max(axis=1) > 0]


@dataclass
class Neighbours:
    """Generated samples next to their nearest real images (album features, z-scored)."""

    src: str  # the strip picture, relative to the report folder
    rows: list[dict]  # per sample: nearest distance, ratio to the real-real baseline
    baseline: float  # median distance from a real image to its nearest other real image
    closest_ratio: float  # smallest sample distance / baseline (<< 1: a near copy)


def nearest_neighbours(
    run: RunData, samples: Path, assets: Path, prefix: str = ""
) -> Neighbours | str:
    """Nearest real neighbours of the generated samples in ``samples`` (a grid PNG), for spotting
    memorization. Returns a reason string when the dataset is not available here."""
    cfg = run.config
    resolution = int(cfg.get("resolution", 64))
    try:
        dataset = load_dataset(
            str(cfg.get("dataset")),
            resolution,
            cfg.get("cache_dir") or "",
            cfg.get("data_dir") or None,
        )
    except (DatasetError, OSError) as exc:
        return f"nearest neighbours skipped: {exc}"
    fakes = cut_tiles(samples, resolution)
    if len(fakes) == 0 or len(dataset.images) < 2:
        return "nearest neighbours skipped: no samples or fewer than two real images"
    extractor = get_extractor("album")
    cache = cfg.get("cache_dir") or default_cache_dir()
    real = cached_features(
        dataset.images, extractor, f"{dataset.name}-{dataset.fingerprint}", cache
    )
    fake = extractor(fakes)
    mean, std = real.mean(axis=0), real.std(axis=0) + 1e-6
    real_z, fake_z = (real - mean) / std, (fake - mean) / std
    fake_to_real = _distances(fake_z, real_z)
    # The yardstick: how far a real image usually is from its nearest other real image (on at
    # most BASELINE_POOL of them, so a large dataset does not need an N x N matrix).
    pool = np.random.default_rng(0).permutation(len(real_z))[:BASELINE_POOL]
    real_to_real = _distances(real_z[pool], real_z[pool])
    np.fill_diagonal(real_to_real, np.inf)
    baseline = float(np.median(real_to_real.min(axis=1)))
    nearest = np.argsort(fake_to_real, axis=1)[:, :NEIGHBOURS]
    closest = fake_to_real[np.arange(len(fake)), nearest[:, 0]]
    # The samples most like a training image are the ones worth a look.
    order = np.argsort(closest)[:NEIGHBOUR_ROWS]
    strip = [[fakes[i], *dataset.images[nearest[i]]] for i in order]
    name = f"{prefix}neighbours.png"
    _save_strip(strip, assets / name)
    rows = [
        {
            "sample": int(i),
            "distance": float(closest[i]),
            "ratio": float(closest[i] / baseline) if baseline > 0 else float("nan"),
        }
        for i in order
    ]
    return Neighbours(f"{assets.name}/{name}", rows, baseline, rows[0]["ratio"])


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def _save_strip(rows: list[list[np.ndarray]], path: Path) -> None:
    """Rows of [sample | neighbour 1 | ...], a gap after the sample, upscaled to be readable."""
    resolution = rows[0][0].shape[0]
    scale = max(1, -(-MIN_TILE_PX // resolution))
    tile, gap = resolution * scale, 6
    width = tile * len(rows[0]) + gap * len(rows[0])
    canvas = Image.new("RGB", (width, tile * len(rows) + gap * (len(rows) - 1)), "white")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            x = c * (tile + gap) + (gap if c else 0)
            picture = Image.fromarray(image).resize((tile, tile), Image.NEAREST)
            canvas.paste(picture, (x, r * (tile + gap)))
    ImageDraw.Draw(canvas).line([(tile + gap, 0), (tile + gap, canvas.height)], "grey")
    with atomic_write(path, durable=False) as handle:
        canvas.save(handle, "PNG")
