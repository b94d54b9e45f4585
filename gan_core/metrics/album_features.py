"""Album-art features: the offline default extractor for KID/FID (no download, no TensorFlow).

InceptionV3 weights are not always at hand (offline CI), so KID/FID default to these hand-made
features, designed for album covers: flat colour fields, gradients, type, shapes, photo-like
backgrounds, grain. They are deterministic, need only numpy/scipy/scikit-image/Pillow and take
about 2.5 s per thousand images on two CPU cores::

    from albumgan.gan_core.metrics.album_features import album_features

    feats = album_features(images)  # uint8 (N, H, W, 3), H == W >= 16 -> float64 (N, 448)

Pipeline. Every image is first resized (Pillow LANCZOS, antialiased) to ``WORK_SIZE`` x
``WORK_SIZE`` so that scores of a GAN trained at 32, 64 or 128 px come from one pipeline, then
converted to CIELAB (``skimage.color.rgb2lab``: L* in [0, 100], a*/b* roughly in [-100, 100]),
where Euclidean distances roughly follow perceived colour differences. Chroma is
C* = sqrt(a*^2 + b*^2). Eight blocks follow, in this order (``ALBUM_FEATURE_BLOCKS``):

    colour_global    31  Mean, std and 5/25/50/75/95th percentiles of L*, a*, b* and C*, plus the
                         correlations L*-a*, L*-b*, a*-b*. Palette families (pastel, neon, dark,
                         monochrome, vivid) are whole-image statements; percentiles see contrast
                         and clipped blacks/whites that mean and std miss; the correlations see
                         "the bright parts are warm" lighting.
    colour_regional 120  Mean and std of L*, a*, b* in each cell of a 2x2 and a 4x4 grid. Covers
                         are composed (a title at the bottom, a subject in the middle, split
                         backgrounds): where colour and contrast sit matters, at two scales.
    layout          192  An 8x8 L*a*b* thumbnail: the composition read at a glance. A generator
                         with the right palettes in the wrong places shows up here.
    histograms       33  8 soft L* bins and 25 soft hue-chroma bins (one neutral bin, then three
                         chroma rings x 8 hue sectors), as square-rooted proportions (Hellinger).
                         Covers are often two or three spot colours, which means and stds blur
                         together; soft (linear) binning keeps a small colour shift a small change.
    gradients        22  Scharr gradient magnitude of L*: log mean at 64, 32 and 16 px, log
                         50/75/90/99th percentiles, edge densities above 2/5/10/20 L* units per
                         pixel, a magnitude-weighted 8-bin orientation histogram; plus log mean and
                         50/90th percentiles of the a*b* (chroma) gradient. Crisp type and shape
                         edges against GAN blur; orientations see horizontal type lines, stripes.
    lbp              20  Uniform local binary pattern histograms of L* (8 neighbours at radius 1
                         and 2, scikit-image). Micro-texture: flat fills, film grain, halftone
                         dots, and the checkerboards that transposed convolutions leave behind.
    spectrum         20  Hann-windowed power spectrum of L*: log mean power in 8 radial bands
                         (1 to 46 cycles per image), and the share of 4 orientation sectors in
                         the 4-8, 8-16 and 16-32 bands. A cheap Gabor bank: blur empties the high
                         bands, noise fills them, upsampling artefacts concentrate them.
    noise            10  4-neighbour Laplacian of L*, a*, b*: a robust noise level per channel
                         (median absolute response, which a cover's few edge pixels barely move),
                         log mean energy per channel, and for L* the log 75/90th percentiles and
                         the shares above 1 and 4. Noise images and grainy samples must stand far
                         apart from clean covers.

Scaling. Each feature is standardised as ``(x - offset) / scale`` with FIXED constants written in
this file: round numbers near the mean and spread of that feature over the synthetic covers
(``data_tools.synthetic``, v1, 64 px). They are never estimated from the images being scored,
because real and generated sets are featurised separately (and at different times). On other
data they are merely off-centre: the weighting shifts, the map stays one fixed function. Then
each block is multiplied by ``sqrt(D / (8 * d_block))`` so that every block has the same expected
squared norm D / 8 on covers: no block dominates because of its size, and a typical feature
vector has ||x||^2 ~ D, the scale the KID kernel (x.y / D + 1)^3 assumes.

Determinism. Every step works image by image (vectorised across the batch only where a row's
result cannot depend on its neighbours), so a row is bitwise identical whatever the batch it was
computed in. Change anything here and bump ``ALBUM_FEATURES_VERSION``: it keys feature caches and
is recorded with every score.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.color import rgb2lab
from skimage.feature import local_binary_pattern

ALBUM_FEATURES_VERSION: int = 1
WORK_SIZE: int = 64
MIN_SIZE: int = 16

ALBUM_FEATURE_BLOCKS: dict[str, int] = {
    "colour_global": 31,
    "colour_regional": 120,
    "layout": 192,
    "histograms": 33,
    "gradients": 22,
    "lbp": 20,
    "spectrum": 20,
    "noise": 10,
}
ALBUM_FEATURES_DIM: int = sum(ALBUM_FEATURE_BLOCKS.values())

# --------------------------------------------------------------------------------------------
# Fixed standardisation constants (see the module docstring). Channel order L*, a*, b*, C*.
# --------------------------------------------------------------------------------------------

_LEVEL_OFFSET = np.array([50.0, 3.0, 1.0, 26.0])  # channel means (also of cells)
_LEVEL_SCALE = np.array([25.0, 22.0, 22.0, 20.0])
_SPREAD_OFFSET = np.array([16.0, 13.0, 13.5, 13.5])  # within-image channel stds
_SPREAD_SCALE = np.array([7.5, 11.0, 11.0, 10.0])
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
_QUANTILE_OFFSET = np.array(
    [
        [27.0, 37.0, 48.0, 58.0, 74.0],
        [-15.0, -6.0, 2.0, 11.0, 23.0],
        [-18.0, -8.0, 1.0, 9.0, 21.0],
        [9.0, 17.0, 25.0, 34.0, 47.0],
    ]
)
_QUANTILE_SCALE = np.array(
    [
        [25.0, 28.0, 28.0, 25.0, 19.0],
        [22.0, 22.0, 23.0, 24.0, 27.0],
        [24.0, 22.0, 22.0, 23.0, 25.0],
        [11.0, 18.0, 23.0, 27.0, 30.0],
    ]
)
_CORR_OFFSET = np.array([-0.2, 0.25, -0.45])  # L*-a*, L*-b*, a*-b*
_CORR_SCALE = 0.58
_CELL_SPREAD = {  # grid -> (offset, scale) of within-cell L*, a*, b* stds: smaller cells vary less
    2: (np.array([13.7, 10.3, 10.7]), np.array([8.0, 10.3, 10.4])),
    4: (np.array([10.5, 7.4, 7.7]), np.array([9.0, 9.6, 9.8])),
}

_L_HIST_OFFSET = np.array([0.21, 0.3, 0.26, 0.3, 0.32, 0.32, 0.31, 0.13])  # sqrt proportions
_L_HIST_SCALE = np.array([0.23, 0.26, 0.2, 0.2, 0.2, 0.23, 0.27, 0.16])
_HUE_CHROMA_OFFSET = np.array(
    [0.5]  # neutral
    + [0.12, 0.1, 0.14, 0.17, 0.11, 0.08, 0.12, 0.17]  # chroma ~20, hue sectors from +a* (red)
    + [0.075, 0.05, 0.07, 0.11, 0.06, 0.03, 0.06, 0.11]  # chroma ~45
    + [0.05, 0.03, 0.05, 0.08, 0.02, 0.0, 0.03, 0.09]  # chroma ~80
)
_HUE_CHROMA_SCALE = np.array(
    [0.27]
    + [0.17, 0.14, 0.17, 0.21, 0.16, 0.14, 0.16, 0.2]
    + [0.13, 0.11, 0.12, 0.16, 0.13, 0.09, 0.12, 0.16]
    + [0.12, 0.09, 0.11, 0.17, 0.07, 0.05, 0.08, 0.18]  # 0.05: floor for an all-but-empty bin
)

_GRAD_OFFSET = np.array(
    [1.5, 1.6, 1.8]  # log1p mean magnitude at 64, 32, 16 px
    + [0.8, 1.3, 2.2, 3.2]  # log1p percentiles
    + [0.37, 0.21, 0.13, 0.05]  # edge densities
    + [0.43, 0.29, 0.3, 0.3, 0.46, 0.3, 0.3, 0.3]  # sqrt orientation shares (0 = vertical edges)
    + [1.35, 0.73, 2.0]  # chroma gradient: log1p mean, percentiles
)
_GRAD_SCALE = np.array(
    [0.46, 0.45, 0.45]
    + [0.6, 0.8, 0.8, 0.4]
    + [0.22, 0.17, 0.12, 0.07]
    + [0.1, 0.07, 0.07, 0.07, 0.1, 0.07, 0.07, 0.07]
    + [0.75, 0.75, 1.0]
)

_LBP_POINTS = 8
_LBP_RADII = (1, 2)
_LBP_BINS = _LBP_POINTS + 2  # "uniform" codes 0..P, plus one code for all non-uniform patterns
_LBP_OFFSET = np.array(
    [
        [0.21, 0.23, 0.15, 0.28, 0.29, 0.37, 0.2, 0.28, 0.47, 0.32],
        [0.22, 0.26, 0.16, 0.24, 0.33, 0.35, 0.2, 0.28, 0.39, 0.41],
    ]
)
_LBP_SCALE = np.array(
    [
        [0.15, 0.1, 0.08, 0.07, 0.14, 0.13, 0.06, 0.07, 0.16, 0.15],
        [0.14, 0.09, 0.06, 0.08, 0.17, 0.13, 0.05, 0.07, 0.14, 0.15],
    ]
)

_RADIAL_EDGES = (1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0, 46.0)  # cycles per image
_ORIENT_BANDS = ((4.0, 8.0), (8.0, 16.0), (16.0, 32.0))
_SPECTRUM_OFFSET = np.array(
    [3.6, 2.8, 1.9, 1.35, 1.0, 0.7, 0.35, -0.05]  # log10 band power
    + [0.22, 0.18, 0.41, 0.19]  # sector shares, 4-8 cycles (sector 0 = horizontal frequencies)
    + [0.25, 0.19, 0.35, 0.21]  # 8-16
    + [0.35, 0.17, 0.31, 0.18]  # 16-32
)
_SPECTRUM_SCALE = np.array(
    [0.7] * 8 + [0.15, 0.12, 0.21, 0.13] + [0.15, 0.13, 0.19, 0.14] + [0.17, 0.13, 0.16, 0.14]
)

_NOISE_OFFSET = np.array([-0.1, -0.4, -0.4, 2.5, 1.7, 1.8, 2.1, 3.0, 0.6, 0.48])
_NOISE_SCALE = np.array([0.7, 0.5, 0.5, 0.45, 1.2, 1.0, 1.2, 1.0, 0.35, 0.3])


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def album_features(images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Featurise album covers for KID/FID.

    Args:
        images: uint8 array (N, H, W, 3), RGB, square with H == W >= 16. Any resolution: images
            are resized to ``WORK_SIZE`` px first.
        batch_size: Images processed at once (>= 1); bounds memory, never changes the result.

    Returns:
        float64 array (N, ``ALBUM_FEATURES_DIM``); row i depends only on image i.

    Raises:
        ValueError: If the images are not uint8 (N, H, W, 3) with H == W >= 16, or
            batch_size < 1.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images (N, H, W, 3), got {images.dtype} {images.shape}")
    height, width = images.shape[1:3]
    if height != width or height < MIN_SIZE:
        raise ValueError(f"expected square images >= {MIN_SIZE} px, got {height}x{width}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size=}")
    out = np.empty((len(images), ALBUM_FEATURES_DIM), np.float64)
    for start in range(0, len(images), batch_size):
        out[start : start + batch_size] = _featurise(images[start : start + batch_size])
    return out


# --------------------------------------------------------------------------------------------
# Pipeline
# --------------------------------------------------------------------------------------------


def _featurise(images: np.ndarray) -> np.ndarray:
    lab = rgb2lab(_resize(images))
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    blocks = {
        "colour_global": _colour_global(lab, chroma),
        "colour_regional": _colour_regional(lab),
        "layout": _layout(lab),
        "histograms": _histograms(lab, chroma),
        "gradients": _gradients(lab),
        "lbp": _lbp(lab),
        "spectrum": _spectrum(lab),
        "noise": _noise(lab),
    }
    parts = []
    for name, dim in ALBUM_FEATURE_BLOCKS.items():
        block = blocks[name]
        assert block.shape == (len(images), dim), (name, block.shape)
        parts.append(block * np.sqrt(ALBUM_FEATURES_DIM / (len(ALBUM_FEATURE_BLOCKS) * dim)))
    return np.concatenate(parts, axis=1)


def _resize(images: np.ndarray) -> np.ndarray:
    if images.shape[1] == WORK_SIZE:
        return images
    out = np.empty((len(images), WORK_SIZE, WORK_SIZE, 3), np.uint8)
    for i, image in enumerate(images):
        pil = Image.fromarray(np.ascontiguousarray(image))
        out[i] = np.asarray(pil.resize((WORK_SIZE, WORK_SIZE), Image.Resampling.LANCZOS))
    return out


# --------------------------------------------------------------------------------------------
# Helpers: grid cells, soft binning, per-image histograms, filters
# --------------------------------------------------------------------------------------------


def _cells(x: np.ndarray, grid: int) -> np.ndarray:
    """(N, S, S) -> (N, grid * grid, (S / grid)^2): each cell's pixels contiguous, row-major."""
    n, side = x.shape[:2]
    c = side // grid
    cells = x.reshape(n, grid, c, grid, c).transpose(0, 1, 3, 2, 4)
    # Reductions then run along one contiguous axis: the same summation order for every row.
    return np.ascontiguousarray(cells).reshape(n, grid * grid, c * c)


