"""GAN evaluation maths on feature arrays: FID, KID, precision/recall, density/coverage.

Pure numpy/scipy, no TensorFlow: every function takes features of shape (N, D) (one row per
image, from an extractor in ``extractors.py``) and returns plain floats. The formula each one
computes is in its docstring. Everything runs in float64, whatever the input dtype.

    from albumgan.gan_core.metrics.maths import fid_from_features, kid
    fid = fid_from_features(real_feats, fake_feats)
    kid_mean, kid_std = kid(real_feats, fake_feats, subsets=100, seed=0)

References: Heusel et al. 2017 (FID), Binkowski et al. 2018 (KID), Kynkaanniemi et al. 2019
(precision/recall), Naeem et al. 2020 (density/coverage).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
from scipy import linalg

# The imaginary part of sqrt(sigma1 @ sigma2) is numerical noise up to this fraction of its
# largest real entry; above it the covariances are not what they claim to be.
_MAX_RELATIVE_IMAG = 1e-3
# A covariance's eigenvalues may dip below 0 by rounding up to this fraction of the largest.
_PSD_TOLERANCE = 1e-6

# KID keeps the whole (N_real + N_fake)^2 kernel matrix in memory (8 bytes per element) when it
# fits under this many elements and is cheaper than one kernel per subset: 2**24 is 128 MiB.
_KERNEL_CACHE_MAX_ELEMENTS = 2**24


def _as_features(feats: np.ndarray, name: str, min_rows: int = 1) -> np.ndarray:
    """``feats`` as a finite float64 (N, D) array with N >= ``min_rows``, else ValueError."""
    array = np.asarray(feats, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, features), got shape {array.shape}")
    if array.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} samples, got {array.shape[0]}")
    if array.shape[1] < 1:
        raise ValueError(f"{name} needs at least 1 feature, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _as_feature_pair(
    real_feats: np.ndarray, fake_feats: np.ndarray, min_rows: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Both feature sets validated, with the same feature dimension."""
    real = _as_features(real_feats, "real_feats", min_rows)
    fake = _as_features(fake_feats, "fake_feats", min_rows)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            "real_feats and fake_feats must have the same feature dimension, "
            f"got {real.shape[1]} and {fake.shape[1]}"
        )
    return real, fake


