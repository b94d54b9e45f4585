"""Hostile inputs to sweeps: journals cut by a crash or a full disk, machines and trainers that
die, names and files that are not what they say (``sweeps.journal``, ``sweeps.recovery``,
``sweeps.trial``, ``sweeps.spec``). Stand-in trainers keep these fast; commands run as a user
runs them, from their own folder."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
import yaml

from albumgan.sweeps.journal import DAMAGED_SUFFIX

# A stand-in trainer: logs kid = lr_g + step / 100 for 3 steps, then says it completed. With
# --die=N it first dies by signal N (the kernel's OOM killer sends 9) or, with --die=full, ends
# as a trainer does on a full disk; the next start in the same run directory completes.
TRAINER = """
import json, os, signal, sys
from pathlib import Path
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
run_dir = Path(os.environ["ALBUMGAN_RUN_DIR"]); run_dir.mkdir(parents=True, exist_ok=True)
starts = run_dir / "starts"
starts.write_text(starts.read_text() + "x" if starts.exists() else "x")
if args.get("die", "no") != "no" and len(starts.read_text()) == 1:
    if args["die"] == "full":
        (run_dir / "status.json").write_text(json.dumps({"state": "no space", "exit_code": 4}))
        sys.exit(4)
    os.kill(os.getpid(), int(args["die"]))
if os.environ.get("FAKE_SLEEP") and args.get("lr_g") == "0.001":  # a long first trial
    import time; time.sleep(float(os.environ["FAKE_SLEEP"]))
with (run_dir / "metrics.jsonl").open("a") as log:
    for step in (1, 2, 3):
        log.write(json.dumps({"step": step, "kid": float(args.get("lr_g", 0)) + step / 100}))
        log.write("\\n")
(run_dir / "status.json").write_text(json.dumps({"state": "completed", "step": 3}))
"""


@pytest.fixture
def user(tmp_path) -> Path:
    """A user's folder with the stand-in trainer in it."""
    (tmp_path / "fake_train.py").write_text(TRAINER)
    return tmp_path


def _write(folder: Path, points: int = 3, name: str = "mine", **parameters) -> Path:
    sweep = {
        "name": name,
        "program": "fake_train.py",
        "method": "grid",
        "metric": {"name": "kid", "goal": "minimize"},
        "parameters": {
            "lr_g": {"values": [0.001 * (i + 1) for i in range(points)]},
            **{key: {"value": value} for key, value in parameters.items()},
        },
    }
    path = folder / "mine.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def _albumgan(folder: Path, *args: str, **popen) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "albumgan.experiments.cli", *args],
        cwd=folder, capture_output=True, text=True, **{"timeout": 120, **popen},
    )  # fmt: skip


def _journal(folder: Path, name: str = "mine") -> Path:
    return folder / "runs" / name / "optuna.journal"


def _plain_optuna_trials(journal: Path) -> list:
    """The study as Optuna's own journal reader sees it: proof that the file is sound."""
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    return optuna.load_study(study_name="mine", storage=storage).trials


# --- 1: a journal cut by a crash, or written on a full disk -------------------------------------
@pytest.mark.parametrize(
    "tail", [b'{"op_code":6,"worker_id":"x","trial_id":0,"us', b"\x00\x00garbage\n"]
)
def test_a_journal_with_a_damaged_tail_is_read_to_its_last_record_and_repaired(user, tail):
    path = _write(user)
    first = _albumgan(user, "sweep", "run", path.name, "--n-trials", "1")
    assert first.returncode == 0, first.stderr
    journal = _journal(user)
    good = journal.read_bytes()
    with journal.open("ab") as handle:  # what a crash in the middle of an append leaves
        handle.write(tail)
    status = _albumgan(user, "sweep", "status")
    assert status.returncode == 0, status.stderr
    (warning,) = status.stderr.splitlines()
    assert f"damaged tail ({len(tail)} bytes after byte {len(good)})" in warning, warning
    assert "trial" in status.stdout and "complete" in status.stdout
    # The next write repairs first: the tail moved aside, nothing after it lost.
    rest = _albumgan(user, "sweep", "run", path.name)
    assert rest.returncode == 0, rest.stderr
    assert "moved to" in rest.stderr and "Traceback" not in rest.stderr
    assert (journal.parent / (journal.name + DAMAGED_SUFFIX)).read_bytes().startswith(tail)
    assert journal.read_bytes().startswith(good)
    trials = _plain_optuna_trials(journal)  # Optuna's own reader: no decode error anywhere
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    again = _albumgan(user, "sweep", "status")
    assert again.returncode == 0 and again.stderr == "", again.stderr


