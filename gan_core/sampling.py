"""Sample single images from a run directory: its final generator, or a checkpoint.

Works on whichever backend runs here, whichever wrote the run: ``generator.keras`` is saved in
plain Keras layers (``Engine.export_generator``), and checkpoints hold the same variables on both
backends. ``generator.keras`` files from before that (with albumgan's fused TensorFlow layers)
load too, as the plain layers they are equivalent to at inference.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from albumgan.gan_core import backend, checkpoint
from albumgan.gan_core.contract import AlbumganError, UsageError, first_line
from albumgan.gan_core.images import save_image, to_uint8
from albumgan.gan_core.rundir import read_config

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
            ``best``: the best evaluation's checkpoint (``checkpoints/best.npz``: best_metric,
                noise-aware; gan_core.evaluation).

    Raises:
        UsageError: not a run directory, or no such weights yet.
    """
    if which not in ("final", "best"):
        raise ValueError(f"which must be final or best, got {which!r}")
    backend.activate("auto")
    import keras

    final = run_dir / "generator.keras"
    if which == "final" and final.is_file():
        return keras.saving.load_model(final, compile=False, custom_objects=_legacy_layers())
    if not (run_dir / "config.yaml").is_file():
        raise UsageError(f"{run_dir} is not a run directory (no config.yaml)")
    from albumgan.gan_core.steps import make_engine

    engine = make_engine(read_config(run_dir), "float32")  # sampling needs no training precision
    if which == "best":
        best = run_dir / "checkpoints" / "best.npz"
        if not best.is_file():
            raise UsageError(f"{run_dir} has no best checkpoint (train with eval_every)")
        try:
            checkpoint.restore_file(engine, best, SAMPLING_GROUPS)
        except AlbumganError:
            raise
        except Exception as exc:  # noqa: BLE001 - a cut or damaged file, whatever numpy says
            raise UsageError(
                f"{best}: cannot be read ({first_line(exc)}): the file is cut or damaged; "
                "use --checkpoint final, or evaluate the run again to write a new best"
            ) from exc
    else:
        if not checkpoint.restore_latest(engine, run_dir / "checkpoints", SAMPLING_GROUPS):
            raise UsageError(f"{run_dir} has no generator.keras and no checkpoint yet")
    return engine.sampling_generator()


# Latents per generator call, and images held at once while sampling. 64 is the batch this
# module always used, so a seed still gives bit-identical images; it keeps per-call overhead small,
# and one chunk's float32 output stays under ~200 MB even at 512 px (64 x 512 x 512 x 3 x 4 B).
CHUNK = 64


def generate_chunks(generator, n: int, seed: int = 0) -> Iterator[np.ndarray]:
    """``n`` uint8 images from fixed-seed latents, at most ``CHUNK`` at a time.

    The latents come chunk by chunk from one RNG stream, the same values as drawing all ``n`` at
    once: the ``n`` images of a seed are the first ``n`` of any larger sample with that seed.
    """
    noise_shape = tuple(generator.input_shape[1:])
    rng = np.random.default_rng(seed)
    for start in range(0, n, CHUNK):
        noise = rng.standard_normal((min(CHUNK, n - start), *noise_shape)).astype(np.float32)
        yield to_uint8(np.asarray(generator(noise, training=False)), drange=(-1, 1))


def generate(generator, n: int, seed: int = 0) -> np.ndarray:
    """``n`` uint8 images from fixed-seed latents, all in memory (see ``generate_chunks``)."""
    return np.concatenate(list(generate_chunks(generator, n, seed)))


def sample_images(
    run_dir: Path,
    n: int,
    out_dir: Path,
    image_format: str = "png",
    seed: int = 0,
    which: str = "final",
) -> int:
    """Write ``n`` generated images as ``sample_00000.<format>``, ... into ``out_dir``.

    Images are generated and written ``CHUNK`` at a time, so memory does not grow with ``n``.
    Only the names ``sample_<index>.<format>`` are written (5 digits, more past 100,000
    images, so the names sort): an earlier sample's files of those names are replaced, every
    other file in ``out_dir`` is left alone.

    Args:
        run_dir: the run directory.
        n: how many images.
        out_dir: the folder to write into, created if needed (after the generator loads, so a
            bad ``run_dir`` leaves nothing behind).
        image_format: ``png`` or ``jpg`` (quality 95).
        seed: the latent seed.
        which: ``final`` or ``best``, as in ``load_sampler``.

    Returns:
        The number of images written, ``n``.

    Raises:
        UsageError: as ``load_sampler``, or ``out_dir`` cannot be made or written.
    """
    if image_format not in ("png", "jpg"):
        raise ValueError(f"format must be png or jpg, got {image_format!r}")
    generator = load_sampler(run_dir, which)
    try:
        return _write_samples(generator, n, out_dir, image_format, seed)
    except OSError as exc:
        raise UsageError(f"{out_dir}: cannot write there ({exc.strerror or exc})") from exc


def _write_samples(generator, n: int, out_dir: Path, image_format: str, seed: int) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    digits = max(5, len(str(n - 1)))
    save_args = {"quality": 95} if image_format == "jpg" else {}
    index = 0
    for chunk in generate_chunks(generator, n, seed):
        for image in chunk:
            path = out_dir / f"sample_{index:0{digits}d}.{image_format}"
            # No fsync per image (it took ~1.9 of ~2 ms per 16 px PNG here): a kill still leaves
            # whole files, and what an OS crash loses is drawn again from the seed.
            save_image(image, path, durable=False, **save_args)
            index += 1
    return index
