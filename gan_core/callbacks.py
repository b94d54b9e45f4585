"""Everything around the train step is a callback: metrics, progress, sample grids, checkpoints,
the final generator and status.json.

A callback sees the ``Run`` (config, run directory, engine, fixed grid latents) and is called after
every compiled execution with the step reached and that execution's mean losses. The training loop
ends executions exactly on every ``log_every``/``sample_every``/``checkpoint_every`` boundary, so
``step % every == 0`` tests are exact. The end-of-run writes belong to the callbacks too, each
to the one that owns the file (as keras-io's GAN monitor owns its images): the final checkpoint,
the final grid, ``generator.keras``, the diverged line of ``metrics.jsonl``, the final status.
Write your own by subclassing ``Callback`` (``gan_core.run``).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from albumgan.gan_core import checkpoint
from albumgan.gan_core.contract import LOSSES, shown
from albumgan.gan_core.fileio import append_jsonl, write_text
from albumgan.gan_core.images import save_grid
from albumgan.gan_core.run import Callback, Run, due, exit_code


class MetricsLog(Callback):
    """``metrics.jsonl``: per ``log_every`` steps, mean losses since the last line, img/s, time,
    and with ``augment_p: ada`` the augmentation probability p at the line's step."""

    def __init__(self) -> None:
        self.augment_p = None  # the latest p; it is state, not a mean since the last line
        self._reset()

    def _reset(self) -> None:
        self.sums = dict.fromkeys(LOSSES, 0.0)
        self.count = 0
        self.images = 0
        self.seconds = 0.0

    def on_train_begin(self, run: Run) -> None:
        self.path = run.run_dir / "metrics.jsonl"
        self._truncate_after(run.start_step)
        self.started = time.perf_counter() - run.status.data["wall_seconds"]

    def _truncate_after(self, step: int) -> None:
        """A resumed run rewrites the steps after its checkpoint: drop their old lines."""
        if not self.path.exists():
            return
        kept = []
        for raw in self.path.read_bytes().splitlines():
            try:
                line = raw.decode("utf-8")
                if json.loads(line)["step"] <= step:
                    kept.append(line)
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut by kill -9, or damaged: not a record
        write_text(self.path, "".join(f"{line}\n" for line in kept))  # killed midway: old file

    def on_steps_end(self, run: Run, step: int, logs: dict[str, float]) -> None:
        n = logs["steps"]
        for name in LOSSES:
            self.sums[name] += logs[name] * n
        self.count += n
        self.augment_p = logs.get("augment_p")
        if logs["img_per_s"] is not None:  # the first, tracing execution is not timed
            self.images += n * run.cfg.batch_size
            self.seconds += logs["seconds"]
        if due(step, run.cfg.log_every, run) or "eval" in logs:
            self.write(run, step, **logs.get("eval", {}))

    def write(self, run: Run, step: int, **extra: Any) -> None:
        if self.count == 0 and not extra:
            return
        record: dict[str, Any] = {"step": step}
        for name in LOSSES:
            record[name] = round(self.sums[name] / self.count, 6) if self.count else None
        record["img_per_s"] = round(self.images / self.seconds, 2) if self.seconds else None
        record["wall_seconds"] = round(time.perf_counter() - self.started, 3)
        if self.augment_p is not None:
            record["augment_p"] = round(self.augment_p, 6)
        record.update(extra)
        append_jsonl(self.path, record)
        run.last_metrics = record
        self._reset()

    def on_train_end(self, run: Run, state: str) -> None:
        if state == "diverged":
            append_jsonl(self.path, {"step": run.step, "diverged": True})


