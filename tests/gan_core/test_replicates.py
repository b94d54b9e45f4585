"""Seeds as replicates: grouping, intervals and verdicts against a direct computation, and a
random sweep that runs every seed of each configuration."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import optuna
import pytest
import yaml
from scipy import stats

from albumgan.gan_core.metrics.replicates import NO_REPLICATES, group_runs, judge, seeds_needed

# A stand-in trainer's KID: a known function of the config plus seeded noise of known size.
BASE = {16: 1.00, 32: 1.50, 48: 1.01}
NOISE = 0.05


def _kid(batch: int, seed: int) -> float:
    return BASE[batch] + random.Random(seed * 1000 + batch).gauss(0, NOISE)


def _rows(batches=(16, 32, 48), seeds=range(6)) -> list[dict]:
    return [
        {"params": {"batch_size": b, "lr_g": 0.001, "seed": s}, "value": _kid(b, s)}
        for b in batches
        for s in seeds
    ]


def test_groups_means_and_intervals_match_a_direct_computation():
    groups = group_runs(_rows())
    assert [g.params for g in groups] == [{"batch_size": b, "lr_g": 0.001} for b in (16, 32, 48)]
    for group, batch in zip(groups, (16, 32, 48)):
        direct = np.array([_kid(batch, s) for s in range(6)])
        assert group.n == 6 and group.seeds == list(range(6))
        assert group.mean == pytest.approx(direct.mean())
        assert group.sd == pytest.approx(direct.std(ddof=1))
        half = stats.t.ppf(0.975, 5) * direct.std(ddof=1) / math.sqrt(6)
        assert group.interval == pytest.approx((direct.mean() - half, direct.mean() + half))


def test_a_large_effect_is_flagged_and_a_zero_effect_is_within_seed_noise():
    judgement = judge(group_runs(_rows()), "minimize")
    verdicts = {g.params["batch_size"]: g for g in judgement.groups}
    best = judgement.groups[0]
    assert best.verdict == "best" and best.params["batch_size"] in (16, 48)
    assert verdicts[32].verdict == "worse" and verdicts[32].p_value < 1e-6  # 0.5 = 10 sd
    other = verdicts[48 if best.params["batch_size"] == 16 else 16]
    assert other.verdict == "within seed noise"
    direct = stats.ttest_ind(other.values, best.values, equal_var=False).pvalue
    assert other.p_value == pytest.approx(direct)
    assert judgement.closest is other and judgement.seeds_needed > 6
    assert judgement.seeds_needed == seeds_needed(other, best)
    # maximize: the same numbers, the order turned round
    flipped = judge(group_runs(_rows()), "maximize")
    assert flipped.groups[0].params["batch_size"] == 32
    assert {g.verdict for g in flipped.groups[1:]} == {"worse"}


def test_a_comparison_judges_against_its_baseline_and_one_seed_tells_nothing():
    baseline_last = judge(group_runs(_rows(batches=(32, 16))), "minimize", rank=False)
    assert [g.verdict for g in baseline_last.groups] == ["baseline", "better"]
    single = judge(group_runs(_rows(seeds=[0])), "minimize")
    assert not single.replicated
    assert {g.verdict for g in single.groups[1:]} == {NO_REPLICATES}


STAND_IN = """
import json, os, random, sys
from pathlib import Path
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
batch, seed = int(args["batch_size"]), int(args["seed"])
kid = {16: 1.00, 32: 1.50, 48: 1.01}[batch] + random.Random(seed * 1000 + batch).gauss(0, 0.05)
run_dir = Path(os.environ["ALBUMGAN_RUN_DIR"])
with (run_dir / "metrics.jsonl").open("a") as log:
    log.write(json.dumps({"step": 1, "kid": kid + 1}) + "\\n")
    log.write(json.dumps({"step": 2, "kid": kid}) + "\\n")
(run_dir / "status.json").write_text(json.dumps({"state": "completed", "step": 2}))
"""


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_random_and_bayes_run_every_seed_of_a_configuration(tmp_path, method):
    from albumgan.sweeps.runner import run_sweep

    program = tmp_path / "stand_in.py"
    program.write_text(STAND_IN)
    sweep = {
        "method": method,
        "program": str(program),
        "metric": {"name": "kid", "goal": "minimize"},
        "run_cap": 3,
        "parameters": {"batch_size": {"values": [16, 32, 48]}, "seed": {"values": [0, 1, 2]}},
    }
    path = tmp_path / "rep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    study = run_sweep(path, "rep", str(tmp_path / "rep.journal"), runs_dir=tmp_path / "runs")
    assert len(study.trials) == 3  # one trial per configuration, not per seed
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs
        assert "seed" not in trial.params  # the replicate axis is not sampled
        batch = trial.user_attrs["params"]["batch_size"]
        replicates = trial.user_attrs["replicates"]
        assert [r["seed"] for r in replicates] == [0, 1, 2]
        kids = [_kid(batch, s) for s in (0, 1, 2)]
        assert [r["value"] for r in replicates] == pytest.approx(kids)
        assert trial.value == pytest.approx(np.mean(kids))
        assert trial.intermediate_values[1] == pytest.approx(np.mean(kids) + 1)  # mean reported
        for replicate in replicates:  # each seed in its own run directory under the trial
            run_dir = replicate["run_dir"]
            assert run_dir == f"{trial.user_attrs['run_dir']}/seed-{replicate['seed']}"
            assert json.loads(open(f"{run_dir}/status.json").read())["state"] == "completed"


def test_a_grid_of_a_stand_in_trainer_is_grouped_as_computed_directly(tmp_path):
    """Grid over batch size x seed: one trial per run; the report's groups are the direct
    means, sds and t intervals of the stand-in's known values, with the right verdicts."""
    from albumgan.reports.sweep_report import trial_rows
    from albumgan.sweeps.runner import run_sweep

    program = tmp_path / "stand_in.py"
    program.write_text(STAND_IN)
    sweep = {
        "method": "grid",
        "program": str(program),
        "metric": {"name": "kid", "goal": "minimize"},
        "parameters": {"batch_size": {"values": [16, 32, 48]}, "seed": {"values": [0, 1, 2, 3]}},
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(sweep))
    study = run_sweep(path, "g", str(tmp_path / "g.journal"), runs_dir=tmp_path / "runs")
    assert len(study.trials) == 12
    rows = [r for r in trial_rows(study, "kid") if r["value"] is not None]
    judgement = judge(group_runs(rows), "minimize")
    by_batch = {g.params["batch_size"]: g for g in judgement.groups}
    for batch, group in by_batch.items():
        direct = np.array([_kid(batch, s) for s in range(4)])
        assert sorted(group.seeds) == [0, 1, 2, 3]
        assert group.mean == pytest.approx(direct.mean())
        half = stats.t.ppf(0.975, 3) * direct.std(ddof=1) / 2
        assert group.interval == pytest.approx((direct.mean() - half, direct.mean() + half))
    assert by_batch[32].verdict == "worse"
    assert {by_batch[16].verdict, by_batch[48].verdict} == {"best", "within seed noise"}
