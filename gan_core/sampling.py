"""Sample single images from a run directory: its final generator, or its newest checkpoint."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from gan_core import checkpoint
from gan_core.images import save_image, to_uint8
from gan_core.layers import FusedBatchNorm  # noqa: F401 - registers the layer for load_model
from gan_core.rundir import read_config


def load_sampler(run_dir: Path, which: str = "final") -> keras.Model:
    """A run's sampling generator (EMA when enabled).

    Args:
        run_dir: the run directory.
        which: ``final``: ``generator.keras`` when the run finished, else the newest checkpoint;
            ``best``: the checkpoint with the lowest KID (``checkpoints/best.npz``).

    Raises:
        FileNotFoundError: not a run directory, or no such weights yet.
    """
    if which not in ("final", "best"):
        raise ValueError(f"which must be final or best, got {which!r}")
    final = run_dir / "generator.keras"
    if which == "final" and final.is_file():
        return keras.saving.load_model(final, compile=False)
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.yaml)")
    from gan_core.precision import resolve_precision
    from gan_core.training import build_gan

    cfg = read_config(run_dir)
    gan = build_gan(cfg, resolve_precision(cfg.precision))
    if which == "best":
        best = run_dir / "checkpoints" / "best.npz"
        if not best.is_file():
            raise FileNotFoundError(f"{run_dir} has no best checkpoint (train with eval_every)")
        checkpoint.restore_file(gan, best)
    elif checkpoint.restore_latest(gan, run_dir / "checkpoints") == 0:
        raise FileNotFoundError(f"{run_dir} has no generator.keras and no checkpoint yet")
    return gan.sampling_generator()


def generate(generator: keras.Model, n: int, seed: int = 0) -> np.ndarray:
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
