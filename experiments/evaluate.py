"""``albumgan evaluate``: score any images against real ones.

    albumgan evaluate --real data/crawled --fake runs/00003-modern [--checkpoint best]
    albumgan evaluate --real data/crawled --fake published_grids/ --grid 8x8 --json

``--fake`` is a folder of images, a run directory (its final or best generator draws as many
images as there are real ones), or, with ``--grid RxC``, a folder of sample grids cut into R x C
tiles, so the seed notebook's published grids can be scored against the same data. Both sides go
through the same square + LANCZOS resize to ``--resolution`` as training.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from albumgan.data_tools.datasets import load_dataset
from albumgan.data_tools.imageops import RESAMPLE, open_rgb, square_resize
from albumgan.data_tools.registry import list_images
from albumgan.gan_core.contract import UsageError
from albumgan.gan_core.fileio import default_cache_dir
from albumgan.gan_core.metrics.extractors import get_extractor
from albumgan.gan_core.metrics.score import cached_features, score_features


def parse_grid(text: str) -> tuple[int, int]:
    """ "8x8" -> (8, 8).

    Raises:
        UsageError: not ROWSxCOLS with positive integers.
    """
    try:
        rows, cols = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--grid must look like 8x8 (rows x columns), got {text!r}") from None
    if rows < 1 or cols < 1:
        raise UsageError(f"--grid must have positive rows and columns, got {text!r}")
    return rows, cols


# The smallest grid tile taken for an image. albumgan trains at 16 px and up; a tile under 8 px
# means ROWSxCOLS does not match the grid (say 100x100 on a 64 px grid), not a tiny sample.
MIN_TILE = 8


def check_tiles(size: tuple[int, int], rows: int, cols: int, name: str) -> None:
    """Refuse a grid whose tiles would be under ``MIN_TILE`` px on a side.

    Raises:
        UsageError: naming the tile size, the grid and the image size.
    """
    width, height = size
    tile_w, tile_h = width / cols, height / rows
    if min(tile_w, tile_h) < MIN_TILE:
        raise UsageError(
            f"--grid {rows}x{cols} cuts {name} ({width}x{height} px) into "
            f"{tile_w:g}x{tile_h:g} px tiles; tiles must be at least {MIN_TILE} px"
        )


def cut_grid(image: Image.Image, rows: int, cols: int) -> list[Image.Image]:
    """Split a sample grid into its tiles, row by row (a thin border is allowed for)."""
    width, height = image.size
    tiles = []
    for r in range(rows):
        for c in range(cols):
            box = (
                round(c * width / cols),
                round(r * height / rows),
                round((c + 1) * width / cols),
                round((r + 1) * height / rows),
            )
            tiles.append(image.crop(box))
    return tiles


def folder_images(folder: Path, resolution: int, grid: tuple[int, int] | None) -> np.ndarray:
    """Every image in ``folder`` (or every tile of every grid) at ``resolution``, uint8."""
    arrays = []
    for path in list_images(folder):
        image, _ = open_rgb(path)
        if grid:
            check_tiles(image.size, *grid, path.name)
        tiles = cut_grid(image, *grid) if grid else [image]
        for tile in tiles:
            if grid:  # tiles are already square crops of square samples
                tile = tile.resize((resolution, resolution), RESAMPLE)
            else:
                tile = square_resize(tile, resolution)
            arrays.append(np.asarray(tile, np.uint8))
    if not arrays:
        raise UsageError(f"no images in {folder}")
    return np.stack(arrays)


def fake_images(
    fake: Path, resolution: int, n: int, grid: tuple[int, int] | None, which: str, seed: int
) -> np.ndarray:
    """Images from a run directory's generator, or from a folder."""
    if (fake / "config.yaml").is_file() and not grid:
        from albumgan.gan_core.sampling import generate, load_sampler

        images = generate(load_sampler(fake, which), n, seed)
        if images.shape[1] != resolution:
            resized = [
                Image.fromarray(x).resize((resolution, resolution), RESAMPLE) for x in images
            ]
            images = np.stack([np.asarray(x) for x in resized])
        return images
    return folder_images(fake, resolution, grid)


def evaluate(
    real: str | os.PathLike,
    fake: str | os.PathLike,
    resolution: int = 64,
    extractor: str = "album",
    grid: str | None = None,
    which: str = "final",
    inception_weights: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """All scores for ``fake`` against ``real`` (a dataset name or folder); see the module doc."""
    grid_shape = parse_grid(grid) if grid else None
    fake = Path(fake)
    from_run = (fake / "config.yaml").is_file() and not grid_shape
    # A folder of fakes is read first: a bad one (or a bad --grid) fails before the real side's
    # features, which can take minutes; a run directory needs the real count first.
    fakes = None if from_run else folder_images(fake, resolution, grid_shape)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    dataset = load_dataset(str(real), resolution, cache)
    feature_fn = get_extractor(extractor, inception_weights)
    real_feats = cached_features(
        dataset.images, feature_fn, f"{dataset.name}-{dataset.fingerprint}", cache
    )
    if fakes is None:
        fakes = fake_images(fake, resolution, len(dataset.images), grid_shape, which, seed)
    if len(fakes) < 2:
        raise UsageError(f"need at least 2 fake images, got {len(fakes)}")
    return score_features(
        real_feats, feature_fn(fakes), feature_fn, resolution, with_density=True, seed=seed
    )