def _flat(x: np.ndarray) -> np.ndarray:
    """(N, ...) -> contiguous (N, P)."""
    return np.ascontiguousarray(x).reshape(len(x), -1)


def _soft_bins(
    values: np.ndarray, centres: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear (triangular) binning: the two nearest bin indices and the upper one's weight."""
    v = np.clip(values, centres[0], centres[-1])
    upper = np.clip(np.searchsorted(centres, v, side="right"), 1, len(centres) - 1)
    lower = upper - 1
    return lower, upper, (v - centres[lower]) / (centres[upper] - centres[lower])


def _circular_bins(turns: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear binning of an angle given in bin units, wrapping around `bins`."""
    t = np.mod(turns, bins)
    lower = np.floor(t).astype(np.int64)
    weight = t - lower
    lower = np.mod(lower, bins)
    return lower, np.mod(lower + 1, bins), weight


def _hist(index: np.ndarray, weight: np.ndarray, bins: int) -> np.ndarray:
    """Per-image weighted histogram, index and weight (N, P) -> (N, bins)."""
    n = len(index)
    # One bincount for the batch; each row's bins only receive that row's pixels, in order.
    flat = (index + bins * np.arange(n)[:, None]).ravel()
    return np.bincount(flat, weights=weight.ravel(), minlength=n * bins).reshape(n, bins)


_SMOOTH = np.array([3.0, 10.0, 3.0]) / 16.0
_DIFF = np.array([1.0, 0.0, -1.0]) / 2.0  # Scharr, scaled to units per pixel


def _scharr(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical Scharr derivatives of each image in (N, S, S)."""

    def sep(first: np.ndarray, axis_1: int, second: np.ndarray, axis_2: int) -> np.ndarray:
        y = ndimage.correlate1d(x, first, axis=axis_1, mode="reflect")
        return ndimage.correlate1d(y, second, axis=axis_2, mode="reflect")

    return sep(_DIFF, 2, _SMOOTH, 1), sep(_DIFF, 1, _SMOOTH, 2)


def _laplacian(x: np.ndarray) -> np.ndarray:
    """4-neighbour Laplacian of each image in (N, S, S), reflected at the borders."""
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="reflect")
    return p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:] - 4.0 * x


