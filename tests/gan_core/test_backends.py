"""TensorFlow and JAX held to the same step: parity of one step, DiffAugment, generator.keras
across backends, what ``backend: auto`` picks, and the commands that must load no framework.

This session runs on one backend; the other runs in a subprocess (``tests/backend_worker.py``),
once per session, with every job the tests below compare against.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from albumgan.gan_core import backend, checkpoint
from albumgan.gan_core.augment import OPS, diff_augment, uniforms_needed
from albumgan.gan_core.config import TrainConfig
from albumgan.gan_core.steps import make_engine

ROOT = Path(__file__).resolve().parents[2]
OTHER = {"tensorflow": "jax", "jax": "tensorflow"}
STEP_CONFIG = {
    "resolution": 16,
    "g_width": 8,
    "d_width": 8,
    "noise_shape": [1, 1, 16],
    "batch_size": 4,
    "ema": 0.9,
    "diffaugment": "color,translation,cutout",
    "precision": "float32",
}
BATCH = 4
# The parity step, for the seed's algorithm and for each key of the small-data toolbox
# (README "Recipes"): overrides of STEP_CONFIG, and the step it is taken at.
VARIANTS = {
    "seed": ({}, 0),
    "hinge": ({"loss": "hinge"}, 0),
    "nonsaturating_r1": ({"loss": "nonsaturating", "r1_gamma": 10.0, "r1_every": 4}, 0),
    "spectral": ({"d_norm": "spectral", "loss": "hinge"}, 0),
    # step 3: p moves after it (ADA_INTERVAL 4), the cosine schedule and the ramp-up are under way
    "ada_cosine_rampup": (
        {
            "augment_p": "ada",
            "lr_schedule": "cosine",
            "ema_rampup": 0.05,
            "steps": 8,
            "d_norm": "none",
            "loss": "nonsaturating",
        },
        3,
    ),  # fmt: skip
}
# Float32 tolerances of the parity test: losses agree to ~1e-7 relative here, weights to ~1e-6.
LOSS_RTOL, WEIGHT_ATOL, WEIGHT_RTOL = 1e-5, 5e-6, 1e-5


def _perturbed_engine(cfg: TrainConfig):
    """An engine whose every weight is nudged off its initial value: no bias starts at exactly
    zero, so no activation sits exactly on LeakyReLU's kink, where TensorFlow and JAX break the
    tie of the derivative differently (0.2 against 1)."""
    engine = make_engine(cfg, "float32", np.zeros((BATCH, 16, 16, 3), np.uint8))
    rng = np.random.default_rng(5)
    for model in (engine.generator, engine.discriminator):
        for var in model.trainable_variables:
            var.assign(var.numpy() + rng.normal(0, 0.02, var.shape).astype(np.float32))
    engine.ema_generator.set_weights(engine.generator.get_weights())
    return engine


def _pinned_inputs(cfg: TrainConfig) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    width = uniforms_needed(cfg.diffaugment_ops, gated=cfg.ada)
    inputs = {
        "real": rng.uniform(-1, 1, (BATCH, 16, 16, 3)),
        "noise": rng.standard_normal((BATCH, 1, 1, 16)),
        "real_labels": 1 - 0.2 * rng.uniform(size=(BATCH, 1)),
        "fake_labels": 0.2 * rng.uniform(size=(BATCH, 1)),
        **{f"augment{i}": rng.uniform(size=(BATCH, width)) for i in range(3)},
    }
    return {k: v.astype(np.float32) for k, v in inputs.items()}


def _variant_config(name: str) -> dict:
    return {**STEP_CONFIG, **VARIANTS[name][0]}


@pytest.fixture(scope="module")
def compared(tmp_path_factory, cache_dir, backend_name):
    """This backend's results, and the same jobs done by the other backend in one subprocess."""
    d = tmp_path_factory.mktemp("backends")
    images = np.random.default_rng(1).uniform(-1, 1, (6, 16, 16, 3)).astype(np.float32)
    uniforms = {
        f"uniforms_{name}": np.random.default_rng(2).uniform(size=(6, count)).astype(np.float32)
        for name, (_, count) in OPS.items()
    }
    np.savez(d / "augment_in.npz", images=images, **uniforms)
    noise = np.random.default_rng(3).standard_normal((5, 1, 1, 16)).astype(np.float32)
    np.save(d / "noise.npy", noise)
    here = {"images": images, "uniforms": uniforms, "noise": noise, "steps": {}}
    jobs = [
        {"kind": "augment", "images": str(d / "augment_in.npz"), "out": str(d / "aug_out.npz")}
    ]

    # Here: one pinned step per variant, and a generator.keras exported from this backend.
    for name, (_, start_step) in VARIANTS.items():
        cfg = TrainConfig(**_variant_config(name))
        engine = _perturbed_engine(cfg)
        if cfg.ada:  # mid-run: p where the gates matter, signs summed over 3 steps already
            engine.ada_state[0].assign(0.5)
            engine.ada_state[1].assign(5.0)
        checkpoint.write_checkpoint(engine, d / f"{name}_init.npz", start_step)
        inputs = _pinned_inputs(cfg)
        np.savez(d / f"{name}_inputs.npz", **inputs)
        engine.start(start_step)
        aug = tuple(inputs[f"augment{i}"] for i in range(3))
        losses = engine.step_on({**{k: v for k, v in inputs.items() if "augment" not in k},
                                 "augment": aug})  # fmt: skip
        checkpoint.write_checkpoint(engine, d / f"{name}_here_after.npz", start_step + 1)
        variables = [(f"{group}/{i:04d}", f"{group}:{var.path}")
                     for group, variables in engine.variable_groups().items()
                     for i, var in enumerate(variables)]  # fmt: skip
        here["steps"][name] = {"losses": losses, "variables": variables, "cfg": cfg}
        jobs.append(
            {
                "kind": "step",
                "config": _variant_config(name),
                "checkpoint": str(d / f"{name}_init.npz"),
                "inputs": str(d / f"{name}_inputs.npz"),
                "out_checkpoint": str(d / f"{name}_there_after.npz"),
                "out_losses": str(d / f"{name}_there_losses.json"),
            }
        )
        if name == "seed":
            (d / "here_run").mkdir()
            engine.export_generator(d / "here_run" / "generator.keras")
            here["samples"] = engine.sample(noise)

    (d / "there_run").mkdir()
    jobs += [
        {
            "kind": "sample",
            "generator": str(d / "here_run" / "generator.keras"),
            "noise": str(d / "noise.npy"),
            "out": str(d / "there_samples_of_here.npy"),
        },
        {
            "kind": "export",
            "config": STEP_CONFIG,
            "checkpoint": str(d / "seed_here_after.npz"),
            "generator": str(d / "there_run" / "generator.keras"),
            "noise": str(d / "noise.npy"),
            "out": str(d / "there_samples.npy"),
        },
    ]
    (d / "jobs.json").write_text(json.dumps(jobs))
    other = OTHER[backend_name]
    env = {**os.environ, "KERAS_BACKEND": other, "ALBUMGAN_CACHE": cache_dir}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "backend_worker.py"), str(d / "jobs.json")],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == {"backend": other}
    return here, d


