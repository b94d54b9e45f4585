"""In-training evaluation: every ``eval_every`` steps, score the sampling generator.

The EMA generator (or G) draws ``eval_samples`` images from latents drawn ONCE at the start
(``eval_z.npy``) and is scored against the training images with the configured extractor (real
features cached on disk). The result goes into ``logs`` (``kid``, ``kid_std``, ``fid``,
``precision``, ``recall``) for the callbacks after this one (metrics log, sweeps), into
``metrics.jsonl`` with its extractor, resolution and sample counts, and may take over
``checkpoints/best.npz`` (+ ``best.json``, and ``best_samples.png``: the first 64 scored images at
full resolution, for reports).

The best checkpoint is noise-aware (``keeps_best``): an evaluation takes it over unless its
``best_metric`` (lowest KID by default; ``best_goal``) is worse than the best value seen so far by
more than the score's own spread: the larger of this evaluation's ``<metric>_std`` and that of the
evaluation that set the best (``kid_std``; 0 for scores without one, which then replace on ties
and improvements only). Why: on real covers a KID gap smaller than ``kid_std`` chose an earlier
checkpoint that an independent judge (ImageNet-feature KID) ranked below the final one, twice.
Within noise the later checkpoint is preferred: it has trained longer. ``best.json`` is the
record of the evaluation that holds ``best.npz`` plus ``best_seen`` (the best value so far, which
may be an earlier evaluation's), ``best_seen_std``, ``spread`` (used for this decision),
``best_metric`` and ``best_goal``; a resumed run reads ``best_seen`` back (the record's own value
in run directories written before this rule).
Evaluation time is counted apart from training time (``eval_seconds`` in status.json).
"""

from __future__ import annotations

import math
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
        self.best_seen, self.best_seen_std = _resumed_best(
            read_json(run.run_dir / "best.json") or {}, cfg.best_metric, cfg.best_direction
        )

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
        metric, goal = run.cfg.best_metric, run.cfg.best_direction
        value, std = record[metric], _spread(record, metric)
        spread = max(std, self.best_seen_std)
        if not keeps_best(value, self.best_seen, spread, goal):
            return
        if self.best_seen is None or better(value, self.best_seen, goal):
            self.best_seen, self.best_seen_std = value, std
        checkpoint.write_checkpoint(run.engine, run.run_dir / "checkpoints" / "best.npz", step)
        save_grid(images[:BEST_SAMPLES], run.run_dir / "best_samples.png", drange=(0, 255))
        best = {"best_seen": self.best_seen, "best_seen_std": self.best_seen_std}
        best.update(spread=spread, best_metric=metric, best_goal=goal)
        write_json(run.run_dir / "best.json", {"step": step, **record, **best})


def keeps_best(value: float, best_seen: float | None, spread: float, goal: str) -> bool:
    """Whether an evaluation scoring ``value`` takes over the best checkpoint.

    It does unless it is worse than ``best_seen`` by more than ``spread``: within the score's
    noise the later checkpoint wins (it has trained longer). ``spread=0`` keeps ties and
    improvements only. A non-finite score never does.

    Args:
        value: this evaluation's score.
        best_seen: the best score seen so far (None: no evaluation yet).
        spread: how far worse than ``best_seen`` still counts as a tie (>= 0).
        goal: ``minimize`` or ``maximize``.

    Returns:
        True when ``value`` should replace the best checkpoint.
    """
    if not math.isfinite(value):
        return False
    if best_seen is None:
        return True
    if goal == "maximize":
        return value >= best_seen - spread
    return value <= best_seen + spread


def _spread(record: dict, metric: str) -> float:
    """The noise of ``record``'s ``metric``: its ``<metric>_std`` (KID's), else 0."""
    std = record.get(f"{metric}_std")
    return float(std) if std is not None and math.isfinite(std) and std > 0 else 0.0


def _resumed_best(best: dict, metric: str, goal: str) -> tuple[float | None, float]:
    """``(best_seen, best_seen_std)`` from a run's ``best.json`` (``{}``: none yet).

    A file written before the noise-aware rule, or for another ``best_metric``/``best_goal``
    (both may change on resume), holds the best record itself: its own value and std.
    """
    if "best_seen" in best and (best.get("best_metric"), best.get("best_goal")) == (metric, goal):
        return best["best_seen"], best.get("best_seen_std", 0.0)
    value = best.get(metric)
    return value, (_spread(best, metric) if value is not None else 0.0)


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
