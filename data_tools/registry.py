"""The dataset registry: a config's ``dataset`` value -> the folder of images to train on.

    synthetic   generated on first use into the cache (offline, deterministic)
    gaon        <data root>/gaon/images      built by `albumgan data prepare` from raw covers
    crawled     <data root>/crawled/images   likewise
    NAME        <data root>/NAME/images      any other prepared dataset there (data list)
    PATH        a prepared folder (its images/) or any folder of images

A prepared folder's images are the ``kept`` ones its ``manifest.jsonl`` lists: other files that
someone put in its images/ are not part of the dataset. Any other folder means every image in it.

The data root is ``--data_dir`` (config key ``data_dir``), else ``$ALBUMGAN_DATA``, else ``data/``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from albumgan.data_tools import synthetic
from albumgan.gan_core.contract import AlbumganError
from albumgan.gan_core.fileio import default_cache_dir, read_jsonl

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
# How each named dataset is built.
BUILD_HINTS = {
    "gaon": "albumgan data gaon --out {root}/raw/gaon && "
    "albumgan data prepare {root}/raw/gaon --out {root}/gaon",
    "crawled": "albumgan data crawl --out {root}/raw/crawled && "
    "albumgan data prepare {root}/raw/crawled --out {root}/crawled",
}


class DatasetError(AlbumganError):
    """The dataset cannot be found or holds no usable image (a user error: exit code 2)."""


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    return Path(data_dir or os.environ.get("ALBUMGAN_DATA") or "data")


def image_folder(folder: Path) -> Path:
    """A prepared dataset keeps its images in images/; any other folder is used as it is."""
    return folder / "images" if (folder / "images").is_dir() else folder


def is_prepare_manifest(records: list) -> bool:
    """Whether manifest.jsonl records are the ones ``albumgan data prepare`` writes (one per raw
    input, with ``src`` and ``status``), not the crawler's or the Gaon fetcher's (``file``)."""
    return all(isinstance(r, dict) and "src" in r and "status" in r for r in records)


def list_images(folder: Path) -> list[Path]:
    """The images in ``folder``, sorted: for a prepared dataset's images/, the kept files its
    manifest lists; for any other folder, every image file under it."""
    manifest = folder.parent / "manifest.jsonl"
    if folder.name == "images" and manifest.is_file():
        records = read_jsonl(manifest)
        if is_prepare_manifest(records):
            kept = (
                folder.parent / r["out"]
                for r in records
                if r["status"] == "kept" and isinstance(r.get("out"), str)
            )
            return sorted(p for p in kept if p.parent == folder and p.is_file())
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


def resolve(dataset: str, data_dir: str | os.PathLike | None, cache_dir: Path) -> Path:
    """The folder of training images behind a dataset name or path.

    Raises:
        DatasetError: a named dataset that is not built (naming the command that builds it), or a
            path that is not a folder.
    """
    if dataset == "synthetic":
        return synthetic.ensure_synthetic(cache_dir / "datasets")
    if dataset in BUILD_HINTS:
        root = data_root(data_dir)
        folder = root / dataset / "images"
        if folder.is_dir():
            return folder
        hint = BUILD_HINTS[dataset].format(root=root)
        raise DatasetError(f"dataset {dataset!r} is not built (no {folder}); build it: {hint}")
    path = Path(dataset).expanduser()
    if path.is_dir():
        return image_folder(path)
    root = data_root(data_dir)
    if "/" not in dataset and (root / dataset / "images").is_dir():
        return root / dataset / "images"  # a name `albumgan data list` shows
    names = ", ".join(row["name"] for row in describe(data_dir))
    raise DatasetError(
        f"dataset {dataset!r}: no such folder, nor a dataset of that name in {root}/; expected "
        f"a name albumgan data list shows ({names}) or a folder path"
    )


def describe(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """Known datasets for ``albumgan data list``: name, path, image count, build time, hint."""
    root = data_root(data_dir)
    rows = []
    cached = default_cache_dir() / "datasets" / synthetic.dataset_dirname(512, 256, 0)
    rows.append(_row("synthetic", cached, ""))
    names = list(BUILD_HINTS)
    if root.is_dir():
        names += sorted(
            p.name
            for p in root.iterdir()
            if p.is_dir() and p.name not in BUILD_HINTS and (p / "images").is_dir()
        )
    for name in names:
        hint = BUILD_HINTS.get(name, "").format(root=root)
        rows.append(_row(name, root / name / "images", hint))
    return rows


def _row(name: str, folder: Path, hint: str) -> dict:
    if not folder.is_dir():
        return {"name": name, "path": str(folder), "count": 0, "built": None, "hint": hint}
    marker = folder.parent / "manifest.jsonl"
    if not marker.exists():
        marker = (
            folder / synthetic.DONE_MARKER if (folder / synthetic.DONE_MARKER).exists() else folder
        )
    built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(marker.stat().st_mtime))
    return {
        "name": name,
        "path": str(folder),
        "count": len(list_images(folder)),
        "built": built,
        "hint": "",
    }