@pytest.mark.parametrize("variant", VARIANTS)
def test_one_step_gives_the_same_losses_and_weights_on_both_backends(compared, variant):
    here, d = compared
    mine = here["steps"][variant]
    cfg = mine["cfg"]
    there_losses = json.loads((d / f"{variant}_there_losses.json").read_text())
    for name, value in mine["losses"].items():
        assert there_losses[name] == pytest.approx(value, rel=LOSS_RTOL), name
    # Biases that feed a BatchNorm have an exact gradient of zero (BatchNorm removes any constant
    # shift); Adam's first step turns their float noise into a move of up to lr either way.
    # (The same holds for their EMA and Adam slots.)
    before_norm = ["project", "up1", "refine"]  # 16 px: G's convolutions before a BN
    if cfg.d_norm == "batch":
        before_norm.append("down1")

    def feeds_a_norm(path: str) -> bool:
        return (
            any(
                path.endswith(f"{layer}/bias") or f"/{layer}_bias" in path for layer in before_norm
            )
            or path == "discriminator:down1_bn/moving_mean"
        )  # its fake pass follows a D update

    with (
        np.load(d / f"{variant}_init.npz") as start,
        np.load(d / f"{variant}_here_after.npz") as a,
    ):
        with np.load(d / f"{variant}_there_after.npz") as b:
            compared_count = 0
            for key, path in mine["variables"]:
                if path.endswith("kernel") and not path.startswith("ema"):
                    assert not np.array_equal(start[key], a[key]), f"{path} did not move"
                moving_state = path.endswith("singular_vector") or path.startswith("augment")
                if moving_state and start[key].size > 1:  # a 1-vector is +-1 for good
                    assert not np.array_equal(start[key], a[key]), f"{path} did not move"
                if feeds_a_norm(path):
                    assert np.abs(a[key] - b[key]).max() <= 2 * max(cfg.lr_g, cfg.lr_d), path
                    continue
                np.testing.assert_allclose(
                    b[key], a[key], rtol=WEIGHT_RTOL, atol=WEIGHT_ATOL, err_msg=path
                )
                compared_count += 1
    # All but the biases before a BN, their 2 Adam slots each, the EMA copies of G's 3, and D's
    # one moving mean computed after a D update (it averages the updated bias in).
    excluded = 4 + 2 * 4 + 3 + 1 if cfg.d_norm == "batch" else 3 + 2 * 3 + 3
    assert compared_count == len(mine["variables"]) - excluded


