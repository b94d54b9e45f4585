"""Dataset registry: folders with good and broken files, caching, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from albumgan.data_tools.datasets import DatasetError, load_dataset


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
    with pytest.raises(DatasetError, match="no such folder"):
        load_dataset(str(tmp_path / "nope"), 16, tmp_path)
    with pytest.raises(DatasetError, match="'crawled' is not built"):
        load_dataset("crawled", 16, tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images"):
        load_dataset(str(empty), 16, tmp_path)


def test_load_image_is_the_same_eagerly_and_inside_tf_data(tmp_path):
    import tensorflow as tf

    from albumgan.data_tools.datasets import load_image

    paths = []
    for i, size in enumerate([(40, 20), (33, 33), (20, 50)]):
        path = tmp_path / f"{i}.png"
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    eager = np.stack([load_image(Path(p), 16) for p in paths])

    def decode(path):
        return load_image(Path(path.decode()), 16)

    ds = tf.data.Dataset.from_tensor_slices(paths).map(
        lambda p: tf.numpy_function(decode, [p], tf.uint8)
    )
    in_data = np.stack([x.numpy() for x in ds])
    np.testing.assert_array_equal(eager, in_data)
    assert eager.shape == (3, 16, 16, 3)


def test_data_list_and_synth_commands(tmp_path, monkeypatch):
    from albumgan.data_tools.cli import main

    monkeypatch.setenv("ALBUMGAN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("ALBUMGAN_CACHE", str(tmp_path / "cache"))
    assert main(["synth", "--out", str(tmp_path / "syn"), "--n", "5", "--size", "16"]) == 0
    made = next((tmp_path / "syn").iterdir())
    assert len(list(made.glob("*.png"))) == 5
    (tmp_path / "data" / "mine" / "images").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "data" / "mine" / "images" / "a.png")
    from albumgan.data_tools.registry import describe

    rows = {r["name"]: r for r in describe()}
    assert set(rows) == {"synthetic", "gaon", "crawled", "mine"}
    assert rows["mine"]["count"] == 1 and rows["mine"]["built"]
    assert rows["gaon"]["count"] == 0 and "albumgan data prepare" in rows["gaon"]["hint"]
    assert main(["list"]) == 0


def test_every_name_data_list_shows_is_a_dataset_and_a_typo_is_refused(
    tmp_path, capsys, monkeypatch
):
    from albumgan.data_tools.cli import main as data_main
    from albumgan.experiments.train import main as train_main

    monkeypatch.chdir(tmp_path)  # the registry root is data/ in the working folder
    (tmp_path / "data" / "kpop" / "images").mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (32, 32), (40 * i, 90, 200)).save(tmp_path / f"data/kpop/images/{i}.png")
    capsys.readouterr()
    assert data_main(["list"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split()[0] == "NAME" and "--dataset=NAME" in rows[0]
    names = [r.split()[0] for r in rows[1:] if "images" in r]
    assert names == ["synthetic", "gaon", "crawled", "kpop"]
    data = load_dataset("kpop", 16, tmp_path / "cache")
    assert data.images.shape == (3, 16, 16, 3)
    # --dry-run checks the dataset: found and counted, or one line and exit 2.
    assert train_main(["--config", "smoke", "--dataset=kpop", "--dry-run"]) == 0
    assert "dataset_images: 3 in data/kpop/images" in capsys.readouterr().out
    assert train_main(["--config", "smoke", "--dataset=data/kpopp", "--dry-run"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "no such folder" in line and "(synthetic, gaon, crawled, kpop)" in line
