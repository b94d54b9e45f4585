"""Which GPUs a sweep's workers train on, and whether its trainers will run on JAX, found without
starting CUDA (or any framework) in the sweep's own processes.

``sweep run --workers K`` on a machine with G > 1 GPUs gives worker i the GPU ``gpus[i % G]``
through ``CUDA_VISIBLE_DEVICES``, as W&B's convention does by hand (one ``wandb agent`` per GPU,
each started with its own ``CUDA_VISIBLE_DEVICES``). The GPUs are ``--gpus 0,1,...`` when given,
else the user's ``CUDA_VISIBLE_DEVICES`` (its entries are handed out, never widened), else what
``nvidia-smi -L`` lists. One GPU or none: the workers' environment is left as it is.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from albumgan.gan_core import backend
from albumgan.gan_core.backend import BackendError
from albumgan.gan_core.contract import UsageError

_LISTED = re.compile(r"^GPU (\d+):", re.MULTILINE)


def visible_gpus(requested: str | None = None) -> list[str]:
    """The GPUs the workers may use: ``requested`` ("0,1"), the user's CUDA_VISIBLE_DEVICES, or
    ``nvidia-smi -L``'s list; [] when there are none (or no driver)."""
    if requested is not None:
        gpus = [g.strip() for g in requested.split(",") if g.strip()]
        if not gpus:
            raise UsageError(f"--gpus: expected a list such as 0,1, got {requested!r}")
        return gpus
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        listed = os.environ["CUDA_VISIBLE_DEVICES"].split(",")
        return [g.strip() for g in listed if g.strip() and g.strip() != "-1"]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return _LISTED.findall(out)


def worker_environments(workers: int, gpus: list[str]) -> list[dict[str, str]]:
    """Per worker, the variables its trainers get: its own GPU, round-robin; nothing to change
    with one GPU or none."""
    if len(gpus) <= 1:
        return [{} for _ in range(workers)]
    return [{"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)]} for i in range(workers)]


def trains_on_jax(requested: str, gpus: list[str]) -> bool:
    """Whether a trainer asked for ``backend=requested`` will run on JAX: ``gan_core.backend``'s
    rule for a new process, with "would JAX see a GPU" answered by ``gpus`` (and JAX's GPU
    plugin being installed) instead of by starting JAX here."""

    def sees_gpu() -> bool:
        return bool(gpus) and backend.installed("jax") and backend.jax_gpu_plugin_installed()

    try:
        return backend.choose(requested, sees_gpu) == "jax"
    except BackendError:  # not installed: the trainer will say so; it would not pack either
        return requested == "jax"
