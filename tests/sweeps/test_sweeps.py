"""Sweep files, their Optuna translation, and real studies on a journal file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from experiments.train import parse_args
from sweeps.runner import open_storage, run_sweep
from sweeps.spec import SweepError, decode, distribution, load_spec, parse_spec, to_argv

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "sweeps" / "smoke.yaml"


def _spec(parameters: dict, method: str = "random", **extra) -> dict:
    return {
        "method": method,
        "metric": {"name": "kid", "goal": "minimize"},
        "parameters": parameters,
        **extra,
    }


def test_translation_table():
    spec = parse_spec(
        _spec(
            {
                "batch_size": {"values": [16, 32]},
                "noise_shape": {"values": [[1, 1, 100], [1, 1, 128]]},
                "steps": {"min": 100, "max": 500},
                "beta1": {"min": 0.1, "max": 0.9},
                "lr_g": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-3},
                "label_noise": {"distribution": "q_uniform", "min": 0.0, "max": 0.3, "q": 0.05},
                "ema": {"value": False},
            }
        )
    )
    got = {p.name: distribution(p) for p in spec.swept}
    assert got["batch_size"] == CategoricalDistribution([16, 32])
    assert got["noise_shape"] == CategoricalDistribution(["[1, 1, 100]", "[1, 1, 128]"])
    assert got["steps"] == IntDistribution(100, 500)
    assert got["beta1"] == FloatDistribution(0.1, 0.9)
    assert got["lr_g"] == FloatDistribution(1e-5, 1e-3, log=True)
    assert got["label_noise"] == FloatDistribution(0.0, 0.3, step=0.05)
    assert spec.fixed == {"ema": False}
    assert decode("[1, 1, 128]") == [1, 1, 128]


def test_argv_is_what_wandb_agent_builds_and_the_trainer_reads():
    values = {
        "noise_shape": [1, 1, 100],
        "ema": False,
        "batch_size": 32,
        "lr_d": 0.0002,
        "diffaugment": "color,cutout",
    }
    argv = to_argv(values)
    assert argv == [
        "--noise_shape=[1, 1, 100]",
        "--ema=False",
        "--batch_size=32",
        "--lr_d=0.0002",
        "--diffaugment=color,cutout",
    ]
    cfg, _ = parse_args(argv)
    assert (cfg.noise_shape, cfg.ema, cfg.batch_size, cfg.lr_d) == ((1, 1, 100), 0.0, 32, 0.0002)


def test_shipped_sweeps_validate():
    for name in ("smoke", "seed_grid", "modern_bayes"):
        spec = load_spec(ROOT / "sweeps" / f"{name}.yaml")
        assert spec.metric == "kid" and spec.goal == "minimize"
    grid = load_spec(ROOT / "sweeps" / "seed_grid.yaml")
    assert {p.name for p in grid.swept} == {"batch_size", "noise_shape", "dataset", "steps"}
    assert load_spec(ROOT / "sweeps" / "modern_bayes.yaml").early_terminate["type"] == "hyperband"


def test_validation_names_every_problem(tmp_path):
    bad = _spec(
        {
            "learning_rate": {"values": [1]},
            "batch_size": {"min": 8, "max": 4},
            "precision": {"values": ["fp8"]},
        },
        method="grid",
        early_terminate={"type": "x"},
    )
    with pytest.raises(SweepError) as info:
        parse_spec(bad, "bad.yaml")
    text = str(info.value)
    for needle in (
        "parameters.learning_rate: not a training config key",
        "min must be < max",
        "precision: expected one of",
        "early_terminate.type",
    ):
        assert needle in text
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "sweep", "validate", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "learning_rate" in proc.stderr


def _env(cache_dir: str) -> dict[str, str]:
    return {**os.environ, "ALBUMGAN_CACHE": cache_dir, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _trials(storage: Path, study: str):
    return optuna.load_study(
        study_name=study, storage=open_storage(str(storage), study, None)
    ).trials


def test_two_workers_on_a_journal_file_and_a_killed_worker(cache_dir, tmp_path):
    runs = tmp_path / "runs"
    journal = tmp_path / "study.journal"
    cmd = [
        sys.executable,
        "-m",
        "experiments.cli",
        "sweep",
        "run",
        str(SMOKE),
        "--study",
        "s",
        "--storage",
        str(journal),
        "--runs-dir",
        str(runs),
    ]
    # A worker killed mid-trial: its trial stays RUNNING in the journal.
    victim = subprocess.Popen(cmd, cwd=ROOT, env=_env(cache_dir))
    deadline = time.time() + 120
    while time.time() < deadline and not list(runs.glob("s/trial-*/status.json")):
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    # Re-running with two workers finishes the study.
    proc = subprocess.run(
        [*cmd, "--workers", "2"],
        cwd=ROOT,
        env=_env(cache_dir),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    trials = _trials(journal, "s")
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    grid_points = {(t.params["batch_size"], t.params["noise_shape"]) for t in complete}
    summary = [(t.number, t.state.name, t.params, t.user_attrs.get("state")) for t in trials]
    assert len(complete) == 4 and len(grid_points) == 4, summary  # each config recorded once
    for t in complete:
        assert Path(t.user_attrs["run_dir"]).is_dir() and t.user_attrs["state"] == "completed"
        assert t.value == pytest.approx(t.user_attrs["kid"])
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert all(t.user_attrs.get("state") == "worker died" for t in failed) and len(failed) <= 1
    skipped = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert all(t.user_attrs["state"] == "duplicate grid point (skipped)" for t in skipped)
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]


def test_pruning_and_a_diverging_trial(cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ALBUMGAN_CACHE", cache_dir)
    sweep = yaml.safe_load(SMOKE.read_text())
    sweep.update(method="grid", early_terminate={"type": "hyperband", "min_iter": 1, "eta": 2})
    sweep["parameters"] = {
        **sweep["parameters"],
        "steps": {"value": 60},
        "eval_every": {"value": 10},
        "log_every": {"value": 10},
        "batch_size": {"value": 4},
        "noise_shape": {"value": [1, 1, 16]},
        "lr_g": {"values": [0.0002, 0.0003, 0.0005, 1e30]},
    }
    path = tmp_path / "prune.yaml"
    path.write_text(yaml.safe_dump(sweep))
    study = run_sweep(path, "p", str(tmp_path / "p.journal"), runs_dir=tmp_path / "runs")
    states = {t.params["lr_g"]: t for t in study.trials}
    diverged = states[1e30]
    assert diverged.state == optuna.trial.TrialState.FAIL
    assert diverged.user_attrs["state"] == "diverged"
    others = [t for lr, t in states.items() if lr != 1e30]
    assert all(
        t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        for t in others
    )
    assert any(t.state == optuna.trial.TrialState.COMPLETE for t in others)
    for t in others:  # intermediate KID values reached Optuna
        assert t.intermediate_values and min(t.intermediate_values) == 10


# A stand-in trainer with a deterministic metric: KID = 1000 * lr_g + 1 / step, one evaluation
# every 0.3 s for 10 steps; SIGTERM marks it interrupted, as the real trainer does.
FAKE_TRAINER = """
import json, signal, sys, time
from pathlib import Path
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
run_dir = Path(args["run-dir"]); run_dir.mkdir(parents=True, exist_ok=True)
def status(state, step):
    (run_dir / "status.json").write_text(json.dumps({"state": state, "step": step}))