def test_a_full_disk_while_writing_the_journal_is_one_line_and_loses_nothing(user):
    path = _write(user)
    assert _albumgan(user, "sweep", "run", path.name, "--n-trials", "1").returncode == 0
    journal = _journal(user)
    size = journal.stat().st_size
    limit = size + 300  # room for a record or two, not for a trial

    def small_disk() -> None:  # every file this process writes stops at `limit` bytes
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    full = _albumgan(user, "sweep", "run", path.name, preexec_fn=small_disk)
    assert full.returncode == 1, (full.stdout, full.stderr)
    lines = full.stderr.splitlines()
    assert lines and lines[-1].startswith("error: cannot write the journal"), full.stderr
    assert "Traceback" not in full.stderr
    assert journal.stat().st_size <= limit
    _plain_optuna_trials(journal)  # still readable, by Optuna's own reader too
    # Space again: the same command goes on; nothing was lost.
    after = _albumgan(user, "sweep", "run", path.name)
    assert after.returncode == 0, after.stderr
    states = [t.state.name for t in _plain_optuna_trials(journal)]
    assert states.count("COMPLETE") == 3, states


def test_a_file_that_is_not_a_journal_is_refused_in_one_line_and_left_alone(user):
    path = _write(user)
    for command in (("sweep", "status"), ("sweep", "run", path.name), ("report", "sweep")):
        proc = _albumgan(user, *command, "--storage", path.name)
        assert proc.returncode == 2, (command, proc.stderr)
        (line,) = proc.stderr.splitlines()
        assert line.startswith("error: --storage ") and "mine.yaml: not an Optuna journal" in line
    assert yaml.safe_load(path.read_text())["name"] == "mine"  # the user's file, untouched
    assert not (user / (path.name + DAMAGED_SUFFIX)).exists()


