"""FID, KID, precision/recall and density/coverage against closed forms and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg
from scipy.spatial.distance import cdist

from albumgan.gan_core.metrics import maths
from albumgan.gan_core.metrics.maths import (
    density_coverage,
    feature_stats,
    fid_from_features,
    frechet_distance,
    kid,
    pairwise_distances,
    precision_recall,
)


def _gaussian(seed: int, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)) + shift


def _random_spd(seed: int, d: int) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((d, d))
    return a @ a.T + 0.5 * np.eye(d)


# --- feature_stats / FID ----------------------------------------------------------------------


def test_feature_stats_is_float64_mean_and_unbiased_covariance():
    feats = _gaussian(0, 40, 5).astype(np.float32)
    mu, sigma = feature_stats(feats)
    x = feats.astype(np.float64)
    centred = x - x.mean(axis=0)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma, centred.T @ centred / (len(x) - 1), rtol=1e-10)
    assert feature_stats(feats[:, :1])[1].shape == (1, 1)


def test_identical_sets_give_zero_fid():
    feats = _gaussian(1, 200, 16)
    assert abs(fid_from_features(feats, feats.copy())) < 1e-6


def test_equal_covariances_give_squared_mean_distance():
    sigma = _random_spd(2, 6)
    mu1, mu2 = np.arange(6.0), np.arange(6.0)[::-1] * 0.5
    expected = float(np.sum((mu1 - mu2) ** 2))
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(expected, rel=1e-8)


@pytest.mark.parametrize("rotate", [False, True])
def test_commuting_covariances_match_closed_form(rotate):
    # S_i = Q diag(v_i) Q^T commute: Tr(S1 + S2 - 2 (S1 S2)^(1/2)) = sum (sqrt v1 - sqrt v2)^2.
    rng = np.random.default_rng(3)
    var1, var2 = rng.uniform(0.1, 4.0, 7), rng.uniform(0.1, 4.0, 7)
    mu1, mu2 = rng.standard_normal(7), rng.standard_normal(7)
    q = np.linalg.qr(rng.standard_normal((7, 7)))[0] if rotate else np.eye(7)
    sigma1, sigma2 = q @ np.diag(var1) @ q.T, q @ np.diag(var2) @ q.T
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)


def test_fid_matches_direct_sqrtm_implementation():
    real, fake = _gaussian(4, 80, 10), _gaussian(5, 60, 10, shift=0.3) * 1.5
    mu_r, mu_f = real.mean(axis=0), fake.mean(axis=0)
    cov_r, cov_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = linalg.sqrtm(cov_r @ cov_f).real
    expected = np.sum((mu_r - mu_f) ** 2) + np.trace(cov_r + cov_f - 2 * root)
    assert fid_from_features(real, fake) == pytest.approx(expected, rel=1e-6)


def test_singular_covariances_still_give_a_finite_fid():
    real, fake = _gaussian(6, 10, 32), _gaussian(7, 10, 32, shift=0.5)  # N < D: rank 9 of 32
    fid = fid_from_features(real, fake)
    assert np.isfinite(fid) and fid > 1.0
    assert abs(fid_from_features(real, real.copy())) < 1e-3


def test_non_finite_root_is_retried_with_eps_on_the_diagonals(monkeypatch):
    real_sqrtm, seen = linalg.sqrtm, []

    def flaky_sqrtm(matrix):
        seen.append(matrix.copy())
        return np.full_like(matrix, np.nan) if len(seen) == 1 else real_sqrtm(matrix)

    monkeypatch.setattr(maths.linalg, "sqrtm", flaky_sqrtm)
    sigma1, sigma2 = _random_spd(8, 4), _random_spd(9, 4)
    fid = frechet_distance(np.zeros(4), sigma1, np.zeros(4), sigma2, eps=1e-2)
    offset = 1e-2 * np.eye(4)
    assert len(seen) == 2
    np.testing.assert_allclose(seen[1], (sigma1 + offset) @ (sigma2 + offset), rtol=1e-12)
    root = real_sqrtm((sigma1 + offset) @ (sigma2 + offset)).real
    assert fid == pytest.approx(np.trace(sigma1 + sigma2 - 2 * root), rel=1e-10)


def test_large_imaginary_part_raises_with_its_size():
    # Not a covariance: sqrt(diag(1, -4)) = diag(1, 2i).
    with pytest.raises(ValueError, match=r"imaginary component of size 2"):
        frechet_distance(np.zeros(2), np.diag([1.0, -4.0]), np.zeros(2), np.eye(2))


def test_an_inaccurate_sqrtm_of_psd_covariances_falls_back_to_the_symmetric_trace(monkeypatch):
    # A collapsed generator's near-singular covariance once made sqrtm's root complex beyond
    # noise (0.00152 against 1.38) and crashed a sweep trial: FID must still come out right.
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(40, 6)), rng.normal(size=(40, 6)) * 0.3 + 1.0
    (mu1, sigma1), (mu2, sigma2) = feature_stats(a), feature_stats(b)
    exact = frechet_distance(mu1, sigma1, mu2, sigma2)
    true_sqrtm = maths.linalg.sqrtm

    def noisy_sqrtm(matrix):
        return true_sqrtm(matrix) + 0.5j * np.ones_like(matrix)

    monkeypatch.setattr(maths.linalg, "sqrtm", noisy_sqrtm)
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(exact, rel=1e-9)
    # ... but covariances that are not PSD still raise.
    with pytest.raises(ValueError, match="imaginary component"):
        frechet_distance(np.zeros(2), np.diag([1.0, -4.0]), np.zeros(2), np.eye(2))


# --- KID --------------------------------------------------------------------------------------


def _mmd2_double_loop(x: np.ndarray, y: np.ndarray) -> float:
    d, m = x.shape[1], len(x)

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2.0 * xy / (m * m)


def test_kid_matches_an_explicit_double_loop():
    x, y = _gaussian(10, 12, 5), _gaussian(11, 12, 5, shift=0.4)
    mean, std = kid(x, y, subsets=1, subset_size=12)
    assert mean == pytest.approx(_mmd2_double_loop(x, y), rel=1e-6)
    assert std == 0.0


def test_kid_of_a_set_with_itself_is_the_diagonal_correction():
    # X against itself: 2 (mean_{i != j} k(x_i, x_j) - mean_i k(x_i, x_i)) / n, so KID ~ 0 only up
    # to O(1/n), and slightly negative (each point is compared with itself in the cross term).
    x = _gaussian(12, 300, 8) * 0.3
    gram = (x @ x.T / 8 + 1.0) ** 3
    n = len(x)
    off_diagonal = (gram.sum() - np.trace(gram)) / (n * (n - 1))
    expected = 2.0 * (off_diagonal - np.trace(gram) / n) / n
    mean, _ = kid(x, x.copy(), subsets=5)
    assert mean == pytest.approx(expected, rel=1e-9)
    assert -5e-3 < mean < 0.0
    assert kid(x, x + 0.3, subsets=5)[0] > 100 * abs(mean)


def test_kid_subsets_are_deterministic_and_both_code_paths_agree(monkeypatch):
    x, y = _gaussian(13, 40, 6), _gaussian(14, 30, 6, shift=0.2)
    cached = kid(x, y, subsets=20, subset_size=10, seed=3)
    assert kid(x, y, subsets=20, subset_size=10, seed=3) == cached
    assert kid(x, y, subsets=20, subset_size=10, seed=4) != cached
    assert cached[1] > 0.0
    monkeypatch.setattr(maths, "_KERNEL_CACHE_MAX_ELEMENTS", 0)  # one kernel per subset
    per_subset = kid(x, y, subsets=20, subset_size=10, seed=3)
    np.testing.assert_allclose(per_subset, cached, rtol=1e-10)


def test_kid_is_unbiased_where_small_sample_fid_is_not():
    rng = np.random.default_rng(15)
    kids, fids = [], []
    for _ in range(200):
        x, y = rng.standard_normal((50, 8)), rng.standard_normal((50, 8))
        kids.append(kid(x, y, subsets=1)[0])
        fids.append(fid_from_features(x, y))
    kids, fids = np.array(kids), np.array(fids)
    standard_error = kids.std(ddof=1) / np.sqrt(len(kids))
    assert abs(kids.mean()) < 4 * standard_error
    assert 0.2 < np.mean(kids < 0) < 0.8
    assert fids.min() > 0.1 and fids.mean() > 20 * fids.std(ddof=1) / np.sqrt(len(fids))


# --- distances, precision/recall, density/coverage -------------------------------------------


def test_pairwise_distances_match_cdist_across_batches():
    a, b = _gaussian(16, 23, 7), _gaussian(17, 11, 7)
    np.testing.assert_allclose(pairwise_distances(a, b, batch=5), cdist(a, b), atol=1e-10)
    self_distances = pairwise_distances(a * 1e3, a * 1e3, batch=4)
    assert np.isfinite(self_distances).all() and (self_distances >= 0).all()


def _brute_force_manifold_metrics(real, fake, k):
    """Explicit per-point loops over scipy's cdist, for comparison with the batched versions."""

    def radii(points):
        d = cdist(points, points)
        return np.array([np.sort(np.delete(row, i))[k - 1] for i, row in enumerate(d)])

    r_real, r_fake, d_rf = radii(real), radii(fake), cdist(real, fake)
    fakes_in_real = [
        sum(d_rf[i, j] <= r_real[i] for i in range(len(real))) for j in range(len(fake))
    ]
    reals_in_fake = [
        sum(d_rf[i, j] <= r_fake[j] for j in range(len(fake))) for i in range(len(real))
    ]
    open_hits = [[d_rf[i, j] < r_real[i] for j in range(len(fake))] for i in range(len(real))]
    precision = np.mean([count > 0 for count in fakes_in_real])
    recall = np.mean([count > 0 for count in reals_in_fake])
    density = sum(sum(row) for row in open_hits)
    coverage = np.mean([any(row) for row in open_hits])
    return precision, recall, density / (k * len(fake)), coverage


