"""Read a run directory into one ``RunData``: what a report shows, and nothing that trains.

Everything comes from files the trainer writes (see ``gan_core.rundir``): config.yaml,
status.json, metrics.jsonl, best.json, samples/, reals.png, best_samples.png. A run still being
written is fine: half-written lines are skipped and the state says so.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from albumgan.gan_core.contract import PRIMARY_SCORE, SCORES, AlbumganError, RunState
from albumgan.gan_core.fileio import read_json, read_jsonl, safe_yaml
from albumgan.gan_core.rundir import lock_holder

_GRID = re.compile(r"^step_(\d+)\.png$")


class ReportError(AlbumganError):
    """A report cannot be made from what was given (a user error: exit code 2)."""


@dataclass
class RunData:
    """One run directory, as read."""

    path: Path
    config: dict[str, Any]
    status: dict[str, Any]
    metrics: list[dict[str, Any]]
    best: dict[str, Any] | None
    grids: list[tuple[int, Path]] = field(default_factory=list)  # (step, samples/step_N.png)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def state(self) -> str:
        """completed | running | interrupted | diverged | failed | stalled (says "running", but
        its process is gone: killed hard; ``--resume`` continues it) | not started (no
        status.json)."""
        if not self.status:
            return "not started"
        state = self.status.get("state", "unknown")
        if state != RunState.RUNNING:
            return state
        # Its writer holds the run directory's lock while it lives.
        return RunState.RUNNING if lock_holder(self.path) else RunState.STALLED

    @property
    def in_progress(self) -> bool:
        return self.state in (RunState.RUNNING, RunState.STALLED)

    @property
    def evals(self) -> list[dict[str, Any]]:
        """The metrics.jsonl records that carry an evaluation (KID and friends)."""
        return [r for r in self.metrics if any(r.get(k) is not None for k in SCORES)]

    @property
    def final_eval(self) -> dict[str, Any] | None:
        evals = self.evals
        return evals[-1] if evals else None

    @property
    def step(self) -> int:
        return int(self.status.get("step") or (self.metrics[-1]["step"] if self.metrics else 0))

    def file(self, name: str) -> Path | None:
        """A file of the run; None when missing, or a picture that does not decode (cut by a
        kill or a full disk: one warning, and the report goes on without it)."""
        path = self.path / name
        if not path.is_file():
            return None
        return path if not name.endswith(".png") or readable_picture(path) else None


_CHECKED: dict[tuple, bool] = {}  # (path, mtime, size) -> decodes: each version checked once


def readable_picture(path: Path) -> bool:
    """Whether a PNG decodes whole; a damaged one is reported once on stderr and left out."""
    from PIL import Image

    try:
        stat = path.stat()
    except OSError:
        return False
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _CHECKED:
        try:
            with Image.open(path) as image:
                image.load()
            _CHECKED[key] = True
        except (OSError, SyntaxError, ValueError) as exc:
            print(f"warning: {path}: cannot be decoded ({exc}); left out", file=sys.stderr)
            _CHECKED[key] = False
    return _CHECKED[key]


def load_run(path: str | Path) -> RunData:
    """Read ``path``; raises ReportError if it is not a run directory."""
    path = Path(path)
    config_path = path / "config.yaml"
    if not config_path.is_file():
        raise ReportError(f"{path} is not a run directory (no config.yaml)")
    try:
        config = safe_yaml(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ReportError(f"{config_path}: unreadable YAML ({exc})") from exc
    grids = []
    samples = path / "samples"
    if samples.is_dir():
        for grid in samples.iterdir():
            if (match := _GRID.match(grid.name)) and readable_picture(grid):
                grids.append((int(match.group(1)), grid))
    return RunData(
        path=path,
        config=config,
        status=read_json(path / "status.json") or {},
        metrics=read_jsonl(path / "metrics.jsonl"),
        best=read_json(path / "best.json"),
        grids=sorted(grids),
    )


def headline(run: RunData) -> dict[str, Any]:
    """The numbers a reader wants first: final and best KID (with how they were measured),
    steps, wall time, speed, state."""
    final, best = run.final_eval, run.best
    measured = final or best or {}
    return {
        "state": run.state,
        "step": run.step,
        "steps": run.status.get("steps") or run.config.get("steps"),
        "final_kid": final.get("kid") if final else None,
        "final_kid_std": final.get("kid_std") if final else None,
        "final_fid": final.get("fid") if final else None,
        "best_kid": best.get("kid") if best else None,
        # What chose the best checkpoint (best.json): the run's best_metric, KID by default.
        "best_metric": run.config.get("best_metric") or PRIMARY_SCORE,
        "best_value": best.get(run.config.get("best_metric") or PRIMARY_SCORE) if best else None,
        "best_step": best.get("step") if best else None,
        "best_fid": best.get("fid") if best else None,
        "extractor": measured.get("extractor"),
        "n_real": measured.get("n_real"),
        "n_fake": measured.get("n_fake"),
        "eval_resolution": measured.get("resolution"),
        "wall_seconds": run.status.get("wall_seconds"),
        "train_seconds": run.status.get("train_seconds"),
        "eval_seconds": run.status.get("eval_seconds"),
        "img_per_s": run.status.get("img_per_s"),
        "precision_policy": run.status.get("precision"),
        "message": run.status.get("message") or "",
        "dataset": run.config.get("dataset"),
        "n_images": run.status.get("n_images"),
    }
