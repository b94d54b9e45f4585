"""One sweep trial: its training processes (one per replicate seed, or one packed process for
all of them on JAX), their metric, and pruning.

``Objective`` is what Optuna's ``study.optimize`` calls: it starts the argv the sweep's
``command`` gives under ``wandb agent`` (``sweeps.command``) for each seed, in its own process
(memory freed, crashes isolated) and run directory, reports the metric as the runs log it (the
mean over seeds), stops them when the pruner says so, and records the trial's state, run
directory, argv, values and final scores as trial attributes. When the program is albumgan's
trainer and it will run on JAX, the seeds go to ONE process as a list (``--seed=[0, 1, 2]``):
one compiled program trains them all (``gan_core.packing``), each still in ``run_dir/seed-S``.

May import: ``gan_core`` (contract, fileio, rundir), ``experiments.train`` (to recognise it) and
the other ``sweeps`` modules below the runner (spec, command, children, devices). Never
``reports``.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from albumgan.gan_core.contract import (
    EXIT_DIVERGED,
    EXIT_NO_SPACE,
    EXIT_USAGE,
    SCORES,
    RunState,
    TrialState,
)
from albumgan.gan_core.fileio import read_json, read_jsonl, write_text
from albumgan.gan_core.rundir import STOP_REQUEST, host_name, lock_holder
from albumgan.sweeps.children import child_env
from albumgan.sweeps.command import build_argv
from albumgan.sweeps.packs import program_args, shape_key
from albumgan.sweeps.spec import SweepSpec, suggest
from albumgan.sweeps.storage import heartbeat_seconds

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
    shared: bool = False  # its trainer trains other trials too (``sweeps.packs``)

    def status(self) -> dict[str, Any]:
        return read_json(self.run_dir / "status.json") or {}

    def ended(self) -> bool:
        """Its run has ended in the trainer that runs it now (a shared trainer goes on)."""
        status = self.status()
        return status.get("pid") == self.proc.pid and status.get("state") != RunState.RUNNING

    def exit_code(self) -> int | None:
        """The run's exit code: its own process's, or for a shared trainer the one its
        status.json records (the trainer's own is the worst of all its members')."""
        if self.shared and self.ended():
            return self.status().get("exit_code")
        return self.proc.returncode


@dataclass
class Launch:
    """One trainer process of a trial: one replicate, or (packed, on JAX) all of them, with the
    list of seeds, writing ``run_dir``/seed-S (``gan_core.packing``)."""

    run_dir: Path
    argv: list[str]
    replicates: list[Replicate]

    @property
    def proc(self) -> subprocess.Popen | None:
        return self.replicates[0].proc


def is_albumgan_trainer(program: Path | None) -> bool:
    """Whether a sweep's program is albumgan's own trainer (which reads a list of seeds)."""
    from albumgan.experiments import train

    if program is None or not program.is_file():
        return False
    ours = Path(train.__file__).resolve()
    return program.resolve() == ours or program.read_bytes() == ours.read_bytes()


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
        packer=None,
    ) -> None:
        self.spec = spec
        self.packer = packer  # sweeps.packs.Packer: K trials of one shape in one trainer
        self.study_name = study_name
        self.runs_dir = runs_dir  # absolute: trials run in the user's folder, not ours
        self.program = program
        self.wandb = wandb
        self.trial_env = trial_env or {}
        self._gpus: list[str] | None = None

    def packs_seeds(self, args: dict[str, Any]) -> bool:
        """Whether this trial's seeds train as one packed process: albumgan's trainer on JAX
        (foreseen from the trial's ``backend`` and this worker's GPUs, without starting JAX)."""
        from albumgan.sweeps.devices import trains_on_jax, visible_gpus

        if os.environ.get("ALBUMGAN_PACK_SEEDS") == "0":  # one process per seed, as before
            return False
        if not self.spec.replicate_seeds or not is_albumgan_trainer(self.program):
            return False
        if self._gpus is None:
            self._gpus = visible_gpus()
        return trains_on_jax(str(args.get("backend", "auto")), self._gpus)

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
        if self.packs_seeds(args):  # one process, one program: run_dir/seed-S for each seed
            packed = self._replicate({**args, "seed": list(seeds)}, run_dir, None)
            replicates = [Replicate(s, run_dir / f"seed-{s}", packed.argv) for s in seeds]
            launches = [Launch(run_dir, packed.argv, replicates)]
        else:
            replicates = [
                self._replicate({**args, "seed": seed}, run_dir / f"seed-{seed}", seed)
                for seed in seeds
            ] or [self._replicate(args, run_dir, None)]
            launches = [Launch(r.run_dir, r.argv, [r]) for r in replicates]
        for key, value in (
            ("run_dir", str(run_dir)),
            ("pid", os.getpid()),
            ("host", host_name()),
            ("heartbeat", time.time()),
            ("params", args),
            ("argv", replicates[0].argv),
            ("packed", len(launches) < len(replicates)),
        ):
            trial.set_user_attr(key, value)
        print(f"trial {trial.number} started: {_shown_swept(trial)} ({run_dir})", flush=True)
        pruned = self._run(trial, launches)
        return self._result(trial, replicates, pruned)

    def _replicate(self, args: dict[str, Any], run_dir: Path, seed: Any) -> Replicate:
        run_dir.mkdir(parents=True, exist_ok=True)
        # Exactly the argv the sweep's command gives under `wandb agent`; where to write goes in
        # the environment, as the agent passes its own settings.
        return Replicate(seed, run_dir, build_argv(self.spec.command, self.program, args, run_dir))

    def _run(self, trial: optuna.Trial, launches: list[Launch]) -> bool:
        """Start every trainer, report the metric until they end; True when pruned."""
        env = {**child_env(), **self.trial_env}  # the trainers die with this worker
        if self.spec.metric in SCORES:  # the best checkpoint follows the sweep's metric and goal
            env.update(ALBUMGAN_BEST_METRIC=self.spec.metric, ALBUMGAN_BEST_GOAL=self.spec.goal)
        if self.wandb:
            # An offline W&B run per trial, grouped by study: `wandb sync` shows the whole sweep.
            env["ALBUMGAN_WANDB"] = "1"
            env.setdefault("WANDB_MODE", "offline")
            env["WANDB_RUN_GROUP"] = self.study_name
        waiting = list(launches)
        replicates = [rep for launch in launches for rep in launch.replicates]
        packed_args = None
        if self.packer is not None and len(replicates) == 1 and replicates[0].seed is None:
            packed_args = program_args(launches[0].argv, self.program)
        if packed_args is not None:  # this trial's run goes to a trainer shared with others
            (launch,) = launches
            (launch.run_dir / STOP_REQUEST).unlink(missing_ok=True)  # an earlier pruning's
            params = trial.user_attrs["params"]
            try:
                proc = self.packer.start(shape_key(params), launch.run_dir, packed_args, env)
            except OSError as exc:  # the study records the trial as failed and goes on
                raise _failed(trial, f"its trainer did not start: {exc}") from exc
            for rep in launch.replicates:
                rep.proc, rep.shared = proc, True
            return self._watch(trial, replicates)
        while waiting:
            for launch in waiting:
                self._wait_for_writer(trial, launch.run_dir)
                with (launch.run_dir / "trial.log").open("ab") as log:
                    proc = subprocess.Popen(
                        launch.argv,
                        env={**env, "ALBUMGAN_RUN_DIR": str(launch.run_dir)},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                for rep in launch.replicates:
                    rep.proc = proc
            if self._watch(trial, replicates):
                return True
            # A run directory another process took between our look and the trainer's start:
            # still running elsewhere, not a failure; start that one again once it is free.
            waiting = [
                launch
                for launch in waiting
                if launch.proc.returncode == EXIT_USAGE and lock_holder(launch.run_dir) is not None
            ]
        return False

    def _result(self, trial: optuna.Trial, replicates: list[Replicate], pruned: bool) -> float:
        metric = self.spec.metric
        finals = [last_metric(rep.run_dir, metric) for rep in replicates]
        states = [(read_json(r.run_dir / "status.json") or {}).get("state") for r in replicates]
        codes = [rep.exit_code() for rep in replicates]
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
        logs = ", ".join(dict.fromkeys(str(_log_of(rep)) for rep in replicates))
        stopped = _stopped_by_the_machine(codes)
        if stopped is not None:  # not the config's fault: the next `sweep run` resumes it
            state, why = stopped
            trial.set_user_attr("state", state)
            raise _failed(trial, f"{why}; its run waits to resume; see {logs}")
        if worst is not None or unfinished:
            raise _failed(trial, f"exit {worst}, run {first}; see {logs}")
        if any(metric not in f for f in finals):  # every run completed, and never logged it
            trial.set_user_attr("state", TrialState.NO_METRIC)
            logged = sorted({k for r in replicates for k in _logged_keys(r.run_dir)})
            raise _failed(
                trial,
                f"its run completed without logging {metric} (metrics.jsonl has "
                f"{', '.join(logged) or 'nothing'}); see {logs}",
            )
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
            beat(trial)

    def _watch(self, trial: optuna.Trial, replicates: list[Replicate]) -> bool:
        """Report the metric as the runs log it: the k-th value is reported once every
        replicate has logged its k-th (their mean, at the first one's step). Stop every run
        (SIGTERM: they checkpoint and exit) when the pruner says so."""
        running = list({id(r.proc): r.proc for r in replicates if r.proc is not None}.values())
        shared = [r for r in replicates if r.shared]
        reported = 0
        while True:
            alive = any(proc.poll() is None for proc in running)
            if shared:  # the trainer goes on with other trials: watch this trial's run only
                alive = alive and not all(r.ended() for r in shared)
            if alive:
                time.sleep(POLL_SECONDS)
                beat(trial)
            series = [metric_records(r.run_dir, self.spec.metric) for r in replicates]
            ready = min(len(s) for s in series)
            for k in range(reported, ready):
                mean = sum(float(s[k][self.spec.metric]) for s in series) / len(series)
                trial.report(mean, series[0][k]["step"])
                reported = k + 1
                if alive and trial.should_prune():
                    if shared:
                        self._stop_shared(shared)
                        return True
                    for proc in running:
                        if proc.poll() is None:
                            proc.terminate()  # the trainer checkpoints and exits cleanly
                    for proc in running:
                        proc.wait()
                    return True
            if not alive:
                return False

    @staticmethod
    def _stop_shared(shared: list[Replicate]) -> None:
        """Ask the shared trainer to stop these runs alone; wait until they have ended."""
        for rep in shared:
            write_text(rep.run_dir / STOP_REQUEST, "pruned by the sweep\n")
        while not all(r.ended() or r.proc.poll() is not None for r in shared):
            time.sleep(POLL_SECONDS / 5)
        for rep in shared:
            (rep.run_dir / STOP_REQUEST).unlink(missing_ok=True)  # ours: written just above


def beat(trial: optuna.Trial) -> None:
    """Refresh the trial's heartbeat every ``heartbeat_seconds()`` interval: a `sweep run` on
    another machine sharing the journal takes a trial whose heartbeat stopped for one whose
    machine died (``sweeps.recovery``)."""
    interval, _ = heartbeat_seconds()
    if time.time() - trial.user_attrs.get("heartbeat", 0.0) >= interval:
        trial.set_user_attr("heartbeat", time.time())


def _stopped_by_the_machine(codes: list[int | None]) -> tuple[TrialState, str] | None:
    """(state, why) when a trainer was killed by a signal (the kernel's out-of-memory killer
    sends 9) or stopped on a full disk; None otherwise. A run killed so is resumable: its
    checkpoints are whole (atomic writes), so the trial waits to be queued again."""
    for code in codes:
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else -code
            hint = " (the out-of-memory killer's)" if -code == signal.SIGKILL else ""
            return TrialState.KILLED, f"its trainer was killed by {name}{hint}"
    if EXIT_NO_SPACE in codes:
        return TrialState.NO_SPACE, "its trainer stopped on a full disk"
    return None


def _shown_swept(trial) -> str:
    from albumgan.sweeps.results import shown_params, trial_params

    return shown_params(trial_params(trial)) or "(nothing swept)"


def announce_end(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """One line when a trial ends (``study.optimize`` callback): its number, what it ran with,
    and its value, or why it has none."""
    from albumgan.gan_core.contract import shown

    attrs = trial.user_attrs
    if attrs.get("state") == TrialState.UNUSED:
        return  # opened after the grid's last point was taken: it ran nothing
    if trial.state == optuna.trial.TrialState.COMPLETE:
        outcome = f"{study.user_attrs.get('metric', 'value')} {shown(trial.value)}"
    elif attrs.get("state") == TrialState.DIVERGED:
        outcome = "diverged (NaN/Inf loss)"
    elif trial.state == optuna.trial.TrialState.PRUNED:
        steps = sorted(trial.intermediate_values)
        outcome = f"at step {steps[-1]}" if steps else "before its first report"
    else:
        outcome = attrs.get("reason") or attrs.get("state") or "failed"
    state = trial.state.name.lower()
    print(f"trial {trial.number} {state}: {outcome}  {_shown_swept(trial)}", flush=True)


def _failed(trial: optuna.Trial, reason: str) -> TrialFailed:
    """The trial is failed for ``reason``: kept as its ``reason`` attribute (the per-trial line,
    the leaderboard and the report show it) and raised, so the study records it and goes on."""
    trial.set_user_attr("reason", reason)
    return TrialFailed(f"trial {trial.number}: {reason}")


def _logged_keys(run_dir: Path) -> set[str]:
    """The numeric metrics a run wrote to metrics.jsonl."""
    return {
        key
        for record in read_jsonl(run_dir / "metrics.jsonl")
        for key, value in record.items()
        if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def _log_of(rep: Replicate) -> Path:
    """The trainer's log: in the replicate's run directory, or its packed process's parent."""
    own = rep.run_dir / "trial.log"
    return own if own.exists() or rep.seed is None else rep.run_dir.parent / "trial.log"


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
