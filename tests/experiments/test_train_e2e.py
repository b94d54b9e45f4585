"""End to end: real trainings of a tiny config, their run directories, resume, signals, NaN.

The trainer's contract: every test here runs on the session's backend (``KERAS_BACKEND``), and
``make test`` runs this file on TensorFlow and on JAX.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from PIL import Image

from albumgan import TrainConfig, train
from albumgan.gan_core.checkpoint import list_checkpoints, restore_latest
from albumgan.gan_core.images import to_uint8
from albumgan.gan_core.run import Callback
from albumgan.gan_core.steps import make_engine

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.backend_contract


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _restored(cfg: TrainConfig, run_dir: Path):
    engine = make_engine(cfg, "float32")
    step = restore_latest(engine, run_dir / "checkpoints")
    return engine, step


def _cli_env(cache_dir: str) -> dict[str, str]:
    """The test's environment, KERAS_BACKEND included: `auto` picks the session's backend."""
    return {**os.environ, "ALBUMGAN_CACHE": cache_dir, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _cli(cache_dir: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` from the repository root with the test cache; output captured."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=_cli_env(cache_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_run_directory_contents(tiny_cfg, capsys, backend_name):
    result = train(tiny_cfg)
    printed = capsys.readouterr().out.splitlines()  # not a terminal: plain lines every log_every
    assert printed[0].endswith(f": {backend_name} on cpu, precision float32")  # what runs
    assert [line.split()[1] for line in printed[1:]] == ["3/12", "6/12", "9/12", "12/12"]
    run = result.run_dir
    assert result.state == "completed" and result.step == 12 and result.exit_code == 0
    assert result.backend == backend_name
    assert run.parent == Path(tiny_cfg.runs_dir) and run.name == "00000-smoke"
    stored = yaml.safe_load((run / "config.yaml").read_text())
    assert TrainConfig(**stored) == tiny_cfg
    assert [m["step"] for m in _metrics(run)] == [3, 6, 9, 12]
    assert all(
        np.isfinite(m["g_loss"]) and m["img_per_s"] is None or m["img_per_s"] > 0
        for m in _metrics(run)
    )
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_000006.png",
        "step_000012.png",
    ]
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [6, 12]
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "completed" and status["step"] == 12
    assert status["backend"] == backend_name and status["precision"] == "float32"
    assert stored["backend"] == "auto"  # the config as asked; status.json says what ran
    assert (
        status["train_seconds"] > 0
        and status["dataset"] == "synthetic"
        and status["n_images"] >= 512
    )
    with Image.open(run / "reals.png") as reals:
        assert reals.size == (2 * 16, 2 * 16)
    generator = keras.saving.load_model(run / "generator.keras", compile=False)
    assert generator(np.zeros((3, 1, 1, 16), np.float32)).shape == (3, 16, 16, 3)


def test_grids_come_from_the_same_latents_at_every_step(tiny_cfg):
    run = train(tiny_cfg.replace(ema=0.0)).run_dir
    grid_z = np.load(run / "grid_z.npy")
    assert grid_z.shape == (4, 1, 1, 16)
    engine = make_engine(tiny_cfg.replace(ema=0.0), "float32")
    from albumgan.gan_core.checkpoint import checkpoint_path, restore_file

    grids = {}
    for step in (6, 12):
        restore_file(engine, checkpoint_path(run / "checkpoints", step))
        expected = to_uint8(np.asarray(engine.generator(grid_z, training=False)))
        with Image.open(run / "samples" / f"step_{step:06d}.png") as grid:
            pixels = np.asarray(grid)
        tiles = pixels.reshape(2, 16, 2, 16, 3).transpose(0, 2, 1, 3, 4).reshape(4, 16, 16, 3)
        # The grid went through the engine's sampler (jitted on JAX): equal up to rounding.
        np.testing.assert_allclose(tiles, expected, atol=1)
        grids[step] = pixels
    assert not np.array_equal(grids[6], grids[12])  # the generator moved, the latents did not


class _InterruptAt(Callback):
    """Sends this process SIGTERM at a step, as `wandb agent` does to stop a run."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.sent = False

    def on_steps_end(self, run, step, logs):
        if step >= self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)


