"""``albumgan sweep run FILE``: a W&B sweep YAML driven by Optuna, offline or across machines.

    albumgan sweep run sweeps/smoke.yaml [--study NAME] [--storage PATH_OR_URL] [--n-trials N]
                       [--workers K]
    albumgan sweep status --storage PATH_OR_URL --study NAME

``grid`` -> GridSampler (same seed on every worker), ``random`` -> RandomSampler, ``bayes`` ->
TPESampler; ``early_terminate: hyperband`` -> HyperbandPruner fed by the KID the trainer writes to
``metrics.jsonl`` every ``eval_every`` steps; ``run_cap`` -> a global trial cap.

Each trial runs ``experiments/train.py`` in its own process (memory freed, crashes isolated) with
the argv ``wandb agent`` would build, in ``<runs>/<study>/trial-NNNN``; the run directory and final
metrics become trial attributes. Storage: a journal file by default (safe for several local worker
processes), ``sqlite:///...`` for one worker, a ``postgresql://`` URL for many machines (heartbeat
and retry of stale trials). Re-running resumes the study: finished configs are not repeated in
grid mode, a trial whose worker died is failed and re-queued (its run directory resumes from its
checkpoint), and a crashed or diverged trial is marked and the study goes on.
"""

from __future__ import annotations

import inspect
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from gan_core.fileio import read_json, read_jsonl
from gan_core.rundir import process_alive
from sweeps.spec import SweepError, SweepSpec, grid_space, load_spec, suggest, to_argv

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.5
SUMMARY_KEYS = ("kid", "kid_std", "fid", "precision", "recall")


def rdb_url(url: str) -> str:
    """A bare ``postgresql://`` URL names the psycopg2 driver we install (the ``postgres`` extra):
    SQLAlchemy 2.1 would otherwise pick psycopg 3."""
    return (
        "postgresql+psycopg2://" + url[len("postgresql://") :]
        if url.startswith("postgresql://")
        else url
    )


def open_storage(storage: str | None, study: str, runs_dir: Path):
    """A journal file (default ``<runs>/<study>/optuna.journal``), SQLite or PostgreSQL."""
    if storage and "://" in storage:
        storage = rdb_url(storage)
        if storage.startswith("postgresql"):
            # A trial whose machine stops beating for grace_period is failed and re-queued with
            # the same parameters and user attrs; the retry resumes its run directory.
            return optuna.storages.RDBStorage(
                storage, heartbeat_interval=30, grace_period=120, **_stale_trial_retry(2)
            )
        return optuna.storages.RDBStorage(storage)
    path = Path(storage) if storage else runs_dir / study / "optuna.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    backend = optuna.storages.journal.JournalFileBackend(str(path))
    return optuna.storages.JournalStorage(backend)


def _stale_trial_retry(max_retry: int) -> dict[str, Any]:
    """RDBStorage's retry-on-stale-heartbeat argument: renamed in Optuna 4.9, the old name goes
    in 6.0."""
    storages = optuna.storages
    if "heartbeat_stale_trial_callback" in inspect.signature(storages.RDBStorage).parameters:
        retry = storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        return {"heartbeat_stale_trial_callback": retry}
    return {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=max_retry)}


def make_sampler(spec: SweepSpec, worker: int, seed: int = 0) -> optuna.samplers.BaseSampler:
    if spec.method == "grid":
        return optuna.samplers.GridSampler(grid_space(spec), seed=seed)  # same on every worker
    if spec.method == "random":
        return optuna.samplers.RandomSampler(seed=seed + worker)
    return optuna.samplers.TPESampler(seed=seed + worker)


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """W&B's ``early_terminate: hyperband``, run by Optuna.

    W&B stops a run at fixed checkpoints ("brackets") ``min_iter * eta**k`` when its metric there
    is worse than the best ``1/eta`` of what earlier runs reported at the same checkpoint: that is
    asynchronous successive halving, Optuna's SuccessiveHalvingPruner. Optuna's HyperbandPruner
    would instead split the trials over several such brackets, most starting later; in the
    12-trial benchmark it spent 0.68 of the unpruned compute against 0.41 for this mapping, with
    the same best KID (benchmarks/sweep_pruning.py). One iteration is one evaluation:
    ``min_iter`` counts ``eval_every`` steps. Given ``max_iter`` and ``s`` instead, the first
    checkpoint is ``max_iter / eta**(s - 1)``, as in W&B.
    """
    early = spec.early_terminate
    if early.get("type") != "hyperband":
        return optuna.pruners.NopPruner()
    eval_every = int(spec.fixed.get("eval_every", 1)) or 1
    eta = int(early.get("eta", 3))
    min_iter = early.get("min_iter")
    if min_iter is None and early.get("max_iter"):
        min_iter = int(early["max_iter"]) // eta ** (int(early.get("s", 2)) - 1)
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=max(1, int(min_iter or 1)) * eval_every, reduction_factor=eta
    )


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


