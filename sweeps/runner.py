"""Workers and the sweep: ``albumgan sweep run FILE`` runs a W&B sweep YAML with Optuna.

    albumgan sweep run sweeps/smoke.yaml [--study NAME] [--storage PATH_OR_URL] [--n-trials N]
                       [--workers K]
    albumgan sweep status --storage PATH_OR_URL --study NAME

``grid`` -> every point of the grid queued once (``enqueue_trial``) and taken by the workers in
order, ``random`` -> RandomSampler, ``bayes`` -> TPESampler, each parameter drawn with W&B's
meaning (``sweeps.sampling``); ``early_terminate: hyperband`` -> W&B's bands over the metric the
trainer writes to ``metrics.jsonl`` every ``eval_every`` steps (``sweeps.hyperband``);
``run_cap`` -> a global trial cap; ``metric.target`` -> no new trial once one reaches it.

Each trial runs the argv the sweep's ``command`` gives under ``wandb agent`` (``sweeps.command``)
in its own process (memory freed, crashes isolated), in the user's working directory, with its
run directory ``<runs>/<study>/trial-NNNN`` in ``$ALBUMGAN_RUN_DIR``; the run directory, argv,
values and final metrics become trial attributes. Storage (``sweeps.storage``): a journal file by
default (safe for several local worker processes), ``sqlite:///...`` for one worker, a
``postgresql://`` URL for many machines (heartbeat and retry of stale trials).

Nothing lost, nothing done twice:

- Workers and trainers die with the process that started them (``sweeps.children``): ``kill -9``
  of ``sweep run`` stops its workers, and their trainers checkpoint and exit.
- A re-run settles what a dead worker left RUNNING: a run that completed is recorded as such; any
  other is failed ("worker died") and queued again to resume its run directory.
- A trainer holds its run directory's lock (``gan_core.rundir``); a trial whose run directory is
  locked waits for the holder instead of starting a second writer.
- Grid points are queued under a lock on the journal (or SQLite) file, so two ``sweep run``
  commands started together queue each point once.

The parts: ``sweeps.trial`` runs one trial, ``sweeps.recovery`` settles dead workers' trials,
``sweeps.results`` reads a study back, ``sweeps.cli`` prints the leaderboards. This module may
import those, ``sweeps.spec``/``storage``/``hyperband``/``children`` and ``gan_core``; never
``reports``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState as OptunaState

from albumgan.gan_core.contract import REPLICATE_KEY
from albumgan.sweeps.children import child_env
from albumgan.sweeps.devices import trains_on_jax, visible_gpus, worker_environments
from albumgan.sweeps.hyperband import WandbHyperband
from albumgan.sweeps.identity import claim
from albumgan.sweeps.packs import Packer, shape_key
from albumgan.sweeps.recovery import queue_resumable, settle_stale_trials
from albumgan.sweeps.results import was_lost
from albumgan.sweeps.spec import (
    SweepError,
    SweepSpec,
    grid_points,
    load_spec,
    read_sweep_file,
    resolve_program,
    resolve_sweep_file,
    study_name_problem,
)
from albumgan.sweeps.storage import absolute_location, open_storage, storage_lock
from albumgan.sweeps.trial import Objective, TrialFailed, announce_end, is_albumgan_trainer


def make_sampler(spec: SweepSpec, worker: int, seed: int = 0) -> optuna.samplers.BaseSampler:
    """Random and bayes sample; a grid's points are all queued (``queue_grid``), so its sampler
    is never asked for a value."""
    if spec.method == "bayes":
        return optuna.samplers.TPESampler(seed=seed + worker)
    return optuna.samplers.RandomSampler(seed=seed + worker)


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """W&B's ``early_terminate: hyperband`` (``sweeps.hyperband``), else none."""
    if spec.early_terminate.get("type") != "hyperband":
        return optuna.pruners.NopPruner()
    return WandbHyperband(spec.early_terminate)


def _point_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def queue_grid(study: optuna.Study, spec: SweepSpec, packing: bool = False) -> int:
    """Queue every grid point no trial has taken yet, in W&B's order; returns how many were
    queued. ``packing``: points that differ only in per-member keys (seed, learning rates, ...)
    side by side instead, so that the trials a worker takes at once share a shape and pack.

    Taken: queued, running, or finished (completed, pruned, crashed, diverged). A point whose
    only trials were lost with their worker was already queued again by ``settle_stale_trials``.
    """
    taken = set()
    for trial in study.get_trials(deepcopy=False):
        if was_lost(trial):
            continue
        if "grid_point" in trial.user_attrs:
            taken.add(trial.user_attrs["grid_point"])
    queued = 0
    points = grid_points(spec)
    if packing:
        points = sorted(points, key=shape_key)  # stable: W&B's order within a shape
    for params in points:
        key = _point_key(params)
        if key not in taken:
            study.enqueue_trial(params, user_attrs={"grid_point": key})
            queued += 1
    return queued