# --------------------------------------------------------------------------------------------
# Fréchet distance (FID)
# --------------------------------------------------------------------------------------------


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of features, the Gaussian that FID fits to each set.

    mu = (1/N) sum_i x_i and Sigma = (1/(N-1)) sum_i (x_i - mu)(x_i - mu)^T.

    Args:
        feats: (N, D) features, N >= 2.

    Returns:
        ``(mu, sigma)``: float64 arrays of shapes (D,) and (D, D).
    """
    x = _as_features(feats, "feats", min_rows=2)
    mu = x.mean(axis=0)
    sigma = np.atleast_2d(np.cov(x, rowvar=False))
    return mu, sigma


def _sqrtm_of_product(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> np.ndarray:
    """Real part of the principal square root of sigma1 @ sigma2, as pytorch-fid computes it."""
    with warnings.catch_warnings():
        # Singular products (fewer samples than features) are expected and handled below.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(root).all():
            offset = eps * np.eye(sigma1.shape[0])
            root = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if not np.isfinite(root).all():
        raise ValueError(
            f"sqrt(sigma1 @ sigma2) is not finite even with eps={eps} added to the diagonals"
        )
    if np.iscomplexobj(root):
        imag = float(np.abs(root.imag).max())
        scale = float(np.abs(root.real).max())
        if imag > _MAX_RELATIVE_IMAG * max(scale, np.finfo(np.float64).tiny):
            raise ValueError(
                f"sqrt(sigma1 @ sigma2) has an imaginary component of size {imag:.3g} "
                f"(largest real entry {scale:.3g}); are both covariances positive semi-definite?"
            )
        root = root.real
    return root


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    eps: float = 1e-6,
) -> float:
    """Fréchet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    d^2 = ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)),

    with the principal matrix square root from ``scipy.linalg.sqrtm``. When that root is not
    finite (singular product), it is recomputed with ``eps * I`` added to both covariances, as
    pytorch-fid does. A negligible imaginary part (numerical noise) is dropped; a large one with
    both covariances PSD (sqrtm's inaccuracy on a near-singular product, met when a generator
    collapses) falls back to the trace through sqrt(sigma1) sigma2 sqrt(sigma1). The result is not
    clipped: identical inputs give 0 up to rounding, which may be a tiny negative number.

    Args:
        mu1: (D,) mean of the first set.
        sigma1: (D, D) covariance of the first set.
        mu2: (D,) mean of the second set.
        sigma2: (D, D) covariance of the second set.
        eps: diagonal offset for the retry on a singular product.

    Returns:
        The squared Fréchet distance (what is reported as FID).

    Raises:
        ValueError: on mismatched shapes, non-finite inputs, a negative ``eps``, or a square root
            whose imaginary part is not negligible (covariances not positive semi-definite).
    """
    mu1 = np.asarray(mu1, dtype=np.float64)
    mu2 = np.asarray(mu2, dtype=np.float64)
    sigma1 = np.asarray(sigma1, dtype=np.float64)
    sigma2 = np.asarray(sigma2, dtype=np.float64)
    if mu1.ndim != 1:
        raise ValueError(f"mu1 must be 1-D, got shape {mu1.shape}")
    if mu1.shape != mu2.shape:
        raise ValueError(f"mu1 and mu2 must have the same shape, got {mu1.shape} and {mu2.shape}")
    dim = mu1.shape[0]
    for name, sigma in (("sigma1", sigma1), ("sigma2", sigma2)):
        if sigma.shape != (dim, dim):
            raise ValueError(
                f"{name} must have shape {(dim, dim)} to match the means, got {sigma.shape}"
            )
    for name, value in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps=}")

    diff = mu1 - mu2
    try:
        root_trace = float(np.trace(_sqrtm_of_product(sigma1, sigma2, eps)))
    except ValueError:
        # sqrtm of a near-singular product (a collapsed generator's covariance) can come back
        # with a large imaginary part although both covariances are fine: take the trace from
        # the symmetric form instead, which only fails for covariances that are not PSD.
        root_trace = _trace_of_sqrt_product_psd(sigma1, sigma2)
        if root_trace is None:
            raise
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * root_trace)


def _trace_of_sqrt_product_psd(sigma1: np.ndarray, sigma2: np.ndarray) -> float | None:
    """tr sqrt(sigma1 @ sigma2) for positive semi-definite covariances, from the eigenvalues of
    sqrt(sigma1) sigma2 sqrt(sigma1) (similar to the product, symmetric, so its eigenvalues are
    real and >= 0 up to rounding); None when either matrix is not PSD beyond rounding."""
    w1, v1 = linalg.eigh(sigma1)
    w2 = linalg.eigvalsh(sigma2)
    for w in (w1, w2):
        if w.min() < -_PSD_TOLERANCE * max(float(np.abs(w).max()), np.finfo(np.float64).tiny):
            return None
    half = (v1 * np.sqrt(np.clip(w1, 0.0, None))) @ v1.T
    inner = linalg.eigvalsh(half @ sigma2 @ half)
    return float(np.sqrt(np.clip(inner, 0.0, None)).sum())


def fid_from_features(real_feats: np.ndarray, fake_feats: np.ndarray) -> float:
    """FID between two feature sets: ``frechet_distance`` of their ``feature_stats``.

    FID is biased upwards at small N and the bias depends on N: compare FIDs only at equal
    sample counts (KID has no such bias).

    Args:
        real_feats: (N_real, D) features of real images, N_real >= 2.
        fake_feats: (N_fake, D) features of generated images, N_fake >= 2.

    Returns:
        ||mu_r - mu_f||^2 + Tr(Sigma_r + Sigma_f - 2 (Sigma_r Sigma_f)^(1/2)).
    """
    real, fake = _as_feature_pair(real_feats, fake_feats, min_rows=2)
    return frechet_distance(*feature_stats(real), *feature_stats(fake))


# --------------------------------------------------------------------------------------------
# Kernel inception distance (KID)
# --------------------------------------------------------------------------------------------


def _polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """k(x, y) = (x^T y / D + 1)^3 for every row x of ``a`` and row y of ``b``."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def _unbiased_mmd2(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    """Unbiased MMD^2 from the kernel matrices of two samples of equal size m."""
    m = k_xx.shape[0]
    within_x = k_xx.sum() - np.trace(k_xx)  # i != j: a point is not compared with itself
    within_y = k_yy.sum() - np.trace(k_yy)
    return float((within_x + within_y) / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kid(
    real_feats: np.ndarray,
    fake_feats: np.ndarray,
    subsets: int = 100,
    subset_size: int | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel inception distance: unbiased MMD^2 with a cubic polynomial kernel.

    With k(x, y) = (x^T y / D + 1)^3 and subsets X = {x_i}, Y = {y_j} of size m each,

        MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1))
                + sum_{i != j} k(y_i, y_j) / (m (m - 1))
                - 2 sum_{i, j} k(x_i, y_j) / m^2.

    The estimate is unbiased, so it is centred on 0 for two samples of the same distribution and
    can be negative. It is averaged over ``subsets`` random subsets, each drawn without
    replacement from each set. When m equals both set sizes every subset is the whole set, so all
    estimates are equal and the std is 0 up to rounding.

    Args:
        real_feats: (N_real, D) features of real images.
        fake_feats: (N_fake, D) features of generated images.
        subsets: number of random subsets to average over.
        subset_size: m; defaults to min(N_real, N_fake, 1000).
        seed: seed of the ``numpy.random.default_rng`` that draws the subsets.

    Returns:
        ``(mean, std)`` of the per-subset estimates (raw values, not scaled by 10^3; the std is
        the population std over subsets, ddof=0).

    Raises:
        ValueError: on fewer than 2 samples in a set, mismatched feature dimensions,
            ``subsets < 1`` or a ``subset_size`` outside [2, min(N_real, N_fake)].
    """
    real, fake = _as_feature_pair(real_feats, fake_feats, min_rows=2)
    n_real, n_fake = real.shape[0], fake.shape[0]
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets=}")
    m = min(n_real, n_fake, 1000) if subset_size is None else subset_size
    if not 2 <= m <= min(n_real, n_fake):
        raise ValueError(
            f"subset_size must be in [2, min(N_real, N_fake)] = [2, {min(n_real, n_fake)}], "
            f"got {subset_size=}"
        )

    rng = np.random.default_rng(seed)
    draws = [
        (rng.choice(n_real, size=m, replace=False), rng.choice(n_fake, size=m, replace=False))
        for _ in range(subsets)
    ]

    total = n_real + n_fake
    if total * total <= min(_KERNEL_CACHE_MAX_ELEMENTS, subsets * (2 * m) ** 2):
        # One kernel over all samples, then each subset only indexes it: (N_r + N_f)^2 D flops
        # once instead of 3 m^2 D per subset.
        both = np.concatenate([real, fake])
        kernel = _polynomial_kernel(both, both)
        estimates = []
        for idx_real, idx_fake in draws:
            idx_fake = idx_fake + n_real
            estimates.append(
                _unbiased_mmd2(
                    kernel[np.ix_(idx_real, idx_real)],
                    kernel[np.ix_(idx_fake, idx_fake)],
                    kernel[np.ix_(idx_real, idx_fake)],
                )
            )
    else:
        estimates = []
        for idx_real, idx_fake in draws:
            x, y = real[idx_real], fake[idx_fake]
            estimates.append(
                _unbiased_mmd2(
                    _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
                )
            )
    values = np.asarray(estimates)
    return float(values.mean()), float(values.std())


