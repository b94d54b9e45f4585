"""A run directory has one writer, and what cannot be trained says so in one line (exit 2).

Each test is a case that once went wrong: two trainers writing one folder, a lock left by
``kill -9``, damaged checkpoints silently restarting a run, tracebacks for a broken config.yaml,
an unwritable folder or a full disk, a batch larger than the dataset.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from albumgan import train
from albumgan.gan_core.config import ConfigError
from albumgan.gan_core.contract import EXIT_NO_SPACE
from albumgan.gan_core.run import Callback, TrainingData
from albumgan.gan_core.rundir import RunDirLocked, RunLock, lock_holder
from albumgan.gan_core.training import train as train_on

ROOT = Path(__file__).resolve().parents[2]
TINY = (
    "--config smoke --resolution=16 --g_width=8 --d_width=8 --batch_size=4 --grid_size=2 "
    "--noise_shape=[1,1,16] --precision=float32"
).split()


def _env(cache_dir: str) -> dict[str, str]:
    return {**os.environ, "ALBUMGAN_CACHE": cache_dir, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _train_cli(cache_dir: str, *flags: str, **popen) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "albumgan.experiments.cli", "train", *TINY, *flags],
        cwd=ROOT,
        env=_env(cache_dir),
        capture_output=True,
        text=True,
        timeout=300,
        **popen,
    )


def _one_error_line(proc: subprocess.CompletedProcess, *needles: str, code: int = 2) -> str:
    """Exit ``code``, no traceback, and exactly one ``error:`` line holding every needle."""
    assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def _steps(run_dir: Path) -> list[int]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


def test_a_second_trainer_on_a_run_dir_is_refused_naming_the_first(cache_dir, tmp_path):
    run_dir = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "albumgan.experiments.cli", "train", *TINY, "--steps=100000",
         "--log_every=5", f"--run-dir={run_dir}"],
        cwd=ROOT, env=_env(cache_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 120
        while time.time() < deadline and first.poll() is None:
            status = run_dir / "status.json"
            if status.exists() and json.loads(status.read_text()).get("step", 0) >= 10:
                break
            time.sleep(0.1)
        assert first.poll() is None, first.stderr.read()[-2000:]
        second = _train_cli(cache_dir, "--steps=100000", "--log_every=5", f"--run-dir={run_dir}")
        _one_error_line(second, str(run_dir), f"pid {first.pid}", "is being written")
        assert json.loads((run_dir / "status.json").read_text())["pid"] == first.pid
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 143
    steps = _steps(run_dir)
    assert steps == sorted(set(steps))  # every step once: one writer
    assert lock_holder(run_dir) is None  # released at exit


def test_kill_9_never_leaves_a_run_dir_locked(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from albumgan.gan_core.rundir import RunLock; "
         f"RunLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); time.sleep(600)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert lock_holder(tmp_path)["pid"] == holder.pid
        with pytest.raises(RunDirLocked, match=f"pid {holder.pid}"):
            RunLock(tmp_path).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    finally:
        holder.kill()
    assert lock_holder(tmp_path) is None
    with RunLock(tmp_path):  # free for the next writer, whoever held it before
        assert lock_holder(tmp_path)["pid"] == os.getpid()
    assert (tmp_path / "writer.lock").exists()  # never deleted: see RunLock


def test_all_checkpoints_damaged_is_an_error_not_a_restart(tiny_cfg, cache_dir):
    run_dir = train(tiny_cfg).run_dir
    damaged = sorted((run_dir / "checkpoints").glob("ckpt-*.npz"))
    assert len(damaged) >= 2
    for path in damaged:
        path.write_bytes(path.read_bytes()[:100])  # a copy cut short
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    proc = _train_cli(cache_dir, f"--steps={tiny_cfg.steps + 6}", f"--run-dir={run_dir}")
    line = _one_error_line(proc, "every checkpoint is unreadable", "start this run over")
    assert all(p.name in line for p in damaged)
    after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert {p: b for p, b in after.items() if p.name != "writer.lock"} == {
        p: b for p, b in before.items() if p.name != "writer.lock"
    }  # metrics history, status and the damaged files themselves untouched


def test_broken_run_dirs_are_one_line_errors(tiny_cfg, cache_dir, tmp_path):
    run_dir = train(tiny_cfg).run_dir
    more = f"--steps={tiny_cfg.steps + 6}"
    # A checkpoint of another model (config.yaml gone, so nothing else can tell).
    config = (run_dir / "config.yaml").read_text()
    (run_dir / "config.yaml").unlink()
    proc = _train_cli(cache_dir, more, "--g_width=16", f"--run-dir={run_dir}")
    _one_error_line(proc, "ckpt-", "the model expects")
    assert not (run_dir / "config.yaml").exists()  # not replaced by the config that failed
    # The run's own config.yaml is not YAML.
    (run_dir / "config.yaml").write_text(config + "\nsteps: [12\n")
    proc = _train_cli(cache_dir, more, f"--run-dir={run_dir}")
    _one_error_line(proc, "config.yaml is not valid YAML")
    # A run directory under a regular file.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = _train_cli(cache_dir, f"--run-dir={blocker / 'run'}")
    _one_error_line(proc, "run_dir: cannot create", str(blocker))
    proc = _train_cli(cache_dir, f"--runs_dir={blocker}")
    _one_error_line(proc, "runs_dir: cannot create", str(blocker))
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_run_dir_is_a_one_line_error(cache_dir, tmp_path):
    run_dir = tmp_path / "ro"
    run_dir.mkdir()
    run_dir.chmod(0o555)
    try:
        _one_error_line(_train_cli(cache_dir, f"--run-dir={run_dir}"), "cannot write")
    finally:
        run_dir.chmod(0o755)


def _small_file_limit() -> None:
    """In the child: files may not grow past 64 KiB (a full disk, as the trainer sees it)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


