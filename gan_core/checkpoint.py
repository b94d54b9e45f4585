"""Atomic, self-checking checkpoints of the whole training state, on either backend.

One ``checkpoints/ckpt-<step>.npz`` per save (and ``checkpoints/best.npz``, the best evaluation's)
holds G, D, the EMA generator, both optimizers (slots and iteration counters), the step, the
backend that wrote it and, on TensorFlow, the in-graph RNG state (JAX's randomness is a function of
the step). A save writes a temporary file, fsyncs it and renames it into place, so ``kill -9`` at
any moment leaves only complete checkpoints; the oldest are pruned beyond ``keep``. Loading checks
every variable's shape and falls back to the previous checkpoint when the newest cannot be read.

Both engines hold the same variables in the same order, so a checkpoint written by one backend
resumes on the other: weights and optimizer state carry over exactly; the random stream (noise,
labels, augmentation, data order) restarts as a function of (seed, step), so such a run matches
an uninterrupted one in distribution, not bit for bit. A run resumed on its own backend matches
bit for bit.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from albumgan.gan_core.contract import AlbumganError, first_line
from albumgan.gan_core.fileio import atomic_write

log = logging.getLogger(__name__)

_NAME = re.compile(r"^ckpt-(\d{6,})\.npz$")


class CheckpointError(AlbumganError):
    """A checkpoint does not match the model it is loaded into, or none can be read."""


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"ckpt-{step:06d}.npz"


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(step, path) of every finished checkpoint, oldest first."""
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def write_checkpoint(engine, path: Path, step: int) -> Path:
    """Write the whole training state at ``step`` to ``path`` atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "step": np.array(step, np.int64),
        "backend": np.array(engine.backend),
    }
    for group, variables in engine.variable_groups().items():
        for i, var in enumerate(variables):
            arrays[f"{group}/{i:04d}"] = np.asarray(var.numpy())
    rng_state = engine.rng_state()
    if rng_state is not None:
        arrays["rng/state"] = rng_state
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)
    return path


def save(engine, directory: Path, step: int, keep: int) -> Path:
    """Write the training state at ``step``; keep the ``keep`` newest numbered checkpoints."""
    target = write_checkpoint(engine, checkpoint_path(directory, step), step)
    for _, old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return target


def restore_file(engine, path: Path, groups: tuple[str, ...] | None = None) -> int:
    """Load one checkpoint file into ``engine``; return its step.

    Args:
        groups: only these variable groups (e.g. ``("generator", "ema_generator")`` to sample);
            default: the whole training state, RNG included.

    Raises:
        CheckpointError: the checkpoint holds another model (a different config).
    """
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    step = int(arrays["step"])
    for group, variables in engine.variable_groups().items():
        if groups is not None and group not in groups:
            continue
        stored = sorted(k for k in arrays if k.startswith(f"{group}/"))
        if len(stored) != len(variables):
            raise CheckpointError(
                f"{path}: {group} has {len(stored)} variables, the model has {len(variables)}"
            )
        for i, var in enumerate(variables):
            value = arrays[f"{group}/{i:04d}"]
            if tuple(value.shape) != tuple(var.shape):
                raise CheckpointError(
                    f"{path}: {group} variable {var.path} has shape {value.shape}, "
                    f"the model expects {tuple(var.shape)}"
                )
            var.assign(value)
    if groups is not None:
        return step
    # Checkpoints from before the JAX engine carry no backend: TensorFlow wrote them.
    written_by = str(arrays["backend"]) if "backend" in arrays else "tensorflow"
    if written_by == engine.backend:
        engine.restore_rng(arrays.get("rng/state"), step)
    else:
        log.warning(
            "%s was written by the %s backend; resuming on %s: weights and optimizer state carry "
            "over, the random stream restarts from (seed, step %d)",
            path,
            written_by,
            engine.backend,
            step,
        )
        engine.restore_rng(None, step)
    return step


def restore_latest(engine, directory: Path, groups: tuple[str, ...] | None = None) -> int:
    """Load the newest readable checkpoint into ``engine``; return its step, or 0 if there is none.

    A damaged newest checkpoint (a disk error, a copy cut short) falls back to an older one with
    a warning. When every checkpoint is damaged the run is NOT restarted from step 0: that would
    silently throw away its training and its metrics history.

    Raises:
        CheckpointError: a readable checkpoint does not fit the model (a different config), or
            no checkpoint is readable.
    """
    found = list_checkpoints(directory)
    damaged = []
    for _, path in reversed(found):
        try:
            return restore_file(engine, path, groups)
        except CheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged file: fall back to an older one
            log.warning("checkpoint %s is unreadable (%s); trying an older one", path, exc)
            damaged.append(f"{path.name}: {first_line(exc)}")
    if damaged:
        raise CheckpointError(
            f"{directory}: every checkpoint is unreadable ({'; '.join(damaged)}); move them "
            "out of the folder to start this run over from step 0, or use another --run-dir"
        )
    return 0
