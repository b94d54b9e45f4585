"""Image conversion and grids, with the value range always stated (``drange``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from albumgan.gan_core.fileio import atomic_write


def to_uint8(images: np.ndarray, drange: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Float images in ``drange`` -> uint8 in [0, 255] (clipped, rounded)."""
    low, high = drange
    scaled = (np.asarray(images, np.float32) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def tile(images: np.ndarray, cols: int | None = None) -> np.ndarray:
    """(N, H, W, C) uint8 -> one (rows*H, cols*W, C) image; missing cells stay black."""
    count, height, width, channels = images.shape
    cols = cols or math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    canvas = np.zeros((rows * height, cols * width, channels), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * height : (r + 1) * height, c * width : (c + 1) * width] = image
    return canvas


def save_image(array: np.ndarray, path: Path, durable: bool = True, **save_args) -> None:
    """Write atomically (temp file + rename): a reader never sees half a PNG."""
    image_format = Image.registered_extensions()[Path(path).suffix.lower()]
    with atomic_write(path, durable=durable) as handle:
        Image.fromarray(array).save(handle, format=image_format, **save_args)


def save_grid(
    images: np.ndarray,
    path: Path,
    drange: tuple[float, float] = (-1.0, 1.0),
    cols: int | None = None,
    durable: bool = True,
) -> None:
    """Save a batch of float images in ``drange`` as one tiled PNG."""
    save_image(tile(to_uint8(images, drange), cols), path, durable)
