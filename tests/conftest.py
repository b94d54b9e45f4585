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

_JAX_CACHE = "JAX_COMPILATION_CACHE_DIR"


def pytest_configure(config):
    """One JAX compilation cache for the whole test run, made before pytest-xdist starts its
    workers (they, and the trainers they start, inherit it): the trainers of a run compile the
    same few shapes, and the cache keeps it from being done in every process. Removed at the end.
    """
    if not hasattr(config, "workerinput") and _JAX_CACHE not in os.environ:
        config._albumgan_jax_cache = os.environ[_JAX_CACHE] = tempfile.mkdtemp(prefix="jaxc-")


def pytest_unconfigure(config):
    path = getattr(config, "_albumgan_jax_cache", None)
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.environ.pop(_JAX_CACHE, None)


@pytest.fixture(scope="session")
def backend_name() -> str:
    """The backend this test session trains on."""
    return BACKEND


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    """One cache per test session: the synthetic set is generated once, never in ~/.cache."""
    path = tmp_path_factory.mktemp("albumgan-cache")
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
