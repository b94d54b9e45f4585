"""``train(cfg, data) -> TrainResult``: the training loop, the same on every backend.

    from albumgan.gan_core import TrainConfig, TrainingData, train
    result = train(TrainConfig(resolution=32, steps=200), TrainingData("mine", images))
    print(result.run_dir, result.state, result.metrics)

(``albumgan.train(cfg)`` loads ``cfg.dataset`` first and calls this.) It activates the config's
backend, resolves the run directory (new, or an existing one to resume), writes the config
before step 1, builds the engine (``gan_core.steps``), restores the newest checkpoint if any,
then runs compiled executions of ``steps_per_execution`` steps with callbacks between them.
SIGTERM and SIGINT (how ``wandb agent`` stops a run) end the loop after the current execution
with a checkpoint; a NaN/Inf loss marks the run ``diverged`` and saves nothing from the broken
weights. What is written at the end is written by the callbacks (``gan_core.callbacks``).
"""

from __future__ import annotations

import copy
import errno
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from albumgan.gan_core import backend, checkpoint
from albumgan.gan_core.config import ConfigError, TrainConfig
from albumgan.gan_core.contract import (
    EXIT_NO_SPACE,
    EXIT_USAGE,
    LOSSES,
    AlbumganError,
    RunState,
    first_line,
)
from albumgan.gan_core.fileio import atomic_write, read_json, read_jsonl, write_json
from albumgan.gan_core.images import save_grid
from albumgan.gan_core.run import Callback, Run, TrainingData, exit_code
from albumgan.gan_core.rundir import (
    STOP_REQUEST,
    RunDirError,
    RunLock,
    Status,
    check_resumable,
    create_run_dir,
    find_resumable,
    make_dirs,
    read_config,
    write_config,
)

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What ``train`` returns: where the run is, how it ended, its last logged metrics."""

    run_dir: Path
    state: str  # completed | diverged | interrupted
    step: int
    metrics: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0
    backend: str = ""
    members: list[TrainResult] = field(default_factory=list)  # a packed run's, one per member


# ------------------------------------------------------------------------------------------------
# Setup
# ------------------------------------------------------------------------------------------------


def _existing_run_dir(
    cfg: TrainConfig, run_dir: str | os.PathLike | None, resume: bool
) -> Path | None:
    """The run directory to write into when one is named or resumed (checked compatible)."""
    if run_dir is None and resume:
        run_dir = find_resumable(Path(cfg.runs_dir), cfg.name or "run")
        if run_dir is None:  # never a quiet new run in place of the one asked for
            raise ConfigError(
                f"resume: no unfinished run named {cfg.name or 'run'!r} in {cfg.runs_dir}/; "
                "leave out resume to start a new run"
            )
    if run_dir is None:
        return None
    path = Path(run_dir)
    if (path / "config.yaml").is_file():
        check_resumable(read_config(path), cfg, path)
    return path


def _run_dir_for(cfg: TrainConfig, run_dir: str | os.PathLike | None, resume: bool) -> Path:
    """The run directory to write: the one named or resumed (checked compatible, made if
    missing), else a new ``<runs_dir>/<NNNNN>-<name>``."""
    existing = _existing_run_dir(cfg, run_dir, resume)
    if existing is not None:
        return make_dirs(existing)
    return create_run_dir(Path(cfg.runs_dir), cfg.name or "run")


def _grid_latents(cfg: TrainConfig, run_dir: Path) -> np.ndarray:
    """Latents of every sample grid, drawn ONCE and stored, so a resumed run keeps them."""
    path = run_dir / "grid_z.npy"
    if path.is_file():
        return np.load(path)
    rng = np.random.default_rng([cfg.seed, 0x9E1D])
    grid_z = rng.standard_normal((cfg.grid_size**2, *cfg.noise_shape)).astype(np.float32)
    with atomic_write(path) as handle:  # never half a file for a resumed run to load
        np.save(handle, grid_z)
    return grid_z


def _save_reals(run: Run) -> None:
    path = run.run_dir / "reals.png"
    if path.exists():
        return
    images = run.data.images
    pick = np.random.default_rng(run.cfg.seed).permutation(len(images))[: run.cfg.grid_size**2]
    save_grid(images[pick], path, drange=(0, 255), cols=run.cfg.grid_size)


def _check_data(cfg: TrainConfig, data: TrainingData) -> None:
    images = np.asarray(data.images)
    expected = (cfg.resolution, cfg.resolution, 3)
    if (
        images.ndim != 4
        or images.shape[1:] != expected
        or images.dtype != np.uint8
        or not len(images)
    ):
        raise ConfigError(
            f"data: expected uint8 images of shape (N, {cfg.resolution}, {cfg.resolution}, 3) "
            f"with N >= 1 for resolution {cfg.resolution}, got {images.dtype} {images.shape}"
        )
    if cfg.batch_size > len(images):
        # Every batch would hold some images twice: D would see duplicates as "the data".
        raise ConfigError(
            f"batch_size: {cfg.batch_size} is larger than the dataset {data.name!r} "
            f"({len(images)} images); use batch_size <= {len(images)} or a larger dataset"
        )


class _StopSignals:
    """Turn SIGTERM/SIGINT into a flag the loop checks between executions (main thread only),
    until the end-of-run writes are done; a second Ctrl-C stops at once."""

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
    data: TrainingData | None = None,
    callbacks: Sequence[Callback] | CallbacksFor = (),
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train (or continue training) one DC-GAN run.

    Args:
        cfg: the run's configuration.
        data: the training images (anything with ``name``, ``images`` and ``fingerprint``, such
            as ``data_tools.load_dataset(...)``); ``albumgan.train`` loads ``cfg.dataset`` for you.
        callbacks: extra callbacks, called after the built-in ones; or a function
            ``(cfg, run_dir) -> callbacks``, called for each run (each member of a packed run).
        run_dir: where to write; an existing run directory is resumed. Default: a new
            ``<runs_dir>/<NNNNN>-<name>``.
        resume: without ``run_dir``, continue the newest unfinished run of the same name.

    A config with a list of seeds is a packed run (``gan_core.packing``): one run directory per
    seed under ``run_dir``, trained as one program on JAX.

    Returns:
        TrainResult with the run directory, final state, step and last logged metrics.

    Raises:
        ConfigError: the run directory holds an incompatible config, or the data do not fit it.
        BackendError: the config's backend cannot run in this process.
    """
    if data is None:
        raise ConfigError(
            "data: gan_core.train needs the training images; use albumgan.train(cfg), which "
            "loads cfg.dataset, or pass data=data_tools.load_dataset(...)"
        )
    if len(cfg.seeds) > 1:
        from albumgan.gan_core.packing import train_replicas

        return train_replicas(cfg, data, callbacks, run_dir, resume)
    from albumgan.gan_core.precision import check_precision, resolve_precision

    # Everything that can be refused without the framework is refused before it loads (seconds
    # on a CPU), and before any folder is made.
    _check_data(cfg, data)
    backend_name = backend.resolve(cfg.backend)
    check_precision(cfg.precision, backend_name)
    path = _run_dir_for(cfg, run_dir, resume)
    with RunLock(path):  # one writer per run directory, released however this process ends
        backend.activate(backend_name)
        policy = resolve_precision(cfg.precision, backend_name)
        try:
            extra = callbacks_for(callbacks, cfg, path)
            return _train_in(path, cfg, data, extra, policy, backend_name)
        except OSError as exc:
            raise _failed(path, exc) from exc


