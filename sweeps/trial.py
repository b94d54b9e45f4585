"""One sweep trial: its training processes (one per replicate seed), their metric, and pruning.

``Objective`` is what Optuna's ``study.optimize`` calls: it starts the argv the sweep's
``command`` gives under ``wandb agent`` (``sweeps.command``) for each seed, in its own process
(memory freed, crashes isolated) and run directory, reports the metric as the runs log it (the
mean over seeds), stops them when the pruner says so, and records the trial's state, run
directory, argv, values and final scores as trial attributes.

May import: ``gan_core`` (contract, fileio, rundir) and the other ``sweeps`` modules below the
runner (spec, command, children). Never ``reports``.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from albumgan.gan_core.contract import EXIT_DIVERGED, EXIT_USAGE, SCORES, RunState, TrialState
from albumgan.gan_core.fileio import read_json, read_jsonl
from albumgan.gan_core.rundir import lock_holder
from albumgan.sweeps.children import child_env
from albumgan.sweeps.command import build_argv
from albumgan.sweeps.spec import SweepSpec, suggest

POLL_SECONDS = 0.5


class TrialFailed(RuntimeError):
    """A trial's runs ended without its metric (a crash, a bad config): the study records the
    trial as failed and goes on (``study.optimize(catch=(TrialFailed,))``)."""


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
            trial.set_user_attr("state", TrialState.UNUSED)
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
        if self.spec.metric in SCORES:  # the best checkpoint follows the sweep's metric and goal
            env.update(ALBUMGAN_BEST_METRIC=self.spec.metric, ALBUMGAN_BEST_GOAL=self.spec.goal)
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
        finals = [last_metric(rep.run_dir, metric) for rep in replicates]
        states = [(read_json(r.run_dir / "status.json") or {}).get("state") for r in replicates]
        codes = [rep.proc.returncode for rep in replicates]
        worst = next((c for c in codes if c not in (0, EXIT_DIVERGED)), None)
        unfinished = [
            state or TrialState.CRASHED for state in states if state != RunState.COMPLETED
        ]
        first = unfinished[0] if unfinished else TrialState.COMPLETED
        trial.set_user_attr("state", TrialState.PRUNED if pruned else first)
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
            raise TrialFailed(f"trial {trial.number} failed (exit {worst}); see {logs}")
        return sum(float(f[metric]) for f in finals) / len(finals)

    @staticmethod
    def _wait_for_writer(trial: optuna.Trial, run_dir: Path) -> None:
        """Wait while another process (a trainer left from an earlier attempt) writes
        ``run_dir``: one writer per run directory, and its result is this trial's to take."""
        waited = False
        while (holder := lock_holder(run_dir)) is not None:
            if not waited:
                where = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
                trial.set_user_attr("state", f"{TrialState.WAITING} for {where}")
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
            series = [metric_records(r.run_dir, self.spec.metric) for r in replicates]
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


def metric_records(run_dir: Path, metric: str) -> list[dict[str, Any]]:
    records = read_jsonl(run_dir / "metrics.jsonl")
    return [r for r in records if r.get(metric) is not None]


def last_metric(run_dir: Path, metric: str) -> dict[str, Any]:
    records = metric_records(run_dir, metric)
    return records[-1] if records else {}
