"""Shared fixtures: an isolated cache (synthetic covers made once per session) and tiny configs.

A test session runs on one Keras backend, the one ``KERAS_BACKEND`` names (TensorFlow when
unset): ``make test`` runs the whole suite on TensorFlow, then the tests marked
``backend_contract`` again with ``KERAS_BACKEND=jax``. Subprocesses started by tests inherit it.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
BACKEND = os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# One compute thread per process. The suite runs a process per core (pytest-xdist) and many tests
# start trainers beside it; the networks here are tiny, so framework thread pools only contend.
# Measured on 2 cores: two 200-step TensorFlow trainers at once took 20.6 s and 25.6 s with the
# default pools, 11.8 s each with one thread. Subprocesses inherit these. The pools are the ones
# a sweep worker shares out between its trainers (sweeps.runner.THREAD_VARIABLES), and XLA's.
from albumgan.sweeps.runner import THREAD_VARIABLES  # noqa: E402

for _name in THREAD_VARIABLES:
    os.environ.setdefault(_name, "1")
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)

import shutil  # noqa: E402
import tempfile  # noqa: E402

import pytest  # noqa: E402

# Folders one whole test run shares, made before pytest-xdist starts its workers (they, and the
# trainers they start, inherit the variables) and removed at the end: the JAX compilation cache
# (the trainers of a run compile the same few shapes) and the albumgan cache (the synthetic set
# takes about 10 s to generate; every cache write is a rename into place, so workers may race).
_SHARED = {"JAX_COMPILATION_CACHE_DIR": "jaxc-", "ALBUMGAN_TEST_CACHE": "albumgan-cache-"}


def pytest_configure(config):
    if hasattr(config, "workerinput"):
        return
    config._albumgan_shared = []
    for name, prefix in _SHARED.items():
        if name not in os.environ:
            os.environ[name] = tempfile.mkdtemp(prefix=prefix)
            config._albumgan_shared.append(name)


def pytest_unconfigure(config):
    for name in getattr(config, "_albumgan_shared", []):
        shutil.rmtree(os.environ.pop(name), ignore_errors=True)


@pytest.fixture(scope="session")
def backend_name() -> str:
    """The backend this test session trains on."""
    return BACKEND


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    """One cache per test run, shared by its workers: the synthetic set is generated once, never
    in ~/.cache."""
    path = os.environ.get("ALBUMGAN_TEST_CACHE") or tmp_path_factory.mktemp("albumgan-cache")
    os.environ["ALBUMGAN_CACHE"] = str(path)
    return str(path)


@pytest.fixture(scope="session")
def make_tiny_cfg(cache_dir):
    """``make_tiny_cfg(runs_dir)``: the smoke preset shrunk further, writing under ``runs_dir``."""
    from albumgan.gan_core.config import build_config, load_yaml

    def make(runs_dir) -> object:
        overrides = load_yaml("smoke")
        overrides.update(
            resolution=16,
            g_width=8,
            d_width=8,
            noise_shape=(1, 1, 16),
            batch_size=4,
            steps=12,
            log_every=3,
            sample_every=6,
            checkpoint_every=6,
            grid_size=2,
            precision="float32",
            runs_dir=str(runs_dir),
            cache_dir=cache_dir,
        )
        return build_config(overrides)

    return make


@pytest.fixture
def tiny_cfg(make_tiny_cfg, tmp_path):
    """The tiny config, its runs_dir inside this test's tmp_path."""
    return make_tiny_cfg(tmp_path / "runs")


@pytest.fixture(scope="session")
def error_line():
    """``error_line(proc, code)``: the command ``proc`` (a finished ``subprocess.run``) failed
    with exit ``code`` and said why in one line on stderr, ``error: ...``; returns that line."""

    def check(proc, code: int) -> str:
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:])
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
        return lines[0]

    return check


@pytest.fixture(scope="session")
def fake_gpus():
    """``fake_gpus(folder, count)``: put in ``folder`` an ``nvidia-smi`` that lists ``count``
    GPUs, as the real one does (``-L``); returns the folder, to prepend to PATH."""

    def make(folder, count: int):
        from pathlib import Path

        folder = Path(folder) / "fake-bin"
        folder.mkdir(exist_ok=True)
        lines = "\n".join(f"GPU {i}: NVIDIA H200 (UUID: GPU-{i:08d})" for i in range(count))
        script = folder / "nvidia-smi"
        script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{lines}\nEOF\n")
        script.chmod(0o755)
        return folder

    return make
