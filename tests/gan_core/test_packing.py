"""Packed runs (``gan_core.packing``): on JAX one program for several runs, on TensorFlow one
after another; either way each member is what a single run with its config writes.

Exactness: a packed member's losses equal the single run's per logged step (metrics.jsonl keeps
6 decimals; 1e-5 relative); its final conv and dense kernels agree to 1e-3, and what its final
G and D compute to 1e-4 (images from fixed noise) and 1e-3 (D's probabilities of fixed images:
with traced betas, Adam's ``1 - beta`` is a float32 subtraction, not a rounded constant). Biases
and BatchNorm statistics are checked through those outputs, not one by one: XLA sums a batched
convolution in another order, and Adam turns float noise in a gradient that is zero in exact
arithmetic (the bias of a layer followed by BatchNorm) into full-size steps of the learning
rate, in single runs as in packs; BatchNorm removes such a bias again downstream.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from albumgan import load_data
from albumgan.experiments.train import parse_args
from albumgan.gan_core.checkpoint import list_checkpoints
from albumgan.gan_core.config import ConfigError, build_config, load_yaml
from albumgan.gan_core.packing import pack_shape, train_pack
from albumgan.gan_core.training import train

pytestmark = pytest.mark.backend_contract
ROOT = Path(__file__).resolve().parents[2]
LOSS_KEYS = ("d_loss_real", "d_loss_fake", "g_loss")


@pytest.fixture(scope="module")
def data(cache_dir):
    return load_data(_cfg("unused", cache_dir))


def _cfg(runs_dir, cache_dir, **changes):
    overrides = load_yaml("smoke")
    overrides.update(
        resolution=16, g_width=8, d_width=8, noise_shape=(1, 1, 16), batch_size=4, steps=20,
        log_every=4, sample_every=10, checkpoint_every=10, grid_size=2, precision="float32",
        runs_dir=str(runs_dir), cache_dir=cache_dir,
    )  # fmt: skip
    overrides.update(changes)
    return build_config(overrides)


@pytest.fixture
def jax_only(backend_name):
    """Packing proper is JAX's; on TensorFlow members train one after another (the first test
    covers that path), so the rest would only repeat single runs."""
    if backend_name != "jax":
        pytest.skip("packs train as one program on JAX only")


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _final_weights(run_dir: Path, kernels_only: bool = True) -> dict[str, np.ndarray]:
    """The newest checkpoint's weights: the models' kernels (or every float variable)."""
    _, path = list_checkpoints(run_dir / "checkpoints")[-1]
    with np.load(path) as stored:
        return {
            k: stored[k]
            for k in stored.files
            if stored[k].dtype.kind == "f"
            and (not kernels_only or (stored[k].ndim >= 2 and "optimizer" not in k))
        }


def _outputs(run_dir: Path, data) -> tuple[np.ndarray, np.ndarray]:
    """What the final checkpoint computes: the sampling generator's images of fixed noise and
    D's probabilities of fixed real images (inference mode)."""
    from albumgan.gan_core import checkpoint
    from albumgan.gan_core.rundir import read_config
    from albumgan.gan_core.steps import make_engine

    engine = make_engine(read_config(run_dir), "float32")
    checkpoint.restore_latest(engine, run_dir / "checkpoints")
    noise = np.random.default_rng(7).standard_normal((8, 1, 1, 16)).astype(np.float32)
    images = data.images[:8].astype(np.float32) / 127.5 - 1.0
    return engine.sample(noise), np.asarray(engine.discriminator(images, training=False))


def _assert_same_run(member: Path, single: Path, data) -> None:
    got, want = _metrics(member), _metrics(single)
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for a, b in zip(got, want):
        for key in LOSS_KEYS:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=2e-6, err_msg=key)
    weights, expected = _final_weights(member), _final_weights(single)
    assert weights.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(weights[key], expected[key], atol=1e-3, err_msg=key)
    images, probabilities = _outputs(member, data)
    want_images, want_probabilities = _outputs(single, data)
    np.testing.assert_allclose(images, want_images, atol=1e-4)
    np.testing.assert_allclose(probabilities, want_probabilities, atol=1e-3)


def test_a_list_of_seeds_is_a_packed_run_equal_to_single_runs(
    data, cache_dir, tmp_path, backend_name
):
    # On TensorFlow the members train one after another: two show the layout and the order.
    seeds = [0, 1, 2] if backend_name == "jax" else [0, 1]
    cfg = _cfg(tmp_path / "runs", cache_dir)
    packed = train(cfg.replace(seed=str(seeds)), data)
    assert packed.state == "completed" and packed.exit_code == 0
    members = [packed.run_dir / f"seed-{s}" for s in seeds]
    assert [m.run_dir for m in packed.members] == members
    listed = json.loads((packed.run_dir / "replicas.json").read_text())
    assert listed["seeds"] == seeds
    assert [m["run_dir"] for m in listed["members"]] == [f"seed-{s}" for s in seeds]
    for seed, member in zip(seeds, members):
        single = train(cfg.replace(seed=seed), data)
        assert sorted(p.name for p in member.iterdir()) == sorted(
            p.name for p in single.run_dir.iterdir()
        )
        config = (member / "config.yaml").read_text()
        assert f"seed: {seed}\n" in config
        assert json.loads((member / "status.json").read_text())["state"] == "completed"
        _assert_same_run(member, single.run_dir, data)
    # One process wrote every member (on JAX also one program: see the GPU benchmark).
    pids = {json.loads((m / "status.json").read_text())["pid"] for m in members}
    assert pids == {os.getpid()}


