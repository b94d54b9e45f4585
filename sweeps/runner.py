"""``albumgan sweep run FILE``: a W&B sweep YAML driven by Optuna, offline or across machines.

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
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from albumgan.gan_core.contract import EXIT_DIVERGED, EXIT_USAGE, SCORES, shown
from albumgan.gan_core.fileio import read_json, read_jsonl
from albumgan.gan_core.rundir import lock_holder, process_alive
from albumgan.sweeps.children import child_env
from albumgan.sweeps.command import build_argv
from albumgan.sweeps.hyperband import WandbHyperband
from albumgan.sweeps.sampling import decode
from albumgan.sweeps.spec import (
    SweepError,
    SweepSpec,
    grid_points,
    load_spec,
    resolve_program,
    resolve_sweep_file,
    suggest,
)
from albumgan.sweeps.storage import absolute_location, open_storage, storage_lock
from optuna.trial import TrialState

POLL_SECONDS = 0.5
# A trial that a worker opened when the grid's queue had just been emptied by another worker:
# it runs nothing, and leaderboards and reports leave it out.
UNUSED = "unused (grid already taken)"
LOST = "worker died; queued again"


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


def _trial_id(storage, study: optuna.Study, number: int) -> int:
    """Storage id of trial ``number`` (public storage API: Optuna's own ``_trial_id`` is not)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, number)


def stale_trials(study: optuna.Study) -> list:
    """RUNNING trials whose worker process on this host is gone."""
    stale = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get("host") == socket.gethostname() and not process_alive(
            int(attrs.get("pid", 0))
        ):
            stale.append(trial)
    return stale


def settle_stale_trials(study: optuna.Study, storage, spec: SweepSpec) -> None:
    """Trials left RUNNING by a dead worker on this host, settled before any worker starts.

    A run that got to the end (its trainer finished before the worker could record it) is
    recorded with its result, never as a failure. Any other is failed as "worker died" and its
    parameters queued again; the new trial resumes the same run directory from its checkpoint,
    waiting first for a trainer that may still hold it.
    """
    for trial in stale_trials(study):
        run_dir = Path(trial.user_attrs.get("run_dir", ""))
        status = (read_json(run_dir / "status.json") or {}) if run_dir.name else {}
        final = _last_metric(run_dir, spec.metric) if run_dir.name else {}
        trial_id = _trial_id(storage, study, trial.number)
        if lock_holder(run_dir) is None and status.get("state") in ("completed", "diverged"):
            storage.set_trial_user_attr(trial_id, "state", status["state"])
            storage.set_trial_user_attr(trial_id, "exit_code", status.get("exit_code"))
            for key in SCORES:
                if key in final:
                    storage.set_trial_user_attr(trial_id, key, final[key])
            if status["state"] == "completed" and spec.metric in final:
                study.tell(trial.number, float(final[spec.metric]))
                continue
            study.tell(trial.number, state=TrialState.FAIL)
            continue
        storage.set_trial_user_attr(trial_id, "state", LOST)
        study.tell(trial.number, state=TrialState.FAIL)
        attrs = {"resume_run_dir": str(run_dir)} if run_dir.name else {}
        if "grid_point" in trial.user_attrs:
            attrs["grid_point"] = trial.user_attrs["grid_point"]
        study.enqueue_trial(trial.params, user_attrs=attrs)


def _point_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def queue_grid(study: optuna.Study, spec: SweepSpec) -> int:
    """Queue every grid point no trial has taken yet; returns how many were queued.

    Taken: queued, running, or finished (completed, pruned, crashed, diverged). A point whose
    only trials were lost with their worker was already queued again by ``settle_stale_trials``.
    """
    taken = set()
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.FAIL and trial.user_attrs.get("state") == LOST:
            continue
        if "grid_point" in trial.user_attrs:
            taken.add(trial.user_attrs["grid_point"])
        elif trial.params:  # a trial from before grids were queued
            taken.add(_point_key(trial.params))
    queued = 0
    for params in grid_points(spec):
        key = _point_key(params)
        if key not in taken:
            study.enqueue_trial(params, user_attrs={"grid_point": key})
            queued += 1
    return queued


@dataclass
class Replicate:
    """One training run of a trial: the trial's config with one seed, in its own run directory.
    A trial without replicates has one, with ``seed`` None."""

    seed: Any
    run_dir: Path
    argv: list[str]
    proc: subprocess.Popen | None = None


class Objective:
    """Runs one trial as training subprocesses (one per replicate seed, side by side) and
    reports its metric, the mean over seeds, to Optuna."""

    def __init__(
        self,
        spec: SweepSpec,
        study_name: str,
        runs_dir: Path,
        program: Path,
        wandb: bool = False,
        trial_env: dict[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.study_name = study_name
        self.runs_dir = runs_dir  # absolute: trials run in the user's folder, not ours
        self.program = program
        self.wandb = wandb
        self.trial_env = trial_env or {}

    def __call__(self, trial: optuna.Trial) -> float:
        if self.spec.method == "grid" and not _from_queue(trial):
            # Optuna opened a fresh trial because another worker took the last queued point in
            # the same instant: there is nothing left to run.
            trial.set_user_attr("state", UNUSED)
            trial.study.stop()
            raise optuna.TrialPruned("every grid point is taken")
        args = suggest(trial, self.spec)  # the run config, as `wandb agent` passes it
        # A re-queued trial (worker died) or a heartbeat retry (its user attrs copied) resumes
        # the run directory of the trial it replaces, from its newest checkpoint.
        run_dir = Path(
            trial.user_attrs.get("resume_run_dir")
            or trial.user_attrs.get("run_dir")
            or self.runs_dir / self.study_name / f"trial-{trial.number:04d}"
        )
        seeds = self.spec.replicate_seeds
        replicates = [
            self._replicate({**args, "seed": seed}, run_dir / f"seed-{seed}", seed)
            for seed in seeds
        ] or [self._replicate(args, run_dir, None)]
        for key, value in (
            ("run_dir", str(run_dir)),
            ("pid", os.getpid()),
            ("host", socket.gethostname()),
            ("params", args),
            ("argv", replicates[0].argv),
        ):
            trial.set_user_attr(key, value)
        pruned = self._run(trial, replicates)
        return self._result(trial, replicates, pruned)

    def _replicate(self, args: dict[str, Any], run_dir: Path, seed: Any) -> Replicate:
        run_dir.mkdir(parents=True, exist_ok=True)
        # Exactly the argv the sweep's command gives under `wandb agent`; where to write goes in
        # the environment, as the agent passes its own settings.
        return Replicate(seed, run_dir, build_argv(self.spec.command, self.program, args, run_dir))

    def _run(self, trial: optuna.Trial, replicates: list[Replicate]) -> bool:
        """Start every replicate, report the metric until they end; True when pruned."""
        env = {**child_env(), **self.trial_env}  # the trainers die with this worker
        if self.wandb:
            # An offline W&B run per trial, grouped by study: `wandb sync` shows the whole sweep.
            env["ALBUMGAN_WANDB"] = "1"
            env.setdefault("WANDB_MODE", "offline")
            env["WANDB_RUN_GROUP"] = self.study_name
        waiting = list(replicates)
        while waiting:
            for rep in waiting:
                self._wait_for_writer(trial, rep.run_dir)
                with (rep.run_dir / "trial.log").open("ab") as log:
                    rep.proc = subprocess.Popen(
                        rep.argv,
                        env={**env, "ALBUMGAN_RUN_DIR": str(rep.run_dir)},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
            if self._watch(trial, replicates):
                return True
            # A run directory another process took between our look and the trainer's start:
            # still running elsewhere, not a failure; start that one again once it is free.
            waiting = [
                r
                for r in waiting
                if r.proc.returncode == EXIT_USAGE and lock_holder(r.run_dir) is not None
            ]
        return False

    def _result(self, trial: optuna.Trial, replicates: list[Replicate], pruned: bool) -> float:
        metric = self.spec.metric
        finals = [_last_metric(rep.run_dir, metric) for rep in replicates]
        states = [(read_json(r.run_dir / "status.json") or {}).get("state") for r in replicates]
        codes = [rep.proc.returncode for rep in replicates]
        worst = next((c for c in codes if c not in (0, EXIT_DIVERGED)), None)
        unfinished = [state or "crashed" for state in states if state != "completed"]
        trial.set_user_attr("state", "pruned" if pruned else (unfinished or ["completed"])[0])
        trial.set_user_attr("exit_code", worst if worst is not None else max(codes))
        if self.spec.replicate_seeds:
            trial.set_user_attr(
                "replicates",
                [
                    {"seed": rep.seed, "value": final.get(metric), "run_dir": str(rep.run_dir)}
                    for rep, final in zip(replicates, finals)
                ],
            )
        for key in SCORES:  # the mean over seeds, as the trial's value
            values = [float(f[key]) for f in finals if key in f]
            if len(values) == len(finals):
                trial.set_user_attr(key, sum(values) / len(values))
        if pruned:
            raise optuna.TrialPruned("stopped by hyperband")
        if worst is None and EXIT_DIVERGED in codes:  # marked, the study goes on
            return math.nan
        if worst is not None or any(metric not in f for f in finals):
            logs = ", ".join(str(rep.run_dir / "trial.log") for rep in replicates)
            raise RuntimeError(f"trial {trial.number} failed (exit {worst}); see {logs}")
        return sum(float(f[metric]) for f in finals) / len(finals)

    @staticmethod
    def _wait_for_writer(trial: optuna.Trial, run_dir: Path) -> None:
        """Wait while another process (a trainer left from an earlier attempt) writes
        ``run_dir``: one writer per run directory, and its result is this trial's to take."""
        waited = False
        while (holder := lock_holder(run_dir)) is not None:
            if not waited:
                where = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
                trial.set_user_attr("state", f"waiting for {where}")
                waited = True
            time.sleep(POLL_SECONDS)

    def _watch(self, trial: optuna.Trial, replicates: list[Replicate]) -> bool:
        """Report the metric as the runs log it: the k-th value is reported once every
        replicate has logged its k-th (their mean, at the first one's step). Stop every run
        (SIGTERM: they checkpoint and exit) when the pruner says so."""
        running = [r.proc for r in replicates if r.proc is not None]
        reported = 0
        while True:
            alive = any(proc.poll() is None for proc in running)
            if alive:
                time.sleep(POLL_SECONDS)
            series = [_metric_records(r.run_dir, self.spec.metric) for r in replicates]
            ready = min(len(s) for s in series)
            for k in range(reported, ready):
                mean = sum(float(s[k][self.spec.metric]) for s in series) / len(series)
                trial.report(mean, series[0][k]["step"])
                reported = k + 1
                if alive and trial.should_prune():
                    for proc in running:
                        if proc.poll() is None:
                            proc.terminate()  # the trainer checkpoints and exits cleanly
                    for proc in running:
                        proc.wait()
                    return True
            if not alive:
                return False


def _from_queue(trial: optuna.Trial) -> bool:
    """A grid trial that carries a point: queued by ``queue_grid`` or ``settle_stale_trials``,
    or a heartbeat retry (which copies the lost trial's attributes, its run directory too)."""
    return any(k in trial.user_attrs for k in ("grid_point", "resume_run_dir", "run_dir"))


def _metric_records(run_dir: Path, metric: str) -> list[dict[str, Any]]:
    records = read_jsonl(run_dir / "metrics.jsonl")
    return [r for r in records if r.get(metric) is not None]


def _last_metric(run_dir: Path, metric: str) -> dict[str, Any]:
    records = _metric_records(run_dir, metric)
    return records[-1] if records else {}


def run_worker(
    spec_path: str | Path,
    study_name: str | None,
    storage: str | None,
    n_trials: int | None,
    runs_dir: str | Path = "runs",
    worker: int = 0,
    wandb: bool = False,
    trial_env: dict[str, str] | None = None,
) -> optuna.Study:
    """One worker: join the study and run trials until the cap, or until the grid's queue is
    empty. ``trial_env``: variables added to each trainer's environment.

    The study is prepared (stale trials settled, grid queued) by ``run_sweep`` before any worker
    starts.
    """
    spec = load_spec(spec_path)
    study_name = study_name or spec.name or Path(spec_path).stem
    runs = Path(runs_dir).resolve()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
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
    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    callbacks = []
    if cap:  # a global cap over all workers: trials started anywhere count
        states = (*finished, TrialState.RUNNING)
        callbacks.append(optuna.study.MaxTrialsCallback(cap, states=states))
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
    if not cap or len(study.get_trials(deepcopy=False, states=finished)) < cap:
        program = resolve_program(spec.program)
        objective = Objective(spec, study_name, runs, program, wandb, trial_env)
        study.optimize(objective, callbacks=callbacks, catch=(RuntimeError,))
    return study


def target_reached(study: optuna.Study, spec: SweepSpec) -> bool:
    """Whether a completed trial reached ``metric.target``."""
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return any(spec.reached_target(t.value) for t in done)


def _stop_at_target(study: optuna.Study, spec: SweepSpec) -> None:
    if target_reached(study, spec):
        study.stop()  # this worker's current trial has ended; the others stop after theirs


def _queued(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


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
) -> optuna.Study:
    """Run ``workers`` processes on this machine sharing one storage; returns the study.

    Relative paths (sweep file, storage, runs folder) are taken from the working directory and
    handed on as absolute ones; trials run in the working directory too. ``wandb``: each trial
    also logs an offline W&B run (``WANDB_MODE`` unless set), grouped by the study name.
    """
    spec_path = resolve_sweep_file(spec_path).resolve()
    spec = load_spec(spec_path)
    study_name = study_name or spec.name or spec_path.stem
    runs = Path(runs_dir).resolve()
    storage = absolute_location(storage, runs, study_name)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = open_storage(storage)
    with storage_lock(storage):  # one `sweep run` at a time settles and queues
        study = optuna.create_study(
            study_name=study_name, storage=store, direction=spec.goal, load_if_exists=True
        )
        # What the study optimizes, for `albumgan report sweep` (which reads only the study).
        for key, value in (
            ("metric", spec.metric),
            ("method", spec.method),
            ("spec", str(spec_path)),
        ):
            study.set_user_attr(key, value)
        settle_stale_trials(study, store, spec)
        # Trials of machines whose heartbeat stopped (PostgreSQL): failed and queued again now,
        # so a grid's queue holds them before the workers look (Optuna does it only inside
        # `optimize`, which a worker with an empty queue never enters). No-op without heartbeat.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        if spec.method == "grid":
            queue_grid(study, spec)
    # Trainers side by side on this machine: one per worker, times the seeds a configuration
    # runs on at once.
    limits = thread_limits(workers * max(1, len(spec.replicate_seeds)))
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
        if wandb:
            argv.append("--wandb")
        # Dies with this process; its trainers inherit the thread limits.
        others.append(subprocess.Popen(argv, env={**child_env(), **limits}))
    study = run_worker(spec_path, study_name, storage, n_trials, runs, 0, wandb, limits)
    for proc in others:
        proc.wait()
    # A worker here that died on its own (not with us) left its trial RUNNING: settle it and,
    # if that queued it again, run it now rather than at the next re-run.
    with storage_lock(storage):
        settle_stale_trials(study, store, spec)
    if _queued(study):
        study = run_worker(spec_path, study_name, storage, n_trials, runs, 0, wandb, limits)
    return study


# Thread pools of the math libraries a trainer loads (NumPy/SciPy's BLAS, oneDNN's OpenMP).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


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


def outcome(study: optuna.Study) -> dict[str, int]:
    """How many trials ended in each state; "lost": failed with their worker and queued again
    (their run went on in a later trial). Unused grid trials are left out."""
    counts = {"complete": 0, "pruned": 0, "fail": 0, "lost": 0, "running": 0, "waiting": 0}
    for trial in visible_trials(study):
        lost = trial.state == TrialState.FAIL and trial.user_attrs.get("state") == LOST
        name = "lost" if lost else trial.state.name.lower()
        counts[name] = counts.get(name, 0) + 1
    return counts


def trial_params(trial) -> dict[str, Any]:
    """The swept values a trial ran with, as its program got them (W&B's meaning: a drawn
    quantile already turned into its value; a group as one dict); constants left out. Trials
    from before this was recorded: Optuna's params."""
    if "params" in trial.user_attrs:
        swept = {name.split(".")[0] for name in trial.distributions}  # "lr_g.u", "adam.lr_g"
        return {k: v for k, v in trial.user_attrs["params"].items() if k in swept}
    return {name: decode(value) for name, value in trial.params.items()}


def visible_trials(study: optuna.Study) -> list:
    """The trials a person should read about: every one except those that ran nothing (a grid
    point already taken; "duplicate grid point" in studies from before grids were queued)."""
    return [
        t
        for t in study.get_trials(deepcopy=False)
        if t.user_attrs.get("state") != UNUSED
        and not str(t.user_attrs.get("state", "")).startswith("duplicate grid point")
    ]


def ranked_trials(study: optuna.Study) -> list:
    """The visible trials, best first in the study's direction (``metric.goal``); trials without
    a finite value (running, failed, pruned, diverged) last, in trial order."""
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0

    def order(trial) -> tuple:
        value = trial.value
        if value is None or not math.isfinite(value):
            return (1, 0.0, trial.number)
        return (0, sign * value, trial.number)

    return sorted(visible_trials(study), key=order)


def leaderboard(study: optuna.Study) -> str:
    """A plain-text table of trials, ranked (``ranked_trials``)."""
    metric = study.user_attrs.get("metric", "value")
    lines = [f"{'#':>4} {metric:>10} {'state':<9} {'run':<11} params  (run dir)"]
    for trial in ranked_trials(study):
        value = trial.value
        text = shown(value) if value is not None and math.isfinite(value) else "-"
        params = " ".join(f"{k}={v}" for k, v in trial_params(trial).items())
        attrs = trial.user_attrs
        lines.append(
            f"{trial.number:>4} {text:>10} {trial.state.name:<9} "
            f"{attrs.get('state', ''):<11} {params}  ({attrs.get('run_dir', '')})"
        )
    return "\n".join(lines)


def grouped_leaderboard(study: optuna.Study) -> str:
    """Configurations (trials that differ only in ``seed``, or a trial's own seeds) ranked by
    their mean, with a 95% t interval and a verdict against the best (``reports.replicates``)."""
    from albumgan.reports.replicates import group_runs, judge

    rows = [
        {"params": trial_params(t), "value": t.value, "replicates": t.user_attrs.get("replicates")}
        for t in visible_trials(study)
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
    ]
    judgement = judge(group_runs(rows), study.direction.name.lower())
    metric = study.user_attrs.get("metric", "value")
    lines = [
        f"{'rank':>4} {'seeds':>5} {'mean ' + metric:>12} {'95% interval':>21}  verdict  config"
    ]
    for rank, group in enumerate(judgement.groups, start=1):
        interval = group.interval
        span = f"{shown(interval[0])} .. {shown(interval[1])}" if interval else "-"
        mean = shown(group.mean) if group.mean is not None else "-"
        p = f" (p={group.p_value:.2g})" if group.p_value is not None else ""
        config = " ".join(f"{k}={v}" for k, v in group.params.items())
        lines.append(f"{rank:>4} {group.n:>5} {mean:>12} {span:>21}  {group.verdict}{p}  {config}")
    if not judgement.replicated:
        lines.append(
            "every configuration ran with one seed: its differences cannot be told from "
            "seed noise (add seed: {values: [0, 1, 2]})"
        )
    elif judgement.closest and judgement.seeds_needed:
        lines.append(
            f"closest call: about {judgement.seeds_needed} seeds per configuration would "
            "tell it apart at the observed spread (80% power, alpha 0.05)"
        )
    return "\n".join(lines)
