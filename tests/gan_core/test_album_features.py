"""The offline album-art extractor: shapes, determinism, resolution handling, and KID ranking."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from albumgan.data_tools.synthetic import generate_cover
from albumgan.gan_core.metrics.album_features import (
    ALBUM_FEATURE_BLOCKS,
    ALBUM_FEATURES_DIM,
    WORK_SIZE,
    album_features,
)


def covers(indices: range, size: int = 64) -> np.ndarray:
    return np.stack([np.asarray(generate_cover(i, size=size)) for i in indices])


def mmd2_poly(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3: KID on one subset (all the rows)."""
    d = x.shape[1]
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def degrade(
    images: np.ndarray, blur: float, noise: float, shift: tuple[float, float, float], seed: int
) -> np.ndarray:
    """Gaussian blur (sigma in px), additive Gaussian noise (std in levels), RGB offset."""
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(images.astype(np.float64), sigma=(0.0, blur, blur, 0.0))
    x = x + rng.normal(0.0, noise, x.shape) + np.asarray(shift)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def real() -> np.ndarray:
    return covers(range(200))


@pytest.fixture(scope="module")
def real_feats(real) -> np.ndarray:
    return album_features(real)


def test_shape_dtype_and_finite_even_on_flat_and_noise_images():
    rng = np.random.default_rng(0)
    flat = np.zeros((4, 64, 64, 3), np.uint8)
    flat[1], flat[2], flat[3] = 255, 128, (200, 30, 90)  # white, grey, one saturated colour
    noise = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    images = np.concatenate([covers(range(3)), flat, noise])
    feats = album_features(images)
    assert feats.shape == (9, ALBUM_FEATURES_DIM)
    assert ALBUM_FEATURES_DIM == sum(ALBUM_FEATURE_BLOCKS.values())
    assert 200 <= ALBUM_FEATURES_DIM <= 600
    assert feats.dtype == np.float64
    assert np.isfinite(feats).all()
    assert len(np.unique(feats.round(6), axis=0)) == 9  # no two images collapse to one vector
    assert album_features(np.zeros((0, 32, 32, 3), np.uint8)).shape == (0, ALBUM_FEATURES_DIM)


def test_deterministic_and_independent_of_batch_size(real):
    images = real[:40]
    reference = album_features(images)
    np.testing.assert_array_equal(album_features(images), reference)
    for batch_size in (1, 7, 64):
        np.testing.assert_array_equal(album_features(images, batch_size=batch_size), reference)


def test_row_does_not_depend_on_the_rest_of_the_batch(real):
    rng = np.random.default_rng(1)
    batch = real[rng.permutation(len(real))[:50]]
    in_batch = album_features(batch)
    for i in (0, 13, 49):
        np.testing.assert_array_equal(album_features(batch[i : i + 1])[0], in_batch[i])
    # The same image next to very different neighbours (noise, a flat image).
    odd = np.concatenate([rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8), batch[13:14]])
    odd[0] = 0
    np.testing.assert_array_equal(album_features(odd)[-1], in_batch[13])


def test_other_resolutions_map_to_the_same_pictures(real_feats):
    # The same 60 covers drawn at 32 and 128 px land nearest to their own 64 px features.
    ref = real_feats[:60]
    for size in (32, 128):
        feats = album_features(covers(range(60), size=size))
        assert feats.shape == (60, ALBUM_FEATURES_DIM) and np.isfinite(feats).all()
        dists = ((feats[:, None, :] - ref[None, :, :]) ** 2).sum(-1)
        assert (dists.argmin(axis=1) == np.arange(60)).mean() >= 0.95, size
    assert WORK_SIZE == 64


def test_no_block_dominates_on_covers(real_feats):
    total = real_feats.var(axis=0).sum()
    start = 0
    for name, dim in ALBUM_FEATURE_BLOCKS.items():
        share = real_feats[:, start : start + dim].var(axis=0).sum() / total
        start += dim
        assert 0.5 / len(ALBUM_FEATURE_BLOCKS) < share < 2.0 / len(ALBUM_FEATURE_BLOCKS), name
    # Typical vectors have ||x||^2 ~ D: the scale the KID kernel (x.y / D + 1)^3 assumes.
    assert 0.5 < (real_feats**2).sum(axis=1).mean() / ALBUM_FEATURES_DIM < 2.0


def test_kid_ranks_clean_mild_heavy_noise(real_feats):
    other = covers(range(200, 400))
    sets = {
        "clean": other,
        "mild": degrade(other, blur=0.6, noise=3.0, shift=(6.0, 0.0, -6.0), seed=1),
        "heavy": degrade(other, blur=2.0, noise=25.0, shift=(40.0, -10.0, -40.0), seed=2),
        "noise": np.random.default_rng(3).integers(0, 256, other.shape, dtype=np.uint8),
    }
    kid = {name: mmd2_poly(real_feats, album_features(images)) for name, images in sets.items()}
    # Measured at version 1: clean -0.008, mild 0.66, heavy 5.9, noise 50.
    assert abs(kid["clean"]) < 0.1, kid
    assert kid["mild"] > 0.3 and kid["mild"] > kid["clean"] + 0.25, kid
    assert kid["heavy"] > 3.0 * kid["mild"], kid
    assert kid["noise"] > 3.0 * kid["heavy"], kid


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((2, 64, 64, 3), np.float32),  # not uint8
        np.zeros((2, 64, 64), np.uint8),  # no channels
        np.zeros((2, 64, 48, 3), np.uint8),  # not square
        np.zeros((2, 8, 8, 3), np.uint8),  # too small
    ],
)
def test_rejects_bad_images(images):
    with pytest.raises(ValueError, match="expected"):
        album_features(images)


def test_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        album_features(np.zeros((1, 16, 16, 3), np.uint8), batch_size=0)