class Progress(Callback):
    """A rich progress bar on a terminal; plain log lines every ``log_every`` steps otherwise.

    ``bar=False`` (the members of a packed run after the first: a terminal holds one live bar)
    keeps to the log lines, and on a terminal to the first line only."""

    def __init__(self, stream=None, bar: bool = True) -> None:
        self.stream = stream or sys.stdout
        self.bar = None
        self.wants_bar = bar

    def on_train_begin(self, run: Run) -> None:
        self.first_step = run.start_step
        self.t0 = time.perf_counter()
        device = run.status.data.get("device", "")
        print(
            f"{run.run_dir}: {run.backend} on {device}, precision {run.precision}",
            file=self.stream,
            flush=True,
        )
        self.silent = self.stream.isatty() and not self.wants_bar
        if self.stream.isatty() and self.wants_bar:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )

            self.bar = RichProgress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[losses]}"),
                TextColumn("{task.fields[speed]}"),
                TimeRemainingColumn(),
            )
            self.bar.start()
            self.task = self.bar.add_task(
                run.run_dir.name,
                total=run.cfg.steps,
                completed=run.start_step,
                losses="",
                speed="",
            )

    def on_steps_end(self, run: Run, step: int, logs: dict[str, float]) -> None:
        losses = (
            f"D(real) {logs['d_loss_real']:.3f} D(fake) {logs['d_loss_fake']:.3f} "
            f"G {logs['g_loss']:.3f}"
        )
        speed = f"{logs['img_per_s']:.0f} img/s" if logs["img_per_s"] else ""
        if logs.get("augment_p") is not None:
            speed += f"  p {logs['augment_p']:.3f}"
        if "kid" in logs:
            speed += f"  KID {shown(logs['kid'])}"
        if self.bar is not None:
            self.bar.update(self.task, completed=step, losses=losses, speed=speed)
        elif due(step, run.cfg.log_every, run) and not self.silent:
            elapsed = time.perf_counter() - self.t0
            rate = (step - self.first_step) / elapsed if elapsed > 0 else 0.0
            eta = (run.cfg.steps - step) / rate if rate > 0 else math.inf
            eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if math.isfinite(eta) else "?"
            print(
                f"step {step}/{run.cfg.steps}  {losses}  {speed}  eta {eta_text}",
                file=self.stream,
                flush=True,
            )

    def on_train_end(self, run: Run, state: str) -> None:
        if self.bar is not None:
            self.bar.stop()


class SampleGrids(Callback):
    """``samples/step_NNNNNN.png`` every ``sample_every`` steps, always from the same latents,
    and one of the final weights when the run completes."""

    def on_steps_end(self, run: Run, step: int, logs: dict[str, float]) -> None:
        if due(step, run.cfg.sample_every, run):
            self.save(run, step)

    def on_train_end(self, run: Run, state: str) -> None:
        if state == "completed" and not self._path(run, run.step).exists():
            self.save(run, run.step)

    @staticmethod
    def _path(run: Run, step: int) -> Path:
        return run.run_dir / "samples" / f"step_{step:06d}.png"

    @classmethod
    def save(cls, run: Run, step: int) -> Path:
        path = cls._path(run, step)
        images = run.sample(run.grid_z)
        save_grid(images, path, drange=(-1, 1), cols=run.cfg.grid_size, durable=False)
        return path


class Checkpoints(Callback):
    """An atomic checkpoint every ``checkpoint_every`` steps and at the end; keeps the newest.

    A diverged run saves nothing at the end: its newest checkpoint stays the last good one.
    """

    def on_steps_end(self, run: Run, step: int, logs: dict[str, float]) -> None:
        if due(step, run.cfg.checkpoint_every, run):
            self.save(run, step)

    def on_train_end(self, run: Run, state: str) -> None:
        if state != "diverged":
            self.save(run, run.step)

    @staticmethod
    def save(run: Run, step: int) -> None:
        if run.last_checkpoint_step == step:
            return
        checkpoint.save(run.engine, run.run_dir / "checkpoints", step, run.cfg.keep_checkpoints)
        run.last_checkpoint_step = step


class FinalGenerator(Callback):
    """``generator.keras``: the sampling generator of a completed run, in plain Keras layers that
    load on every backend (``albumgan sample`` on a laptop after a GPU run)."""

    def on_train_end(self, run: Run, state: str) -> None:
        if state == "completed":
            run.engine.export_generator(run.run_dir / "generator.keras")


class StatusFile(Callback):
    """status.json: running with the step and timings after every execution; the final state,
    its exit code and a message at the end. Called after the callbacks that write files, so a
    reader that sees ``completed`` finds ``generator.keras`` there."""

    def on_steps_end(self, run: Run, step: int, logs: dict[str, Any]) -> None:
        run.status.update(
            step=step,
            train_seconds=round(run.train_seconds, 3),
            wall_seconds=round(run.wall_seconds, 3),
            img_per_s=run.last_metrics.get("img_per_s", run.status.data["img_per_s"]),
        )

    def on_train_end(self, run: Run, state: str) -> None:
        messages = {
            "diverged": f"non-finite loss at step {run.step}; last good checkpoint kept",
            "interrupted": f"stopped by signal {run.stop_signal} at step {run.step}; "
            "checkpoint saved",
        }
        run.status.update(
            state=state,
            step=run.step,
            train_seconds=round(run.train_seconds, 3),
            wall_seconds=round(run.wall_seconds, 3),
            exit_code=exit_code(state, run.stop_signal),
            **({"message": messages[state]} if state in messages else {}),
        )