# --------------------------------------------------------------------------------------------
# Distances and k-nearest-neighbour manifolds (precision/recall, density/coverage)
# --------------------------------------------------------------------------------------------


def _distance_blocks(a: np.ndarray, b: np.ndarray, batch: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, D)`` with D[r, j] = ||a[start + r] - b[j]||, ``batch`` rows at a time."""
    sq_b = np.einsum("ij,ij->i", b, b)
    for start in range(0, a.shape[0], batch):
        rows = a[start : start + batch]
        sq_rows = np.einsum("ij,ij->i", rows, rows)
        # ||u - v||^2 = ||u||^2 + ||v||^2 - 2 u.v; rounding can make it slightly negative.
        sq = sq_rows[:, None] + sq_b[None, :] - 2.0 * (rows @ b.T)
        np.maximum(sq, 0.0, out=sq)
        yield start, np.sqrt(sq, out=sq)


def pairwise_distances(a: np.ndarray, b: np.ndarray, batch: int = 1024) -> np.ndarray:
    """Euclidean distances between every row of ``a`` and every row of ``b``.

    D[i, j] = sqrt(max(||a_i||^2 + ||b_j||^2 - 2 a_i^T b_j, 0)), in float64, computed ``batch``
    rows of ``a`` at a time (the result itself is N_a x N_b).

    Args:
        a: (N_a, D) points.
        b: (N_b, D) points.
        batch: rows of ``a`` per matrix product.

    Returns:
        (N_a, N_b) float64 distances.
    """
    a = _as_features(a, "a")
    b = _as_features(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"a and b must have the same feature dimension, got {a.shape[1]} and {b.shape[1]}"
        )
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch=}")
    out = np.empty((a.shape[0], b.shape[0]))
    for start, block in _distance_blocks(a, b, batch):
        out[start : start + block.shape[0]] = block
    return out


def _knn_radii(feats: np.ndarray, k: int, name: str, batch: int = 1024) -> np.ndarray:
    """NND_k(x_i): distance from each point to its k-th nearest neighbour in the same set."""
    n = feats.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, N - 1] = [1, {n - 1}] for {name}, got {k=}")
    radii = np.empty(n)
    for start, block in _distance_blocks(feats, feats, batch):
        rows = np.arange(block.shape[0])
        block[rows, start + rows] = np.inf  # a point is not its own neighbour, duplicates are
        radii[start : start + block.shape[0]] = np.partition(block, k - 1, axis=1)[:, k - 1]
    return radii


def _ball_hits(
    points: np.ndarray,
    centres: np.ndarray,
    radii: np.ndarray,
    inclusive: bool,
    batch: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """How many balls B(centre_i, radius_i) contain each point; which balls contain any point.

    ``inclusive`` selects closed balls (d <= r) or open balls (d < r).
    """
    counts = np.zeros(points.shape[0], dtype=np.int64)
    covered = np.zeros(centres.shape[0], dtype=bool)
    for start, block in _distance_blocks(points, centres, batch):
        inside = block <= radii[None, :] if inclusive else block < radii[None, :]
        counts[start : start + block.shape[0]] = inside.sum(axis=1)
        covered |= inside.any(axis=0)
    return counts, covered


def precision_recall(
    real_feats: np.ndarray, fake_feats: np.ndarray, k: int = 3
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019).

    Each set's manifold is the union of closed balls B(x, NND_k(x)) around its points, where
    NND_k(x) is the distance from x to its k-th nearest neighbour in the same set (x excluded):

        precision = (1/M) sum_j 1[y_j in manifold(real)]   (how many fakes look real)
        recall    = (1/N) sum_i 1[x_i in manifold(fake)]   (how much of the real set is covered)

    for real x_1..x_N and fake y_1..y_M. Distances are computed in batches, so memory stays at
    a few (1024 x N) blocks.

    Args:
        real_feats: (N, D) features of real images, N > k.
        fake_feats: (M, D) features of generated images, M > k.
        k: neighbour rank defining the ball radii.

    Returns:
        ``(precision, recall)``, each in [0, 1].
    """
    real, fake = _as_feature_pair(real_feats, fake_feats)
    real_radii = _knn_radii(real, k, "real_feats")
    fake_radii = _knn_radii(fake, k, "fake_feats")
    fakes_in_real, _ = _ball_hits(fake, real, real_radii, inclusive=True)
    reals_in_fake, _ = _ball_hits(real, fake, fake_radii, inclusive=True)
    return float(np.mean(fakes_in_real > 0)), float(np.mean(reals_in_fake > 0))


