"""A study remembers the sweep file that made it; a metric the trainer never logs is refused
before anything trains, and a trial that ran without it fails with one line (``sweeps.identity``,
``sweeps.spec.metric_problems``, ``sweeps.trial``). Stand-in trainers keep these fast; the
commands run as a user runs them, from their own folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from albumgan.gan_core.contract import LOGGED
from albumgan.sweeps.identity import HISTORY_KEY, differences, narrowings
from albumgan.sweeps.spec import SweepError, parse_spec
from albumgan.sweeps.storage import open_storage

# A stand-in trainer: logs kid = lr_g + step / 100 for 3 steps (or, with --no_metric, only its
# loss), then says it completed.
TRAINER = """
import json, os, sys
from pathlib import Path
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
run_dir = Path(os.environ["ALBUMGAN_RUN_DIR"]); run_dir.mkdir(parents=True, exist_ok=True)
with (run_dir / "metrics.jsonl").open("a") as log:
    for step in (1, 2, 3):
        record = {"step": step, "g_loss": 0.5}
        if "no_metric" not in args:
            record["kid"] = float(args.get("lr_g", 0)) + step / 100
        log.write(json.dumps(record) + "\\n")
(run_dir / "status.json").write_text(json.dumps({"state": "completed", "step": 3}))
"""


@pytest.fixture
def user(tmp_path) -> Path:
    """A user's folder with the stand-in trainer in it."""
    (tmp_path / "fake_train.py").write_text(TRAINER)
    return tmp_path


def _write(folder: Path, sweep: dict, name: str = "mine.yaml") -> Path:
    path = folder / name
    path.write_text("# my sweep\n" + yaml.safe_dump(sweep))
    return path


def _sweep(**changes) -> dict:
    sweep = {
        "name": "mine",
        "program": "fake_train.py",
        "method": "grid",
        "metric": {"name": "kid", "goal": "minimize"},
        "parameters": {"lr_g": {"values": [0.001, 0.002]}, "steps": {"value": 80}},
    }
    sweep.update(changes)
    return sweep


def _albumgan(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "albumgan.experiments.cli", *args],
        cwd=folder, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _study(folder: Path, name: str = "mine") -> optuna.Study:
    storage = open_storage(str(folder / "runs" / name / "optuna.journal"), create=False)
    return optuna.load_study(study_name=name, storage=storage)


def test_a_changed_sweep_file_is_refused_naming_what_changed(user):
    path = _write(user, _sweep())
    first = _albumgan(user, "sweep", "run", path.name)
    assert first.returncode == 0, first.stderr
    # A line per trial as it starts and ends, then where the study is and what reads it.
    lines = first.stdout.splitlines()
    assert "trial 0 started: lr_g=0.001 (" in first.stdout
    assert "trial 0 complete: kid 0.031  lr_g=0.001" in lines
    assert "trial 1 complete: kid 0.032  lr_g=0.002" in lines
    assert "storage: runs/mine/optuna.journal (study mine)" in lines
    assert "next: albumgan report sweep --study mine" in lines
    study = _study(user)
    stored = dict(study.user_attrs)
    assert stored["metric"] == "kid" and study.metric_names == ["kid"]  # optuna-dashboard's axis
    # Comments, key order and YAML spelling are not a change: the same study, nothing re-run.
    path.write_text(yaml.safe_dump(_sweep(), sort_keys=False, default_flow_style=True))
    again = _albumgan(user, "sweep", "run", path.name)
    assert again.returncode == 0 and "started" not in again.stdout, again.stdout

    for edit, change in (
        ({"parameters": {"lr_g": {"values": [0.001, 0.002]}, "steps": {"value": 400}}},
         "steps: 80 -> 400"),
        ({"metric": {"name": "fid", "goal": "minimize"}}, "optimizes kid, this file fid"),
    ):  # fmt: skip
        _write(user, _sweep(**edit))
        refused = _albumgan(user, "sweep", "run", path.name)
        assert refused.returncode == 2, refused.stdout
        (line,) = refused.stderr.splitlines()
        assert change in line and "--study NAME" in line, line
        assert "--extend" in line or "optimizes" in line
        assert "started" not in refused.stdout
        assert dict(_study(user).user_attrs) == stored  # nothing rewritten
    # The ways on: a new study beside the old one.
    _write(user, _sweep(parameters={"lr_g": {"values": [0.001, 0.002]}, "steps": {"value": 400}}))
    new = _albumgan(user, "sweep", "run", path.name, "--study", "mine400")
    assert new.returncode == 0, new.stderr
    assert len(_study(user, "mine400").trials) == 2 and len(_study(user).trials) == 2


def test_extend_adds_trials_when_only_the_search_space_widened(user):
    narrow = {"lr_g": {"min": 0.001, "max": 0.002}, "steps": {"value": 80}}
    path = _write(user, _sweep(method="random", run_cap=2, parameters=narrow))
    assert _albumgan(user, "sweep", "run", path.name).returncode == 0
    wide = {"lr_g": {"min": 0.0005, "max": 0.003}, "steps": {"value": 80}}
    _write(user, _sweep(method="random", run_cap=4, parameters=wide))
    refused = _albumgan(user, "sweep", "run", path.name)
    assert refused.returncode == 2 and "run_cap: 2 -> 4" in refused.stderr
    assert "lr_g.min: 0.001 -> 0.0005" in refused.stderr and "--extend" in refused.stderr
    extended = _albumgan(user, "sweep", "run", path.name, "--extend")
    assert extended.returncode == 0, extended.stderr
    study = _study(user)
    assert len(study.trials) == 4 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert len(study.user_attrs[HISTORY_KEY]) == 2 and study.user_attrs["metric"] == "kid"
    # --extend with a change that is not a widening: refused, saying which.
    _write(user, _sweep(method="random", run_cap=4, parameters={**wide, "steps": {"value": 9}}))
    refused = _albumgan(user, "sweep", "run", path.name, "--extend")
    assert refused.returncode == 2 and "--extend" in refused.stderr
    assert "steps:" in refused.stderr and len(_study(user).trials) == 4


