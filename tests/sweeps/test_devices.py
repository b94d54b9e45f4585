"""Which GPU each sweep worker gets (``sweeps.devices``), on a machine with stand-in GPUs: an
``nvidia-smi`` that lists them, as the real one does."""

from __future__ import annotations

import os

import pytest

from albumgan.gan_core import backend
from albumgan.gan_core.contract import UsageError
from albumgan.sweeps.devices import trains_on_jax, visible_gpus, worker_environments


@pytest.fixture
def four_gpus(tmp_path, monkeypatch, fake_gpus):
    monkeypatch.setenv("PATH", f"{fake_gpus(tmp_path, 4)}:{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_each_worker_gets_its_own_gpu_round_robin(four_gpus):
    gpus = visible_gpus()
    assert gpus == ["0", "1", "2", "3"]
    envs = worker_environments(6, gpus)
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == ["0", "1", "2", "3", "0", "1"]


def test_the_users_devices_and_gpus_flag_choose(four_gpus, monkeypatch):
    assert visible_gpus("1,3") == ["1", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # handed out, never widened
    assert [e["CUDA_VISIBLE_DEVICES"] for e in worker_environments(3, visible_gpus())] == [
        "2", "3", "2",
    ]  # fmt: skip
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []
    with pytest.raises(UsageError, match="--gpus"):
        visible_gpus(",")


def test_one_gpu_or_none_leaves_the_environment_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi at all: no driver
    assert visible_gpus() == []
    assert worker_environments(2, []) == [{}, {}]
    assert worker_environments(2, ["0"]) == [{}, {}]


def test_jax_is_foreseen_without_starting_it(monkeypatch):
    assert trains_on_jax("jax", []) and not trains_on_jax("tensorflow", ["0"])
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert trains_on_jax("auto", [])
    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.setattr(backend, "jax_gpu_plugin_installed", lambda: True)
    assert trains_on_jax("auto", ["0"]) == backend.installed("jax")
    assert trains_on_jax("auto", []) == (not backend.installed("tensorflow"))
