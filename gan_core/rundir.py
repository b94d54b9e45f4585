"""The run directory: where a run writes everything, and how a re-run finds it again.

Layout::

    runs/<NNNNN>-<name>/
        config.yaml        resolved config, written before step 1
        status.json        state (running|completed|diverged|interrupted), step, timings
        metrics.jsonl      one line per log_every steps
        reals.png          a grid of training images
        grid_z.npy         the latents of every sample grid, drawn once
        samples/step_NNNNNN.png
        checkpoints/ckpt-NNNNNN.npz
        generator.keras    the sampling generator (EMA when enabled), at the end
        best.json          the evaluation with the lowest KID (eval_every > 0), with
        best_samples.png   the first 64 images it scored, and checkpoints/best.npz
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path
from typing import Any

import yaml

from gan_core.config import ConfigError, TrainConfig, build_config, overrides_from_mapping
from gan_core.fileio import read_json, write_json, write_text

STATES = ("running", "completed", "diverged", "interrupted")
# Keys a resumed run may change: they do not alter what is being trained.
RESUMABLE_CHANGES = frozenset(
    {
        "steps",
        "log_every",
        "sample_every",
        "checkpoint_every",
        "eval_every",
        "eval_extractor",
        "eval_samples",
        "inception_weights",
        "keep_checkpoints",
        "steps_per_execution",
        "runs_dir",
        "cache_dir",
        "data_dir",
        "name",
        # The backend changes how, not what, is trained: a checkpoint carries over between them
        # (gan_core.checkpoint), and `auto` may resolve differently on the machine that resumes.
        "backend",
    }
)
_RUN_NAME = re.compile(r"^(\d{5,})-(.+)$")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a run's status.json names its pid and host)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def safe_name(name: str) -> str:
    """A run name usable as part of a folder name."""
    cleaned = re.sub(r"[^A-Za-z0-9_.=-]+", "-", name).strip("-.")
    return cleaned[:80] or "run"


def create_run_dir(runs_dir: Path, name: str) -> Path:
    """Make ``runs_dir/<next id>-<name>``; safe when several processes start runs at once."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    while True:
        ids = [int(m.group(1)) for p in runs_dir.iterdir() if (m := _RUN_NAME.match(p.name))]
        path = runs_dir / f"{max(ids, default=-1) + 1:05d}-{safe_name(name)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue  # another process took this id: look again


def find_resumable(runs_dir: Path, name: str) -> Path | None:
    """The newest run called ``name`` that has not completed, or None."""
    if not runs_dir.is_dir():
        return None
    candidates = []
    for path in runs_dir.iterdir():
        match = _RUN_NAME.match(path.name)
        if match and match.group(2) == safe_name(name) and (path / "config.yaml").is_file():
            status = read_json(path / "status.json") or {}
            if status.get("state") != "completed":
                candidates.append((int(match.group(1)), path))
    return max(candidates)[1] if candidates else None


def write_config(run_dir: Path, cfg: TrainConfig) -> None:
    write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def read_config(run_dir: Path) -> TrainConfig:
    data = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    return build_config(overrides_from_mapping(data, str(run_dir / "config.yaml")))


def check_resumable(stored: TrainConfig, requested: TrainConfig, run_dir: Path) -> None:
    """Refuse to resume a run with a config that would train something else."""
    old, new = stored.to_dict(), requested.to_dict()
    differing = [k for k in old if old[k] != new[k] and k not in RESUMABLE_CHANGES]
    if differing:
        details = ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in differing)
        raise ConfigError(
            f"run_dir: {run_dir} was trained with a different config ({details}); "
            f"use a new --run-dir, or only change {', '.join(sorted(RESUMABLE_CHANGES))}"
        )


class Status:
    """status.json, rewritten atomically on every change."""

    def __init__(self, run_dir: Path, steps: int) -> None:
        self.path = run_dir / "status.json"
        previous = read_json(self.path) or {}
        self.previous_state: str | None = previous.get("state")  # how an earlier attempt ended
        self.data: dict[str, Any] = {
            "state": "running",
            "step": previous.get("step", 0),
            "steps": steps,
            "started_at": previous.get("started_at", time.time()),
            "updated_at": time.time(),
            "train_seconds": previous.get("train_seconds", 0.0),
            "wall_seconds": previous.get("wall_seconds", 0.0),
            "img_per_s": previous.get("img_per_s"),
            "resumed_from": None,
            "pid": os.getpid(),  # with "host": tells a reader whether a "running" run is alive
            "host": socket.gethostname(),
            "message": "",
        }

    def update(self, **fields: Any) -> None:
        if "state" in fields and fields["state"] not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {fields['state']!r}")
        self.data.update(fields, updated_at=time.time())
        # Rewritten after every execution: atomic, but not fsynced (see fileio.atomic_write).
        write_json(self.path, self.data, durable=False)