def test_a_full_disk_while_training_marks_the_run_resumable(cache_dir, tmp_path):
    run_dir = tmp_path / "full"
    # The first checkpoint (~300 KB) cannot be written; small files (status, metrics) can.
    proc = _train_cli(
        cache_dir, "--steps=20", "--checkpoint_every=10", f"--run-dir={run_dir}",
        preexec_fn=_small_file_limit,
    )  # fmt: skip
    _one_error_line(proc, "I/O error", str(run_dir), "resume", code=EXIT_NO_SPACE)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "no space" and "I/O error" in status["message"], status
    assert status["exit_code"] == EXIT_NO_SPACE  # a sweep queues it again (tests/sweeps)
    assert lock_holder(run_dir) is None
    # What a checkpoint write killed by `kill -9` leaves: removed on the next start.
    leftover = run_dir / "checkpoints" / ".ckpt-000010.npz.abc123.tmp"
    leftover.parent.mkdir(exist_ok=True)
    leftover.write_bytes(b"half a checkpoint")
    theirs = run_dir / "notes.tmp"  # not a name our atomic writes use: left alone
    theirs.write_text("mine")
    again = _train_cli(cache_dir, "--steps=20", "--checkpoint_every=10", f"--run-dir={run_dir}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert not leftover.exists() and theirs.read_text() == "mine"
    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"


def test_a_batch_larger_than_the_dataset_is_refused(tiny_cfg):
    images = np.zeros((3, tiny_cfg.resolution, tiny_cfg.resolution, 3), np.uint8)
    with pytest.raises(ConfigError, match=r"batch_size: 4 is larger than the dataset .*3 images"):
        train_on(tiny_cfg, TrainingData("three", images))
    assert not Path(tiny_cfg.runs_dir).exists()  # refused before anything was written


def test_stop_signals_stay_handled_until_the_end_of_run_writes(tiny_cfg):
    """A trainer started by a sweep gets SIGTERM once per ancestor that dies (the worker, then
    the sweep): the second must find the handler, not kill the final checkpoint half way."""

    class HandlerAtEnd(Callback):
        def on_train_end(self, run, state) -> None:
            self.handler = signal.getsignal(signal.SIGTERM)

    probe = HandlerAtEnd()
    before = signal.getsignal(signal.SIGTERM)
    train(tiny_cfg, callbacks=[probe])
    assert callable(probe.handler) and probe.handler is not before
    assert signal.getsignal(signal.SIGTERM) is before  # restored once the run is over
