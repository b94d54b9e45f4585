"""Sweep files, their Optuna translation, and real studies on a journal file."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from albumgan.experiments.train import parse_args
from albumgan.gan_core.contract import TrialState
from albumgan.sweeps.command import build_argv
from albumgan.sweeps.runner import THREAD_VARIABLES, run_sweep, thread_limits
from albumgan.sweeps.spec import SweepError, decode, load_spec, parse_spec, suggest
from albumgan.sweeps.storage import open_storage

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "sweeps" / "smoke.yaml"


def _spec(parameters: dict, method: str = "random", **extra) -> dict:
    """A sweep file; with albumgan's trainer (no ``program``), it evaluates every 10 steps, so
    that its metric, kid, is logged."""
    ours = extra.get("program", "experiments/train.py") == "experiments/train.py"
    evaluated = {"eval_every": {"value": 10}} if ours else {}
    return {
        "method": method,
        "metric": {"name": "kid", "goal": "minimize"},
        "parameters": {**evaluated, **parameters},
        **extra,
    }


def test_translation_table():
    """Forms Optuna has are handed to it as they are; q_uniform is W&B's (a quantile)."""
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
    study = optuna.create_study()
    trial = study.ask()
    config = suggest(trial, spec)
    got = {name: d for name, d in trial.distributions.items()}
    assert got["batch_size"] == CategoricalDistribution([16, 32])
    assert got["noise_shape"] == CategoricalDistribution(["[1, 1, 100]", "[1, 1, 128]"])
    assert got["steps"] == IntDistribution(100, 500)
    assert got["beta1"] == FloatDistribution(0.1, 0.9)
    assert got["lr_g"] == FloatDistribution(1e-5, 1e-3, log=True)
    assert got["label_noise.u"] == FloatDistribution(0.0, 1.0)
    assert config["ema"] is False and isinstance(config["noise_shape"], list)
    assert config["label_noise"] == round(config["label_noise"] / 0.05) * 0.05
    assert spec.fixed == {"eval_every": 10, "ema": False}
    assert decode("[1, 1, 128]") == [1, 1, 128]


def test_argv_is_what_wandb_agent_builds_and_the_trainer_reads(tmp_path):
    values = {
        "noise_shape": [1, 1, 100],
        "ema": False,
        "batch_size": 32,
        "lr_d": 0.0002,
        "diffaugment": "color,cutout",
    }
    argv = build_argv(None, "train.py", values, tmp_path)
    assert argv == [
        "/usr/bin/env",
        sys.executable,
        "train.py",
        "--noise_shape=[1, 1, 100]",
        "--ema=False",
        "--batch_size=32",
        "--lr_d=0.0002",
        "--diffaugment=color,cutout",
    ]
    cfg, _ = parse_args(argv[3:])
    assert (cfg.noise_shape, cfg.ema, cfg.batch_size, cfg.lr_d) == ((1, 1, 100), 0.0, 32, 0.0002)