CallbacksFor = Callable[[TrainConfig, Path], Sequence[Callback]]


def callbacks_for(
    callbacks: Sequence[Callback] | CallbacksFor,
    cfg: TrainConfig,
    path: Path,
    copies: bool = False,
) -> list[Callback]:
    """A run's extra callbacks: ``callbacks(cfg, run_dir)`` when it is a function, else the list
    (a shallow copy of each for ``copies``: the members of a packed run, which must not share
    one callback's state)."""
    if callable(callbacks):
        return list(callbacks(cfg, path))
    return [copy.copy(cb) for cb in callbacks] if copies else list(callbacks)


NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # a full disk, a size limit, a quota


def _failed(path: Path, exc: OSError) -> RunDirError:
    """An I/O error ended the run: say so in status.json, if that can still be written. A full
    disk is its own state and exit code (``EXIT_NO_SPACE``): the run resumes once there is
    space, and a sweep queues it again instead of losing it."""
    where = f" ({exc.filename})" if exc.filename else ""
    reason = f"I/O error: {exc.strerror or exc}{where}"
    state, code = RunState.FAILED, EXIT_USAGE
    if exc.errno in NO_SPACE_ERRNOS:
        state, code = RunState.NO_SPACE, EXIT_NO_SPACE
        reason += "; free space and resume it (albumgan train --resume RUN_DIR)"
    record = read_json(path / "status.json")
    if record is not None:
        record.update(state=state, message=reason, exit_code=code, updated_at=time.time())
        try:
            write_json(path / "status.json", record, durable=False)
        except OSError:
            pass  # the disk that failed is the one status.json lives on
    error = RunDirError(f"run_dir: {path}: {reason}")
    error.exit_code = code
    return error


