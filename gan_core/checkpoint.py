"""Atomic, self-checking checkpoints of the whole training state.

One ``checkpoints/ckpt-<step>.npz`` per save (and ``checkpoints/best.npz``: the lowest KID) holds
G, D, the EMA generator, both optimizers (slots and iteration counters), the in-graph RNG state and
the step. A save writes a temporary file,
fsyncs it and renames it into place, so ``kill -9`` at any moment leaves only complete
checkpoints; the oldest are pruned beyond ``keep``. Loading checks every variable's shape and falls
back to the previous checkpoint when the newest cannot be read.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from gan_core.fileio import atomic_write

log = logging.getLogger(__name__)

_NAME = re.compile(r"^ckpt-(\d{6,})\.npz$")


class CheckpointError(RuntimeError):
    """A checkpoint does not match the model it is loaded into."""


def _groups(gan) -> dict[str, list]:
    """Every variable of the training state, by group, in a stable order."""
    groups = {
        "generator": list(gan.generator.variables),
        "discriminator": list(gan.discriminator.variables),
        "g_optimizer": list(gan.g_optimizer.variables),
        "d_optimizer": list(gan.d_optimizer.variables),
    }
    if gan.ema_generator is not None:
        groups["ema_generator"] = list(gan.ema_generator.variables)
    return groups


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


def write_checkpoint(gan, path: Path, step: int) -> Path:
    """Write the whole training state at ``step`` to ``path`` atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {"step": np.array(step, np.int64)}
    for group, variables in _groups(gan).items():
        for i, var in enumerate(variables):
            arrays[f"{group}/{i:04d}"] = np.asarray(var.numpy())
    arrays["rng/state"] = gan.rng.state.numpy()
    with atomic_write(path) as handle:
        np.savez(handle, **arrays)
    return path


def save(gan, directory: Path, step: int, keep: int) -> Path:
    """Write the training state at ``step``; keep the ``keep`` newest numbered checkpoints."""
    target = write_checkpoint(gan, checkpoint_path(directory, step), step)
    for _, old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return target


def restore_file(gan, path: Path) -> int:
    """Load one checkpoint file into ``gan``; return its step."""
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    for group, variables in _groups(gan).items():
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
    gan.rng.reset(arrays["rng/state"])
    return int(arrays["step"])


def restore_latest(gan, directory: Path) -> int:
    """Load the newest readable checkpoint into ``gan``; return its step, or 0 when there is none.

    Raises:
        CheckpointError: a readable checkpoint does not fit the model (a different config).
    """
    for _, path in reversed(list_checkpoints(directory)):
        try:
            return restore_file(gan, path)
        except CheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged file: fall back to an older one
            log.warning("checkpoint %s is unreadable (%s); trying an older one", path, exc)
    return 0
