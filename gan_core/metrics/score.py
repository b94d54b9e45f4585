"""Scores of generated images against real ones, with everything needed to compare them.

Every score carries its extractor (and version), the image resolution and both sample counts:
KID, FID and precision/recall are only comparable when all of those match. KID is the primary
metric (unbiased at small N); FID at ~500 samples is biased upwards and shifts with N.
Features of the real images are cached on disk keyed by the dataset's content fingerprint, the
resolution and the extractor, so a sweep featurises its training set once.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from albumgan.gan_core.fileio import atomic_write
from albumgan.gan_core.metrics.extractors import Extractor
from albumgan.gan_core.metrics.maths import (
    density_coverage,
    fid_from_features,
    kid,
    precision_recall,
)

KID_SUBSETS = 100
# Subsets of half the smaller set: with subsets as large as the set (the usual default at ~500
# images) every subset is the whole set and kid_std is 0. KID is unbiased at any subset size, so
# the mean stays comparable while the spread becomes informative.
KID_SUBSET_FRACTION = 0.5


def score_features(
    real: np.ndarray,
    fake: np.ndarray,
    extractor: Extractor,
    resolution: int,
    with_density: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """KID (mean, std), FID, precision/recall (k=3) [, density/coverage (k=5)] and provenance."""
    subset_size = max(2, int(min(len(real), len(fake)) * KID_SUBSET_FRACTION))
    kid_mean, kid_std = kid(real, fake, subsets=KID_SUBSETS, subset_size=subset_size, seed=seed)
    precision, recall = precision_recall(real, fake, k=3)
    record: dict[str, Any] = {
        "kid": float(kid_mean),
        "kid_std": float(kid_std),
        "kid_subset_size": subset_size,
        "fid": float(fid_from_features(real, fake)),
        "precision": float(precision),
        "recall": float(recall),
    }
    if with_density:
        density, coverage = density_coverage(real, fake, k=5)
        record.update(density=float(density), coverage=float(coverage))
    record.update(
        extractor=extractor.name,
        extractor_version=extractor.version,
        resolution=int(resolution),
        n_real=len(real),
        n_fake=len(fake),
    )
    return record


def _cache_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / "metrics" / (re.sub(r"[^A-Za-z0-9_.=-]+", "_", key) + ".npy")


def cached_features(
    images: np.ndarray, extractor: Extractor, key: str, cache_dir: str | os.PathLike
) -> np.ndarray:
    """Features of ``images``, computed once per ``key`` + extractor + resolution, then reused.

    ``key`` must change whenever the images do (use the dataset's content fingerprint).
    """
    resolution = images.shape[1]
    path = _cache_path(
        Path(cache_dir), f"{key}-{len(images)}x{resolution}px-{extractor.name}-{extractor.version}"
    )
    if path.is_file():
        feats = np.load(path)
        if feats.shape[0] == len(images):
            return feats
    feats = extractor(images)
    with atomic_write(path) as handle:
        np.save(handle, feats)
    return feats