def _train_in(
    path: Path,
    cfg: TrainConfig,
    data: TrainingData,
    callbacks: Sequence[Callback],
    policy: str,
    backend_name: str,
) -> TrainResult:
    """The training loop proper, in a locked run directory."""
    from albumgan.gan_core.steps import make_engine

    engine = make_engine(cfg, policy, data.images)
    # Checkpoints first: a folder whose checkpoints do not load keeps its config.yaml as it was.
    start_step = checkpoint.restore_latest(engine, path / "checkpoints")
    engine.start(start_step)
    member = open_member(path, cfg, data, engine, start_step, callbacks, policy, backend_name)
    if isinstance(member, TrainResult):
        return member
    run_members([member], lambda n: [engine.run(n)])
    return member.result


@dataclass
class Member:
    """One run the loop trains: a single run, or one member of a packed run (``index`` is its
    place in the pack, whose ``run`` returns one result per member)."""

    run: Run
    callbacks: list[Callback]
    index: int = 0
    wall_start: float = 0.0
    result: TrainResult | None = None

    @property
    def evaluator(self):
        return self.callbacks[0]  # the built-in Evaluator goes first (see open_member)


def open_member(
    path: Path,
    cfg: TrainConfig,
    data: TrainingData,
    engine,
    start_step: int,
    callbacks: Sequence[Callback],
    policy: str,
    backend_name: str,
    index: int = 0,
) -> Member | TrainResult:
    """Write what a run writes before its first step (config, status, reals) and start its
    callbacks; a run that already completed gets its result instead."""
    from albumgan.gan_core.callbacks import (
        Checkpoints,
        FinalGenerator,
        MetricsLog,
        Progress,
        SampleGrids,
        StatusFile,
    )
    from albumgan.gan_core.evaluation import Evaluator
    from albumgan.gan_core.steps import device_name

    write_config(path, cfg)
    status = Status(path, cfg.steps)
    # Start-up checks that need no step (the extractor's weights, say): a failure marks the run
    # failed with its reason before anything else is written, and the command prints one line.
    try:
        evaluator = Evaluator(cfg)
    except AlbumganError as exc:
        status.update(state=RunState.FAILED, message=first_line(exc), exit_code=exc.exit_code)
        raise
    run = Run(
        cfg, path, engine, data, _grid_latents(cfg, path), status, policy, backend_name,
        start_step=start_step, step=start_step,
    )  # fmt: skip
    run.last_checkpoint_step = start_step if start_step else -1
    if start_step >= cfg.steps and (path / "generator.keras").is_file():
        log.info("%s already completed %d steps", path, start_step)
        status.update(state=RunState.COMPLETED, step=start_step)
        return TrainResult(
            path, RunState.COMPLETED, start_step, _last_metrics(path), 0, backend_name
        )
    status.update(
        state=RunState.RUNNING,
        step=start_step,
        steps=cfg.steps,
        backend=backend_name,
        device=device_name(),
        precision=policy,
        resumed_from=start_step or None,
        dataset=data.name,
        n_images=len(data.images),
        message=f"resumed from step {start_step} ({status.previous_state})" if start_step else "",
    )
    _save_reals(run)
    # The evaluator goes first: its scores reach the metrics log and every later callback. The
    # status file goes after every callback that writes a file.
    all_callbacks = [
        evaluator,
        MetricsLog(),
        Progress(bar=index == 0),
        SampleGrids(),
        Checkpoints(),
        FinalGenerator(),
        StatusFile(),
        *callbacks,
    ]
    for cb in all_callbacks:
        cb.on_train_begin(run)
    run.train_seconds = status.data["train_seconds"]
    wall_start = time.perf_counter() - status.data["wall_seconds"]
    return Member(run, all_callbacks, index, wall_start)