def test_resume_after_interrupt_matches_an_uninterrupted_run(tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(checkpoint_every=4, steps_per_execution=2)
    straight = train(cfg, run_dir=tmp_path / "straight")

    first = train(cfg, callbacks=[_InterruptAt(5)], run_dir=tmp_path / "resumed")
    assert first.state == "interrupted" and first.exit_code == 128 + signal.SIGTERM
    # Executions end on boundaries (1, 3, 4, 6 here): the signal lands after the one reaching 6.
    assert first.step == 6
    assert json.loads((first.run_dir / "status.json").read_text())["state"] == "interrupted"
    assert list_checkpoints(first.run_dir / "checkpoints")[-1][0] == 6

    second = train(cfg, run_dir=tmp_path / "resumed")
    assert second.state == "completed" and second.step == straight.step == 12
    status = json.loads((second.run_dir / "status.json").read_text())
    assert status["message"] == "resumed from step 6 (interrupted)"
    steps = [m["step"] for m in _metrics(second.run_dir)]
    assert steps == sorted(set(steps)) == [3, 6, 9, 12]  # no duplicated steps after resume

    a, step_a = _restored(cfg, straight.run_dir)
    b, step_b = _restored(cfg, second.run_dir)
    assert step_a == step_b == 12
    for opt in ("g_optimizer", "d_optimizer"):
        assert int(getattr(a, opt).iterations.numpy()) == int(getattr(b, opt).iterations.numpy())
    assert int(b.d_optimizer.iterations.numpy()) == 24  # two D updates per step
    if a.rng_state() is not None:  # TensorFlow's stateful RNG; JAX draws from (seed, step)
        np.testing.assert_array_equal(a.rng_state(), b.rng_state())
    # Same data order, RNG and optimizer state: the resumed weights equal the uninterrupted ones.
    for group, variables in a.variable_groups().items():
        for x, y in zip(variables, b.variable_groups()[group]):
            np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-4, atol=1e-5)


def test_rerunning_a_completed_run_is_a_no_op_and_changed_config_is_refused(tiny_cfg, tmp_path):
    from albumgan.gan_core.config import ConfigError

    run_dir = tmp_path / "r"
    train(tiny_cfg, run_dir=run_dir)
    before = (run_dir / "metrics.jsonl").read_text()
    again = train(tiny_cfg, run_dir=run_dir)
    assert again.state == "completed" and again.step == 12
    assert (run_dir / "metrics.jsonl").read_text() == before
    with pytest.raises(ConfigError, match=r"batch_size: 4 -> 8"):
        train(tiny_cfg.replace(batch_size=8), run_dir=run_dir)
    longer = train(tiny_cfg.replace(steps=15), run_dir=run_dir)  # more steps: continue
    assert longer.step == 15 and [m["step"] for m in _metrics(run_dir)][-2:] == [12, 15]