def test_manifold_metrics_match_brute_force():
    real, fake = _gaussian(18, 60, 4), _gaussian(19, 45, 4, shift=0.7) * 1.3
    precision, recall, density, coverage = _brute_force_manifold_metrics(real, fake, k=3)
    assert precision_recall(real, fake, k=3) == pytest.approx((precision, recall), abs=1e-12)
    assert density_coverage(real, fake, k=3) == pytest.approx((density, coverage), abs=1e-12)
    assert 0 < precision < 1 and 0 < recall < 1 and 0 < coverage < 1


def test_precision_recall_known_clouds():
    real = _gaussian(20, 200, 2)
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    assert precision_recall(real, real + 100.0) == (0.0, 0.0)
    # A tight cluster at one real point is all realistic but covers almost none of the real set.
    centre = real[np.argmin(real[:, 0])]
    cluster = centre + 1e-4 * _gaussian(21, 50, 2)
    precision, recall = precision_recall(real, cluster)
    assert precision == 1.0 and recall <= 0.02


def test_precision_recall_on_a_grid_with_exact_answer():
    # 10x10 integer grid, fakes = its left half. k=3 radii are 1 (sqrt 2 at corners), so the
    # fake manifold reaches exactly one column further: recall 60/100.
    grid = np.array([(x, y) for x in range(10) for y in range(10)], dtype=np.float64)
    left_half = grid[grid[:, 0] < 5]
    assert precision_recall(grid, left_half, k=3) == (1.0, 0.6)


