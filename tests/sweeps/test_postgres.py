"""Real studies on the PostgreSQL storage: two workers, resuming, status, and stale heartbeats.

Needs a PostgreSQL server: ``postgres_url`` (tests/sweeps/conftest.py) starts a throw-away one
from the local binaries, or uses ``$ALBUMGAN_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
import pytest
import sqlalchemy
import yaml
from optuna.trial import TrialState

from albumgan.gan_core import contract
from albumgan.gan_core.contract import shown
from albumgan.sweeps.runner import make_sampler, queue_grid
from albumgan.sweeps.spec import load_spec, suggest
from albumgan.sweeps.storage import open_storage

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "sweeps" / "smoke.yaml"


def _sweep(cache_dir: str, *args: str) -> subprocess.CompletedProcess:
    """``albumgan sweep ARGS`` in a subprocess, as a user would run it."""
    proc = subprocess.run(
        [sys.executable, "-m", "albumgan.experiments.cli", "sweep", *args],
        cwd=ROOT,
        env={**os.environ, "ALBUMGAN_CACHE": cache_dir, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _name(prefix: str) -> str:
    """A study name of its own: a server from $ALBUMGAN_TEST_POSTGRES_URL may outlive the run."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _trials(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=url).trials


# Faster, together: the stale-heartbeat test here, the hostile-input test that runs a sweep,
# its status and its report on PostgreSQL, and the journal's two-worker kill -9 test.
@pytest.mark.slow
def test_two_workers_resume_and_status_on_postgresql(postgres_url, cache_dir, tmp_path):
    study, runs = _name("smoke"), tmp_path / "runs"
    run = ["run", str(SMOKE), "--study", study, "--storage", postgres_url, "--runs-dir", str(runs)]
    _sweep(cache_dir, *run, "--workers", "2")
    trials = _trials(postgres_url, study)
    summary = [(t.number, t.state.name, t.params, t.user_attrs.get("state")) for t in trials]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    points = {(t.params["batch_size"], t.params["noise_shape"]) for t in complete}
    assert len(complete) == 4 and len(points) == 4, summary  # each grid point recorded once
    for t in complete:
        assert Path(t.user_attrs["run_dir"]).is_dir() and t.user_attrs["state"] == "completed"
        assert t.value == pytest.approx(t.user_attrs["kid"])
    assert len({t.user_attrs["pid"] for t in complete}) == 2, summary  # both workers ran trials
    # Every grid point was queued once: no other rows (a worker that finds the queue emptied in
    # the same instant opens one UNUSED trial, which no leaderboard shows).
    others = [t for t in trials if t.state != TrialState.COMPLETE]
    assert all(t.user_attrs["state"] == contract.TrialState.UNUSED for t in others), summary
    run_dirs = sorted(runs.glob(f"{study}/trial-*"))

    # Running it again finds every grid point done: nothing is trained twice.
    _sweep(cache_dir, *run, "--workers", "2")
    again = _trials(postgres_url, study)
    assert [t for t in again if t.state == TrialState.COMPLETE] == complete
    assert len(again) == len(trials)  # nothing queued, nothing opened
    assert sorted(runs.glob(f"{study}/trial-*")) == run_dirs

    status = _sweep(cache_dir, "status", "--storage", postgres_url, "--study", study).stdout
    rows = status.split("\n\n")[0].splitlines()  # the trials; configurations follow
    best = min(complete, key=lambda t: t.value)
    assert rows[1].split()[:3] == [str(best.number), shown(best.value), "COMPLETE"], status
    assert len(rows) == 1 + len(complete)
    for t in complete:
        assert f"({t.user_attrs['run_dir']})" in status


@pytest.mark.filterwarnings(
    "ignore:Heartbeat of storage is supposed to be used with Study.optimize"
)
def test_a_trial_with_a_stale_heartbeat_is_failed_and_retried(postgres_url, cache_dir, tmp_path):
    sweep = yaml.safe_load(SMOKE.read_text())
    sweep["parameters"].update(  # one grid point, one evaluation
        batch_size={"values": [4]}, noise_shape={"value": [1, 1, 16]}, steps={"value": 10}
    )
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(sweep))
    spec, study_name = load_spec(path), _name("one")
    # A worker on another machine took the only grid point, then died an hour ago: its trial is
    # RUNNING with an old heartbeat (aged in Optuna's trial_heartbeats table), and no pid or host
    # here says it is dead. Only the heartbeat can tell.
    storage = open_storage(postgres_url)
    study = optuna.create_study(
        study_name=study_name, storage=storage, sampler=make_sampler(spec, 0), direction=spec.goal
    )
    queue_grid(study, spec)
    lost = study.ask()  # pops the queued point, as that worker's sweep did
    suggest(lost, spec)
    assert "grid_point" in lost.user_attrs
    lost.set_user_attr("host", "another-machine")
    lost_run_dir = tmp_path / "runs" / study_name / "trial-0000"  # on storage both machines share
    lost.set_user_attr("run_dir", str(lost_run_dir))
    storage.record_heartbeat(lost._trial_id)
    with storage.engine.begin() as db:
        db.execute(
            sqlalchemy.text(
                "UPDATE trial_heartbeats SET heartbeat = heartbeat - interval '1 hour' "
                "WHERE trial_id = :id"
            ),
            {"id": lost._trial_id},
        )

    run = ["run", str(path), "--study", study_name, "--storage", postgres_url]
    _sweep(cache_dir, *run, "--runs-dir", str(tmp_path / "runs"))
    trials = _trials(postgres_url, study_name)
    summary = [(t.number, t.state.name, t.params, t.system_attrs) for t in trials]
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE], summary
    failed, retried = trials
    assert retried.system_attrs["failed_trial"] == failed.number
    assert retried.params == failed.params == {"batch_size": 4}
    # the retry resumes the lost trial's run directory rather than starting a new one
    assert retried.user_attrs["run_dir"] == str(lost_run_dir)
    assert (lost_run_dir / "status.json").is_file()
    assert retried.user_attrs["state"] == "completed"
    assert retried.user_attrs["host"] != "another-machine"  # run here, by this sweep