def density_coverage(
    real_feats: np.ndarray, fake_feats: np.ndarray, k: int = 5
) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), which use only the real set's k-NN balls.

    With open balls B(x_i, NND_k(x_i)) around the real points x_1..x_N and fakes y_1..y_M:

        density  = (1/(k M)) sum_j sum_i 1[y_j in B(x_i, NND_k(x_i))]
        coverage = (1/N) sum_i 1[exists j: y_j in B(x_i, NND_k(x_i))]

    Density is about 1 when the fakes follow the real distribution and is not capped at 1.
    Open balls, as in the authors' code, make fake = real give exactly 1 when no distances tie:
    ball i holds x_i and its k - 1 nearest neighbours; the k-th lies on its boundary.

    Args:
        real_feats: (N, D) features of real images, N > k.
        fake_feats: (M, D) features of generated images.
        k: neighbour rank defining the ball radii.

    Returns:
        ``(density, coverage)``; coverage is in [0, 1].
    """
    real, fake = _as_feature_pair(real_feats, fake_feats)
    real_radii = _knn_radii(real, k, "real_feats")
    balls_per_fake, covered = _ball_hits(fake, real, real_radii, inclusive=False)
    density = balls_per_fake.sum() / (k * fake.shape[0])
    return float(density), float(covered.mean())
