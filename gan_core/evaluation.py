"""In-training evaluation: every ``eval_every`` steps, score the sampling generator.

The EMA generator (or G) draws ``eval_samples`` images from latents drawn ONCE at the start
(``eval_z.npy``) and is scored against the training images with the configured extractor (real
features cached on disk). The result goes into ``logs`` (``kid``, ``kid_std``, ``fid``,
``precision``, ``recall``) for the callbacks after this one (metrics log, sweeps), into
``metrics.jsonl`` with its extractor, resolution and sample counts, and the best ``best_metric``
so far (lowest KID by default; ``best_goal``) keeps ``checkpoints/best.npz`` (+ ``best.json``,
and ``best_samples.png``: the first 64 scored images at full resolution, for reports).
Evaluation time is counted apart from training time (``eval_seconds`` in status.json).
"""

from __future__ import annotations

import time

import numpy as np

from albumgan.gan_core import checkpoint
from albumgan.gan_core.config import TrainConfig
from albumgan.gan_core.contract import SCORES, better
from albumgan.gan_core.fileio import atomic_write, default_cache_dir, read_json, write_json
from albumgan.gan_core.images import save_grid, to_uint8
from albumgan.gan_core.metrics.extractors import get_extractor
from albumgan.gan_core.metrics.score import cached_features, score_features
from albumgan.gan_core.run import Callback, Run, due

MAX_EVAL_SAMPLES = 1000
BEST_SAMPLES = 64  # images of the best evaluation kept as best_samples.png (an 8x8 grid)


class Evaluator(Callback):
    """Scores the sampling generator every ``eval_every`` steps; keeps the best checkpoint."""

    def __init__(self, cfg: TrainConfig) -> None:
        """Loads the extractor at once: missing weights fail before the run starts.

        Raises:
            MetricsError: the extractor cannot be loaded (InceptionV3 weights not found).
        """
        self.active = cfg.eval_every > 0
        if self.active:
            self.extractor = get_extractor(cfg.eval_extractor, cfg.inception_weights or None)

    def on_train_begin(self, run: Run) -> None:
        cfg = run.cfg
        if not self.active:
            return
        cache = cfg.cache_dir or default_cache_dir()
        data = run.data
        key = f"{data.name}-{data.fingerprint}"
        self.real = cached_features(data.images, self.extractor, key, cache)
        n_fake = cfg.eval_samples or min(len(data.images), MAX_EVAL_SAMPLES)
        self.eval_z = _eval_latents(run, n_fake)
        best = read_json(run.run_dir / "best.json") or {}
        self.best_value = best.get(cfg.best_metric)

    def on_steps_end(self, run: Run, step: int, logs: dict) -> None:
        if not self.active or not due(step, run.cfg.eval_every, run):
            return
        started = time.perf_counter()
        images = to_uint8(run.sample(self.eval_z), drange=(-1, 1))
        fake = self.extractor(images)
        record = score_features(self.real, fake, self.extractor, run.cfg.resolution)
        record["eval_seconds"] = round(time.perf_counter() - started, 3)
        logs.update({name: record[name] for name in SCORES})
        logs["eval"] = record
        run.status.data["eval_seconds"] = round(
            run.status.data.get("eval_seconds", 0.0) + record["eval_seconds"], 3
        )
        value = record[run.cfg.best_metric]
        if self.best_value is None or better(value, self.best_value, run.cfg.best_direction):
            self.best_value = value
            checkpoint.write_checkpoint(run.engine, run.run_dir / "checkpoints" / "best.npz", step)
            save_grid(images[:BEST_SAMPLES], run.run_dir / "best_samples.png", drange=(0, 255))
            write_json(run.run_dir / "best.json", {"step": step, **record})


def _eval_latents(run: Run, count: int) -> np.ndarray:
    """The evaluation latents, drawn once per run and stored with it."""
    path = run.run_dir / "eval_z.npy"
    if path.is_file():
        stored = np.load(path)
        if len(stored) == count:
            return stored
    rng = np.random.default_rng([run.cfg.seed, 0xE7A1])
    eval_z = rng.standard_normal((count, *run.cfg.noise_shape)).astype(np.float32)
    with atomic_write(path) as handle:  # it replaces a stored set of another count
        np.save(handle, eval_z)
    return eval_z
