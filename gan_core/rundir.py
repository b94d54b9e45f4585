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
        best.json          the best evaluation (noise-aware) (eval_every > 0), with
        best_samples.png   the first 64 images it scored, and checkpoints/best.npz
        writer.lock        held (flock) by the one process writing the run; names its pid and host

One writer per run directory: ``RunLock`` takes an exclusive ``flock`` on ``writer.lock`` before
anything is written. The OS releases it when the process ends, however it ends (``kill -9``
included), so a lock can never be left stuck; a second trainer gets ``RunDirLocked`` naming the
holder. A sweep runner asks ``lock_holder`` to tell "still running elsewhere" from "dead".
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

import yaml

from albumgan.gan_core.config import (
    RESUMABLE,
    ConfigError,
    TrainConfig,
    build_config,
    overrides_from_mapping,
)
from albumgan.gan_core.contract import RunState, first_line
from albumgan.gan_core.fileio import (
    is_write_leftover,
    read_json,
    safe_yaml,
    write_json,
    write_text,
)

# What a trainer writes into status.json (STALLED is a reader's conclusion, never written).
WRITTEN_STATES = tuple(s for s in RunState if s is not RunState.STALLED)
LOCK_NAME = "writer.lock"
# Written by a sweep worker into a packed member's run directory: stop this member alone
# (pruned); the packed trainer freezes it and closes it as interrupted.
STOP_REQUEST = "stop.request"
REPLICAS_FILE = "replicas.json"  # a packed run's list of members (gan_core.packing)
_RUN_NAME = re.compile(r"^(\d{5,})-(.+)$")


class RunDirError(ConfigError):
    """The run directory cannot be used: not writable, locked by another writer, or holding a
    config or checkpoints that cannot be read."""


class RunDirLocked(RunDirError):
    """Another live process writes this run directory."""

    def __init__(self, run_dir: Path, holder: dict[str, Any]) -> None:
        self.holder = holder
        super().__init__(
            f"run_dir: {run_dir} is being written by pid {holder.get('pid', '?')} on "
            f"{holder.get('host', '?')} (since {_clock(holder.get('since'))}); wait for it to "
            "end or use another --run-dir"
        )