def _start_long_run(cache_dir: str, run_dir: Path, *flags: str) -> subprocess.Popen:
    """A CLI training that would run ~forever (as `wandb agent` runs experiments/train.py)."""
    args = "experiments/train.py --config smoke --steps=100000 --resolution=16 --g_width=8"
    args += f" --d_width=8 --precision=float32 --run-dir={run_dir}"
    return subprocess.Popen(
        [sys.executable, *args.split(), *flags],
        cwd=ROOT,
        env=_cli_env(cache_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_step(run_dir: Path, step: int, proc: subprocess.Popen) -> dict:
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        path = run_dir / "status.json"
        status = json.loads(path.read_text()) if path.exists() else {}
        if status.get("step", 0) >= step:
            return status
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"run did not reach step {step}: {proc.communicate()[1][-2000:]}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_to_the_cli_checkpoints_and_exits_cleanly(
    cache_dir, tmp_path, signum, backend_name
):
    if backend_name == "jax":
        # Signals are the command's, not the backend's; on JAX, the engine's checkpoint at a stop
        # and its resume are test_resume_after_interrupt_matches_an_uninterrupted_run's.
        pytest.skip("stop signals are backend-agnostic: the TensorFlow part covers them")
    run_dir = tmp_path / "run"
    # Arguments in the forms `wandb agent` sends them (a list, a bare boolean, a spaced value).
    agent_argv = ["--noise_shape=[1, 1, 12]", "--diffaugment", "--label_noise", "0.1"]
    proc = _start_long_run(cache_dir, run_dir, "--checkpoint_every=100000", *agent_argv)
    try:
        _wait_for_step(run_dir, 20, proc)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err  # 143 for SIGTERM, 130 for SIGINT
    assert "Traceback" not in err
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "interrupted" and status["step"] >= 20
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    assert checkpoints[-1][0] == status["step"]  # the checkpoint was written on SIGTERM
    cfg = TrainConfig(**yaml.safe_load((run_dir / "config.yaml").read_text()))
    assert _restored(cfg, run_dir)[1] == status["step"]  # and it loads
    assert cfg.noise_shape == (1, 1, 12) and cfg.label_noise == 0.1
    assert cfg.diffaugment == "color,translation,cutout" and status["backend"] == backend_name


def test_kill_9_loses_at_most_checkpoint_every_steps_and_resumes(
    cache_dir, tmp_path, backend_name
):
    if backend_name == "jax":
        # A checkpoint is the same file on both backends (atomic writes in gan_core); JAX's
        # kill -9 and resume: tests/gan_core/test_packing.py's packed run (every member).
        pytest.skip("kill -9 and resume are backend-agnostic: the TensorFlow part covers them")
    run_dir = tmp_path / "run"
    every = 2  # checkpoints all the time, so the kill may well land in the middle of a save
    proc = _start_long_run(cache_dir, run_dir, f"--checkpoint_every={every}", "--log_every=2")
    try:
        _wait_for_step(run_dir, 30, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    last_seen = json.loads((run_dir / "status.json").read_text())["step"]
    cfg = TrainConfig(**yaml.safe_load((run_dir / "config.yaml").read_text()))
    engine = make_engine(cfg, "float32")
    from albumgan.gan_core.checkpoint import restore_file

    saved = list_checkpoints(run_dir / "checkpoints")
    assert saved and all(restore_file(engine, path) == step for step, path in saved)
    assert saved[-1][0] >= last_seen - every
    resume_to = saved[-1][0] + 6
    proc = _start_long_run(
        cache_dir, run_dir, f"--checkpoint_every={every}", f"--steps={resume_to}"
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "completed" and status["step"] == resume_to
    assert status["resumed_from"] == saved[-1][0]
    assert status["message"] == f"resumed from step {saved[-1][0]} (running)"  # killed mid-run
    steps = [m["step"] for m in _metrics(run_dir)]
    assert steps == sorted(set(steps)) and steps[-1] == resume_to


def test_kill_9_and_resume_of_a_spectral_ada_cosine_run_equals_the_uninterrupted_run(
    cache_dir, tmp_path, backend_name
):
    """The toolbox's training state (spectral-norm vectors, ADA's p and sign sum, the schedule's
    step) is in the checkpoint: a run killed with -9 and resumed ends where one never stopped."""
    if backend_name == "jax":
        # The same state is JAX's too (tests/gan_core/test_backends.py steps it on both); its
        # resume: test_resume_after_interrupt_matches_an_uninterrupted_run's toolbox case.
        pytest.skip("kill -9 and resume are backend-agnostic: the TensorFlow part covers them")
    toolbox = ["--d_norm=spectral", "--augment_p=ada", "--ada_speed=20000", "--lr_schedule=cosine",
               "--ema=0.99", "--ema_rampup=0.05", "--steps=200", "--checkpoint_every=4",
               "--log_every=4", "--sample_every=0"]  # fmt: skip
    # The uninterrupted run trains beside the one to be killed (one core each).
    straight = _start_long_run(cache_dir, tmp_path / "straight", *toolbox)
    run_dir = tmp_path / "killed"
    proc = _start_long_run(cache_dir, run_dir, *toolbox)
    try:
        _wait_for_step(run_dir, 40, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        _, err = straight.communicate(timeout=300)
    finally:
        proc.kill()
        straight.kill()
    assert proc.returncode == -signal.SIGKILL
    assert straight.returncode == 0, err
    killed_at = json.loads((run_dir / "status.json").read_text())["step"]
    assert killed_at < 200  # it was killed mid-run
    proc = _start_long_run(cache_dir, run_dir, *toolbox)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    status = json.loads((run_dir / "status.json").read_text())
    # status.json is written between checkpoints, so it may lag the last checkpoint kept.
    assert status["state"] == "completed" and 0 < status["resumed_from"] < 200
    with np.load(list_checkpoints(tmp_path / "straight" / "checkpoints")[-1][1]) as a:
        with np.load(list_checkpoints(run_dir / "checkpoints")[-1][1]) as b:
            assert sorted(a.files) == sorted(b.files)
            assert any(k.startswith("augment/") for k in a.files)
            final_p = float(a["augment/0000"])
            assert 0 < final_p < 1  # p moved off 0 and did not saturate
            for key in a.files:
                if a[key].dtype.kind in "iufb":
                    np.testing.assert_allclose(b[key], a[key], rtol=1e-4, atol=1e-5, err_msg=key)
                else:  # the checkpoint's own text (its format, the config)
                    assert str(b[key]) == str(a[key]), key
    p_logged = [m["augment_p"] for m in _metrics(run_dir) if "augment_p" in m]
    assert len(p_logged) >= 40 and p_logged[-1] == pytest.approx(final_p)


def test_nan_loss_marks_the_run_diverged_with_exit_3(cache_dir, tmp_path):
    run_dir = tmp_path / "nan"
    # Adam moves every weight by ~lr per step whatever the gradient: lr=1e30 overflows at once.
    flags = "--resolution=16 --g_width=8 --d_width=8 --lr_g=1e30 --lr_d=1e30 --precision=float32"
    flags += f" --steps=40 --sample_every=1 --checkpoint_every=1 --run-dir={run_dir}"
    proc = _cli(cache_dir, "-m", "albumgan.experiments.train", "--config", "smoke", *flags.split())
    assert proc.returncode == 3, proc.stderr
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "diverged"
    last = _metrics(run_dir)[-1]
    assert last["diverged"] is True and last["step"] == status["step"] < 40
    for grid in (run_dir / "samples").glob("*.png"):
        assert int(grid.stem.split("_")[1]) < status["step"]  # no grid from the broken weights
    saved = [s for s, _ in list_checkpoints(run_dir / "checkpoints")]
    assert all(s < status["step"] for s in saved)
    assert not (run_dir / "generator.keras").exists()


def test_dry_run_prints_parameter_counts(capsys):
    # The command's main in this process (its console script: test_install.py): a subprocess
    # would mostly import the framework.
    from albumgan.experiments.cli import main

    assert main(["train", "--config", "seed_popular16", "--dry-run"]) == 2
    out, err = capsys.readouterr()
    # The preset's dataset (gaon) is not built here: the counts are still shown, then the error.
    assert "dataset 'gaon' is not built" in err and "dataset_images: none" in out
    assert "generator_params: 3616771" in out
    assert "discriminator_params: 2768321" in out
    assert yaml.safe_load(out.split("resolved_precision")[0])["batch_size"] == 16


def test_sample_command_writes_single_images(tiny_cfg, tmp_path, capsys):
    from albumgan.experiments.cli import main

    run = train(tiny_cfg).run_dir
    out = tmp_path / "jpgs"
    capsys.readouterr()
    assert main(["sample", str(run), "--n", "5", "--out", str(out), "--format", "jpg"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 5 images to {out}"
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"sample_{i:05d}.jpg" for i in range(5)]
    with Image.open(files[0]) as image:
        assert image.format == "JPEG" and image.size == (16, 16)


def test_missing_dataset_is_a_clear_exit_2(cache_dir, tmp_path):
    args = f"-m albumgan.experiments.train --config seed_popular16 --runs_dir={tmp_path}"
    proc = _cli(cache_dir, *args.split())
    assert proc.returncode == 2
    assert "dataset 'gaon' is not built" in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []  # no half-made run directory left behind


def test_resume_flag_finds_the_newest_unfinished_run_of_the_same_name(tiny_cfg):
    from albumgan.gan_core.config import ConfigError

    first = train(tiny_cfg, callbacks=[_InterruptAt(3)])
    assert first.state == "interrupted"
    train(tiny_cfg.replace(name="other", steps=3))  # a different name is never picked
    resumed = train(tiny_cfg, resume=True)
    assert resumed.run_dir == first.run_dir and resumed.state == "completed"
    runs = set(resumed.run_dir.parent.iterdir())
    with pytest.raises(ConfigError, match="resume: no unfinished run named"):
        train(tiny_cfg.replace(steps=3), resume=True)  # nothing unfinished: said, not a new run
    assert set(resumed.run_dir.parent.iterdir()) == runs


def test_albumgan_console_script_is_installed(cache_dir, backend_name):
    if backend_name != "tensorflow":
        pytest.skip("the install is the same on every backend; dry runs on JAX: the test above")
    script = Path(sys.executable).parent / "albumgan"
    assert script.is_file(), "install the package: pip install -e '.[cpu,dev]'"
    proc = subprocess.run(
        [str(script), "train", "--config", "smoke", "--dry-run"],
        env=_cli_env(cache_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "generator_params: 77443" in proc.stdout
