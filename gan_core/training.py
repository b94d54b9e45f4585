"""``train(config) -> TrainResult``: the one training function for the CLI, sweeps and notebooks.

    from gan_core import TrainConfig, train
    result = train(TrainConfig(dataset="synthetic", resolution=32, steps=200))
    print(result.run_dir, result.state, result.metrics)

It resolves the run directory (new, or an existing one to resume), writes the config before step 1,
builds the models and the in-memory input pipeline, restores the newest checkpoint if any, then
runs compiled executions of ``steps_per_execution`` steps with callbacks between them. SIGTERM and
SIGINT (how ``wandb agent`` stops a run) end the loop after the current execution with a
checkpoint; a NaN/Inf loss marks the run ``diverged`` and saves nothing from the broken weights.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from data_tools.datasets import Dataset, default_cache_dir, load_dataset
from gan_core import checkpoint
from gan_core.callbacks import Callback, Checkpoints, MetricsLog, Progress, SampleGrids
from gan_core.config import TrainConfig
from gan_core.data import make_batches
from gan_core.evaluation import Evaluator
from gan_core.gan import DCGAN, LOSS_NAMES
from gan_core.images import save_grid
from gan_core.models import build_discriminator, build_generator
from gan_core.optimizers import FusedAdam
from gan_core.precision import resolve_precision
from gan_core.rundir import (
    Status,
    check_resumable,
    create_run_dir,
    find_resumable,
    read_config,
    read_jsonl,
    write_config,
)

log = logging.getLogger(__name__)

EXIT_OK, EXIT_DIVERGED = 0, 3
AUTO_STEPS_PER_EXECUTION = 10


@dataclass
class TrainResult:
    """What ``train`` returns: where the run is, how it ended, its last logged metrics."""

    run_dir: Path
    state: str  # completed | diverged | interrupted
    step: int
    metrics: dict[str, Any] = field(default_factory=dict)
    exit_code: int = EXIT_OK


@dataclass
class Run:
    """The state callbacks see."""

    cfg: TrainConfig
    run_dir: Path
    gan: DCGAN
    dataset: Dataset
    grid_z: np.ndarray
    status: Status
    precision: str
    start_step: int = 0
    last_checkpoint_step: int = -1
    last_metrics: dict[str, Any] = field(default_factory=dict)

    def sample(self, noise: np.ndarray, batch: int = 64) -> np.ndarray:
        """Images in [-1, 1] from the sampling generator (EMA if enabled), inference mode."""
        generator = self.gan.sampling_generator()
        parts = [
            np.asarray(generator(noise[i : i + batch], training=False), np.float32)
            for i in range(0, len(noise), batch)
        ]
        return np.concatenate(parts)


# ------------------------------------------------------------------------------------------------
# Setup
# ------------------------------------------------------------------------------------------------


def _existing_run_dir(
    cfg: TrainConfig, run_dir: str | os.PathLike | None, resume: bool
) -> Path | None:
    """The run directory to write into when one is named or resumed (checked compatible)."""
    if run_dir is None and resume:
        run_dir = find_resumable(Path(cfg.runs_dir), cfg.name or "run")
    if run_dir is None:
        return None
    path = Path(run_dir)
    if (path / "config.yaml").is_file():
        check_resumable(read_config(path), cfg, path)
    return path


def _optimizer(lr: float, cfg: TrainConfig, policy: str) -> keras.Optimizer:
    opt = FusedAdam(learning_rate=lr, beta_1=cfg.beta1, beta_2=cfg.beta2)
    if policy == "mixed_float16":  # fp16 gradients underflow without loss scaling
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


def build_gan(cfg: TrainConfig, policy: str) -> DCGAN:
    """Models, EMA copy, optimizers, compiled; weights initialised from ``cfg.seed``."""
    keras.utils.set_random_seed(cfg.seed)
    generator = build_generator(cfg, policy)
    discriminator = build_discriminator(cfg, policy)
    ema_generator = None
    if cfg.ema > 0:
        ema_generator = build_generator(cfg, policy)
        ema_generator.set_weights(generator.get_weights())
    gan = DCGAN(
        generator,
        discriminator,
        cfg.noise_shape,
        cfg.label_noise,
        cfg.diffaugment_ops,
        ema_generator,
        cfg.ema,
        cfg.seed,
    )
    gan.compile(_optimizer(cfg.lr_g, cfg, policy), _optimizer(cfg.lr_d, cfg, policy))
    return gan


def _grid_latents(cfg: TrainConfig, run_dir: Path) -> np.ndarray:
    """Latents of every sample grid, drawn ONCE and stored, so a resumed run keeps them."""
    path = run_dir / "grid_z.npy"
    if path.is_file():
        return np.load(path)
    rng = np.random.default_rng([cfg.seed, 0x9E1D])
    grid_z = rng.standard_normal((cfg.grid_size**2, *cfg.noise_shape)).astype(np.float32)
    np.save(path, grid_z)
    return grid_z


def _save_reals(run: Run) -> None:
    path = run.run_dir / "reals.png"
    if path.exists():
        return
    images = run.dataset.images
    pick = np.random.default_rng(run.cfg.seed).permutation(len(images))[: run.cfg.grid_size**2]
    save_grid(images[pick], path, drange=(0, 255), cols=run.cfg.grid_size)


class _StopSignals:
    """Turn SIGTERM/SIGINT into a flag the loop checks between executions (main thread only)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop right now
        self.received = signum

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _next_boundary(step: int, cfg: TrainConfig) -> int:
    """The next step at which a callback has work: executions end exactly there."""
    nxt = cfg.steps
    for every in (cfg.log_every, cfg.sample_every, cfg.checkpoint_every, cfg.eval_every):
        if every > 0:
            nxt = min(nxt, (step // every + 1) * every)
    return nxt


# ------------------------------------------------------------------------------------------------
# The loop
# ------------------------------------------------------------------------------------------------


def train(
    cfg: TrainConfig,
    callbacks: Sequence[Callback] = (),
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train (or continue training) one DC-GAN run.

    Args:
        cfg: the run's configuration.
        callbacks: extra callbacks, called after the built-in ones.
        run_dir: where to write; an existing run directory is resumed. Default: a new
            ``<runs_dir>/<NNNNN>-<name>``.
        resume: without ``run_dir``, continue the newest unfinished run of the same name.

    Returns:
        TrainResult with the run directory, final state, step and last logged metrics.

    Raises:
        ConfigError: the run directory holds an incompatible config.
        DatasetError: the dataset cannot be loaded.
    """
    existing = _existing_run_dir(cfg, run_dir, resume)
    # The dataset loads before any folder is made: a bad dataset leaves nothing behind.
    dataset = load_dataset(
        cfg.dataset, cfg.resolution, cfg.cache_dir or default_cache_dir(), cfg.data_dir or None
    )
    if existing is not None:
        existing.mkdir(parents=True, exist_ok=True)
    path = existing or create_run_dir(Path(cfg.runs_dir), cfg.name or "run")
    write_config(path, cfg)
    status = Status(path, cfg.steps)
    policy = resolve_precision(cfg.precision)
    gan = build_gan(cfg, policy)
    start_step = checkpoint.restore_latest(gan, path / "checkpoints")
    run = Run(cfg, path, gan, dataset, _grid_latents(cfg, path), status, policy, start_step)
    run.last_checkpoint_step = start_step if start_step else -1
    if start_step >= cfg.steps and (path / "generator.keras").is_file():
        log.info("%s already completed %d steps", path, start_step)
        status.update(state="completed", step=start_step)
        return TrainResult(path, "completed", start_step, _last_metrics(path))
    status.update(
        state="running",
        step=start_step,
        steps=cfg.steps,
        precision=policy,
        resumed_from=start_step or None,
        dataset=dataset.name,
        n_images=len(dataset.images),
        message=f"resumed from step {start_step} ({status.previous_state})" if start_step else "",
    )
    _save_reals(run)
    # The evaluator goes first: its scores reach the metrics log and every later callback.
    all_callbacks = [
        Evaluator(),
        MetricsLog(),
        Progress(),
        SampleGrids(),
        Checkpoints(),
        *callbacks,
    ]
    for cb in all_callbacks:
        cb.on_train_begin(run)

    iterator = iter(make_batches(dataset.images, cfg.batch_size, cfg.seed, start_step))
    per_execution = cfg.steps_per_execution or AUTO_STEPS_PER_EXECUTION
    step, state, exit_code = start_step, "completed", EXIT_OK
    train_seconds = status.data["train_seconds"]
    wall_start = time.perf_counter() - status.data["wall_seconds"]
    first = True
    with _StopSignals() as stop:
        while step < cfg.steps:
            if stop.received is not None:
                state, exit_code = "interrupted", 128 + stop.received
                break
            # The first execution is one step: it pays for tracing, and is kept out of img/s.
            n = 1 if first else min(per_execution, _next_boundary(step, cfg) - step)
            t0 = time.perf_counter()
            out = {k: v.numpy() for k, v in gan.step_n(iterator, n).items()}
            seconds = time.perf_counter() - t0
            done = int(out["steps"])
            step += done
            train_seconds += seconds
            if not out["finite"]:
                state, exit_code = "diverged", EXIT_DIVERGED
                break
            logs = {name: float(out[name]) / done for name in LOSS_NAMES}
            logs.update(steps=done, seconds=0.0 if first else seconds)
            logs["img_per_s"] = None if first else done * cfg.batch_size / seconds
            first = False
            for cb in all_callbacks:
                cb.on_steps_end(run, step, logs)
            status.update(
                step=step,
                train_seconds=round(train_seconds, 3),
                wall_seconds=round(time.perf_counter() - wall_start, 3),
                img_per_s=run.last_metrics.get("img_per_s", status.data["img_per_s"]),
            )

    _finish(run, state, step, stop.received if state == "interrupted" else None)
    status.update(
        state=state,
        step=step,
        train_seconds=round(train_seconds, 3),
        wall_seconds=round(time.perf_counter() - wall_start, 3),
        exit_code=exit_code,
    )
    for cb in all_callbacks:
        cb.on_train_end(run, state)
    return TrainResult(path, state, step, run.last_metrics or _last_metrics(path), exit_code)


def _finish(run: Run, state: str, step: int, signum: int | None) -> None:
    """End-of-run writes that depend on how the run ended."""
    if state == "diverged":
        # Nothing from the broken weights is saved: the newest checkpoint stays the last good one.
        run.status.update(message=f"non-finite loss at step {step}; last good checkpoint kept")
        _append_metrics(run, {"step": step, "diverged": True})
        return
    Checkpoints.save(run, step)
    if state == "interrupted":
        run.status.update(message=f"stopped by signal {signum} at step {step}; checkpoint saved")
        return
    if not (run.run_dir / "samples" / f"step_{step:06d}.png").exists():
        SampleGrids.save(run, step)
    _save_generator(run)


def _save_generator(run: Run) -> None:
    target = run.run_dir / "generator.keras"
    tmp = run.run_dir / ".generator.tmp.keras"
    run.gan.sampling_generator().save(tmp)
    os.replace(tmp, target)


def _append_metrics(run: Run, record: dict[str, Any]) -> None:
    with (run.run_dir / "metrics.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _last_metrics(run_dir: Path) -> dict[str, Any]:
    records = read_jsonl(run_dir / "metrics.jsonl")
    return records[-1] if records else {}