# --- 2: a machine that dies in a shared-journal sweep --------------------------------------------
def test_the_trial_of_a_machine_that_died_is_settled_by_another_machine(user):
    path = _write(user)  # three points; the first trains for a minute on machine A
    beats = {"ALBUMGAN_HEARTBEAT_SECONDS": "0.5", "ALBUMGAN_HEARTBEAT_GRACE": "2"}
    env_a = {**os.environ, **beats, "ALBUMGAN_HOST": "machine-a", "FAKE_SLEEP": "60"}
    machine_a = subprocess.Popen(
        [sys.executable, "-m", "albumgan.experiments.cli", "sweep", "run", path.name],
        cwd=user, env=env_a, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline, started = time.time() + 60, None
        while time.time() < deadline:  # trial 0 running on A, its heartbeat refreshed once
            time.sleep(0.5)
            trials = _plain_optuna_trials(_journal(user)) if _journal(user).exists() else []
            attrs = trials[0].user_attrs if trials else {}
            started = started or attrs.get("heartbeat")
            if trials and trials[0].state.name == "RUNNING" and attrs["heartbeat"] > started:
                break
        else:
            pytest.fail("machine A's first trial never ran with a live heartbeat")
        assert attrs["host"] == "machine-a"
    finally:
        os.killpg(machine_a.pid, signal.SIGKILL)  # the machine dies: its worker and trainer
        machine_a.wait()
    time.sleep(2.5)  # past the grace period
    env_b = {**os.environ, **beats, "ALBUMGAN_HOST": "machine-b"}
    machine_b = _albumgan(user, "sweep", "run", path.name, env=env_b)
    assert machine_b.returncode == 0, machine_b.stderr
    assert "trials: 3 complete, 1 lost" in machine_b.stdout, machine_b.stdout
    trials = _plain_optuna_trials(_journal(user))
    assert [t.state.name for t in trials].count("RUNNING") == 0
    first = Path(trials[0].user_attrs["run_dir"])
    assert (first / "starts").read_text() == "xx"  # its run directory, resumed on machine B


# --- 3 and 15: a trainer killed by the OOM killer or stopped by a full disk -------------------
def test_killed_and_disk_full_trials_wait_and_resume_their_run_on_the_next_run(user):
    path = user / "mine.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "mine",
                "program": "fake_train.py",
                "method": "grid",
                "metric": {"name": "kid"},
                "parameters": {"die": {"values": ["no", "9", "full"]}, "lr_g": {"value": 0.001}},
            }
        )
    )
    first = _albumgan(user, "sweep", "run", path.name)
    assert first.returncode == 1, (first.stdout, first.stderr)
    assert "Traceback" not in first.stderr
    (line,) = [x for x in first.stderr.splitlines() if x.startswith("error:")]
    assert "2 trial(s) wait to resume" in line and "run the same command again" in line, line
    assert "trial 1: killed" in line and "trial 2: disk full" in line, line
    assert "trial 1 fail: its trainer was killed by SIGKILL" in first.stdout, first.stdout
    assert "trials: 1 complete, 2 to resume" in first.stdout
    # The next run queues both again: each resumes its own run directory (a second start).
    second = _albumgan(user, "sweep", "run", path.name)
    assert second.returncode == 0, (second.stdout, second.stderr)
    study = optuna.load_study(
        study_name="mine", storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(_journal(user)))
        ),
    )  # fmt: skip
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 3
    runs = {t.user_attrs["run_dir"] for t in done}
    assert len(runs) == 3 and all((Path(r) / "starts").read_text() in ("x", "xx") for r in runs)
    assert sorted((Path(r) / "starts").read_text() for r in runs) == ["x", "xx", "xx"]
    assert "trials: 3 complete, 2 lost" in second.stdout, second.stdout
    third = _albumgan(user, "sweep", "run", path.name)  # nothing left: nothing runs again
    assert third.returncode == 0 and "started" not in third.stdout


# --- 4: a database password stays out of reports, status and messages ---------------------------
def test_a_database_password_never_reaches_a_report_or_a_message(user, postgres_url):
    secret = "S3cretPassw0rd"
    user_part, host = postgres_url.split("@", 1)
    url = f"{user_part}:{secret}@{host}"  # trust auth: any password is let in
    name = f"pw-{uuid.uuid4().hex[:8]}"
    path = _write(user, points=1, name=name)
    ran = _albumgan(user, "sweep", "run", path.name, "--storage", url)
    assert ran.returncode == 0, ran.stderr
    status = _albumgan(user, "sweep", "status", "--storage", url, "--study", name)
    out = user / "report"
    report = _albumgan(
        user, "report", "sweep", "--storage", url, "--study", name, "--out", "report"
    )
    assert status.returncode == 0 and report.returncode == 0, status.stderr + report.stderr
    wrong = _albumgan(user, "sweep", "status", "--storage", url, "--study", "nope")
    assert wrong.returncode == 2
    for proc in (ran, status, report, wrong):
        assert secret not in proc.stdout + proc.stderr
        assert "ExperimentalWarning" not in proc.stderr, proc.stderr
    assert ":\\*\\*\\*@" in (out / "report.md").read_text()  # masked, Markdown-escaped
    assert ":***@" in (out / "index.html").read_text()
    for page in out.rglob("*"):
        assert not page.is_file() or secret.encode() not in page.read_bytes(), page


