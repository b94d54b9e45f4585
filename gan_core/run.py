"""What a callback sees: the ``Run`` (config, run directory, engine, fixed latents, status), the
``Callback`` base class, and ``TrainingData``, the loaded images the caller hands to ``train``.

Kept apart from the loop and the built-in callbacks so that ``training``, ``callbacks`` and
``evaluation`` all import this module and never each other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from albumgan.gan_core.config import TrainConfig
from albumgan.gan_core.contract import EXIT_DIVERGED, EXIT_OK, EXIT_SIGNAL_BASE

if TYPE_CHECKING:
    from albumgan.gan_core.rundir import Status
    from albumgan.gan_core.steps.engine import Engine


@dataclass(frozen=True)
class TrainingData:
    """Decoded training images, as the caller loaded them (``data_tools.load_dataset`` gives one).

    Args:
        name: shown in status.json and reports (``synthetic``, ``gaon``, a folder name).
        images: (N, R, R, 3) uint8, R = the config's resolution.
        fingerprint: identifies the content (keys the cache of real-image features); computed from
            the pixels when empty.
    """

    name: str
    images: np.ndarray
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            digest = hashlib.sha256(np.ascontiguousarray(self.images).tobytes()).hexdigest()
            object.__setattr__(self, "fingerprint", digest[:16])


@dataclass
class Run:
    """The state callbacks see; the loop updates ``step``, the timings and ``stop_signal``."""

    cfg: TrainConfig
    run_dir: Path
    engine: Engine
    data: TrainingData
    grid_z: np.ndarray
    status: Status
    precision: str
    backend: str
    start_step: int = 0
    step: int = 0  # the step reached so far
    last_checkpoint_step: int = -1
    last_metrics: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    stop_signal: int | None = None  # the signal that interrupted the run, if one did

    def sample(self, noise: np.ndarray, batch: int = 64) -> np.ndarray:
        """Images in [-1, 1] from the sampling generator (EMA if enabled), inference mode."""
        return self.engine.sample(noise, batch)


class Callback:
    """Hooks of the training loop; all optional. ``state`` is completed|diverged|interrupted."""

    def on_train_begin(self, run: Run) -> None:
        pass

    def on_steps_end(self, run: Run, step: int, logs: dict[str, Any]) -> None:
        pass

    def on_train_end(self, run: Run, state: str) -> None:
        pass


def due(step: int, every: int, run: Run) -> bool:
    """Whether a callback with period ``every`` (0 = off) acts at ``step`` (and at the end)."""
    return every > 0 and (step % every == 0 or step == run.cfg.steps)


def exit_code(state: str, stop_signal: int | None = None) -> int:
    """The process exit code of a run that ended in ``state``: 0 completed, 3 diverged,
    128 + the signal when interrupted (143 for SIGTERM, 130 for SIGINT)."""
    if state == "diverged":
        return EXIT_DIVERGED
    if state == "interrupted":
        return EXIT_SIGNAL_BASE + (stop_signal or 0)
    return EXIT_OK
