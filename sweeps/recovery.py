"""Settling what dead workers left: trials RUNNING in the study whose worker is gone.

A re-run of ``sweep run`` calls ``settle_stale_trials`` before any worker starts (and once more
after its workers end): a run that completed is recorded as such; any other is failed ("worker
died") and its parameters queued again, so that a new trial resumes the same run directory.

Trials whose trainer was killed (signal 9) or stopped on a full disk are failed by the trial
itself with a state that says so; ``queue_resumable`` queues their points again when the next
``sweep run`` starts.

May import: ``gan_core`` (contract, fileio, rundir), ``sweeps.spec``, ``sweeps.results`` and
``sweeps.trial``.
"""

from __future__ import annotations

import time
from pathlib import Path

import optuna
from optuna.trial import TrialState as OptunaState

from albumgan.gan_core.contract import SCORES, RunState, TrialState
from albumgan.gan_core.fileio import read_json
from albumgan.gan_core.rundir import host_name, lock_holder, process_alive
from albumgan.sweeps.results import waits_to_resume
from albumgan.sweeps.spec import SweepSpec
from albumgan.sweeps.storage import heartbeat_seconds
from albumgan.sweeps.trial import last_metric


def _trial_id(storage, study: optuna.Study, number: int) -> int:
    """Storage id of trial ``number`` (public storage API: Optuna's own ``_trial_id`` is not)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, number)


def stale_trials(study: optuna.Study) -> list:
    """RUNNING trials whose worker is gone: on this host, its process is not there; on another
    host (a shared journal), its heartbeat is older than the grace period (the machine died;
    a pid means nothing across machines)."""
    _, grace = heartbeat_seconds()
    now = time.time()
    stale = []
    for trial in study.get_trials(deepcopy=False, states=(OptunaState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get("host") == host_name():
            if not process_alive(int(attrs.get("pid", 0))):
                stale.append(trial)
        elif isinstance(attrs.get("heartbeat"), (int, float)) and now - attrs["heartbeat"] > grace:
            stale.append(trial)
    return stale


def settle_stale_trials(study: optuna.Study, storage, spec: SweepSpec) -> None:
    """Trials left RUNNING by a dead worker (``stale_trials``), settled before any worker
    starts.

    A run that got to the end (its trainer finished before the worker could record it) is
    recorded with its result, never as a failure. Any other is failed as "worker died" and its
    parameters queued again; the new trial resumes the same run directory from its checkpoint,
    waiting first for a trainer that may still hold it.
    """
    for trial in stale_trials(study):
        run_dir = Path(trial.user_attrs.get("run_dir", ""))
        status = (read_json(run_dir / "status.json") or {}) if run_dir.name else {}
        final = last_metric(run_dir, spec.metric) if run_dir.name else {}
        trial_id = _trial_id(storage, study, trial.number)
        if lock_holder(run_dir) is None and status.get("state") in (
            RunState.COMPLETED,
            RunState.DIVERGED,
        ):
            storage.set_trial_user_attr(trial_id, "state", status["state"])
            storage.set_trial_user_attr(trial_id, "exit_code", status.get("exit_code"))
            for key in SCORES:
                if key in final:
                    storage.set_trial_user_attr(trial_id, key, final[key])
            if status["state"] == RunState.COMPLETED and spec.metric in final:
                study.tell(trial.number, float(final[spec.metric]))
                continue
            study.tell(trial.number, state=OptunaState.FAIL)
            continue
        storage.set_trial_user_attr(trial_id, "state", TrialState.LOST)
        study.tell(trial.number, state=OptunaState.FAIL)
        attrs = {"resume_run_dir": str(run_dir)} if run_dir.name else {}
        if "grid_point" in trial.user_attrs:
            attrs["grid_point"] = trial.user_attrs["grid_point"]
        study.enqueue_trial(trial.params, user_attrs=attrs)


def queue_resumable(study: optuna.Study) -> int:
    """Queue again the points of trials whose trainer was killed (the OOM killer) or stopped
    on a full disk (``results.waits_to_resume``): each new trial resumes the old trial's run
    directory from its newest checkpoint. Called when ``sweep run`` starts, not as the trials
    end: the machine that killed them gets a chance to change first. Returns how many."""
    waiting = waits_to_resume(study)
    for trial in waiting:
        attrs = {"resume_run_dir": trial.user_attrs["run_dir"]}
        if "grid_point" in trial.user_attrs:
            attrs["grid_point"] = trial.user_attrs["grid_point"]
        study.enqueue_trial(trial.params, user_attrs=attrs)
    return len(waiting)