def _clock(seconds: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else "?"


class RunLock:
    """The exclusive writer lock of one run directory, held until ``release`` or process end.

    ``flock`` rather than a pid file: the kernel drops the lock with the last descriptor, so a
    crashed or killed writer never leaves the directory locked, and two processes cannot both
    win a race. The file is never deleted (deleting a lock file lets a third process lock a new
    inode while the second still holds the old one).
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Raises:
        RunDirLocked: another process holds it.
        RunDirError: the directory cannot be written.
        """
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise RunDirError(f"run_dir: cannot write {self.path.parent}: {_reason(exc)}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunDirLocked(self.path.parent, holder) from None
        holder = {"pid": os.getpid(), "host": host_name(), "since": time.time()}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise RunDirError(f"run_dir: cannot write {self.path}: {_reason(exc)}") from exc
        self._fd = fd
        remove_write_leftovers(self.path.parent)
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


_WRITTEN_FOLDERS = (".", "checkpoints", "samples")  # where the trainer's atomic writes go


def remove_write_leftovers(run_dir: Path) -> list[Path]:
    """Remove the temp files of atomic writes that a killed writer (``kill -9``) left in
    ``run_dir``; the caller holds its writer lock, so no write of another process is cut.
    The report folder (written by ``albumgan report``, which takes no lock) is not touched."""
    removed = []
    for folder in _WRITTEN_FOLDERS:
        try:
            names = os.listdir(Path(run_dir) / folder)
        except OSError:
            continue
        for name in names:
            path = Path(run_dir) / folder / name
            if is_write_leftover(name) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def lock_holder(run_dir: Path) -> dict[str, Any] | None:
    """Who holds ``run_dir``'s writer lock right now ({"pid", "host", "since"}), or None."""
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # no lock file: nobody ever wrote here
    try:
        try:
            # A shared lock succeeds only while no writer holds the exclusive one.
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        return None
    finally:
        os.close(fd)


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        holder = {}
    return holder if isinstance(holder, dict) else {}


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def host_name() -> str:
    """This machine's name as run directories and sweep trials record it: ``$ALBUMGAN_HOST``
    when set (containers on different machines that share one hostname), else the hostname."""
    return os.environ.get("ALBUMGAN_HOST") or socket.gethostname()


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
    make_dirs(runs_dir, "runs_dir")
    while True:
        ids = [int(m.group(1)) for p in runs_dir.iterdir() if (m := _RUN_NAME.match(p.name))]
        path = runs_dir / f"{max(ids, default=-1) + 1:05d}-{safe_name(name)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue  # another process took this id: look again
        except OSError as exc:
            raise RunDirError(f"runs_dir: cannot create {path}: {_reason(exc)}") from exc


def make_dirs(path: Path, key: str = "run_dir") -> Path:
    """``mkdir -p`` that fails with one line naming the folder (under a file, read-only, ...)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"{key}: cannot create {path}: {_reason(exc)}") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise RunDirError(f"{key}: cannot write {path}: permission denied")
    return path


def find_resumable(runs_dir: Path, name: str) -> Path | None:
    """The newest run called ``name`` that has not completed, or None."""
    if not runs_dir.is_dir():
        return None
    candidates = []
    for path in runs_dir.iterdir():
        match = _RUN_NAME.match(path.name)
        if match and match.group(2) == safe_name(name) and (path / "config.yaml").is_file():
            if not completed(path):
                candidates.append((int(match.group(1)), path))
    return max(candidates)[1] if candidates else None


def completed(run_dir: Path) -> bool:
    """Whether a run has completed; a packed run (``replicas.json``) when all its members have."""
    packed = read_json(run_dir / REPLICAS_FILE)
    if isinstance(packed, dict):
        names = [m.get("run_dir") for m in packed.get("members", []) if isinstance(m, dict)]
        members = [run_dir / name for name in names if name]
        return bool(members) and all(_state(m) == RunState.COMPLETED for m in members)
    return _state(run_dir) == RunState.COMPLETED


def _state(run_dir: Path) -> str | None:
    return (read_json(run_dir / "status.json") or {}).get("state")


def write_config(run_dir: Path, cfg: TrainConfig) -> None:
    write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def read_config(run_dir: Path) -> TrainConfig:
    """The config a run directory was trained with.

    Raises:
        RunDirError: config.yaml cannot be read, is not YAML or holds invalid keys or values.
    """
    path = run_dir / "config.yaml"
    try:
        data = safe_yaml(path.read_text(encoding="utf-8"))
        return build_config(overrides_from_mapping(data, str(path)))
    except OSError as exc:
        raise RunDirError(f"run_dir: cannot read {path}: {_reason(exc)}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RunDirError(
            f"run_dir: {path} is not valid YAML ({first_line(exc)}); fix it or use another "
            "--run-dir"
        ) from exc
    except ConfigError as exc:
        raise RunDirError(f"run_dir: {path}: {exc}") from exc


def check_resumable(stored: TrainConfig, requested: TrainConfig, run_dir: Path) -> None:
    """Refuse to resume a run with a config that would train something else."""
    old, new = stored.to_dict(), requested.to_dict()
    differing = [k for k in old if old[k] != new[k] and k not in RESUMABLE]
    if differing:
        details = ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in differing)
        raise ConfigError(
            f"run_dir: {run_dir} was trained with a different config ({details}); "
            f"use a new --run-dir, or only change {', '.join(sorted(RESUMABLE))}"
        )


class Status:
    """status.json, rewritten atomically on every change."""

    def __init__(self, run_dir: Path, steps: int) -> None:
        self.path = run_dir / "status.json"
        previous = read_json(self.path) or {}
        self.previous_state: str | None = previous.get("state")  # how an earlier attempt ended
        self.data: dict[str, Any] = {
            "state": RunState.RUNNING,
            "step": previous.get("step", 0),
            "steps": steps,
            "started_at": previous.get("started_at", time.time()),
            "updated_at": time.time(),
            "train_seconds": previous.get("train_seconds", 0.0),
            "wall_seconds": previous.get("wall_seconds", 0.0),
            "img_per_s": previous.get("img_per_s"),
            "resumed_from": None,
            "pid": os.getpid(),  # with "host": tells a reader whether a "running" run is alive
            "host": host_name(),
            # which GPU a sweep worker gave this run (sweeps.devices); None: all, or no GPU
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "message": "",
        }

    def update(self, **fields: Any) -> None:
        assert fields.get("state", RunState.RUNNING) in WRITTEN_STATES, fields["state"]
        self.data.update(fields, updated_at=time.time())
        # Rewritten after every execution: atomic, but not fsynced (see fileio.atomic_write).
        write_json(self.path, self.data, durable=False)
