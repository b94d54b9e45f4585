"""Which differences are real: runs that differ only in ``seed`` are replicates of one config.

    groups = group_runs(rows)          # rows: {"params": {...}, "value": float | None, ...}
    judged = judge(groups, goal)        # ranked best first, each with a verdict against the best

Per group: n, mean, standard deviation and a 95% **t interval** for the mean
(mean ± t(0.975, n-1) · sd / sqrt(n)). A group beside the reference (the best group in a sweep,
the first one given in a comparison) is "better" or "worse" when **Welch's t-test** (unequal
variances, two-sided) gives p < 0.05, else "within seed noise". For the closest call left
within seed noise, ``seeds_needed`` says how many seeds per config a two-sample t-test would
need to tell that difference at the observed spread (80% power, α = 0.05). A config run with one
seed has no spread: nothing can be told, and the verdict says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from albumgan.gan_core.contract import REPLICATE_KEY

ALPHA = 0.05
POWER = 0.8
NO_REPLICATES = "one seed: cannot be told from seed noise"


@dataclass
class Group:
    """The runs of one configuration (its values apart from ``seed``)."""

    params: dict[str, Any]
    values: list[float]  # one per seed that gave a finite value
    seeds: list[Any]
    rows: list[dict] = field(default_factory=list)
    verdict: str = ""
    p_value: float | None = None
    difference: float | None = None  # this group's mean minus the reference's

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    @property
    def sd(self) -> float | None:
        return float(np.std(self.values, ddof=1)) if self.n > 1 else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% t interval of the mean; None below two seeds."""
        if self.n < 2:
            return None
        half = stats.t.ppf(0.975, self.n - 1) * self.sd / math.sqrt(self.n)
        return (self.mean - half, self.mean + half)


def config_key(params: dict[str, Any]) -> str:
    return json.dumps(
        {k: v for k, v in params.items() if k != REPLICATE_KEY}, sort_keys=True, default=str
    )


def group_runs(rows: list[dict]) -> list[Group]:
    """Rows (``params``, ``value``; a row of a replicated trial may carry ``replicates``: one
    ``{"seed", "value"}`` per seed) grouped by config, in order of first appearance."""
    groups: dict[str, Group] = {}
    for row in rows:
        params = row["params"]
        key = config_key(params)
        group = groups.setdefault(
            key, Group({k: v for k, v in params.items() if k != REPLICATE_KEY}, [], [])
        )
        group.rows.append(row)
        replicates = row.get("replicates") or [
            {"seed": params.get(REPLICATE_KEY), "value": row.get("value")}
        ]
        for replicate in replicates:
            value = replicate.get("value")
            if value is not None and math.isfinite(value):
                group.values.append(float(value))
                group.seeds.append(replicate.get("seed"))
    return list(groups.values())


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided p-value of Welch's t-test; None when either side has fewer than two values.
    Two sides without any spread (the test is undefined) give 0 when their means differ, else 1."""
    if len(a) < 2 or len(b) < 2:
        return None
    if np.std(a) == 0 and np.std(b) == 0:
        return 0.0 if np.mean(a) != np.mean(b) else 1.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def seeds_needed(a: Group, b: Group) -> int | None:
    """Seeds per config for a two-sample t-test to tell ``a`` from ``b`` at 80% power
    (α = 0.05, normal approximation) if the true difference and spread are the observed ones."""
    if a.n < 2 or b.n < 2 or a.mean == b.mean:
        return None
    spread = math.sqrt((a.sd**2 + b.sd**2) / 2)
    z = stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(POWER)
    return max(2, math.ceil(2 * (z * spread / abs(a.mean - b.mean)) ** 2))


@dataclass
class Judgement:
    groups: list[Group]  # ranked (sweep) or as given (comparison), reference first
    replicated: bool  # some config ran with two seeds or more
    closest: Group | None = None  # the closest call left within seed noise
    seeds_needed: int | None = None


def judge(groups: list[Group], goal: str = "minimize", rank: bool = True) -> Judgement:
    """Verdicts of every group against the reference: the best mean (``rank``) or the first
    group (a comparison's baseline)."""
    scored = [g for g in groups if g.values]
    if rank:
        sign = -1.0 if goal == "maximize" else 1.0
        scored.sort(key=lambda g: sign * g.mean)
    unscored = [g for g in groups if not g.values]
    for group in unscored:
        group.verdict = "no value"
    replicated = any(g.n > 1 for g in scored)
    if not scored:
        return Judgement(unscored, replicated)
    reference = scored[0]
    reference.verdict = "best" if rank else "baseline"
    closest, closest_gap = None, math.inf
    for group in scored[1:]:
        group.difference = group.mean - reference.mean
        group.p_value = welch_p(group.values, reference.values)
        if group.p_value is None:
            group.verdict = NO_REPLICATES
            continue
        if group.p_value >= ALPHA:
            group.verdict = "within seed noise"
            if abs(group.difference) < closest_gap:
                closest, closest_gap = group, abs(group.difference)
            continue
        lower_is_better = goal != "maximize"
        better = (group.difference < 0) == lower_is_better
        group.verdict = "better" if better else "worse"
    needed = seeds_needed(closest, reference) if closest else None
    return Judgement([*scored, *unscored], replicated, closest, needed)