# --- 8: Markdown reports escape what users and files supply --------------------------------------
def test_markdown_reports_escape_study_names_and_storage_paths(user):
    payload = "`<img src=x onerror=alert(1)>`"
    path = _write(user, points=1, name="mine")
    journal = user / f"j{payload}.journal"
    ran = _albumgan(user, "sweep", "run", path.name, "--storage", str(journal))
    assert ran.returncode == 0, ran.stderr
    report = _albumgan(user, "report", "sweep", "--storage", str(journal), "--out", "report")
    assert report.returncode == 0, report.stderr
    markdown = (user / "report" / "report.md").read_text()
    assert "<img" not in markdown and "&lt;img src=x onerror=alert(1)&gt;" in markdown
    assert "\\`" in markdown  # the payload's backticks cannot close a code span


# --- 6: names built from sweep values stay inside --runs-dir -------------------------------------
@pytest.mark.parametrize("name", ["../outside", "/tmp/absolute-study", "a/b", ".."])
def test_a_study_name_that_climbs_out_of_the_runs_folder_is_refused(user, name):
    path = _write(user, points=1, name=name)
    for command in (("sweep", "validate", path.name), ("sweep", "run", path.name)):
        proc = _albumgan(user, *command)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert "used as a folder under --runs-dir" in proc.stderr, proc.stderr
    fine = _write(user, points=1, name="fine")
    flag = _albumgan(user, "sweep", "run", fine.name, "--study", name)
    assert flag.returncode == 2 and "--study:" in flag.stderr, flag.stderr
    assert sorted(p.name for p in user.iterdir()) == ["fake_train.py", "mine.yaml"]  # no runs/
    assert not Path("/tmp/absolute-study").exists()


# --- 7 and 14: files and grids too large to be meant --------------------------------------------
def _billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [{','.join(['*' + previous] * 9)}]")
    return "\n".join(lines) + "\n"


def test_yaml_aliases_that_expand_past_a_bound_are_refused_fast(user):
    laughs = _billion_laughs()
    assert len(laughs) < 600  # 9^9 = 387 million strings once expanded
    (user / "laughs.yaml").write_text(laughs)
    for command in (
        ("sweep", "validate", "laughs.yaml"),
        ("sweep", "run", "laughs.yaml"),
        ("train", "--config", "laughs.yaml", "--dry-run"),
    ):
        proc = _albumgan(user, *command, timeout=30)
        assert proc.returncode == 2, (command, proc.stderr[:500])
        (line,) = proc.stderr.splitlines()
        assert "aliases expand it to more than" in line and len(line) < 400, line
    # Aliases of ordinary size are still YAML as usual.
    (user / "ok.yaml").write_text(
        yaml.safe_dump({"program": "fake_train.py", "method": "grid"})
        + "metric: {name: kid}\nparameters: {lr_g: &c {values: [0.001, 0.002]}, lr_d: *c}\n"
    )
    assert _albumgan(user, "sweep", "validate", "ok.yaml").returncode == 0


def test_a_grid_too_large_to_queue_is_refused_by_validate(user):
    path = user / "huge.yaml"
    huge = {f"k{i}": {"values": list(range(10))} for i in range(8)}  # 10^8 points
    path.write_text(
        yaml.safe_dump(
            {
                "program": "fake_train.py",
                "method": "grid",
                "metric": {"name": "kid"},
                "parameters": {**huge, "wide": {"min": 0, "max": 10**9}},
            }
        )
    )
    for command in ("validate", "run"):
        proc = _albumgan(user, "sweep", command, path.name, timeout=30)
        assert proc.returncode == 2, proc.stderr
        assert "a grid of 100,000,000,100,000,000 points" in proc.stderr, proc.stderr
    assert not (user / "runs").exists()