def run_worker(
    spec_path: str | Path,
    study_name: str | None,
    storage: str | None,
    n_trials: int | None,
    runs_dir: str | Path = "runs",
    worker: int = 0,
    wandb: bool = False,
    trial_env: dict[str, str] | None = None,
    pack: int | None = None,
) -> optuna.Study:
    """One worker: join the study and run trials until the cap, or until the grid's queue is
    empty. ``trial_env``: variables added to each trainer's environment. ``pack``: trials run at
    once, those of one shape by one packed trainer (``sweeps.packs``); default ``default_pack``.

    The study is prepared (stale trials settled, grid queued) by ``run_sweep`` before any worker
    starts.
    """
    spec = load_spec(spec_path)
    study_name = study_name or spec.name or Path(spec_path).stem
    runs = Path(runs_dir).resolve()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(
        study_name=study_name,
        storage=open_storage(absolute_location(storage, runs, study_name)),
        sampler=make_sampler(spec, worker),
        pruner=make_pruner(spec),
        direction=spec.goal,
        load_if_exists=True,
    )
    grid = spec.method == "grid"
    cap = min((x for x in (n_trials, spec.run_cap) if x), default=None)
    finished = (OptunaState.COMPLETE, OptunaState.PRUNED, OptunaState.FAIL)
    callbacks = [announce_end]  # a line per trial; Optuna's own (tracebacks) are kept off
    if cap:  # a global cap over all workers: trials started anywhere count
        callbacks.append(lambda study, trial: _stop_at_cap(study, cap))
    elif not grid:
        raise SweepError(f"{spec_path}: a {spec.method} sweep needs run_cap or --n-trials")
    if grid:
        callbacks.append(_stop_when_queue_empty)
        if not _queued(study):
            return study
    if spec.target is not None:  # W&B: no new run once one reaches metric.target
        callbacks.append(lambda study, trial: _stop_at_target(study, spec))
        if target_reached(study, spec):
            return study
    if not cap or _counted(study, finished) < cap:
        program = resolve_program(spec.program)
        size = default_pack(spec, program) if pack is None else pack
        packs = runs / study_name / "packs"  # beside the trials' run directories
        # K trials at once either way; one trainer for those of a shape only with our trainer.
        ours = is_albumgan_trainer(program)
        packer = Packer(size, program, packs) if size > 1 and ours else None
        objective = Objective(spec, study_name, runs, program, wandb, trial_env, packer)
        study.optimize(objective, callbacks=callbacks, catch=(TrialFailed,), n_jobs=size)
    return study


def default_pack(spec: SweepSpec, program) -> int:
    """How many trials a worker packs when ``--pack`` is not given: on JAX with albumgan's
    trainer, a grid's points that differ only in ``seed`` (one per seed value); else 1."""
    if spec.method != "grid" or not is_albumgan_trainer(program):
        return 1
    seeds = next((p for p in spec.params if p.path == (REPLICATE_KEY,)), None)
    if seeds is None or seeds.form != "categorical":
        return 1
    fixed = spec.fixed.get("backend", "auto")
    if not trains_on_jax(str(fixed), visible_gpus()):
        return 1
    return len(seeds.get("values"))


def target_reached(study: optuna.Study, spec: SweepSpec) -> bool:
    """Whether a completed trial reached ``metric.target``."""
    done = study.get_trials(deepcopy=False, states=(OptunaState.COMPLETE,))
    return any(spec.reached_target(t.value) for t in done)


def _stop_at_target(study: optuna.Study, spec: SweepSpec) -> None:
    if target_reached(study, spec):
        study.stop()  # this worker's current trial has ended; the others stop after theirs


def _counted(study: optuna.Study, states: tuple) -> int:
    """Trials in ``states`` that count towards a cap: not those lost to a dead worker or a
    killed trainer (``results.was_lost``), whose point runs again in a new trial."""
    return sum(not was_lost(t) for t in study.get_trials(deepcopy=False, states=states))


def _stop_at_cap(study: optuna.Study, cap: int) -> None:
    """``run_cap`` over every worker (as Optuna's MaxTrialsCallback, lost trials left out)."""
    states = (OptunaState.COMPLETE, OptunaState.PRUNED, OptunaState.FAIL, OptunaState.RUNNING)
    if _counted(study, states) >= cap:
        study.stop()


def _queued(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(OptunaState.WAITING,)))


def _stop_when_queue_empty(study: optuna.Study, trial) -> None:
    if not _queued(study):
        study.stop()