def test_diffaugment_ops_are_the_same_on_both_backends_with_pinned_draws(compared):
    here, d = compared
    with np.load(d / "aug_out.npz") as there:
        for name in OPS:
            mine = np.asarray(
                diff_augment(here["images"], (name,), here["uniforms"][f"uniforms_{name}"])
            )
            assert not np.allclose(mine, here["images"])  # the op did something
            np.testing.assert_allclose(there[name], mine, atol=1e-6, err_msg=name)
        every = tuple(OPS)
        draws = np.concatenate([here["uniforms"][f"uniforms_{n}"] for n in every], axis=1)
        mine = np.asarray(diff_augment(here["images"], every, draws))
        np.testing.assert_allclose(there["all"], mine, atol=1e-6)


def test_generator_keras_saved_on_one_backend_samples_the_same_on_the_other(compared):
    here, d = compared
    # Saved here, loaded there.
    there_of_here = np.load(d / "there_samples_of_here.npy")
    np.testing.assert_allclose(there_of_here, here["samples"], atol=2e-5)
    # Saved there (from the weights after the pinned step), loaded here.
    from albumgan.gan_core.sampling import load_sampler

    generator = load_sampler(d / "there_run")
    mine = np.asarray(generator(here["noise"], training=False))
    np.testing.assert_allclose(mine, np.load(d / "there_samples.npy"), atol=2e-5)
    assert {type(layer).__module__.split(".")[0] for layer in generator.layers} == {"keras"}


# --- what `auto` picks --------------------------------------------------------------------------


@pytest.fixture
def fresh_process(monkeypatch):
    """backend.resolve as in a process that has not imported Keras, with KERAS_BACKEND unset."""
    monkeypatch.setattr(backend, "loaded", lambda: None)
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    return monkeypatch


def _installed(*names):
    return lambda name: name in names


def test_auto_picks_jax_on_a_gpu_then_tensorflow_then_jax_on_the_cpu(fresh_process):
    fresh_process.setattr(backend, "installed", _installed("jax", "tensorflow"))
    fresh_process.setattr(backend, "jax_sees_gpu", lambda: True)
    assert backend.resolve("auto") == "jax"
    fresh_process.setattr(backend, "jax_sees_gpu", lambda: False)
    assert backend.resolve("auto") == "tensorflow"
    fresh_process.setattr(backend, "installed", _installed("jax"))
    assert backend.resolve("auto") == "jax"
    fresh_process.setenv("KERAS_BACKEND", "jax")
    fresh_process.setattr(backend, "installed", _installed("jax", "tensorflow"))
    assert backend.resolve("auto") == "jax"  # Keras's own switch is honoured
    assert backend.resolve("tensorflow") == "tensorflow"  # an explicit choice wins