def fail_trial(study: optuna.Study, trial, reason: str) -> None:
    study._storage.set_trial_user_attr(trial._trial_id, "state", reason)
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def requeue_stale_trials(study: optuna.Study, grid: bool) -> None:
    """Trials left RUNNING by a dead worker.

    Random/bayes: failed and queued again with the same parameters (the new trial resumes the
    old run directory from its checkpoint). Grid: left alone until the end of the study, because
    Optuna's GridSampler re-runs the points of unfinished trials once every other point has
    started; they are failed once every local worker has ended (``fail_leftover_trials``).
    """
    if grid:
        return
    for trial in stale_trials(study):
        fail_trial(study, trial, "worker died")
        study.enqueue_trial(
            trial.params, user_attrs={"resume_run_dir": trial.user_attrs.get("run_dir")}
        )


def fail_leftover_trials(study: optuna.Study) -> None:
    for trial in stale_trials(study):
        fail_trial(study, trial, "worker died")


class Objective:
    """Runs one trial as a training subprocess and reports its metric to Optuna."""

    def __init__(
        self, spec: SweepSpec, study_name: str, runs_dir: Path, wandb: bool = False
    ) -> None:
        self.spec = spec
        self.study_name = study_name
        self.runs_dir = runs_dir
        self.wandb = wandb

    def __call__(self, trial: optuna.Trial) -> float:
        values = suggest(trial, self.spec)
        if self.spec.method == "grid" and self._taken(trial):
            # Optuna's GridSampler re-runs unfinished points once all have started; with several
            # workers that can double a point another live worker is still running.
            trial.set_user_attr("state", "duplicate grid point (skipped)")
            trial.study.stop()
            raise optuna.TrialPruned("grid point already done or running")
        # A re-queued trial (worker died) or a heartbeat retry (its user attrs copied) resumes
        # the run directory of the trial it replaces, from its newest checkpoint.
        run_dir = Path(
            trial.user_attrs.get("resume_run_dir")
            or trial.user_attrs.get("run_dir")
            or self.runs_dir / self.study_name / f"trial-{trial.number:04d}"
        )
        argv = [
            sys.executable,
            str(ROOT / self.spec.program),
            *to_argv(values),
            f"--run-dir={run_dir}",
            f"--name={self.study_name}",
        ]
        env = dict(os.environ)
        if self.wandb:
            # An offline W&B run per trial, grouped by study: `wandb sync` shows the whole sweep.
            argv.append("--wandb")
            env.setdefault("WANDB_MODE", "offline")
            env["WANDB_RUN_GROUP"] = self.study_name
        for key, value in (
            ("run_dir", str(run_dir)),
            ("pid", os.getpid()),
            ("host", socket.gethostname()),
            ("argv", argv[2:]),
        ):
            trial.set_user_attr(key, value)
        run_dir.mkdir(parents=True, exist_ok=True)
        with (run_dir / "trial.log").open("ab") as log:
            proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            pruned = self._watch(trial, proc, run_dir)
        status = read_json(run_dir / "status.json") or {}
        final = _last_metric(run_dir, self.spec.metric)
        trial.set_user_attr("state", "pruned" if pruned else status.get("state", "crashed"))
        trial.set_user_attr("exit_code", proc.returncode)
        for key in SUMMARY_KEYS:
            if key in final:
                trial.set_user_attr(key, final[key])
        if pruned:
            raise optuna.TrialPruned(f"pruned at step {status.get('step')}")
        if proc.returncode == 3:  # diverged: marked, the study goes on
            return math.nan
        if proc.returncode != 0 or self.spec.metric not in final:
            raise RuntimeError(
                f"trial {trial.number} failed (exit {proc.returncode}); see "
                f"{run_dir / 'trial.log'}"
            )
        return float(final[self.spec.metric])

    @staticmethod
    def _taken(trial: optuna.Trial) -> bool:
        """Another trial has these parameters and finished them or is running them alive."""
        for other in trial.study.get_trials(deepcopy=False):
            if other.number == trial.number or other.params != trial.params:
                continue
            if other.state == TrialState.COMPLETE:
                return True
            alive = process_alive(int(other.user_attrs.get("pid", 0))) or (
                other.user_attrs.get("host") != socket.gethostname()
            )
            if other.state == TrialState.RUNNING and alive and other.number < trial.number:
                return True
        return False

    def _watch(self, trial: optuna.Trial, proc: subprocess.Popen, run_dir: Path) -> bool:
        """Report each new metric value; stop the run (SIGTERM) when the pruner says so."""
        reported: set[int] = set()
        while proc.poll() is None:
            time.sleep(POLL_SECONDS)
            for record in _metric_records(run_dir, self.spec.metric):
                if record["step"] in reported:
                    continue
                reported.add(record["step"])
                trial.report(float(record[self.spec.metric]), record["step"])
                if trial.should_prune():
                    proc.terminate()  # the trainer checkpoints and exits cleanly
                    proc.wait()
                    return True
        for record in _metric_records(run_dir, self.spec.metric):
            if record["step"] not in reported:
                trial.report(float(record[self.spec.metric]), record["step"])
        return False


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
) -> optuna.Study:
    """One worker: join (or create) the study and run trials until the cap or the grid ends.

    Trials left RUNNING by dead workers are dealt with once, by ``run_sweep``, before any
    worker starts.
    """
    spec = load_spec(spec_path)
    study_name = study_name or spec.name or Path(spec_path).stem
    runs = Path(runs_dir)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name,
        storage=open_storage(storage, study_name, runs),
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
    if not cap or len(study.get_trials(deepcopy=False, states=finished)) < cap:
        # Grid studies stop by themselves once every point has finished.
        objective = Objective(spec, study_name, runs, wandb)
        study.optimize(objective, callbacks=callbacks, catch=(RuntimeError,))
    return study


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

    ``wandb``: each trial also logs an offline W&B run (``WANDB_MODE`` unless set), grouped by
    the study name.
    """
    spec = load_spec(spec_path)
    study_name = study_name or spec.name or Path(spec_path).stem
    if storage is None:
        storage = str(Path(runs_dir) / study_name / "optuna.journal")
    # Open the study and re-queue stale trials before other workers join.
    study = optuna.create_study(
        study_name=study_name,
        storage=open_storage(storage, study_name, Path(runs_dir)),
        direction=spec.goal,
        load_if_exists=True,
    )
    # What the study optimizes, for `albumgan report sweep` (which reads only the study).
    for key, value in (("metric", spec.metric), ("method", spec.method), ("spec", str(spec_path))):
        study.set_user_attr(key, value)
    requeue_stale_trials(study, grid=spec.method == "grid")
    others = []
    for index in range(1, workers):
        argv = [
            sys.executable,
            "-m",
            "experiments.cli",
            "sweep",
            "run",
            str(spec_path),
            "--study",
            study_name,
            "--storage",
            storage,
            "--runs-dir",
            str(runs_dir),
            "--worker-index",
            str(index),
        ]
        if n_trials:
            argv += ["--n-trials", str(n_trials)]
        if wandb:
            argv.append("--wandb")
        others.append(subprocess.Popen(argv, cwd=ROOT))
    study = run_worker(spec_path, study_name, storage, n_trials, runs_dir, 0, wandb)
    for proc in others:
        proc.wait()
    fail_leftover_trials(study)  # only once every worker here is done
    return study


def leaderboard(study: optuna.Study, metric: str = "kid") -> str:
    """A plain-text table of trials, best first."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        value = trial.value if trial.value is not None else math.inf
        params = " ".join(f"{k}={v}" for k, v in trial.params.items())
        rows.append(
            (
                value,
                trial.number,
                trial.state.name,
                trial.user_attrs.get("state", ""),
                params,
                trial.user_attrs.get("run_dir", ""),
            )
        )
    rows.sort(key=lambda r: (math.isnan(r[0]) if isinstance(r[0], float) else False, r[0]))
    lines = [f"{'#':>4} {metric:>10} {'state':<9} {'run':<11} params  (run dir)"]
    for value, number, state, run_state, params, run_dir in rows:
        shown = f"{value:.5f}" if math.isfinite(value) else "-"
        lines.append(f"{number:>4} {shown:>10} {state:<9} {run_state:<11} {params}  ({run_dir})")
    return "\n".join(lines)