def run_sweep(
    spec_path: str | Path,
    study_name: str | None = None,
    storage: str | None = None,
    n_trials: int | None = None,
    workers: int = 1,
    runs_dir: str | Path = "runs",
    wandb: bool = False,
    gpus: str | None = None,
    pack: int | None = None,
    extend: bool = False,
) -> optuna.Study:
    """Run ``workers`` processes on this machine sharing one storage; returns the study.

    ``gpus`` ("0,1"): the GPUs to hand out, one per worker, round-robin (``sweeps.devices``;
    default: the user's CUDA_VISIBLE_DEVICES, else what ``nvidia-smi -L`` lists). ``pack``: the
    trials each worker trains at once in one packed trainer (``run_worker``). ``extend``: an
    existing study made by another version of the file takes this one's trials, when this one
    only widens its search space (``sweeps.identity.claim``; refused otherwise).

    Relative paths (sweep file, storage, runs folder) are taken from the working directory and
    handed on as absolute ones; trials run in the working directory too. ``wandb``: each trial
    also logs an offline W&B run (``WANDB_MODE`` unless set), grouped by the study name.
    """
    spec_path = resolve_sweep_file(spec_path).resolve()
    spec = load_spec(spec_path)
    study_name = study_name or spec.name or spec_path.stem
    if problem := study_name_problem(study_name):  # the study's folder stays in runs_dir
        raise SweepError(f"--study: {problem}")
    runs = Path(runs_dir).resolve()
    storage = absolute_location(storage, runs, study_name)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    store = open_storage(storage)
    with storage_lock(storage):  # one `sweep run` at a time settles and queues
        study = optuna.create_study(
            study_name=study_name, storage=store, direction=spec.goal, load_if_exists=True
        )
        # The file that made the study, what it optimizes (for `albumgan report sweep`, which
        # reads only the study): recorded once; another file is refused, or with --extend
        # adds trials when it only widens the search space (`sweeps.identity`).
        claim(study, read_sweep_file(spec_path), spec.metric, spec.method, str(spec_path), extend)
        settle_stale_trials(study, store, spec)
        queue_resumable(study)  # killed (signal 9) or stopped on a full disk last time
        # Trials of machines whose heartbeat stopped (PostgreSQL): failed and queued again now,
        # so a grid's queue holds them before the workers look (Optuna does it only inside
        # `optimize`, which a worker with an empty queue never enters). No-op without heartbeat.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        if spec.method == "grid":
            size = default_pack(spec, resolve_program(spec.program)) if pack is None else pack
            queue_grid(study, spec, packing=size > 1)
    # Trainers side by side on this machine: one per worker, times the seeds a configuration
    # runs on at once.
    limits = thread_limits(workers * max(1, len(spec.replicate_seeds)))
    devices = worker_environments(workers, visible_gpus(gpus))
    others = []
    for index in range(1, workers):
        argv = [
            sys.executable,
            "-m",
            "albumgan.experiments.cli",
            "sweep",
            "run",
            str(spec_path),
            "--study",
            study_name,
            "--storage",
            storage,
            "--runs-dir",
            str(runs),
            "--worker-index",
            str(index),
        ]
        if n_trials:
            argv += ["--n-trials", str(n_trials)]
        if pack is not None:
            argv += ["--pack", str(pack)]
        if wandb:
            argv.append("--wandb")
        # Dies with this process; its trainers inherit the thread limits.
        others.append(subprocess.Popen(argv, env={**child_env(), **limits, **devices[index]}))
    own = {**limits, **devices[0]}  # this process is worker 0: its trainers get its GPU
    study = run_worker(spec_path, study_name, storage, n_trials, runs, 0, wandb, own, pack)
    for proc in others:
        proc.wait()
    # A worker here that died on its own (not with us) left its trial RUNNING: settle it and,
    # if that queued it again, run it now rather than at the next re-run.
    with storage_lock(storage):
        settle_stale_trials(study, store, spec)
    if _queued(study):
        study = run_worker(spec_path, study_name, storage, n_trials, runs, 0, wandb, own, pack)
    return study


# Thread pools of the math libraries a trainer loads (NumPy/SciPy's BLAS, oneDNN's OpenMP,
# TensorFlow's own op pools).
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def thread_limits(workers: int) -> dict[str, str]:
    """Each of ``workers`` trainers on this machine gets its share of the cores.

    Every library sizes its pool to the whole machine, so K trainers side by side start K pools
    of that size, whose spinning threads then take turns on the cores. Variables the user set are
    kept; one worker keeps the libraries' defaults.
    """
    if workers <= 1:
        return {}
    share = str(max(1, (os.cpu_count() or 1) // workers))
    return {name: share for name in THREAD_VARIABLES if name not in os.environ}