def test_what_counts_as_widening():
    old = _sweep(method="bayes", run_cap=10, parameters={
        "lr_g": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-3},
        "batch_size": {"values": [8, 16]},
    })  # fmt: skip
    wider = json.loads(json.dumps(old))
    wider["parameters"]["lr_g"].update(min=5e-5, max=2e-3)
    wider["run_cap"] = 20
    assert narrowings(old, wider) == []
    assert differences(old, wider) == [
        "lr_g.max: 0.001 -> 0.002", "lr_g.min: 0.0001 -> 5e-05", "run_cap: 10 -> 20",
    ]  # fmt: skip
    for change, reason in (
        (lambda s: s["parameters"]["lr_g"].update(max=5e-4), "narrower"),
        (lambda s: s["parameters"]["lr_g"].update(distribution="uniform"), "distribution"),
        (lambda s: s["parameters"]["batch_size"].update(values=[8, 16, 32]), "choices"),
        (lambda s: s["parameters"].update(beta1={"value": 0.5}), "a new parameter"),
        (lambda s: s.update(run_cap=5), "fewer trials"),
        (lambda s: s.update(method="random"), "method"),
    ):
        edited = json.loads(json.dumps(old))
        change(edited)
        (problem,) = narrowings(old, edited)
        assert reason in problem, problem


def test_a_metric_the_trainer_never_logs_is_refused_naming_what_it_logs(user):
    steps = {"steps": {"value": 10}}
    ours = {"program": "experiments/train.py", "method": "grid", "parameters": steps}
    with pytest.raises(SweepError) as info:
        parse_spec({**ours, "metric": {"name": "val_loss"}}, "s.yaml")
    assert "'val_loss' is not logged" in str(info.value)
    assert ", ".join(LOGGED) in str(info.value)
    # A score needs evaluations: eval_every > 0 in every run (the default, 0, is off).
    for parameters, verdict in (
        ({}, "eval_every 0 (the default: off)"),
        ({"eval_every": {"values": [0, 100]}}, "eval_every 0, 100"),
        ({"eval_every": {"value": 100}}, None),
    ):
        spec = {**ours, "metric": {"name": "kid"}, "parameters": {**steps, **parameters}}
        if verdict is None:
            assert parse_spec(spec).metric == "kid"
            continue
        with pytest.raises(SweepError) as info:
            parse_spec(spec)
        assert f"eval_every > 0, and this sweep's runs have {verdict}" in str(info.value)
    assert parse_spec({**ours, "metric": {"name": "g_loss"}}).metric == "g_loss"  # every log
    # `sweep validate` lists what the trainer logs; another program's metric is not checked.
    path = _write(
        user,
        {**ours, "metric": {"name": "kid"}, "parameters": {**steps, "eval_every": {"value": 5}}},
    )
    checked = _albumgan(user, "sweep", "validate", path.name)
    assert checked.returncode == 0 and f"logs: {', '.join(LOGGED)}" in checked.stdout
    path = _write(user, _sweep(metric={"name": "val_loss"}))
    other = _albumgan(user, "sweep", "validate", path.name)
    assert other.returncode == 0 and "metric val_loss: not checked" in other.stdout


def test_a_trial_whose_run_never_logged_the_metric_fails_in_one_line(user):
    sweep = _sweep(parameters={"lr_g": {"value": 0.001}, "no_metric": {"value": 1}})
    path = _write(user, sweep)
    proc = _albumgan(user, "sweep", "run", path.name)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    (trial,) = _study(user).trials
    assert (
        trial.state.name == "FAIL" and trial.user_attrs["state"] == "completed without the metric"
    )
    reason = trial.user_attrs["reason"]
    assert reason.startswith("its run completed without logging kid (metrics.jsonl has g_loss)")
    assert f"trial 0 fail: {reason}" in proc.stdout
    status = _albumgan(user, "sweep", "status")  # the only study under runs/
    assert status.returncode == 0 and "completed without the metric" in status.stdout


def test_reading_commands_find_the_only_study(user):
    path = _write(user, _sweep(parameters={"lr_g": {"value": 0.001}}))
    assert _albumgan(user, "sweep", "run", path.name).returncode == 0
    status = _albumgan(user, "sweep", "status")
    assert status.returncode == 0 and "lr_g" not in status.stderr, status.stderr
    assert "0.031 COMPLETE" in status.stdout
    report = _albumgan(user, "report", "sweep", "--no-run-reports")
    assert report.returncode == 0, report.stderr
    assert (user / "runs" / "mine" / "report" / "index.html").is_file()
    named = _albumgan(user, "sweep", "status", "--study", "mine")
    assert named.returncode == 0
    # Two studies: the commands say which there are instead of guessing.
    assert _albumgan(user, "sweep", "run", path.name, "--study", "other").returncode == 0
    both = _albumgan(user, "sweep", "status")
    assert both.returncode == 2 and "2 study journals" in both.stderr
    assert "runs/mine/optuna.journal" in both.stderr and "runs/other/optuna.journal" in both.stderr
