"""Tests for data_tools.synthetic: determinism, variety, and the cached dataset folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from albumgan.data_tools import synthetic
from albumgan.data_tools.synthetic import (
    DONE_MARKER,
    SYNTHETIC_VERSION,
    ensure_synthetic,
    generate_cover,
    main,
)
from albumgan.gan_core.contract import UsageError


def _pixels(index: int, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.asarray(generate_cover(index, size=size, seed=seed), np.float32)


def _neighbour_correlation(img: np.ndarray) -> float:
    """Correlation of horizontally adjacent grey values: ~0 for white noise, high for pictures."""
    grey = img.mean(axis=-1)
    return float(np.corrcoef(grey[:, :-1].ravel(), grey[:, 1:].ravel())[0, 1])


@pytest.fixture(scope="module")
def batch() -> np.ndarray:
    """The first 64 covers at 32 px, shape (64, 32, 32, 3), float32 in [0, 255]."""
    return np.stack([_pixels(i) for i in range(64)])


# ------------------------------------------------------------------------------------------
# generate_cover
# ------------------------------------------------------------------------------------------


def test_same_inputs_give_identical_pixels() -> None:
    for index in (0, 7, 123):
        a = np.asarray(generate_cover(index, size=48, seed=3))
        b = np.asarray(generate_cover(index, size=48, seed=3))
        np.testing.assert_array_equal(a, b)


def test_different_indices_give_different_images(batch: np.ndarray) -> None:
    flat = batch[:16].reshape(16, -1)
    diffs = np.abs(flat[:, None, :] - flat[None, :, :]).mean(axis=-1)
    off_diagonal = diffs[~np.eye(16, dtype=bool)]
    assert off_diagonal.min() > 5.0, f"two covers nearly identical: {off_diagonal.min():.2f}"


def test_different_seed_gives_a_different_set(batch: np.ndarray) -> None:
    other = np.stack([_pixels(i, seed=1) for i in range(8)])
    per_image = np.abs(other - batch[:8]).mean(axis=(1, 2, 3))
    assert per_image.min() > 5.0, per_image


@pytest.mark.parametrize("size", [8, 16, 64, 256])
def test_rgb_square_of_requested_size(size: int) -> None:
    img = generate_cover(5, size=size)
    assert img.mode == "RGB"
    assert img.size == (size, size)
    assert np.asarray(img).dtype == np.uint8


def test_layout_does_not_depend_on_resolution() -> None:
    # The same cover at 128 px, box-filtered to 32 px, matches the 32 px render closely; a
    # different cover does not.
    for index in range(6):
        big = generate_cover(index, size=128).resize((32, 32), Image.Resampling.BOX)
        same = np.abs(np.asarray(big, np.float32) - _pixels(index)).mean()
        other = np.abs(np.asarray(big, np.float32) - _pixels(index + 1)).mean()
        assert same < 14.0, (index, same)
        assert same < other / 2, (index, same, other)


def test_covers_vary_in_colour_and_brightness(batch: np.ndarray) -> None:
    means = batch.mean(axis=(1, 2))  # (64, 3) mean colour per cover
    assert (means.std(axis=0) > 35.0).all(), means.std(axis=0)
    luma = means @ np.array([0.299, 0.587, 0.114], np.float32)
    assert luma.min() < 70.0 and luma.max() > 170.0, (luma.min(), luma.max())
    # Colourful and grey covers both occur.
    chroma = (batch.max(axis=-1) - batch.min(axis=-1)).mean(axis=(1, 2))
    assert chroma.min() < 25.0 and chroma.max() > 90.0, (chroma.min(), chroma.max())


def test_covers_are_not_flat(batch: np.ndarray) -> None:
    stds = batch.std(axis=(1, 2, 3))
    assert stds.min() > 10.0, f"cover {stds.argmin()} is near flat: std {stds.min():.1f}"


def test_covers_are_pictures_not_noise(batch: np.ndarray) -> None:
    corr = np.array([_neighbour_correlation(img) for img in batch])
    noise = np.random.default_rng(0).uniform(0, 255, size=(32, 32, 3))
    assert abs(_neighbour_correlation(noise)) < 0.2  # the measure itself separates noise
    assert np.median(corr) > 0.6, np.median(corr)
    assert (corr > 0.3).mean() > 0.9, np.sort(corr)[:8]


def test_bad_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError, match="size must be >= 8"):
        generate_cover(0, size=7)
    with pytest.raises(ValueError, match="index must be >= 0"):
        generate_cover(-1)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        generate_cover(0, seed=-2)


# ------------------------------------------------------------------------------------------
# ensure_synthetic
# ------------------------------------------------------------------------------------------


def _expected_dir(cache: Path, n: int, size: int, seed: int = 0) -> Path:
    return cache / f"synthetic-v{SYNTHETIC_VERSION}-s{seed}-{size}px-n{n}"


def test_ensure_synthetic_writes_n_pngs_and_marker(tmp_path: Path) -> None:
    out = ensure_synthetic(tmp_path / "cache", n=5, size=16, seed=2)
    assert out == _expected_dir(tmp_path / "cache", 5, 16, seed=2)
    names = sorted(p.name for p in out.iterdir())
    assert names == [DONE_MARKER] + [f"cover_{i:05d}.png" for i in range(5)]
    for i in range(5):
        with Image.open(out / f"cover_{i:05d}.png") as img:
            assert img.mode == "RGB" and img.size == (16, 16)
            expected = np.asarray(generate_cover(i, size=16, seed=2))
            np.testing.assert_array_equal(np.asarray(img), expected)
    # Nothing else is left in the cache folder: the temporary folder was renamed away.
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [out.name]


def test_second_call_reuses_folder_without_regenerating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = ensure_synthetic(tmp_path, n=3, size=16)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("generate_cover called for a complete dataset")

    monkeypatch.setattr(synthetic, "generate_cover", fail)
    again = ensure_synthetic(tmp_path, n=3, size=16)
    assert again == out
    assert {p.name: p.stat().st_mtime_ns for p in again.iterdir()} == mtimes


def test_leftover_temp_folder_from_killed_run_is_harmless(tmp_path: Path) -> None:
    final = _expected_dir(tmp_path, 3, 16)
    stale = tmp_path / f".{final.name}.tmpdead"
    stale.mkdir()
    (stale / "cover_00000.png").write_bytes(b"truncated")
    out = ensure_synthetic(tmp_path, n=3, size=16)
    assert out == final
    assert len(list(out.glob("cover_*.png"))) == 3
    assert (out / DONE_MARKER).is_file()


def test_interrupted_run_leaves_nothing_and_can_be_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = synthetic.generate_cover

    def interrupted(index: int, size: int = 256, seed: int = 0) -> Image.Image:
        if index == 2:
            raise KeyboardInterrupt
        return real(index, size=size, seed=seed)

    monkeypatch.setattr(synthetic, "generate_cover", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_synthetic(tmp_path, n=4, size=16)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(synthetic, "generate_cover", real)
    out = ensure_synthetic(tmp_path, n=4, size=16)
    assert len(list(out.glob("cover_*.png"))) == 4


def test_losing_the_rename_race_returns_the_winner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    final = _expected_dir(tmp_path, 2, 16)
    real_rename = os.rename

    def another_process_wins(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        # Just before our rename, a competitor moves its complete copy into place.
        Path(dst).mkdir()
        (Path(dst) / "cover_00000.png").write_bytes(b"winner")
        (Path(dst) / DONE_MARKER).write_text("{}")
        real_rename(src, dst)

    monkeypatch.setattr(synthetic.os, "rename", another_process_wins)
    out = ensure_synthetic(tmp_path, n=2, size=16)
    assert out == final
    assert (out / "cover_00000.png").read_bytes() == b"winner"
    assert [p.name for p in tmp_path.iterdir()] == [final.name]  # our temp copy was removed


def test_foreign_folder_without_marker_is_not_overwritten(tmp_path: Path) -> None:
    final = _expected_dir(tmp_path, 2, 16)
    final.mkdir()
    (final / "notes.txt").write_text("not ours")
    with pytest.raises(UsageError, match="no DONE marker"):
        ensure_synthetic(tmp_path, n=2, size=16)
    assert (final / "notes.txt").read_text() == "not ours"
    assert [p.name for p in tmp_path.iterdir()] == [final.name]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be >= 1, got n=0"),
        ({"n": -3}, "n must be >= 1"),
        ({"size": 4}, "size must be >= 8, got size=4"),
        ({"seed": -1}, "seed must be >= 0"),
    ],
)
def test_ensure_synthetic_rejects_bad_arguments(
    tmp_path: Path, kwargs: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ensure_synthetic(tmp_path / "cache", **kwargs)
    assert not (tmp_path / "cache").exists()


# ------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------


def test_cli_writes_dataset_and_prints_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main([str(tmp_path), "--n", "2", "--size", "16", "--seed", "4"])
    printed = capsys.readouterr().out.strip()
    assert Path(printed) == _expected_dir(tmp_path, 2, 16, seed=4)
    assert len(list(Path(printed).glob("cover_*.png"))) == 2


def test_cli_bad_argument_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--n", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "n must be >= 1, got n=0" in err
    assert "Traceback" not in err