def test_scalar_siblings_pack_a_diverging_one_is_frozen_the_others_equal_single_runs(
    jax_only, data, cache_dir, tmp_path
):
    base = _cfg(tmp_path / "runs", cache_dir, ema=0.99)
    siblings = [
        base.replace(lr_g=1e-4, lr_d=2e-4),
        base.replace(lr_g=3e-4, lr_d=1e-4, beta1=0.6, label_noise=0.1, ema=0.9),
        base.replace(lr_g=1e30, lr_d=1e30),  # Adam overflows at once (see the e2e test)
        base.replace(lr_g=5e-4, lr_d=5e-4, beta2=0.99),
    ]
    results = train_pack(
        [(cfg, tmp_path / "pack" / f"lr-{i}") for i, cfg in enumerate(siblings)], data
    )
    assert [r.state for r in results] == ["completed", "completed", "diverged", "completed"]
    assert [r.exit_code for r in results] == [0, 0, 3, 0]
    nan = results[2].run_dir
    status = json.loads((nan / "status.json").read_text())
    assert status["state"] == "diverged" and status["step"] < 20
    assert _metrics(nan)[-1] == {"step": status["step"], "diverged": True}
    assert all(s < status["step"] for s, _ in list_checkpoints(nan / "checkpoints"))
    assert not (nan / "generator.keras").exists()
    # The others trained on, unchanged by their frozen neighbour: each as its single run.
    for cfg, result in zip(siblings, results):
        if result.state == "completed":
            single = train(cfg, data)
            _assert_same_run(result.run_dir, single.run_dir, data)


def test_only_runs_of_one_shape_pack(data, cache_dir, tmp_path):
    base = _cfg(tmp_path / "runs", cache_dir)
    assert pack_shape(base) == pack_shape(base.replace(seed=3, lr_d=1e-3, ema=0.0))
    assert pack_shape(base.replace(ema=0.9)) == pack_shape(base.replace(ema=0.99))
    with pytest.raises(ConfigError, match=r"batch_size.*may differ"):
        train_pack([(base, tmp_path / "a"), (base.replace(batch_size=8), tmp_path / "b")], data)
    assert not (tmp_path / "a").exists()  # refused before anything is written


def _cli(cache_dir: str, *args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "ALBUMGAN_CACHE": cache_dir, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "albumgan.experiments.train", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen,
    )  # fmt: skip


FLAGS = (
    "--config smoke --resolution=16 --g_width=8 --d_width=8 --noise_shape=16 --batch_size=4 "
    "--precision=float32 --log_every=5 --sample_every=0 --checkpoint_every=5 --seed=[0,1]"
).split()


def test_kill_9_of_a_packed_run_resumes_every_member(jax_only, cache_dir, tmp_path):
    killed = tmp_path / "killed"
    proc = _cli(cache_dir, *FLAGS, "--steps=100000", f"--run-dir={killed}")
    try:
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None:
            steps = [
                json.loads(p.read_text()).get("step", 0) for p in killed.glob("seed-*/status.json")
            ]
            if len(steps) == 2 and min(steps) >= 10:
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    saved = {m.name: list_checkpoints(m / "checkpoints")[-1][0] for m in killed.glob("seed-*")}
    assert min(saved.values()) >= 5
    resume_to = max(saved.values()) + 10
    resumed = _cli(cache_dir, *FLAGS, f"--steps={resume_to}", f"--run-dir={killed}")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    assert "seed-0: completed" in out and "seed-1: completed" in out
    whole = tmp_path / "whole"  # the same command uninterrupted (in this process: faster)
    cfg, _ = parse_args([*FLAGS, f"--steps={resume_to}"])
    assert train(cfg.replace(cache_dir=cache_dir), load_data(cfg), run_dir=whole).exit_code == 0
    for name in ("seed-0", "seed-1"):
        status = json.loads((killed / name / "status.json").read_text())
        assert status["state"] == "completed" and status["resumed_from"] > 0
        steps = [r["step"] for r in _metrics(killed / name)]
        assert steps == sorted(set(steps)) and steps[-1] == resume_to
        weights = _final_weights(killed / name, kernels_only=False)
        expected = _final_weights(whole / name, kernels_only=False)
        for key in expected:  # the same program from the same weights: the same numbers
            np.testing.assert_allclose(weights[key], expected[key], rtol=1e-5, atol=1e-6)
