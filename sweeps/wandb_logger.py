"""Weights & Biases logging for the training entry point, as a trainer callback.

W&B's own Keras callbacks do not support Keras 3, so this is ours. Enabled by ``--wandb`` or
automatically under ``wandb agent`` (``WANDB_SWEEP_ID`` set). Under the agent, ``wandb.init()``
gets no project, entity or id (the agent owns them) and sweep-locked config keys are not set
again. ``WANDB_MODE=offline`` writes a local run folder (upload later with ``wandb sync``) and
``disabled`` turns it off; with no API key configured it falls back to offline with one notice,
so it never prompts and never hangs.

Logged: losses and img/s per ``log_every``; ``kid``, ``fid``, precision/recall per evaluation
(the sweep metric under exactly its name); each sample grid as one ``wandb.Image``; a table of
final samples; the resolved config; the generator as an artifact; the final metric in
``run.summary``.
"""

from __future__ import annotations

import netrc
import os
import sys
from typing import Any

from albumgan.gan_core.contract import LOSSES, PRIMARY_SCORE, SCORES
from albumgan.gan_core.fileio import read_jsonl
from albumgan.gan_core.images import tile, to_uint8
from albumgan.gan_core.run import Callback


def has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wanted(flag: bool) -> bool:
    """On when asked for, or when running under ``wandb agent``, unless W&B is disabled."""
    if os.environ.get("WANDB_MODE") == "disabled":
        return False
    return flag or bool(os.environ.get("WANDB_SWEEP_ID"))


class WandbLogger(Callback):
    """Streams a run to W&B; one instance per training run."""

    def __init__(self, metric: str = PRIMARY_SCORE) -> None:
        self.metric = metric
        self.run = None

    def on_train_begin(self, run) -> None:
        import wandb

        mode = os.environ.get("WANDB_MODE")
        if mode is None and not has_api_key():
            mode = "offline"
            print(
                "wandb: no API key configured: logging offline (upload later with `wandb sync`)",
                file=sys.stderr,
            )
        settings = wandb.Settings(init_timeout=60, silent=True)
        config = run.cfg.to_dict()
        if os.environ.get("WANDB_SWEEP_ID"):  # the agent owns project, entity, id and its keys
            self.run = wandb.init(mode=mode, settings=settings, dir=str(run.run_dir))
            locked = set(self.run.config.keys())
            self.run.config.update({k: v for k, v in config.items() if k not in locked})
        else:
            self.run = wandb.init(
                mode=mode,
                settings=settings,
                dir=str(run.run_dir),
                config=config,
                project=os.environ.get("WANDB_PROJECT", "albumgan"),
                name=run.run_dir.name,
                group=os.environ.get("WANDB_RUN_GROUP"),
                reinit="create_new",  # the members of a packed run log side by side
            )
        self.run.config.update({"run_dir": str(run.run_dir)}, allow_val_change=True)

    def on_steps_end(self, run, step: int, logs: dict) -> None:
        # What metrics.jsonl got at this step, if anything (losses averaged since its last line,
        # img/s, scores): W&B shows the same numbers at the same steps, the last step included.
        record = run.last_metrics if run.last_metrics.get("step") == step else {}
        keys = (*LOSSES, "img_per_s", *SCORES)
        data: dict[str, Any] = {k: record[k] for k in keys if record.get(k) is not None}
        grid = run.run_dir / "samples" / f"step_{step:06d}.png"
        if grid.exists():
            import wandb

            data["samples"] = wandb.Image(str(grid), caption=f"step {step}")
        if data:
            self.run.log(data, step=step)

    def on_train_end(self, run, state: str) -> None:
        import wandb

        if self.run is None:
            return
        if state == "completed":
            images = to_uint8(run.sample(run.grid_z), drange=(-1, 1))
            table = wandb.Table(columns=["index", "sample"])
            for i, image in enumerate(images):
                table.add_data(i, wandb.Image(image))
            self.run.log({"final_samples": table, "final_grid": wandb.Image(tile(images))})
            generator = run.run_dir / "generator.keras"
            if generator.exists():
                artifact = wandb.Artifact(f"generator-{self.run.id}", type="model")
                artifact.add_file(str(generator))
                self.run.log_artifact(artifact)
        final = run.last_metrics or {}
        evals = [r for r in read_jsonl(run.run_dir / "metrics.jsonl") if self.metric in r]
        if evals:
            self.run.summary[self.metric] = evals[-1][self.metric]
        self.run.summary.update({"state": state, "step": final.get("step")})
        self.run.finish(exit_code=0 if state == "completed" else 1)
