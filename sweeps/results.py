"""Reading a study back: which trials a person should see, in what order, with which values.

``sweep status``, ``sweep run``'s closing leaderboards (``sweeps.cli``) and ``albumgan report
sweep`` all read trials through these functions, so they agree on what a trial ran with, which
trials count and which is best.

May import: ``gan_core`` (contract) and Optuna. Never ``reports``.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import TrialState as OptunaState

from albumgan.gan_core.contract import RESUMABLE, TrialState, shown


def outcome(study: optuna.Study) -> dict[str, int]:
    """How many trials ended in each state; "lost": failed with their worker (or killed, or
    stopped on a full disk) and queued again (their run went on in a later trial); "to resume":
    killed or stopped on a full disk, and not queued again yet. Unused grid trials are left
    out."""
    counts = {
        "complete": 0, "pruned": 0, "fail": 0, "lost": 0, "to resume": 0, "running": 0,
        "waiting": 0,
    }  # fmt: skip
    waiting = {t.number for t in waits_to_resume(study)}
    for trial in visible_trials(study):
        if trial.number in waiting:
            name = "to resume"
        else:
            name = "lost" if was_lost(trial) else trial.state.name.lower()
        counts[name] = counts.get(name, 0) + 1
    return counts


def was_lost(trial) -> bool:
    """Failed by no fault of its config (its worker died, its trainer was killed, the disk was
    full): its point runs again in a later trial, which takes its run directory."""
    return trial.state == OptunaState.FAIL and trial.user_attrs.get("state") in (
        TrialState.LOST,
        *RESUMABLE,
    )


def waits_to_resume(study: optuna.Study) -> list:
    """Trials whose trainer was killed or stopped on a full disk, not yet queued again: no
    later trial resumes their run directory. ``sweep run`` queues them when it starts."""
    trials = study.get_trials(deepcopy=False)
    resumed_by = {}  # run directory -> the newest trial that took it over
    for t in trials:
        if t.user_attrs.get("resume_run_dir"):
            resumed_by[t.user_attrs["resume_run_dir"]] = t.number
    return [
        t
        for t in trials
        if t.state == OptunaState.FAIL
        and t.user_attrs.get("state") in RESUMABLE
        and resumed_by.get(t.user_attrs.get("run_dir"), -1) <= t.number
    ]


def trial_params(trial) -> dict[str, Any]:
    """The swept values a trial ran with, as its program got them (W&B's meaning: a drawn
    quantile already turned into its value; a group as one dict); constants left out. Empty for
    a trial that has not started its runs yet."""
    swept = {name.split(".")[0] for name in trial.distributions}  # "lr_g.u", "adam.lr_g"
    return {k: v for k, v in trial.user_attrs.get("params", {}).items() if k in swept}


def shown_params(params: dict[str, Any]) -> str:
    """``batch_size=8 lr_d=0.000426``: numbers to 4 significant digits, as every score."""

    def text(value: Any) -> str:
        if isinstance(value, float):
            return shown(value)
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {text(v)}" for k, v in value.items()) + "}"
        return str(value)

    return " ".join(f"{k}={text(v)}" for k, v in params.items())


def visible_trials(study: optuna.Study) -> list:
    """The trials a person should read about: every one except those that ran nothing (opened
    after another worker took the grid's last point)."""
    trials = study.get_trials(deepcopy=False)
    return [t for t in trials if t.user_attrs.get("state") != TrialState.UNUSED]


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


def finished_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """Completed trials with a finite value, as ``gan_core.metrics.replicates.group_runs``
    takes them: swept values, the trial's value and, for a replicated trial, one value per seed."""
    return [
        {"params": trial_params(t), "value": t.value, "replicates": t.user_attrs.get("replicates")}
        for t in visible_trials(study)
        if t.state == OptunaState.COMPLETE and t.value is not None and math.isfinite(t.value)
    ]


def goal(study: optuna.Study) -> str:
    """The study's direction as a sweep file says it: minimize | maximize."""
    return study.direction.name.lower()
