"""W&B's ``early_terminate: hyperband``, as an Optuna pruner.

W&B stops a running run at fixed checkpoints, its "bands", counted in iterations: the n-th value
of the metric a run has logged (one evaluation here, whatever ``eval_every`` is). The bands:

- with ``max_iter`` and ``s``: ``max_iter / eta``, ``max_iter / eta**2``, ... (``s`` of them,
  each truncated to an int, none below 1): ``{max_iter: 27, s: 2, eta: 3}`` -> 3, 9;
- else ``min_iter * eta**k`` truncated, k = 0..99: ``{min_iter: 2, eta: 2.5}`` -> 2, 5, 12, 31.

At a band b, every run of the study with at least b values (finished, failed or running, this
one included) gives its b-th value; sorted best first, the one at index ``floor(n / eta)`` is the
threshold, and a running run is stopped when it is strictly worse. ``strict: true`` (W&B's
default) compares the run's own b-th value, ``strict: false`` the best value it has logged so
far. A run is judged at the largest band it has reached. Trials report to Optuna at their
training step; only the order of the reports counts here.
"""

from __future__ import annotations

import math

import optuna
from optuna.trial import FrozenTrial, TrialState

BAND_LIMIT = 100  # W&B computes this many bands from min_iter


def bands(early_terminate: dict) -> list[int]:
    """The iterations at which W&B judges a run, ascending."""
    eta = early_terminate.get("eta", 3)
    if "max_iter" in early_terminate:
        found, band = [], float(early_terminate["max_iter"])
        for _ in range(int(early_terminate["s"])):
            band /= eta
            if band < 1:
                break
            found.append(int(band))
        return sorted(found)
    found, band = [], float(early_terminate["min_iter"])
    for _ in range(BAND_LIMIT):
        if not math.isfinite(band):
            break
        found.append(int(band))
        band *= eta
    return found


class WandbHyperband(optuna.pruners.BasePruner):
    """Prunes a trial whose metric is outside the best ``1/eta`` at its latest band."""

    def __init__(self, early_terminate: dict) -> None:
        self.bands = bands(early_terminate)
        self.eta = float(early_terminate.get("eta", 3))
        self.strict = bool(early_terminate.get("strict", True))

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
        series = _series(trial, sign)
        reached = [b for b in self.bands if b <= len(series)]
        if not reached:
            return False
        band = reached[-1]
        at_band = sorted(
            values[band - 1]
            for other in study.get_trials(deepcopy=False)
            if other.state != TrialState.WAITING and len(values := _series(other, sign)) >= band
        )
        threshold = at_band[int(len(at_band) * (1.0 / self.eta))]  # W&B: int(n * r), r = 1/eta
        judged = series[band - 1] if self.strict else min(series)
        return judged > threshold


def _series(trial: FrozenTrial, sign: float) -> list[float]:
    """The trial's reported values in order, finite ones only, lower = better."""
    values = (trial.intermediate_values[step] for step in sorted(trial.intermediate_values))
    return [sign * v for v in values if v is not None and math.isfinite(v)]