def test_density_coverage_known_clouds():
    real = _gaussian(22, 150, 3)
    assert density_coverage(real, real.copy(), k=5) == (1.0, 1.0)
    assert density_coverage(real, real + 100.0, k=5) == (0.0, 0.0)
    # Points on a line 1 apart (k=1 radius 1); fakes halfway between: each lies in 2 balls,
    # the last in 1, so density = (2 (n - 1) + 1) / n, and every ball holds a fake.
    line = np.zeros((10, 3))
    line[:, 0] = np.arange(10)
    shifted = line + np.array([0.5, 0.0, 0.0])
    assert density_coverage(line, shifted, k=1) == pytest.approx((1.9, 1.0), abs=1e-12)


# --- bad inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4)), "same shape"),
        (lambda: frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3)), "sigma1"),
        (lambda: frechet_distance(np.ones((2, 1)), np.eye(2), np.ones((2, 1)), np.eye(2)), "1-D"),
        (lambda: frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), eps=-1), "eps"),
        (lambda: frechet_distance(np.full(2, np.nan), np.eye(2), np.zeros(2), np.eye(2)), "NaN"),
        (lambda: feature_stats(np.zeros(5)), "2-D"),
        (lambda: feature_stats(np.zeros((1, 5))), "at least 2"),
        (lambda: fid_from_features(np.zeros((5, 3)), np.zeros((5, 4))), "feature dimension"),
        (lambda: kid(np.ones((1, 3)), np.ones((5, 3))), "at least 2"),
        (lambda: kid(np.ones((5, 3)), np.ones((5, 4))), "feature dimension"),
        (lambda: kid(np.ones((5, 3)), np.ones((5, 3)), subsets=0), "subsets"),
        (lambda: kid(np.ones((5, 3)), np.ones((4, 3)), subset_size=5), "subset_size"),
        (lambda: precision_recall(np.ones((3, 2)), np.ones((9, 2)), k=3), "k must be"),
        (lambda: precision_recall(np.ones((5, 2)), np.ones((5, 3))), "feature dimension"),
        (lambda: density_coverage(np.ones((5, 2)), np.full((5, 2), np.inf)), "infinite"),
        (lambda: pairwise_distances(np.ones((2, 2)), np.ones((2, 2)), batch=0), "batch"),
    ],
)
def test_bad_inputs_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