def test_shipped_sweeps_validate():
    for name in ("smoke", "seed_grid", "modern_bayes", "seed_grid_replicated", "recipe_bayes"):
        spec = load_spec(ROOT / "sweeps" / f"{name}.yaml")
        assert spec.metric == "kid" and spec.goal == "minimize"
    grid = load_spec(ROOT / "sweeps" / "seed_grid.yaml")
    assert {p.name for p in grid.swept} == {"batch_size", "noise_shape", "dataset", "steps"}
    assert load_spec(ROOT / "sweeps" / "modern_bayes.yaml").early_terminate["type"] == "hyperband"
    recipe = load_spec(ROOT / "sweeps" / "recipe_bayes.yaml")
    toolbox = {"loss", "r1_gamma", "d_norm", "augment_p", "ada_target", "lr_g", "lr_d", "ema"}
    assert toolbox | {"g_width", "d_width"} <= {p.name for p in recipe.swept}
    assert recipe.early_terminate["type"] == "hyperband" and recipe.replicate_seeds == (0, 1, 2)


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
        "min 8 is not less than max 4",
        "precision: expected one of",
        "early_terminate.type",
    ):
        assert needle in text
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = subprocess.run(
        [sys.executable, "-m", "albumgan.experiments.cli", "sweep", "validate", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "learning_rate" in proc.stderr


def _env(cache_dir: str) -> dict[str, str]:
    return {**os.environ, "ALBUMGAN_CACHE": cache_dir, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _trials(storage: Path, study: str):
    return optuna.load_study(study_name=study, storage=open_storage(str(storage))).trials


def _running(pid: int) -> bool:
    """Alive and not a zombie (a container's init may never reap orphans)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _statuses(runs: Path) -> dict[Path, dict]:
    found = {}
    for path in runs.glob("*/trial-*/status.json"):
        try:
            found[path.parent] = json.loads(path.read_text())
        except ValueError:
            pass  # being replaced right now
    return found


def test_kill_9_of_a_sweep_parent_then_a_rerun_from_a_users_folder(cache_dir, tmp_path, fake_gpus):
    # A user's folder outside the repository, a sweep file and runs folder relative to it.
    work = tmp_path / "user"
    work.mkdir()
    sweep = yaml.safe_load(SMOKE.read_text())
    sweep["parameters"].update(
        steps={"value": 160}, eval_every={"value": 160}, checkpoint_every={"value": 20},
        log_every={"value": 20}, sample_every={"value": 160},
        # three points for two workers: two running at the kill, one still queued
        batch_size={"values": [4, 6, 8]}, noise_shape={"value": [1, 1, 16]},
    )  # fmt: skip
    (work / "mine.yaml").write_text(yaml.safe_dump(sweep))
    cmd = [sys.executable, "-m", "albumgan.experiments.cli", "sweep", "run", "mine.yaml"]
    cmd += ["--runs-dir", "runs", "--workers", "2"]
    # A machine with 4 GPUs, as nvidia-smi lists them: each worker's trainers get their own.
    env = {**_env(cache_dir), "PATH": f"{fake_gpus(tmp_path, 4)}:{os.environ['PATH']}"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    parent = subprocess.Popen(cmd, cwd=work, env=env, stderr=subprocess.PIPE)
    runs = work / "runs"
    # Each trainer is frozen (SIGSTOP) once it has a checkpoint, so that the first is still
    # mid-run when the second starts, however fast the machine; they go on after the kill.
    frozen: set[int] = set()
    try:
        deadline = time.time() + 180
        while time.time() < deadline and parent.poll() is None and len(frozen) < 2:
            for status in _statuses(runs).values():
                if status["state"] == "running" and status.get("step", 0) >= 20:
                    if status["pid"] not in frozen:
                        os.kill(status["pid"], signal.SIGSTOP)
                        frozen.add(status["pid"])
            time.sleep(0.1)
        assert parent.poll() is None and len(frozen) == 2, _statuses(runs)
        devices = {s["cuda_visible_devices"] for s in _statuses(runs).values()}
        assert devices == {"0", "1"}, _statuses(runs)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    finally:
        parent.kill()
        for pid in frozen:  # the SIGTERM of their parent's death is waiting for them
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    trials = _trials(runs / "smoke" / "optuna.journal", "smoke")
    running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    workers = {t.user_attrs["pid"] for t in running} - {parent.pid}
    trainers = {s["pid"] for s in _statuses(runs).values()}
    assert len(workers) == 1 and len(trainers) == 2
    # Its worker and both trainers end with it: the trainers checkpoint on the way out.
    deadline = time.time() + 30
    while time.time() < deadline and any(_running(p) for p in workers | trainers):
        time.sleep(0.2)
    assert not [p for p in workers | trainers if _running(p)], "orphans left running"
    interrupted = _statuses(runs)
    assert all(s["state"] == "interrupted" for s in interrupted.values()), interrupted

    # The re-run, from the same folder with the same relative paths, finishes every point once.
    proc = subprocess.run(cmd, cwd=work, env=_env(cache_dir), capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = _trials(runs / "smoke" / "optuna.journal", "smoke")
    summary = [(t.number, t.state.name, t.params, t.user_attrs.get("state")) for t in trials]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    points = {t.params["batch_size"] for t in complete}
    assert len(complete) == 3 and len(points) == 3, summary  # each point recorded once
    for t in complete:
        run_dir = Path(t.user_attrs["run_dir"])
        assert run_dir.parent == runs / "smoke" and t.user_attrs["state"] == "completed"
        assert t.value == pytest.approx(t.user_attrs["kid"])
    lost = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(lost) == 2 and all(t.user_attrs["state"] == TrialState.LOST for t in lost), summary
    for t in lost:  # resumed from its checkpoint by the trial that completed its point
        status = json.loads((Path(t.user_attrs["run_dir"]) / "status.json").read_text())
        assert status["state"] == "completed" and status["resumed_from"] >= 20
        assert t.user_attrs["run_dir"] in [c.user_attrs["run_dir"] for c in complete]
    assert len(trials) == 5, summary  # no pruned "duplicate" rows, nothing running or queued
    assert "trials: 3 complete, 2 lost" in proc.stdout


def test_a_trial_waits_for_a_trainer_that_still_holds_its_run_dir(tmp_path):
    program = tmp_path / "fake_train.py"
    program.write_text(FAKE_TRAINER)
    sweep = _spec({"lr_g": {"values": [0.001]}}, method="grid", program=str(program))
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(sweep))
    journal = str(tmp_path / "one.journal")
    run_dir = tmp_path / "runs" / "one" / "trial-0000"
    # A worker died and left its trial RUNNING; its trainer lives on (no parent-death signal
    # on some systems, or started by hand) and holds the run directory for two more seconds.
    study = optuna.create_study(study_name="one", storage=open_storage(journal))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    lost = study.ask()
    lost.suggest_categorical("lr_g", [0.001])
    for key, value in (
        ("pid", int(dead)),
        ("host", socket.gethostname()),
        ("run_dir", str(run_dir)),
        ("grid_point", '{"lr_g": 0.001}'),
    ):
        lost.set_user_attr(key, value)  # fmt: skip
    # While it holds the lock nobody else may write there: it says whether anyone did.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import time; from pathlib import Path; from albumgan.gan_core.rundir import RunLock; "
         f"run = Path({str(run_dir)!r}); lock = RunLock(run).acquire(); print(flush=True); "
         "time.sleep(3); print((run / 'metrics.jsonl').exists(), flush=True)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    holder.stdout.readline()
    study = run_sweep(path, "one", journal, runs_dir=tmp_path / "runs")
    written_while_held = holder.stdout.readline().strip()
    holder.wait()
    assert written_while_held == "False"  # the trial's trainer waited for the lock
    trials = study.trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert trials[0].user_attrs["state"] == TrialState.LOST
    assert trials[1].user_attrs["run_dir"] == str(run_dir)
    assert trials[1].value == pytest.approx(1.0 + 1 / 10)


def test_a_sweep_whose_every_trial_fails_exits_non_zero(tmp_path):
    program = tmp_path / "broken_train.py"
    program.write_text("import sys; sys.exit('no GPU here')\n")
    sweep = _spec({"lr_g": {"values": [0.001, 0.002]}}, method="grid", program=str(program))
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(sweep))
    proc = subprocess.run(
        [sys.executable, "-m", "albumgan.experiments.cli", "sweep", "run", str(path), "--runs-dir",
         str(tmp_path / "runs")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "error: no trial completed (2 fail)" in proc.stderr


def test_validate_names_a_program_that_does_not_exist(tmp_path):
    sweep = _spec({"lr_g": {"values": [0.001]}}, method="grid", program="experiments/trian.py")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(sweep))
    proc = subprocess.run(
        [sys.executable, "-m", "albumgan.experiments.cli", "sweep", "validate", str(path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "program: 'experiments/trian.py' not found" in proc.stderr
    # The bundled trainer is found from any folder, as a pip-installed user runs it.
    ok = _spec({"lr_g": {"values": [0.001]}}, method="grid", program="experiments/train.py")
    path.write_text(yaml.safe_dump(ok))
    proc = subprocess.run(
        [sys.executable, "-m", "albumgan.experiments.cli", "sweep", "validate", str(path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_a_hyperband_sweep_hears_every_evaluation_and_a_diverging_trial_fails(
    cache_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("ALBUMGAN_CACHE", cache_dir)
    sweep = yaml.safe_load(SMOKE.read_text())
    sweep.update(method="grid", early_terminate={"type": "hyperband", "min_iter": 1, "eta": 2})
    sweep["parameters"] = {
        **sweep["parameters"],
        "steps": {"value": 40},
        "eval_every": {"value": 10},
        "log_every": {"value": 10},
        "batch_size": {"value": 4},
        "noise_shape": {"value": [1, 1, 16]},
        # two points: a real trainer reporting every evaluation, and one that diverges (real
        # trainers stopped by hyperband: the JAX part's packed test; its rungs: the test below)
        "lr_g": {"values": [0.0002, 1e30]},
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
import json, os, signal, sys, time
from pathlib import Path
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
run_dir = Path(os.environ["ALBUMGAN_RUN_DIR"]); run_dir.mkdir(parents=True, exist_ok=True)
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


# A stand-in trainer that logs, as its precision, whether the sweep told it its metric and goal.
BEST_ECHO = """
import json, os
from pathlib import Path
run_dir = Path(os.environ["ALBUMGAN_RUN_DIR"]); run_dir.mkdir(parents=True, exist_ok=True)
told = (os.environ.get("ALBUMGAN_BEST_METRIC"), os.environ.get("ALBUMGAN_BEST_GOAL"))
value = 1.0 if told == ("precision", "maximize") else 0.0
(run_dir / "metrics.jsonl").write_text(json.dumps({"step": 1, "precision": value}) + "\\n")
(run_dir / "status.json").write_text(json.dumps({"state": "completed", "step": 1}))
"""


def test_each_trial_is_told_the_sweeps_metric_for_its_best_checkpoint(tmp_path):
    program = tmp_path / "echo.py"
    program.write_text(BEST_ECHO)
    sweep = _spec({"lr_g": {"values": [0.001]}}, method="grid", program=str(program))
    sweep["metric"] = {"name": "precision", "goal": "maximize"}
    path = tmp_path / "best.yaml"
    path.write_text(yaml.safe_dump(sweep))
    study = run_sweep(path, "best", str(tmp_path / "b.journal"), runs_dir=tmp_path / "runs")
    assert [t.value for t in study.trials] == [1.0]


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
    # W&B's bands 1, 3, 9, ... (evaluations): a trial is stopped at a band where it is worse
    # than the value at index floor(n/3) of all n trials' values there (its own included).
    expected = [lr for i, lr in enumerate(order) if any(o < lr for o in order[:i])]
    assert pruned == sorted(expected) and pruned, order
    assert by_lr[0.001].state == optuna.trial.TrialState.COMPLETE
    assert by_lr[0.001].value == pytest.approx(1.0 + 1 / 10)
    for lr in pruned:  # stopped at its first rung (step 1) by SIGTERM, well before step 10
        trial = by_lr[lr]
        assert max(trial.intermediate_values) < 10, trial.intermediate_values
        status = json.loads((Path(trial.user_attrs["run_dir"]) / "status.json").read_text())
        assert status["state"] == "interrupted" and trial.user_attrs["state"] == "pruned"


def test_workers_split_the_cores_between_their_trainers(monkeypatch):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert thread_limits(1) == {}  # one trainer keeps the libraries' own defaults
    assert thread_limits(4) == {name: "4" for name in THREAD_VARIABLES}
    assert thread_limits(32) == {name: "1" for name in THREAD_VARIABLES}
    monkeypatch.setenv("OMP_NUM_THREADS", "8")  # the user's choice stands
    assert "OMP_NUM_THREADS" not in thread_limits(4)


@pytest.mark.parametrize("goal", ["maximize", "minimize"])
def test_leaderboards_follow_the_studys_direction(tmp_path, capsys, goal):
    """`sweep status` and the sweep report rank by `metric.goal`: best first, then the trials
    with no value (failed, diverged) in trial order."""
    from albumgan.reports.sweep_report import trial_rows
    from albumgan.sweeps.cli import main as sweep_main

    journal = str(tmp_path / "goal.journal")
    study = optuna.create_study(study_name="goal", storage=open_storage(journal), direction=goal)
    study.set_user_attr("metric", "precision")
    for value in (0.2, 0.9, None, 0.5, float("nan")):  # nan: Optuna fails the trial, warning
        trial = study.ask()
        # What the trial's runs got, as sweeps.trial records it.
        trial.set_user_attr("params", {"batch_size": trial.suggest_int("batch_size", 8, 128)})
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)
    best_first = [1, 3, 0] if goal == "maximize" else [0, 3, 1]

    assert sweep_main(["status", "--storage", journal, "--study", "goal"]) == 0
    out = capsys.readouterr().out
    table, groups = out.split("\n\n")[0].splitlines(), out.split("\n\n")[1]
    assert "cannot be told from seed noise" in groups  # one seed per configuration
    assert table[0].split()[:2] == ["#", "precision"]
    assert [int(line.split()[0]) for line in table[1:]] == [*best_first, 2, 4]
    assert [row["number"] for row in trial_rows(study, "precision")] == [*best_first, 2, 4]


def test_status_of_a_study_that_is_not_there_names_the_ones_that_are(tmp_path, capsys):
    from albumgan.sweeps.cli import main as sweep_main

    journal = str(tmp_path / "s.journal")
    optuna.create_study(study_name="real", storage=open_storage(journal))
    assert sweep_main(["status", "--storage", journal, "--study", "typo"]) == 2
    assert "studies there: real" in capsys.readouterr().err
    missing = str(tmp_path / "nothing.journal")
    assert sweep_main(["status", "--storage", missing, "--study", "real"]) == 2
    assert "no such journal file" in capsys.readouterr().err
    assert not Path(missing).exists()  # status never creates a storage
