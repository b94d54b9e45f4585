"""Evaluation in training, `albumgan evaluate` on folders, run dirs and grids, extractors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from albumgan import train
from albumgan.data_tools.synthetic import generate_cover
from albumgan.experiments.evaluate import cut_grid, evaluate, parse_grid
from albumgan.gan_core.contract import GOALS
from albumgan.gan_core.metrics.extractors import MetricsError, get_extractor
from albumgan.gan_core.metrics.score import cached_features
from albumgan.gan_core.run import Callback

ROOT = Path(__file__).resolve().parents[2]


def _covers(folder: Path, indices, size: int = 32) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in indices:
        generate_cover(i, size=size, seed=2).save(folder / f"c{i:03d}.png")
    return folder


class _Seen(Callback):
    def __init__(self) -> None:
        self.kids: dict[int, float] = {}

    def on_steps_end(self, run, step, logs):
        if "kid" in logs:
            self.kids[step] = logs["kid"]


def test_training_scores_every_eval_every_steps_and_keeps_the_best(tiny_cfg):
    seen = _Seen()
    cfg = tiny_cfg.replace(eval_every=6, eval_samples=64)
    result = train(cfg, callbacks=[seen])
    run = result.run_dir
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    scored = [r for r in records if "kid" in r]
    assert [r["step"] for r in scored] == [6, 12] == sorted(seen.kids)
    for r in scored:
        assert {"kid", "kid_std", "fid", "precision", "recall"} <= set(r)
        assert (r["extractor"], r["resolution"], r["n_fake"]) == ("album", 16, 64)
        assert r["n_real"] == 512 and math.isfinite(r["kid"]) and r["eval_seconds"] > 0
        assert r["kid"] == pytest.approx(seen.kids[r["step"]])  # the same value reaches callbacks
    best = json.loads((run / "best.json").read_text())
    assert best["kid"] == min(r["kid"] for r in scored)
    assert (run / "checkpoints" / "best.npz").is_file()
    status = json.loads((run / "status.json").read_text())
    assert status["eval_seconds"] > 0
    assert np.load(run / "eval_z.npy").shape == (64, 1, 1, 16)
    # The best checkpoint samples, from the CLI too.
    out = run / "best_samples"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "albumgan.experiments.cli",
            "sample",
            str(run),
            "--checkpoint",
            "best",
            "--n",
            "3",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(list(out.glob("*.png"))) == 3


@pytest.mark.parametrize(("metric", "goal"), [("precision", ""), ("kid", "maximize")])
def test_the_best_checkpoint_follows_best_metric_and_its_goal(tiny_cfg, metric, goal):
    """best.json / best.npz keep the evaluation best by ``best_metric`` in ``best_goal``'s
    direction (the metric's own when unset): precision up; KID up when asked (a sweep's goal)."""
    cfg = tiny_cfg.replace(eval_every=3, eval_samples=64, best_metric=metric, best_goal=goal)
    run = train(cfg).run_dir
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    scored = [r for r in records if "kid" in r]
    assert len(scored) == 4
    pick = max if (goal or GOALS[metric]) == "maximize" else min
    best = json.loads((run / "best.json").read_text())
    assert best["step"] == pick(scored, key=lambda r: r[metric])["step"]
    assert best[metric] == pick(r[metric] for r in scored)


def test_evaluate_identical_folders_and_a_run_directory(tiny_cfg, tmp_path):
    real = _covers(tmp_path / "real", range(40))
    same = evaluate(real, real, resolution=32, cache_dir=tmp_path / "cache")
    # The unbiased KID of a set against itself is slightly negative (the diagonal is left out).
    assert same["kid"] <= 0 and same["fid"] < 1e-6
    assert same["precision"] == same["recall"] == 1.0
    assert (same["n_real"], same["n_fake"], same["resolution"]) == (40, 40, 32)
    other = evaluate(
        real, _covers(tmp_path / "other", range(100, 140)), 32, cache_dir=tmp_path / "cache"
    )
    assert other["kid"] > 0 > same["kid"] and other["kid_std"] > 0
    run = train(tiny_cfg).run_dir
    scores = evaluate(real, run, resolution=32, cache_dir=tmp_path / "cache")
    assert scores["n_fake"] == 40 and scores["kid"] > other["kid"]  # 12 steps: far from covers


def test_grids_are_cut_into_tiles(tmp_path):
    tiles = [np.full((16, 16, 3), 40 * i, np.uint8) for i in range(6)]
    grid = np.concatenate([np.concatenate(tiles[r * 3 : r * 3 + 3], axis=1) for r in range(2)])
    cut = cut_grid(Image.fromarray(grid), 2, 3)
    assert [np.asarray(t)[8, 8, 0] for t in cut] == [0, 40, 80, 120, 160, 200]
    assert parse_grid("8x8") == (8, 8)
    with pytest.raises(ValueError, match="--grid"):
        parse_grid("8by8")
    folder = tmp_path / "grids"
    folder.mkdir()
    Image.fromarray(grid).save(folder / "step_000100.png")
    real = _covers(tmp_path / "real", range(10), size=16)
    scores = evaluate(real, folder, resolution=16, grid="2x3", cache_dir=tmp_path / "cache")
    assert scores["n_fake"] == 6


def test_real_features_cache_follows_the_dataset(tmp_path):
    from albumgan.data_tools.datasets import load_dataset

    real = _covers(tmp_path / "real", range(6), size=16)
    extractor = get_extractor("album")
    first = load_dataset(str(real), 16, tmp_path / "cache")
    feats = cached_features(first.images, extractor, first.fingerprint, tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "metrics").glob("*.npy"))) == 1
    again = cached_features(first.images, extractor, first.fingerprint, tmp_path / "cache")
    np.testing.assert_array_equal(feats, again)
    _covers(real, [50], size=16)  # the dataset changes: a new fingerprint, new features
    second = load_dataset(str(real), 16, tmp_path / "cache")
    assert second.fingerprint != first.fingerprint
    feats2 = cached_features(second.images, extractor, second.fingerprint, tmp_path / "cache")
    assert len(feats2) == 7 and len(list((tmp_path / "cache" / "metrics").glob("*.npy"))) == 2


def test_inception_weights_missing_is_a_clear_error_and_a_local_file_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(MetricsError, match="fetch-weights"):
        get_extractor("inception")
    import keras

    weights = tmp_path / "inception_random.weights.h5"
    model = keras.applications.InceptionV3(
        include_top=False, pooling="avg", weights=None, input_shape=(299, 299, 3)
    )
    model.save_weights(weights)
    extractor = get_extractor("inception", weights)
    images = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    feats = extractor(images)
    assert feats.shape == (3, 2048) and np.isfinite(feats).all()
    assert extractor.version.startswith("keras-inception-v3-md5:")
    np.testing.assert_array_equal(feats, extractor(images))  # deterministic


def test_evaluate_cli_json(tmp_path):
    real = _covers(tmp_path / "real", range(12), size=16)
    fake = _covers(tmp_path / "fake", range(20, 32), size=16)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "albumgan.experiments.cli",
            "evaluate",
            "--real",
            str(real),
            "--fake",
            str(fake),
            "--resolution",
            "16",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "ALBUMGAN_CACHE": str(tmp_path / "cache")},
    )
    assert proc.returncode == 0, proc.stderr
    scores = json.loads(proc.stdout)
    assert set(scores) >= {
        "kid",
        "kid_std",
        "fid",
        "precision",
        "recall",
        "density",
        "coverage",
        "extractor",
        "resolution",
        "n_real",
        "n_fake",
    }
    assert (scores["n_real"], scores["n_fake"], scores["extractor"]) == (12, 12, "album")


def test_kid_falls_as_training_goes_on(cache_dir, tmp_path):
    from albumgan.gan_core import TrainConfig

    cfg = TrainConfig(
        resolution=16,
        g_width=16,
        d_width=16,
        noise_shape=(32,),
        batch_size=16,
        steps=400,
        log_every=100,
        sample_every=0,
        checkpoint_every=0,
        eval_every=100,
        eval_samples=128,
        precision="float32",
        runs_dir=str(tmp_path / "runs"),
        cache_dir=cache_dir,
    )
    run = train(cfg).run_dir
    lines = (run / "metrics.jsonl").read_text().splitlines()
    kids = [r["kid"] for r in map(json.loads, lines) if "kid" in r]
    assert len(kids) == 4
    assert kids[-1] < 0.85 * kids[0], kids  # measured: 11.5 -> 7.9 (x1e0, album features)
