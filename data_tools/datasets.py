"""Training data: a config's ``dataset`` value -> an in-memory uint8 image array.

The name resolves to a folder through ``data_tools.registry``. Images are decoded once,
centre-cropped to a square and resized with antialiased LANCZOS (``data_tools.imageops``, the one
resize method used everywhere), then cached as ``.npz`` keyed by the folder's content fingerprint,
the resolution and the resize method, so the next run starts without decoding anything.
Unreadable files are reported and skipped, never fatal.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from albumgan.data_tools.imageops import open_rgb, square_resize
from albumgan.data_tools.registry import (
    BUILD_HINTS,
    IMAGE_SUFFIXES,
    DatasetError,
    default_cache_dir,
    list_images,
    resolve,
)
from albumgan.gan_core.fileio import atomic_write

__all__ = ["Dataset", "DatasetError", "default_cache_dir", "load_dataset"]

log = logging.getLogger(__name__)

RESIZE_METHOD = "center-crop+lanczos"


@dataclass(frozen=True)
class Dataset:
    """Decoded training images and where they came from."""

    name: str
    source: Path
    images: np.ndarray  # (N, R, R, 3) uint8
    fingerprint: str  # content hash of the source folder (names, sizes, mtimes)
    skipped: tuple[str, ...] = ()  # files that could not be decoded, with reasons


def fingerprint(files: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def load_image(path: Path, resolution: int) -> np.ndarray:
    """Decode one file to (resolution, resolution, 3) uint8 with the shared square + resize."""
    image, _ = open_rgb(path, draft_size=resolution)
    return np.asarray(square_resize(image, resolution, "crop"), dtype=np.uint8)


def _decode_all(files: list[Path], resolution: int) -> tuple[np.ndarray, list[str]]:
    arrays, skipped = [], []
    for path in files:
        try:
            arrays.append(load_image(path, resolution))
        except Exception as exc:  # noqa: BLE001 - any undecodable file is skipped, with its reason
            skipped.append(f"{path.name}: {exc}")
            log.warning("skipping unreadable image %s: %s", path, exc)
    if not arrays:
        return np.zeros((0, resolution, resolution, 3), np.uint8), skipped
    return np.stack(arrays), skipped


def load_dataset(
    dataset: str,
    resolution: int,
    cache_dir: str | os.PathLike = "",
    data_dir: str | os.PathLike | None = None,
) -> Dataset:
    """Decode (or load from cache) every image of ``dataset`` at ``resolution``.

    Raises:
        DatasetError: unknown name, missing folder, or no decodable image in it.
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    source = resolve(dataset, data_dir, cache)
    files = list_images(source)
    if not files:
        raise DatasetError(
            f"dataset {dataset!r}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {source}"
        )
    key = fingerprint(files, source)
    name = dataset if dataset in ("synthetic", *BUILD_HINTS) else source.name
    cached = cache / "arrays" / f"{name}-{key}-{resolution}px-{RESIZE_METHOD}.npz"
    if cached.is_file():
        with np.load(cached) as data:
            skipped = tuple(str(s) for s in data["skipped"])
            return Dataset(name, source, data["images"], key, skipped)
    images, skipped = _decode_all(files, resolution)
    if len(images) == 0:
        raise DatasetError(
            f"dataset {dataset!r}: none of the {len(files)} files in {source} could be decoded"
        )
    # Written atomically: a concurrent or killed writer never leaves a half-written cache file.
    with atomic_write(cached) as handle:
        np.savez(handle, images=images, skipped=np.array(skipped, dtype=str))
    return Dataset(name, source, images, key, tuple(skipped))