def test_nothing_installed_is_one_line_naming_the_extras_and_exit_2(fresh_process, capsys):
    fresh_process.setattr(backend, "installed", _installed())
    with pytest.raises(backend.BackendError, match=r"albumgan\[cpu\].*albumgan\[jax\].*\[gpu\]"):
        backend.resolve("auto")
    with pytest.raises(backend.BackendError, match="backend=jax but jax is not installed"):
        backend.resolve("jax")
    from albumgan.experiments.train import main

    assert main(["--config", "smoke", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "pip install 'albumgan[cpu]'" in err


def test_another_backend_than_the_loaded_one_is_refused(backend_name):
    with pytest.raises(backend.BackendError, match=f"already running on {backend_name}"):
        backend.resolve(OTHER[backend_name])
    assert backend.resolve("auto") == backend_name


def test_a_gpu_plugin_is_looked_for_without_importing_jax(monkeypatch):
    monkeypatch.setattr(backend, "jax_gpu_plugin_installed", lambda: False)
    assert backend.jax_sees_gpu() is False  # no plugin: CPU JAX is never imported to ask
    assert backend._JAX_GPU_PLUGIN.match("jax-cuda13-plugin")
    assert backend._JAX_GPU_PLUGIN.match("jax_cuda12_pjrt")
    assert not backend._JAX_GPU_PLUGIN.match("jaxlib")


def test_jax_keeps_compiled_programs_in_the_albumgan_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ALBUMGAN_CACHE", str(tmp_path))
    for name in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "jax", raising=False)  # as before JAX is imported
    backend._jax_settings()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "jax-compiled")
    assert float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]) < 1
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "mine"))
    backend._jax_settings()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "mine")  # the user's wins


@pytest.mark.parametrize(
    "code",
    [
        "from albumgan.experiments.train import parse_args; parse_args(['--config', 'smoke'])",
        "from albumgan.experiments.train import main; main(['--help'])",
        "from albumgan.sweeps.cli import main; main(['validate', 'sweeps/smoke.yaml'])",
        "import albumgan.reports.cli, albumgan.reports.run_report, albumgan.reports.sweep_report, "
        "albumgan.reports.compare_report",
        "import albumgan, albumgan.gan_core, albumgan.gan_core.training",
        # a run directory that cannot be made is refused before the framework loads (seconds)
        "from albumgan.experiments.train import main\n"
        "assert main(['--config=smoke', '--dataset=synthetic', '--runs_dir=/dev/null/x']) == 2",
    ],
)
def test_config_help_validate_and_reports_load_no_framework(code, cache_dir):
    check = f"{code}\nimport sys\nloaded = {{'keras', 'tensorflow', 'jax'}} & set(sys.modules)\n"
    check += "assert not loaded, loaded"
    proc = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "ALBUMGAN_CACHE": cache_dir},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_checkpoint_from_the_other_backend_resumes_here(compared, caplog, backend_name):
    """The other backend's checkpoint (after the pinned step) loads into this backend's engine,
    weights and optimizer exactly, and training goes on; the random stream is reseeded."""
    _, d = compared
    cfg = TrainConfig(**STEP_CONFIG)
    engine = make_engine(cfg, "float32", np.zeros((8, 16, 16, 3), np.uint8))
    with caplog.at_level("WARNING", logger="albumgan.gan_core.checkpoint"):
        step = checkpoint.restore_file(engine, d / "seed_there_after.npz")
    assert step == 1
    assert (
        f"written by the {OTHER[backend_name]} backend; resuming on {backend_name}" in caplog.text
    )
    with np.load(d / "seed_there_after.npz") as stored:
        assert str(stored["backend"]) == OTHER[backend_name]
        for group, variables in engine.variable_groups().items():
            for i, var in enumerate(variables):
                np.testing.assert_array_equal(var.numpy(), stored[f"{group}/{i:04d}"])
    engine.start(step)
    out = engine.run(2)
    assert out["steps"] == 2 and out["finite"] and engine.step == 3
