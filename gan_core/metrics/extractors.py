"""Feature extractors behind a small registry; every score records which one made it.

    album      offline default (no download, no TensorFlow): colour, layout and texture statistics
               designed for album art (``album_features``). Deterministic, fast on a CPU.
    inception  Keras ``InceptionV3(include_top=False, pooling="avg")``, 2048-d, inputs resized to
               299 px with antialiased bicubic. Weights: ``--inception-weights FILE``, else the
               Keras cache file (md5-checked), else ``albumgan metrics fetch-weights`` when online.

These Keras weights are not the 2015 TensorFlow graph the literature's FID uses: our
"FID (Keras InceptionV3)" ranks our own runs and is not comparable with numbers in papers.
Scores from different extractors (or versions) are never comparable either.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from albumgan.gan_core.contract import EXIT_FAILED, EXTRACTORS, AlbumganError
from albumgan.gan_core.metrics.album_features import ALBUM_FEATURES_VERSION, album_features

INCEPTION_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"
INCEPTION_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + INCEPTION_FILE
)


class MetricsError(AlbumganError):
    """A metric cannot be computed as asked (e.g. weights missing offline); exit code 2."""


class DownloadFailed(MetricsError):
    """The weights could not be downloaded: the command ran and got nothing (exit 1)."""

    exit_code = EXIT_FAILED


@dataclass(frozen=True)
class Extractor:
    """A named feature function: uint8 images (N, H, W, 3) -> float features (N, D)."""

    name: str
    version: str  # code version or weights hash: part of every cache key and score record
    features: Callable[[np.ndarray], np.ndarray]

    def __call__(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"expected uint8 images (N, H, W, 3), got {images.dtype} {images.shape}"
            )
        parts = [
            self.features(images[i : i + batch_size]) for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts).astype(np.float64)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def keras_cache_weights() -> Path:
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return keras_home / "models" / INCEPTION_FILE


def find_inception_weights(path: str | os.PathLike | None = None) -> Path:
    """The weights file to use; never downloads.

    Raises:
        MetricsError: no file given and none in the Keras cache, with what to do about it.
    """
    if path:
        found = Path(path)
        if not found.is_file():
            raise MetricsError(f"--inception-weights: no such file {str(found)!r}")
        return found
    cached = keras_cache_weights()
    if cached.is_file():
        if _md5(cached) != INCEPTION_MD5:
            raise MetricsError(f"{cached} is damaged (md5 mismatch); delete it and fetch again")
        return cached
    raise MetricsError(
        f"InceptionV3 weights not found (looked in {cached}); run `albumgan metrics "
        "fetch-weights` while online, or pass --inception-weights FILE, or use --extractor album"
    )


def fetch_inception_weights() -> Path:
    """Download the weights into the Keras cache (md5-checked). Needs the internet."""
    import keras

    try:
        path = keras.utils.get_file(
            INCEPTION_FILE, INCEPTION_URL, cache_subdir="models", file_hash=INCEPTION_MD5
        )
    except Exception as exc:  # noqa: BLE001 - urllib/ssl/socket errors all mean the same here
        raise DownloadFailed(f"could not download {INCEPTION_URL} (offline?): {exc}") from exc
    return Path(path)


def _inception(weights: str | os.PathLike | None) -> Extractor:
    path = find_inception_weights(weights)
    import keras
    import tensorflow as tf

    model = keras.applications.InceptionV3(
        include_top=False, pooling="avg", weights=None, input_shape=(299, 299, 3)
    )
    model.load_weights(path)

    def features(images: np.ndarray) -> np.ndarray:
        x = tf.image.resize(tf.cast(images, tf.float32), (299, 299), "bicubic", antialias=True)
        x = tf.clip_by_value(x, 0.0, 255.0) / 127.5 - 1.0  # InceptionV3's own preprocessing
        return np.asarray(model(x, training=False))

    return Extractor("inception", f"keras-inception-v3-md5:{_md5(path)[:12]}", features)


def get_extractor(
    name: str = "album", inception_weights: str | os.PathLike | None = None
) -> Extractor:
    """The extractor called ``name``.

    Raises:
        MetricsError: unknown name, or inception weights unavailable.
    """
    if name == "album":
        return Extractor("album", f"album-v{ALBUM_FEATURES_VERSION}", album_features)
    if name == "inception":
        return _inception(inception_weights)
    raise MetricsError(f"extractor must be one of {', '.join(EXTRACTORS)}, got {name!r}")
