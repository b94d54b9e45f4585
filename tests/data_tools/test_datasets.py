"""Dataset registry: folders with good and broken files, caching, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from data_tools.datasets import DatasetError, load_dataset


def _folder(tmp_path):
    folder = tmp_path / "covers"
    folder.mkdir()
    Image.new("RGB", (40, 20), (255, 0, 0)).save(folder / "wide.png")
    Image.new("RGBA", (30, 30), (0, 0, 255, 0)).save(folder / "transparent.png")
    Image.new("L", (25, 25), 128).save(folder / "grey.jpg")
    (folder / "broken.jpg").write_bytes(b"<html>not an image</html>")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("ignored")
    return folder


def test_folder_dataset_skips_broken_files_and_keeps_good_ones(tmp_path):
    data = load_dataset(str(_folder(tmp_path)), 16, tmp_path / "cache")
    assert data.images.shape == (3, 16, 16, 3) and data.images.dtype == np.uint8
    assert sorted(s.split(":")[0] for s in data.skipped) == ["broken.jpg", "empty.png"]
    by_name = dict(zip(["grey", "transparent", "wide"], data.images))  # files are sorted
    assert tuple(by_name["wide"][8, 8]) == (255, 0, 0)
    assert tuple(by_name["transparent"][8, 8]) == (255, 255, 255)  # alpha composited on white
    assert tuple(by_name["grey"][8, 8]) == (128, 128, 128)


def test_decoded_arrays_are_cached_and_invalidated_by_changes(tmp_path):
    folder = _folder(tmp_path)
    first = load_dataset(str(folder), 16, tmp_path / "cache")
    cached = list((tmp_path / "cache" / "arrays").glob("*.npz"))
    assert len(cached) == 1
    second = load_dataset(str(folder), 16, tmp_path / "cache")
    np.testing.assert_array_equal(first.images, second.images)
    assert second.skipped == first.skipped
    Image.new("RGB", (16, 16), (0, 255, 0)).save(folder / "new.png")
    assert len(load_dataset(str(folder), 16, tmp_path / "cache").images) == 4


def test_unknown_and_unbuilt_datasets_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        load_dataset(str(tmp_path / "nope"), 16, tmp_path)
    with pytest.raises(DatasetError, match="'crawled' is not built"):
        load_dataset("crawled", 16, tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images"):
        load_dataset(str(empty), 16, tmp_path)