step = 0
def stop(*_):
    status("interrupted", step); sys.exit(143)
signal.signal(signal.SIGTERM, stop)
for step in range(1, 11):
    time.sleep(0.3)
    kid = 1000 * float(args["lr_g"]) + 1 / step
    with (run_dir / "metrics.jsonl").open("a") as log:
        log.write(json.dumps({"step": step, "kid": kid}) + "\\n")
    status("running", step)
status("completed", 10)
"""


def test_hyperband_prunes_on_a_deterministic_metric(tmp_path):
    program = tmp_path / "fake_train.py"
    program.write_text(FAKE_TRAINER)
    sweep = _spec(
        {"lr_g": {"values": [0.001, 0.002, 0.003, 0.004]}, "eval_every": {"value": 1}},
        method="grid",
        program=str(program),
        early_terminate={"type": "hyperband", "min_iter": 1, "eta": 3},
    )
    path = tmp_path / "det.yaml"
    path.write_text(yaml.safe_dump(sweep))
    study = run_sweep(path, "det", str(tmp_path / "det.journal"), runs_dir=tmp_path / "runs")
    by_lr = {t.params["lr_g"]: t for t in study.trials}
    order = [t.params["lr_g"] for t in sorted(study.trials, key=lambda t: t.number)]
    pruned = [lr for lr, t in by_lr.items() if t.state == optuna.trial.TrialState.PRUNED]
    # Successive halving at steps 1, 3, 9: a trial is stopped at a rung where it is not in the
    # best third of what earlier trials reported there (the best one, with fewer than 3 values).
    expected = [lr for i, lr in enumerate(order) if any(o < lr for o in order[:i])]
    assert pruned == sorted(expected) and pruned, order
    assert by_lr[0.001].state == optuna.trial.TrialState.COMPLETE
    assert by_lr[0.001].value == pytest.approx(1.0 + 1 / 10)
    for lr in pruned:  # stopped at its first rung (step 1) by SIGTERM, well before step 10
        trial = by_lr[lr]
        assert max(trial.intermediate_values) < 10, trial.intermediate_values
        status = json.loads((Path(trial.user_attrs["run_dir"]) / "status.json").read_text())
        assert status["state"] == "interrupted" and trial.user_attrs["state"] == "pruned"
