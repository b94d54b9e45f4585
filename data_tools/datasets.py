"""Dataset registry: a config's ``dataset`` value -> an in-memory uint8 image array.

``synthetic`` is generated on first use into the cache folder (``data_tools.synthetic``); any other
value is a folder of images. ``gaon`` and ``crawled`` are built by the data tools (own issue);
until they exist locally the error says how to get them.

Images are decoded once, centre-cropped to a square and resized with antialiased LANCZOS (the one
resize method used everywhere), then cached as ``.npy`` keyed by the folder's content fingerprint,
the resolution and the resize method, so the next run starts without decoding anything. Unreadable
files are reported and skipped, never fatal.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from data_tools import synthetic

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
RESIZE_METHOD = "center-crop+lanczos"
BUILT_BY_DATA_TOOLS = ("gaon", "crawled")


class DatasetError(ValueError):
    """The dataset cannot be found or holds no usable image (a user error: exit code 2)."""


@dataclass(frozen=True)
class Dataset:
    """Decoded training images and where they came from."""

    name: str
    source: Path
    images: np.ndarray  # (N, R, R, 3) uint8
    fingerprint: str  # content hash of the source folder (names, sizes, mtimes)
    skipped: tuple[str, ...] = ()  # files that could not be decoded, with reasons


def default_cache_dir() -> Path:
    return Path(os.environ.get("ALBUMGAN_CACHE") or Path.home() / ".cache" / "albumgan")


def resolve_source(dataset: str, cache_dir: Path) -> Path:
    """The folder of images behind a dataset name or path."""
    if dataset == "synthetic":
        return synthetic.ensure_synthetic(cache_dir / "datasets")
    if dataset in BUILT_BY_DATA_TOOLS:
        built = cache_dir / "datasets" / dataset / "images"
        if built.is_dir():
            return built
        raise DatasetError(
            f"dataset {dataset!r} is not built on this machine (expected {built}); build it with "
            f"the data tools (`albumgan data ...`, not available yet) or pass a folder of images "
            f"as --dataset=PATH, or use --dataset=synthetic"
        )
    path = Path(dataset).expanduser()
    if not path.is_dir():
        raise DatasetError(
            f"dataset {dataset!r}: not a folder; "
            "expected synthetic, gaon, crawled or a folder path"
        )
    return path


def list_images(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


def fingerprint(files: list[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def load_image(path: Path, resolution: int) -> np.ndarray:
    """Decode one file to (resolution, resolution, 3) uint8: EXIF-rotated, RGB, square, resized."""
    with Image.open(path) as image:
        image.seek(0)  # animated files: the first frame
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA", "P", "PA"):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, rgba)
        image = image.convert("RGB")
        side = min(image.size)
        image = ImageOps.fit(image, (side, side), method=Image.Resampling.LANCZOS)
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
        return np.asarray(image, dtype=np.uint8)


def _decode_all(files: list[Path], resolution: int) -> tuple[np.ndarray, list[str]]:
    arrays, skipped = [], []
    for path in files:
        try:
            arrays.append(load_image(path, resolution))
        except Exception as exc:  # noqa: BLE001 - any undecodable file is skipped, with its reason
            skipped.append(f"{path.name}: {type(exc).__name__}: {exc}")
            log.warning("skipping unreadable image %s: %s", path, exc)
    if not arrays:
        return np.zeros((0, resolution, resolution, 3), np.uint8), skipped
    return np.stack(arrays), skipped


def load_dataset(dataset: str, resolution: int, cache_dir: str | os.PathLike = "") -> Dataset:
    """Decode (or load from cache) every image of ``dataset`` at ``resolution``.

    Raises:
        DatasetError: unknown name, missing folder, or no decodable image in it.
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    source = resolve_source(dataset, cache)
    files = list_images(source)
    if not files:
        raise DatasetError(
            f"dataset {dataset!r}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {source}"
        )
    key = fingerprint(files, source)
    name = dataset if dataset in ("synthetic", *BUILT_BY_DATA_TOOLS) else source.name
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
    cached.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: a concurrent or killed writer never leaves a half-written cache file.
    fd, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp.npz")
    with os.fdopen(fd, "wb") as handle:
        np.savez(handle, images=images, skipped=np.array(skipped, dtype=str))
    os.replace(tmp, cached)
    return Dataset(name, source, images, key, tuple(skipped))