def run_members(
    members: list[Member],
    execute: Callable[[int], list[dict[str, Any]]],
    before_callbacks: Callable[[list[Member], int], None] | None = None,
    stop_member: Callable[[Member], None] | None = None,
) -> None:
    """Train ``members`` (all at one step, with one config shape) to their last step.

    ``execute(n)`` runs up to n steps and returns, per member index, what ``Engine.run``
    returns; ``before_callbacks(members, step)`` runs before the callbacks of each execution (a
    pack draws every member's grids there at once). A member whose losses turn non-finite is
    ended as diverged at once; the others go on. With ``stop_member`` (a pack's ``freeze``), a
    member whose run directory holds ``STOP_REQUEST`` (a sweep pruned it) is frozen and ended
    as interrupted, as SIGTERM ends a single run. Each member's ``result`` is set at its end.
    """
    cfg = members[0].run.cfg  # the boundaries are the same for every member
    per_execution = cfg.steps_per_execution or members[0].run.engine.auto_steps_per_execution
    active = list(members)
    first = True
    with _StopSignals() as stop:
        while active and active[0].run.step < cfg.steps:
            if stop.received is not None:
                for member in active:
                    member.run.stop_signal = stop.received
                break
            if stop_member is not None:
                for member in [m for m in active if (m.run.run_dir / STOP_REQUEST).exists()]:
                    stop_member(member)
                    member.run.stop_signal = signal.SIGTERM
                    _end(member, RunState.INTERRUPTED)
                    active.remove(member)
                if not active:
                    break
            step = active[0].run.step
            # The first execution is one step: it pays for compiling, and is kept out of img/s.
            n = 1 if first else min(per_execution, _next_boundary(step, cfg) - step)
            t0 = time.perf_counter()
            outs = execute(n)
            seconds = time.perf_counter() - t0
            going: list[tuple[Member, dict[str, Any]]] = []
            for member in active:
                out, run = outs[member.index], member.run
                done = out["steps"]
                run.step += done
                run.train_seconds += seconds
                run.wall_seconds = time.perf_counter() - member.wall_start
                if not out["finite"]:
                    _end(member, RunState.DIVERGED)
                    continue
                logs: dict[str, Any] = {name: out[name] / done for name in LOSSES}
                logs.update(steps=done, seconds=0.0 if first else seconds)
                logs["img_per_s"] = None if first else done * cfg.batch_size / seconds
                if "augment_p" in out:  # adaptive augmentation's p after these steps
                    logs["augment_p"] = out["augment_p"]
                going.append((member, logs))
            first = False
            active = [member for member, _ in going]
            if before_callbacks is not None and active:
                before_callbacks(active, active[0].run.step)
            for member, logs in going:
                for cb in member.callbacks:
                    cb.on_steps_end(member.run, member.run.step, logs)

        # Still inside: a second SIGTERM must not kill the final checkpoint and status half way
        # (a sweep trainer whose worker dies with the sweep gets one per process that dies).
        for member in active:
            state = RunState.INTERRUPTED if member.run.stop_signal else RunState.COMPLETED
            _end(member, state)


def _end(member: Member, state: str) -> None:
    """The end-of-run writes of one member (each by the callback that owns the file)."""
    run = member.run
    run.wall_seconds = time.perf_counter() - member.wall_start
    for cb in member.callbacks:
        cb.on_train_end(run, state)
    code = exit_code(state, run.stop_signal)
    metrics = run.last_metrics or _last_metrics(run.run_dir)
    member.result = TrainResult(run.run_dir, state, run.step, metrics, code, run.backend)


def _last_metrics(run_dir: Path) -> dict[str, Any]:
    records = read_jsonl(run_dir / "metrics.jsonl")
    return records[-1] if records else {}
