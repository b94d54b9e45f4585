"""Sample single images from a run directory: its final generator, or a checkpoint.

Works on whichever backend runs here, whichever wrote the run: ``generator.keras`` is saved in
plain Keras layers (``Engine.export_generator``), and checkpoints hold the same variables on both
backends. ``generator.keras`` files from before that (with albumgan's fused TensorFlow layers)
load too, as the plain layers they are equivalent to at inference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gan_core import backend, checkpoint
from gan_core.images import save_image, to_uint8
from gan_core.rundir import read_config

SAMPLING_GROUPS = ("generator", "ema_generator")


def _legacy_layers() -> dict:
    """Old generator.keras files name albumgan's fused layers; inference needs only Keras's."""
    from keras import layers

    return {
        "albumgan>FusedBatchNorm": layers.BatchNormalization,
        "albumgan>BottleneckConv2D": layers.Conv2D,
        "albumgan>BottleneckConv2DTranspose": layers.Conv2DTranspose,
    }


def load_sampler(run_dir: Path, which: str = "final"):
    """A run's sampling generator (EMA when enabled), a ``keras.Model``.

    Args:
        run_dir: the run directory.
        which: ``final``: ``generator.keras`` when the run finished, else the newest checkpoint;
            ``best``: the checkpoint with the lowest KID (``checkpoints/best.npz``).

    Raises:
        FileNotFoundError: not a run directory, or no such weights yet.
    """
    if which not in ("final", "best"):
        raise ValueError(f"which must be final or best, got {which!r}")
    backend.activate("auto")
    import keras

    final = run_dir / "generator.keras"
    if which == "final" and final.is_file():
        return keras.saving.load_model(final, compile=False, custom_objects=_legacy_layers())
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.yaml)")
    from gan_core.steps import make_engine

    engine = make_engine(read_config(run_dir), "float32")  # sampling needs no training precision
    if which == "best":
        best = run_dir / "checkpoints" / "best.npz"
        if not best.is_file():
            raise FileNotFoundError(f"{run_dir} has no best checkpoint (train with eval_every)")
        checkpoint.restore_file(engine, best, SAMPLING_GROUPS)
    else:
        if not checkpoint.restore_latest(engine, run_dir / "checkpoints", SAMPLING_GROUPS):
            raise FileNotFoundError(f"{run_dir} has no generator.keras and no checkpoint yet")
    return engine.sampling_generator()


def generate(generator, n: int, seed: int = 0) -> np.ndarray:
    """``n`` uint8 images from fixed-seed latents."""
    noise_shape = tuple(generator.input_shape[1:])
    noise = np.random.default_rng(seed).standard_normal((n, *noise_shape)).astype(np.float32)
    images = np.concatenate(
        [np.asarray(generator(noise[i : i + 64], training=False)) for i in range(0, n, 64)]
    )
    return to_uint8(images, drange=(-1, 1))


def sample_images(
    run_dir: Path,
    n: int,
    out_dir: Path,
    image_format: str = "png",
    seed: int = 0,
    which: str = "final",
) -> list[Path]:
    """Write ``n`` generated images as ``sample_00000.<format>`` into ``out_dir``."""
    if image_format not in ("png", "jpg"):
        raise ValueError(f"format must be png or jpg, got {image_format!r}")
    paths = []
    for i, image in enumerate(generate(load_sampler(run_dir, which), n, seed)):
        path = out_dir / f"sample_{i:05d}.{image_format}"
        save_image(image, path, **({"quality": 95} if image_format == "jpg" else {}))
        paths.append(path)
    return paths