# --------------------------------------------------------------------------------------------
# Blocks: each takes L*a*b* (N, WORK_SIZE, WORK_SIZE, 3) and returns standardised (N, d_block)
# --------------------------------------------------------------------------------------------


def _colour_global(lab: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    n = len(lab)
    chans = np.concatenate([np.moveaxis(lab, -1, 1), chroma[:, None]], 1)  # (N, 4, S, S)
    chans = np.ascontiguousarray(chans).reshape(n, 4, -1)
    mean = chans.mean(-1)
    std = chans.std(-1)
    quant = np.moveaxis(np.quantile(chans, _QUANTILES, axis=-1), 0, -1)  # (N, 4, 5)
    pairs = ((0, 1), (0, 2), (1, 2))
    centred = chans[:, :3] - mean[:, :3, None]
    cov = np.stack([(centred[:, i] * centred[:, j]).mean(-1) for i, j in pairs], 1)
    # Flat channels have no defined correlation: the floor sends it to 0, not to noise / 0.
    corr = cov / np.stack([std[:, i] * std[:, j] for i, j in pairs], 1).clip(1e-6)
    return np.concatenate(
        [
            (mean - _LEVEL_OFFSET) / _LEVEL_SCALE,
            (std - _SPREAD_OFFSET) / _SPREAD_SCALE,
            ((quant - _QUANTILE_OFFSET) / _QUANTILE_SCALE).reshape(n, -1),
            (corr - _CORR_OFFSET) / _CORR_SCALE,
        ],
        1,
    )


def _colour_regional(lab: np.ndarray) -> np.ndarray:
    n = len(lab)
    parts = []
    for grid in (2, 4):
        cells = np.stack([_cells(lab[..., c], grid) for c in range(3)], 1)  # (N, 3, G, P)
        spread_offset, spread_scale = _CELL_SPREAD[grid]
        mean = (cells.mean(-1) - _LEVEL_OFFSET[:3, None]) / _LEVEL_SCALE[:3, None]
        std = (cells.std(-1) - spread_offset[:, None]) / spread_scale[:, None]
        parts += [mean.reshape(n, -1), std.reshape(n, -1)]
    return np.concatenate(parts, 1)


def _layout(lab: np.ndarray) -> np.ndarray:
    cells = np.stack([_cells(lab[..., c], 8) for c in range(3)], 1)  # (N, 3, 64, 64)
    thumb = (cells.mean(-1) - _LEVEL_OFFSET[:3, None]) / _LEVEL_SCALE[:3, None]
    return thumb.reshape(len(lab), -1)


_L_CENTRES = np.linspace(0.0, 100.0, 8)
_CHROMA_CENTRES = np.array([0.0, 20.0, 45.0, 80.0])  # 0 is the neutral (hue-less) bin
_HUE_SECTORS = 8


def _histograms(lab: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    n = len(lab)
    pixels = WORK_SIZE * WORK_SIZE
    lower, upper, w = _soft_bins(_flat(lab[..., 0]), _L_CENTRES)
    light = _hist(lower, 1.0 - w, len(_L_CENTRES)) + _hist(upper, w, len(_L_CENTRES))

    ring_lo, ring_hi, w_ring = _soft_bins(_flat(chroma), _CHROMA_CENTRES)
    hue = np.arctan2(_flat(lab[..., 2]), _flat(lab[..., 1])) / (2.0 * np.pi / _HUE_SECTORS)
    hue_lo, hue_hi, w_hue = _circular_bins(hue, _HUE_SECTORS)
    bins = 1 + _HUE_SECTORS * (len(_CHROMA_CENTRES) - 1)
    hue_chroma = np.zeros((n, bins))
    for ring, w_r in ((ring_lo, 1.0 - w_ring), (ring_hi, w_ring)):
        for sector, w_h in ((hue_lo, 1.0 - w_hue), (hue_hi, w_hue)):
            # The neutral ring has one bin: both hue terms land there and their weights sum to 1.
            index = np.where(ring == 0, 0, 1 + (ring - 1) * _HUE_SECTORS + sector)
            hue_chroma += _hist(index, w_r * w_h, bins)

    return np.concatenate(
        [
            (np.sqrt(light / pixels) - _L_HIST_OFFSET) / _L_HIST_SCALE,
            (np.sqrt(hue_chroma / pixels) - _HUE_CHROMA_OFFSET) / _HUE_CHROMA_SCALE,
        ],
        1,
    )


def _gradients(lab: np.ndarray) -> np.ndarray:
    n = len(lab)
    light = lab[..., 0]
    gx, gy = _scharr(light)
    mag = _flat(np.hypot(gx, gy))
    # The same derivative on 2x2- and 4x4-averaged images: blur lowers the fine scale most.
    scales = [mag.mean(-1)]
    for k in (2, 4):
        pooled = _cells(light, WORK_SIZE // k).mean(-1).reshape(n, WORK_SIZE // k, -1)
        scales.append(_flat(np.hypot(*_scharr(pooled))).mean(-1))
    quant = np.quantile(mag, (0.5, 0.75, 0.9, 0.99), axis=-1).T
    density = np.stack([(mag > t).mean(-1) for t in (2.0, 5.0, 10.0, 20.0)], 1)

    # Edge orientation modulo pi, soft-binned, weighted by magnitude; a flat image is uniform.
    lower, upper, w = _circular_bins(_flat(np.arctan2(gy, gx)) / (np.pi / 8), 8)
    orient = _hist(lower, mag * (1.0 - w), 8) + _hist(upper, mag * w, 8)
    orient = (orient + 1e-3) / (orient.sum(-1, keepdims=True) + 8e-3)

    ax, ay = _scharr(lab[..., 1])
    bx, by = _scharr(lab[..., 2])
    chroma_mag = _flat(np.sqrt(ax * ax + ay * ay + bx * bx + by * by))
    chroma = [chroma_mag.mean(-1)[:, None], np.quantile(chroma_mag, (0.5, 0.9), axis=-1).T]

    raw = np.concatenate(
        [
            np.log1p(np.stack(scales, 1)),
            np.log1p(quant),
            density,
            np.sqrt(orient),
            np.log1p(np.concatenate(chroma, 1)),
        ],
        1,
    )
    return (raw - _GRAD_OFFSET) / _GRAD_SCALE


def _lbp(lab: np.ndarray) -> np.ndarray:
    n = len(lab)
    # Integer grey levels: LBP compares neighbours for >=, so flat fills give one clean code.
    grey = np.clip(np.rint(lab[..., 0] * 2.55), 0, 255).astype(np.uint8)
    counts = np.zeros((n, len(_LBP_RADII), _LBP_BINS))
    for i in range(n):
        for j, radius in enumerate(_LBP_RADII):
            codes = local_binary_pattern(grey[i], _LBP_POINTS, radius, method="uniform")
            counts[i, j] = np.bincount(codes.astype(np.int64).ravel(), minlength=_LBP_BINS)
    props = np.sqrt(counts / (WORK_SIZE * WORK_SIZE))
    return ((props - _LBP_OFFSET) / _LBP_SCALE).reshape(n, -1)


_HANN_1D = np.hanning(WORK_SIZE + 2)[1:-1]  # no zero end points: every pixel counts
_HANN = np.outer(_HANN_1D, _HANN_1D)
_FREQ = np.fft.fftfreq(WORK_SIZE) * WORK_SIZE  # cycles per image
_RADIUS = np.hypot(_FREQ[None, :], _FREQ[:, None]).ravel()
_ANGLE = np.mod(np.arctan2(_FREQ[:, None], _FREQ[None, :]), np.pi).ravel()
_SECTOR = np.rint(_ANGLE / (np.pi / 4)).astype(np.int64) % 4  # 0 = horizontal frequencies


def _spectrum(lab: np.ndarray) -> np.ndarray:
    n = len(lab)
    power = np.empty((n, WORK_SIZE * WORK_SIZE))
    for i in range(n):
        # One FFT per image: a row cannot depend on how the batch's lines are grouped for SIMD.
        light = lab[i, ..., 0]
        spec = np.fft.fft2((light - light.mean()) * _HANN)
        power[i] = (spec.real**2 + spec.imag**2).ravel() / (WORK_SIZE * WORK_SIZE)

    def select(mask: np.ndarray) -> np.ndarray:
        # Masked columns come out column-major, and numpy would then sum each row in an order
        # that depends on the batch size; a contiguous copy sums every row the same way.
        return np.ascontiguousarray(power[:, mask])

    feats = []
    for lo, hi in zip(_RADIAL_EDGES[:-1], _RADIAL_EDGES[1:]):
        band = (_RADIUS >= lo) & (_RADIUS < hi)
        feats.append(np.log10(select(band).mean(-1) + 1e-4))
    for lo, hi in _ORIENT_BANDS:
        band = (_RADIUS >= lo) & (_RADIUS < hi)
        total = select(band).sum(-1) + 1e-6
        for sector in range(4):
            feats.append((select(band & (_SECTOR == sector)).sum(-1) + 0.25e-6) / total)
    return (np.stack(feats, 1) - _SPECTRUM_OFFSET) / _SPECTRUM_SCALE


def _noise(lab: np.ndarray) -> np.ndarray:
    laps = [_flat(np.abs(_laplacian(lab[..., c]))) for c in range(3)]
    # For i.i.d. noise of std s the 4-neighbour Laplacian has std s * sqrt(20); the median of
    # its absolute value ignores the few edge pixels of a clean cover.
    sigma = [np.median(lap, axis=-1) * (1.4826 / np.sqrt(20.0)) for lap in laps]
    energy = [(lap * lap).mean(-1) for lap in laps]
    quant = np.quantile(laps[0], (0.75, 0.9), axis=-1)
    raw = np.stack(
        [np.log10(s + 0.05) for s in sigma]
        + [np.log10(e + 0.01) for e in energy]
        + [np.log1p(quant[0]), np.log1p(quant[1])]
        + [(laps[0] > 1.0).mean(-1), (laps[0] > 4.0).mean(-1)],
        1,
    )
    return (raw - _NOISE_OFFSET) / _NOISE_SCALE
